//! The Internet checksum (RFC 1071) and the pseudo-headers VRRPv3 folds into it.

use core::net::IpAddr;

use crate::packet::IP_PROTOCOL;

/// Adds `data` to a running one's-complement sum, as 16-bit big-endian words.
///
/// An odd trailing byte is padded with a zero on the right, as RFC 1071 says.
pub(crate) fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        acc += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds the carries of a running sum and returns its one's complement.
pub(crate) fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The running sum of the IPv4 or IPv6 pseudo-header for a VRRP message of `len` bytes
/// (RFC 5798 §5.2.8, which points at RFC 768 for IPv4 and RFC 8200 §8.1 for IPv6).
///
/// Returns `None` when `src` and `dst` are not of the same family.
pub(crate) fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Option<u32> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = sum(0, &s.octets());
            let acc = sum(acc, &d.octets());
            // zero byte + protocol, then the 16-bit length.
            Some(acc + u32::from(IP_PROTOCOL) + (len as u32 & 0xffff))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let acc = sum(0, &s.octets());
            let acc = sum(acc, &d.octets());
            // 32-bit upper-layer length, three zero bytes, next header.
            let len = len as u32;
            Some(acc + (len >> 16) + (len & 0xffff) + u32::from(IP_PROTOCOL))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 §3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(finish(sum(0, &[0x12])), !0x1200);
    }

    #[test]
    fn mixed_families_have_no_pseudo_header() {
        let v4 = IpAddr::from([192, 0, 2, 1]);
        let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        assert!(pseudo_header(v4, v6, 20).is_none());
    }
}
