//! The VRRP codec: parse + validate (length, checksum with pseudo-header, fields) and emit, for
//! the advert shapes a router sends most: VRRPv3 IPv4 and IPv6 with one VIP, VRRPv2 with a
//! password (the seed's configuration).
#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use vrrp_core::packet::{
    AddressList, Advertisement, Auth, ChecksumMode, IpContext, OwnedAddressList, Version,
    MULTICAST_V4, MULTICAST_V6,
};

struct Shape {
    name: &'static str,
    version: Version,
    auth: Auth,
    vips: OwnedAddressList,
    ctx: IpContext,
}

fn shapes() -> Vec<Shape> {
    let v4 = |src: [u8; 4], dst: Ipv4Addr| IpContext {
        src: IpAddr::from(src),
        dst: IpAddr::V4(dst),
        checksum: ChecksumMode::Rfc5798,
    };
    vec![
        Shape {
            name: "v3-ipv4",
            version: Version::V3,
            auth: Auth::None,
            vips: AddressList::encode_v4(&[Ipv4Addr::new(192, 0, 2, 200)]),
            ctx: v4([192, 0, 2, 1], MULTICAST_V4),
        },
        Shape {
            name: "v3-ipv6",
            version: Version::V3,
            auth: Auth::None,
            vips: AddressList::encode_v6(&[Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100)]),
            ctx: IpContext {
                src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1)),
                dst: IpAddr::V6(MULTICAST_V6),
                checksum: ChecksumMode::Rfc5798,
            },
        },
        Shape {
            name: "v2-pass",
            version: Version::V2,
            auth: Auth::simple(b"123456").unwrap(),
            vips: AddressList::encode_v4(&[Ipv4Addr::new(192, 0, 2, 200)]),
            ctx: v4([192, 0, 2, 1], Ipv4Addr::new(192, 0, 2, 2)),
        },
    ]
}

fn advert(s: &Shape) -> Advertisement<'_> {
    Advertisement {
        version: s.version,
        vrid: 101,
        priority: 100,
        interval_cs: 100,
        auth: s.auth,
        addresses: s.vips.as_list(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("vrrp_packet");
    for s in shapes() {
        let adv = advert(&s);
        let mut buf = [0u8; 64];
        let n = adv.emit(&mut buf, &s.ctx).unwrap();
        let bytes = buf[..n].to_vec();
        group.bench_function(format!("decode/{}", s.name), |b| {
            b.iter(|| {
                Advertisement::decode(black_box(&bytes), black_box(&s.ctx)).map(|a| a.priority)
            })
        });
        group.bench_function(format!("emit/{}", s.name), |b| {
            let mut out = [0u8; 64];
            b.iter(|| black_box(&adv).emit(black_box(&mut out), black_box(&s.ctx)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
