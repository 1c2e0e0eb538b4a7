//! PROXY protocol headers (HAProxy's spec, versions 1 and 2) sent to backends so they learn
//! the real client address.

use std::net::{IpAddr, SocketAddr};

/// Which PROXY protocol header, if any, a pool sends to its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// No header: the backend sees the balancer as the client.
    #[default]
    None,
    /// The human-readable v1 header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary v2 header.
    V2,
}

/// The 12-byte signature that starts every v2 header.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Both addresses in one family: IPv4-mapped IPv6 becomes IPv4 when both sides are so, and a
/// lone IPv4 is mapped to IPv6 when the other side is IPv6.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (s, d) = (canon(src), canon(dst));
    let map = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    match (s.ip(), d.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => (s, d),
        _ => (map(s), map(d)),
    }
}

/// The v1 header for a TCP connection from `src` (the client) to `dst` (the address it
/// connected to on the balancer).
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (s, d) = same_family(src, dst);
    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        s.ip(),
        d.ip(),
        s.port(),
        d.port()
    )
    .into_bytes()
}

/// The v2 header (command PROXY, transport STREAM) for a TCP connection from `src` to `dst`.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (s, d) = same_family(src, dst);
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    // Version 2, command PROXY.
    out.push(0x21);
    match (s.ip(), d.ip()) {
        (IpAddr::V4(si), IpAddr::V4(di)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&si.octets());
            out.extend_from_slice(&di.octets());
        }
        (IpAddr::V6(si), IpAddr::V6(di)) => {
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&si.octets());
            out.extend_from_slice(&di.octets());
        }
        // same_family never returns mixed families; send the LOCAL/UNSPEC form to be safe.
        _ => {
            out[12] = 0x20;
            out.push(0x00);
            out.extend_from_slice(&0u16.to_be_bytes());
            return out;
        }
    }
    out.extend_from_slice(&s.port().to_be_bytes());
    out.extend_from_slice(&d.port().to_be_bytes());
    out
}

impl ProxyProtocol {
    /// The header bytes for a connection from `src` to `dst`, empty for [`ProxyProtocol::None`].
    pub fn header(self, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        match self {
            ProxyProtocol::None => Vec::new(),
            ProxyProtocol::V1 => encode_v1(src, dst),
            ProxyProtocol::V2 => encode_v2(src, dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_matches_the_spec_examples() {
        // Spec section 2.1: "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n".
        assert_eq!(
            encode_v1(sa("255.255.255.255:65535"), sa("255.255.255.255:65535")),
            b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
        );
        assert_eq!(
            encode_v1(sa("192.0.2.1:56324"), sa("198.51.100.7:443")),
            b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
        );
        assert_eq!(
            encode_v1(sa("[2001:db8::1]:1000"), sa("[2001:db8::2]:6443")),
            b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 6443\r\n"
        );
        // A v4 client on a dual-stack socket appears as mapped IPv6: sent as TCP4.
        assert_eq!(
            encode_v1(sa("[::ffff:192.0.2.1]:1"), sa("[::ffff:192.0.2.2]:2")),
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"
        );
        // The longest v1 header fits the spec's 107-byte bound.
        let long = encode_v1(
            sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        );
        assert_eq!(long.len(), 104);
        assert!(long.len() <= 107);
    }

    #[test]
    fn v2_ipv4_bytes() {
        let h = encode_v2(sa("192.0.2.1:56324"), sa("198.51.100.7:443"));
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C]);
        want.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
        want.extend_from_slice(&[0xDC, 0x04, 0x01, 0xBB]);
        assert_eq!(h, want);
        assert_eq!(h.len(), 16 + 12);
    }

    #[test]
    fn v2_ipv6_bytes() {
        let h = encode_v2(sa("[2001:db8::1]:1000"), sa("[2001:db8::2]:6443"));
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0x00, 0x24]);
        assert_eq!(h.len(), 16 + 36);
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        src[15] = 1;
        assert_eq!(&h[16..32], &src);
        assert_eq!(h[47], 2);
        assert_eq!(&h[48..52], &[0x03, 0xE8, 0x19, 0x2B]);
    }

    #[test]
    fn v2_mixed_families_are_mapped_to_ipv6() {
        let h = encode_v2(sa("192.0.2.1:1"), sa("[2001:db8::2]:2"));
        assert_eq!(h[13], 0x21);
        assert_eq!(
            &h[16..32],
            &"::ffff:192.0.2.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
    }
}
