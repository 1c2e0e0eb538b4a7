//! The VRRP state machine: `handle_packet` in Backup (validate, reset Master_Down_Timer) and in
//! Master (validate, answer a lower-priority advert: emit + drain), the Master's advert timer,
//! and a `Demux` of 1, 100 and 255 routers receiving one advert (flat in the number of routers).
#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use vrrp_core::packet::{AddressList, Advertisement, Auth, ChecksumMode, IpContext, Version};
use vrrp_core::{Demux, Received, Router, RouterConfig, State};

const ME: [u8; 4] = [192, 0, 2, 10];
const PEER: [u8; 4] = [192, 0, 2, 20];
const GROUP: [u8; 4] = [224, 0, 0, 18];

fn config(vrid: u8, priority: u8) -> RouterConfig {
    let mut c = RouterConfig::new(
        vrid,
        Version::V3,
        IpAddr::from(ME),
        vec![IpAddr::from([198, 51, 100, vrid])],
    );
    c.priority = priority;
    c
}

/// The advert the peer sends for the router of `c`.
fn advert(c: &RouterConfig, priority: u8) -> Vec<u8> {
    let vips = AddressList::encode(c.family(), &c.virtual_addresses).unwrap();
    let adv = Advertisement {
        version: c.version,
        vrid: c.vrid,
        priority,
        interval_cs: c.advert_interval_cs,
        auth: Auth::None,
        addresses: vips.as_list(),
    };
    let ctx = IpContext {
        src: IpAddr::from(PEER),
        dst: IpAddr::from(GROUP),
        checksum: ChecksumMode::Rfc5798,
    };
    let mut buf = vec![0u8; adv.buffer_len()];
    adv.emit(&mut buf, &ctx).unwrap();
    buf
}

fn rx(bytes: &[u8]) -> Received<'_> {
    Received {
        src: IpAddr::from(PEER),
        dst: IpAddr::from(GROUP),
        ttl: 255,
        bytes,
    }
}

fn started(c: RouterConfig, t0: Instant) -> Router {
    let mut r = Router::new(c).unwrap();
    r.handle_startup(t0);
    while r.poll_output().is_some() {}
    r
}

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();

    // Backup hearing its master (priority 200 > 100): the common case, once per interval.
    let cfg = config(1, 100);
    let bytes = advert(&cfg, 200);
    let mut backup = started(cfg, t0);
    assert_eq!(backup.state(), State::Backup);
    c.bench_function("router/backup_handle_packet", |b| {
        b.iter(|| {
            backup.handle_packet(t0, black_box(&rx(&bytes))).unwrap();
        })
    });
    assert_eq!(backup.state(), State::Backup);

    // Master hearing a lower-priority advert: validates, then answers with its own advert.
    let cfg = config(1, 100);
    let bytes = advert(&cfg, 50);
    let mut master = started(cfg, t0);
    let t1 = master.poll_timeout().unwrap();
    master.handle_timeout(t1);
    while master.poll_output().is_some() {}
    assert_eq!(master.state(), State::Master);
    c.bench_function("router/master_handle_packet_answer", |b| {
        b.iter(|| {
            master.handle_packet(t1, black_box(&rx(&bytes))).unwrap();
            while let Some(o) = master.poll_output() {
                black_box(o);
            }
        })
    });

    // Master's Adver_Timer: one advert per call.
    let mut now = t1;
    c.bench_function("router/master_adver_timer", |b| {
        b.iter(|| {
            now += Duration::from_secs(1);
            master.handle_timeout(now);
            while let Some(o) = master.poll_output() {
                black_box(o);
            }
        })
    });
    assert_eq!(master.state(), State::Master);

    // The receive path of a driver: one advert through the demux to its router, the outputs
    // drained, due timers run and the next deadline read; with 1, 100 and 255 routers behind
    // the one socket (255: every VRID of a family, the most one socket can carry).
    let mut group = c.benchmark_group("demux/receive_one_advert");
    for n in [1u8, 100, 255] {
        let mut demux = Demux::new();
        let mut packets = Vec::new();
        for vrid in 1..=n {
            let cfg = config(vrid, 100);
            packets.push(advert(&cfg, 200));
            demux.add(Router::new(cfg).unwrap()).unwrap();
        }
        demux.handle_startup(t0);
        while demux.poll_output().is_some() {}
        let mut k = 0;
        let mut now = t0;
        group.bench_function(format!("{n}_routers"), |b| {
            b.iter(|| {
                k = (k + 1) % packets.len();
                now += Duration::from_micros(1);
                demux
                    .handle_packet(now, black_box(&rx(&packets[k])))
                    .unwrap();
                while let Some(o) = demux.poll_output() {
                    black_box(o);
                }
                demux.handle_timeout(now);
                black_box(demux.poll_timeout());
            })
        });
        assert!(demux.routers().all(|(_, r)| r.state() == State::Backup));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
