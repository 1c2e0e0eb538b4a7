//! Golden tests: real adverts sent by keepalived (Debian's 2.2.7), captured in network
//! namespaces by `scripts/capture-keepalived-adverts.sh` into `tests/data/*.pcap`.
//!
//! Every captured advert must decode with the checksum mode keepalived used, carry the fields
//! its configuration says, and re-encode to the very same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use vrrp_core::packet::{
    Advertisement, Auth, ChecksumMode, Family, IpContext, PacketError, Version, MULTICAST_V4,
    MULTICAST_V6,
};

/// One captured IP packet carrying VRRP.
#[derive(Debug, Clone)]
struct Captured {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: Vec<u8>,
}

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Reads a classic pcap file of Ethernet frames and returns its IPv4/IPv6 protocol-112 packets.
fn read_pcap(name: &str) -> Vec<Captured> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(data.len() >= 24, "{name}: no pcap header");
    let big_endian = match [data[0], data[1], data[2], data[3]] {
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
        m => panic!("{name}: not a pcap file (magic {m:02x?})"),
    };
    assert_eq!(u32_at(&data, 20, big_endian), 1, "{name}: not Ethernet");
    let mut out = Vec::new();
    let mut at = 24;
    while at < data.len() {
        let incl = u32_at(&data, at + 8, big_endian) as usize;
        let frame = &data[at + 16..at + 16 + incl];
        at += 16 + incl;
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let ip = &frame[14..];
        let captured = match ethertype {
            0x0800 => {
                assert_eq!(ip[0] >> 4, 4);
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                // Ethernet pads short frames: the IP total length says where the packet ends.
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                assert_eq!(ip[9], 112, "{name}: not VRRP");
                Captured {
                    src: IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
                    dst: IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
                    ttl: ip[8],
                    payload: ip[ihl..total].to_vec(),
                }
            }
            0x86dd => {
                assert_eq!(ip[0] >> 4, 6);
                assert_eq!(ip[6], 112, "{name}: extension headers are not expected");
                let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                let mut src = [0u8; 16];
                let mut dst = [0u8; 16];
                src.copy_from_slice(&ip[8..24]);
                dst.copy_from_slice(&ip[24..40]);
                Captured {
                    src: IpAddr::from(src),
                    dst: IpAddr::from(dst),
                    ttl: ip[7],
                    payload: ip[40..40 + len].to_vec(),
                }
            }
            other => panic!("{name}: unexpected ethertype {other:#06x}"),
        };
        out.push(captured);
    }
    out
}

/// What keepalived was configured with in one scenario of the capture script.
struct Expect {
    file: &'static str,
    version: Version,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    auth: Auth,
    vips: &'static [&'static str],
    src: &'static str,
    dst: &'static str,
    ttl: u8,
}

const KA1_V4: &str = "192.0.2.1";
const PEER_V4: &str = "192.0.2.2";
/// keepalived sends IPv6 multicast from the interface's link-local address (MAC 02:00:00:00:00:01).
const KA1_LL: &str = "fe80::ff:fe00:1";

fn pass() -> Auth {
    Auth::simple(b"123456").unwrap()
}

fn scenarios() -> Vec<Expect> {
    vec![
        Expect {
            file: "keepalived-v2-pass-unicast.pcap",
            version: Version::V2,
            vrid: 101,
            priority: 100,
            interval_cs: 100,
            auth: pass(),
            vips: &["192.0.2.200"],
            src: KA1_V4,
            dst: PEER_V4,
            ttl: 255,
        },
        Expect {
            file: "keepalived-v2-pass-multicast.pcap",
            version: Version::V2,
            vrid: 101,
            priority: 100,
            interval_cs: 100,
            auth: pass(),
            vips: &["192.0.2.200"],
            src: KA1_V4,
            dst: "224.0.0.18",
            ttl: 255,
        },
        Expect {
            file: "keepalived-v2-noauth-multicast.pcap",
            version: Version::V2,
            vrid: 7,
            priority: 150,
            interval_cs: 200,
            auth: Auth::None,
            vips: &["192.0.2.200", "192.0.2.201"],
            src: KA1_V4,
            dst: "224.0.0.18",
            ttl: 255,
        },
        Expect {
            file: "keepalived-v3-ipv4-multicast.pcap",
            version: Version::V3,
            vrid: 102,
            priority: 100,
            interval_cs: 100,
            auth: Auth::None,
            vips: &["192.0.2.201"],
            src: KA1_V4,
            dst: "224.0.0.18",
            ttl: 255,
        },
        Expect {
            file: "keepalived-v3-ipv4-unicast.pcap",
            version: Version::V3,
            vrid: 102,
            priority: 100,
            interval_cs: 50,
            auth: Auth::None,
            vips: &["192.0.2.201"],
            src: KA1_V4,
            dst: PEER_V4,
            ttl: 255,
        },
        Expect {
            file: "keepalived-v3-ipv6-multicast.pcap",
            version: Version::V3,
            vrid: 103,
            priority: 200,
            interval_cs: 50,
            auth: Auth::None,
            vips: &["2001:db8::100", "2001:db8::101"],
            src: KA1_LL,
            dst: "ff02::12",
            ttl: 255,
        },
        Expect {
            file: "keepalived-v3-ipv6-unicast.pcap",
            version: Version::V3,
            vrid: 103,
            priority: 200,
            interval_cs: 50,
            auth: Auth::None,
            vips: &["2001:db8::100"],
            src: "2001:db8::1",
            dst: "2001:db8::2",
            // keepalived 2.2.7 leaves unicast IPv6 at the system's default hop limit, so a
            // receiver must not insist on 255 for unicast (RFC 5798 §7.1 speaks of multicast).
            ttl: 64,
        },
    ]
}

fn rfc_ctx(p: &Captured) -> IpContext {
    IpContext {
        src: p.src,
        dst: p.dst,
        checksum: ChecksumMode::Rfc5798,
    }
}

/// Decodes one captured advert, checks it against `e` and re-encodes it bit for bit.
fn check(e: &Expect, p: &Captured, ctx: &IpContext, priority: u8) {
    let adv = Advertisement::decode(&p.payload, ctx)
        .unwrap_or_else(|err| panic!("{}: {err} in {:02x?}", e.file, p.payload));
    assert_eq!(adv.version, e.version, "{}", e.file);
    assert_eq!(adv.vrid, e.vrid, "{}", e.file);
    assert_eq!(adv.priority, priority, "{}", e.file);
    assert_eq!(adv.interval_cs, e.interval_cs, "{}", e.file);
    assert_eq!(adv.auth, e.auth, "{}", e.file);
    let vips: Vec<IpAddr> = e.vips.iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(adv.addresses.iter().collect::<Vec<_>>(), vips, "{}", e.file);
    let mut buf = [0u8; 1500];
    let n = adv.emit(&mut buf, ctx).unwrap();
    assert_eq!(&buf[..n], &p.payload[..], "{}: re-encoding differs", e.file);
}

#[test]
fn keepalived_adverts_decode_and_reencode_bit_for_bit() {
    for e in scenarios() {
        let packets = read_pcap(e.file);
        assert!(packets.len() >= 3, "{}: {} packets", e.file, packets.len());
        let (last, steady) = packets.split_last().unwrap();
        for p in steady {
            assert_eq!(p.src, e.src.parse::<IpAddr>().unwrap(), "{}", e.file);
            assert_eq!(p.dst, e.dst.parse::<IpAddr>().unwrap(), "{}", e.file);
            assert_eq!(p.ttl, e.ttl, "{}: TTL/hop limit", e.file);
            check(&e, p, &rfc_ctx(p), e.priority);
        }
        // keepalived resigns on SIGTERM with one priority-0 advert.
        check(&e, last, &rfc_ctx(last), 0);
    }
}

#[test]
fn the_rfc5798_checksum_depends_on_the_ip_addresses() {
    for e in scenarios().iter().filter(|e| e.version == Version::V3) {
        let p = &read_pcap(e.file)[0];
        let wrong_src = match p.src {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99)),
        };
        let ctx = IpContext {
            src: wrong_src,
            ..rfc_ctx(p)
        };
        assert!(
            matches!(
                Advertisement::decode(&p.payload, &ctx),
                Err(PacketError::BadChecksum { .. })
            ),
            "{}",
            e.file
        );
    }
}

#[test]
fn v2_checksums_ignore_the_ip_addresses() {
    for e in scenarios().iter().filter(|e| e.version == Version::V2) {
        let p = &read_pcap(e.file)[0];
        let ctx = IpContext {
            src: "198.51.100.7".parse().unwrap(),
            dst: "198.51.100.8".parse().unwrap(),
            checksum: ChecksumMode::Rfc5798,
        };
        assert!(
            Advertisement::decode(&p.payload, &ctx).is_ok(),
            "{}",
            e.file
        );
    }
}

#[test]
fn v3_ipv4_without_pseudo_header_is_a_different_checksum() {
    // keepalived 2.2.7 has no option to leave the pseudo-header out (that is Wireshark's
    // `v3_checksum_as_in_v2` preference, and FRR's `no ... checksum-with-ipv4-pseudoheader`):
    // its default adverts must fail in that mode, so the mode really changes the check.
    for file in [
        "keepalived-v3-ipv4-multicast.pcap",
        "keepalived-v3-ipv4-unicast.pcap",
    ] {
        let p = &read_pcap(file)[0];
        let ctx = IpContext {
            checksum: ChecksumMode::V3WithoutPseudoHeader,
            ..rfc_ctx(p)
        };
        assert!(
            matches!(
                Advertisement::decode(&p.payload, &ctx),
                Err(PacketError::BadChecksum { .. })
            ),
            "{file}"
        );
    }
    // IPv6 always has the pseudo-header: the mode does not apply to it.
    let p = &read_pcap("keepalived-v3-ipv6-multicast.pcap")[0];
    let ctx = IpContext {
        checksum: ChecksumMode::V3WithoutPseudoHeader,
        ..rfc_ctx(p)
    };
    assert!(Advertisement::decode(&p.payload, &ctx).is_ok());
}

#[test]
fn keepalived_old_unicast_checksum_uses_the_multicast_group() {
    // With `old_unicast_checksum` (keepalived before 1.3.6), a unicast VRRPv3 IPv4 advert is
    // checksummed with 224.0.0.18 as the pseudo-header's destination, although it goes to the
    // peer. It fails the RFC check and the no-pseudo-header check, and passes with the group.
    let packets = read_pcap("keepalived-v3-ipv4-unicast-old-checksum.pcap");
    assert!(packets.len() >= 3);
    let e = Expect {
        file: "keepalived-v3-ipv4-unicast-old-checksum.pcap",
        version: Version::V3,
        vrid: 102,
        priority: 100,
        interval_cs: 50,
        auth: Auth::None,
        vips: &["192.0.2.201"],
        src: KA1_V4,
        dst: PEER_V4,
        ttl: 255,
    };
    let last = packets.len() - 1;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.dst, PEER_V4.parse::<IpAddr>().unwrap());
        for mode in [ChecksumMode::Rfc5798, ChecksumMode::V3WithoutPseudoHeader] {
            let ctx = IpContext {
                checksum: mode,
                ..rfc_ctx(p)
            };
            assert!(matches!(
                Advertisement::decode(&p.payload, &ctx),
                Err(PacketError::BadChecksum { .. })
            ));
        }
        let as_multicast = IpContext {
            dst: IpAddr::V4(MULTICAST_V4),
            ..rfc_ctx(p)
        };
        check(&e, p, &as_multicast, if i == last { 0 } else { e.priority });
    }
}

#[test]
fn fixtures_cover_every_family_and_version() {
    let all: Vec<(Version, Family)> = scenarios()
        .iter()
        .map(|e| {
            let p = &read_pcap(e.file)[0];
            let adv = Advertisement::decode(&p.payload, &rfc_ctx(p)).unwrap();
            (adv.version, adv.family())
        })
        .collect();
    for want in [
        (Version::V2, Family::Ipv4),
        (Version::V3, Family::Ipv4),
        (Version::V3, Family::Ipv6),
    ] {
        assert!(all.contains(&want), "{want:?} missing");
    }
    // And both destinations of each family: the group and a unicast peer.
    let dsts: Vec<IpAddr> = scenarios().iter().map(|e| e.dst.parse().unwrap()).collect();
    assert!(dsts.contains(&IpAddr::V4(MULTICAST_V4)));
    assert!(dsts.contains(&IpAddr::V6(MULTICAST_V6)));
    assert!(dsts.iter().any(|d| d.is_ipv4() && !d.is_multicast()));
    assert!(dsts.iter().any(|d| d.is_ipv6() && !d.is_multicast()));
}

#[test]
fn v3_without_pseudo_header_matches_wiresharks_v3_checksum_as_in_v2() {
    // keepalived's captured v3 advert (VRID 102, priority 100, 1 s, VIP 192.0.2.201), with the
    // checksum computed over the VRRP message only. Wireshark 4 with the preference
    // `vrrp.v3_checksum_as_in_v2:TRUE` reports 0xa76a as correct for these bytes (and as
    // incorrect without it): the mode means what peers that use it mean.
    let expected = [0x31, 102, 100, 1, 0x00, 0x64, 0xa7, 0x6a, 192, 0, 2, 201];
    let vips = vrrp_core::packet::AddressList::encode_v4(&[Ipv4Addr::new(192, 0, 2, 201)]);
    let adv = Advertisement {
        version: Version::V3,
        vrid: 102,
        priority: 100,
        interval_cs: 100,
        auth: Auth::None,
        addresses: vips.as_list(),
    };
    let ctx = IpContext {
        src: KA1_V4.parse().unwrap(),
        dst: IpAddr::V4(MULTICAST_V4),
        checksum: ChecksumMode::V3WithoutPseudoHeader,
    };
    let mut buf = [0u8; 12];
    assert_eq!(adv.emit(&mut buf, &ctx).unwrap(), 12);
    assert_eq!(buf, expected);
    assert_eq!(Advertisement::decode(&expected, &ctx).unwrap(), adv);
    // The same message with keepalived's RFC checksum differs only in the checksum field.
    let real = &read_pcap("keepalived-v3-ipv4-multicast.pcap")[0].payload;
    assert_eq!(real[..6], expected[..6]);
    assert_eq!(real[8..], expected[8..]);
    assert_ne!(real[6..8], expected[6..8]);
}

#[test]
fn v3_multicast_pseudo_header_mode_reproduces_keepalived_old_unicast_checksum() {
    // `ChecksumMode::V3MulticastPseudoHeader` decodes keepalived's `old_unicast_checksum`
    // adverts at their real IP addresses and re-encodes them bit for bit (priority-0 last).
    let e = Expect {
        file: "keepalived-v3-ipv4-unicast-old-checksum.pcap",
        version: Version::V3,
        vrid: 102,
        priority: 100,
        interval_cs: 50,
        auth: Auth::None,
        vips: &["192.0.2.201"],
        src: KA1_V4,
        dst: PEER_V4,
        ttl: 255,
    };
    let packets = read_pcap(e.file);
    assert!(packets.len() >= 3, "{} packets", packets.len());
    let last = packets.len() - 1;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.dst, PEER_V4.parse::<IpAddr>().unwrap());
        let ctx = IpContext {
            checksum: ChecksumMode::V3MulticastPseudoHeader,
            ..rfc_ctx(p)
        };
        check(&e, p, &ctx, if i == last { 0 } else { e.priority });
    }
    // keepalived's RFC unicast adverts (1.3.6 and later) fail in that mode...
    let rfc = &read_pcap("keepalived-v3-ipv4-unicast.pcap")[0];
    let old_ctx = IpContext {
        checksum: ChecksumMode::V3MulticastPseudoHeader,
        ..rfc_ctx(rfc)
    };
    assert!(matches!(
        Advertisement::decode(&rfc.payload, &old_ctx),
        Err(PacketError::BadChecksum { .. })
    ));
    // ...while multicast adverts and IPv6 or VRRPv2 adverts are the same in both modes.
    for file in [
        "keepalived-v3-ipv4-multicast.pcap",
        "keepalived-v3-ipv6-multicast.pcap",
        "keepalived-v3-ipv6-unicast.pcap",
        "keepalived-v2-pass-unicast.pcap",
    ] {
        let p = &read_pcap(file)[0];
        let ctx = IpContext {
            checksum: ChecksumMode::V3MulticastPseudoHeader,
            ..rfc_ctx(p)
        };
        let adv =
            Advertisement::decode(&p.payload, &ctx).unwrap_or_else(|err| panic!("{file}: {err}"));
        let mut buf = [0u8; 1500];
        let n = adv.emit(&mut buf, &ctx).unwrap();
        assert_eq!(&buf[..n], &p.payload[..], "{file}");
    }
}
