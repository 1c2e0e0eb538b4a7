//! Properties of the VRRP codec: what `emit` writes, `decode` reads back unchanged; garbage
//! never panics; and every single-bit error is caught.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vrrp_core::packet::{
    AddressList, Advertisement, Auth, ChecksumMode, Family, IpContext, OwnedAddressList, Packet,
    PacketError, Version, AUTH_DATA_LEN, MAX_V3_INTERVAL_CS,
};

/// Everything needed to build one advertisement and its IP context, owned.
#[derive(Debug, Clone)]
struct Case {
    version: Version,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    auth: Auth,
    addresses: OwnedAddressList,
    ctx: IpContext,
}

impl Case {
    fn advert(&self) -> Advertisement<'_> {
        Advertisement {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval_cs: self.interval_cs,
            auth: self.auth,
            addresses: self.addresses.as_list(),
        }
    }

    fn emit(&self) -> Vec<u8> {
        let adv = self.advert();
        let mut buf = vec![0u8; adv.buffer_len()];
        let n = adv.emit(&mut buf, &self.ctx).unwrap();
        assert_eq!(n, buf.len());
        buf
    }
}

fn checksum_mode() -> impl Strategy<Value = ChecksumMode> {
    prop_oneof![
        Just(ChecksumMode::Rfc5798),
        Just(ChecksumMode::V3WithoutPseudoHeader)
    ]
}

fn v4_case() -> impl Strategy<Value = Case> {
    let v2 = (
        0u16..=255,
        prop_oneof![
            Just(Auth::None),
            any::<[u8; AUTH_DATA_LEN]>().prop_map(Auth::Simple)
        ],
    )
        .prop_map(|(secs, auth)| (Version::V2, secs * 100, auth));
    let v3 = (0..=MAX_V3_INTERVAL_CS).prop_map(|cs| (Version::V3, cs, Auth::None));
    (
        prop_oneof![v2, v3],
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<[u8; 4]>(), 0..20),
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        checksum_mode(),
    )
        .prop_map(
            |((version, interval_cs, auth), vrid, priority, addrs, src, dst, checksum)| {
                let addrs: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
                Case {
                    version,
                    vrid,
                    priority,
                    interval_cs,
                    auth,
                    addresses: AddressList::encode_v4(&addrs),
                    ctx: IpContext {
                        src: IpAddr::from(src),
                        dst: IpAddr::from(dst),
                        checksum,
                    },
                }
            },
        )
}

fn v6_case() -> impl Strategy<Value = Case> {
    (
        0..=MAX_V3_INTERVAL_CS,
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<[u8; 16]>(), 0..10),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        checksum_mode(),
    )
        .prop_map(|(interval_cs, vrid, priority, addrs, src, dst, checksum)| {
            let addrs: Vec<Ipv6Addr> = addrs.into_iter().map(Ipv6Addr::from).collect();
            Case {
                version: Version::V3,
                vrid,
                priority,
                interval_cs,
                auth: Auth::None,
                addresses: AddressList::encode_v6(&addrs),
                ctx: IpContext {
                    src: IpAddr::from(src),
                    dst: IpAddr::from(dst),
                    checksum,
                },
            }
        })
}

fn any_case() -> impl Strategy<Value = Case> {
    prop_oneof![v4_case(), v6_case()]
}

/// An IP context of either family, for feeding garbage.
fn any_ctx() -> impl Strategy<Value = IpContext> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        checksum_mode(),
    )
        .prop_map(|(v6, s, d, checksum)| {
            let pick = |b: [u8; 16]| {
                if v6 {
                    IpAddr::from(b)
                } else {
                    IpAddr::from([b[0], b[1], b[2], b[3]])
                }
            };
            IpContext {
                src: pick(s),
                dst: pick(d),
                checksum,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn emit_then_decode_gives_back_the_advert(case in any_case()) {
        let bytes = case.emit();
        let back = Advertisement::decode(&bytes, &case.ctx);
        prop_assert_eq!(back, Ok(case.advert()));
    }

    #[test]
    fn decode_then_emit_gives_back_the_bytes(case in any_case()) {
        let bytes = case.emit();
        let adv = Advertisement::decode(&bytes, &case.ctx).unwrap();
        let mut again = vec![0u8; adv.buffer_len()];
        let n = adv.emit(&mut again, &case.ctx).unwrap();
        prop_assert_eq!(&again[..n], &bytes[..]);
    }

    #[test]
    fn every_single_bit_flip_is_rejected(case in any_case(), bit in any::<prop::sample::Index>()) {
        let mut bytes = case.emit();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        // The checksum catches it, unless a header check fires first; never accepted.
        prop_assert!(Advertisement::decode(&bytes, &case.ctx).is_err(), "flip of bit {} accepted", bit);
    }

    #[test]
    fn a_flipped_pseudo_header_address_is_rejected_in_v3(
        case in any_case(),
        bit in any::<prop::sample::Index>(),
        flip_dst in any::<bool>(),
    ) {
        let with_pseudo = case.version == Version::V3
            && (case.ctx.family() == Family::Ipv6 || case.ctx.checksum == ChecksumMode::Rfc5798);
        let bytes = case.emit();
        let flip = |a: IpAddr| match a {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) ^ (1 << bit.index(32)))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) ^ (1 << bit.index(128)))),
        };
        let mut ctx = case.ctx;
        if flip_dst { ctx.dst = flip(ctx.dst) } else { ctx.src = flip(ctx.src) }
        let result = Advertisement::decode(&bytes, &ctx);
        if with_pseudo {
            let bad_checksum = matches!(result, Err(PacketError::BadChecksum { .. }));
            prop_assert!(bad_checksum, "{:?}", result);
        } else {
            prop_assert_eq!(result, Ok(case.advert()));
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), ctx in any_ctx()) {
        let _ = Advertisement::decode(&bytes, &ctx);
        // The view's accessors stay in bounds once the length is checked.
        if let Ok(p) = Packet::new_checked(&bytes[..], ctx.family()) {
            let _ = (p.vrid(), p.priority(), p.addr_count(), p.checksum(), p.interval_cs());
            let _ = p.addresses().iter().count();
            if p.version() == Ok(Version::V2) {
                let _ = p.auth_data();
            }
            let _ = Advertisement::parse(&p);
        }
    }

    #[test]
    fn garbage_with_a_fixed_checksum_is_accepted_only_if_it_reencodes(
        bytes in prop::collection::vec(any::<u8>(), 8..200),
        ctx in any_ctx(),
        header in (2u8..=3, any::<u8>(), 0u8..=3),
    ) {
        // Make the header plausible so the parser behind the checksum gets exercised.
        let mut bytes = bytes;
        let (version, count, auth_type) = header;
        bytes[0] = (version << 4) | 1;
        bytes[3] = count % 8;
        if version == 2 { bytes[4] = auth_type; }
        let family = ctx.family();
        let want = vrrp_core::packet::packet_len(
            Version::from_number(version).unwrap(), family, usize::from(bytes[3]));
        bytes.resize(want, 0xa5);
        let mut p = Packet::new_unchecked(&mut bytes[..], family);
        p.fill_checksum(&ctx).unwrap();
        match Advertisement::decode(&bytes, &ctx) {
            Ok(adv) => {
                let mut out = vec![0u8; adv.buffer_len()];
                let n = adv.emit(&mut out, &ctx).unwrap();
                prop_assert_eq!(n, bytes.len());
                // Fields ignored on reception are zero on transmission.
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
                p.fill_checksum(&ctx).unwrap();
                prop_assert_eq!(out, normalized);
            }
            Err(e) => {
                // Only the errors this input can have: v2 over IPv6, AH, unknown auth type.
                let expected = matches!(
                    e,
                    PacketError::VersionMismatch { .. }
                        | PacketError::AuthAhUnsupported
                        | PacketError::BadAuthType(_)
                );
                prop_assert!(expected, "{:?}", e);
            }
        }
    }
}
