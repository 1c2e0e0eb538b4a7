//! The VRRP decoder never panics, and every packet it accepts re-encodes to the same bytes
//! (up to the fields the RFCs say to ignore on reception).
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vrrp_core::packet::{
    Advertisement, Auth, ChecksumMode, IpContext, Packet, Version, AUTH_DATA_LEN,
};

#[derive(Debug, Arbitrary)]
struct Input {
    v6: bool,
    v2_style_checksum: bool,
    src: [u8; 16],
    dst: [u8; 16],
    /// Most random bytes fail the checksum; fill it in so the parser behind it gets exercised.
    fix_checksum: bool,
    bytes: Vec<u8>,
}

fn addr(v6: bool, b: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::from(b)
    } else {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    }
}

fuzz_target!(|input: Input| {
    let ctx = IpContext {
        src: addr(input.v6, input.src),
        dst: addr(input.v6, input.dst),
        checksum: if input.v2_style_checksum {
            ChecksumMode::V3WithoutPseudoHeader
        } else {
            ChecksumMode::Rfc5798
        },
    };
    let mut bytes = input.bytes;
    let family = ctx.family();
    if input.fix_checksum {
        if let Ok(mut p) = Packet::new_checked(&mut bytes[..], family) {
            let _ = p.fill_checksum(&ctx);
        }
    }
    let Ok(adv) = Advertisement::decode(&bytes, &ctx) else {
        return;
    };
    let mut out = vec![0u8; adv.buffer_len()];
    let n = adv
        .emit(&mut out, &ctx)
        .expect("an accepted packet re-encodes");
    assert_eq!(n, bytes.len());
    // The reserved bits of v3 and the auth data of an unauthenticated v2 packet are ignored on
    // reception and zero on transmission: compare with those zeroed (and the checksum redone).
    let mut normalized = bytes.clone();
    match adv.version {
        Version::V3 => normalized[4] &= 0x0f,
        Version::V2 if adv.auth == Auth::None => {
            let end = normalized.len();
            normalized[end - AUTH_DATA_LEN..].fill(0);
        }
        Version::V2 => {}
    }
    let mut p = Packet::new_unchecked(&mut normalized[..], family);
    p.fill_checksum(&ctx).expect("same family");
    assert_eq!(out, normalized);
    assert_eq!(Advertisement::decode(&out, &ctx), Ok(adv));
});
