//! lb-core backend selection: one `pick` per algorithm over 3, 100 and 1,000 backends (weights
//! 1 to 10, all available), as on the per-connection path.
#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lb_core::{Algorithm, BackendConfig, PickContext, Pool, PoolConfig};

fn pool(n: usize) -> Pool {
    let backends = (0..n)
        .map(|i| {
            let addr = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 6443));
            BackendConfig::new(addr).weight(1 + (i % 10) as u32)
        })
        .collect();
    Pool::new(PoolConfig::new("bench", backends)).unwrap()
}

fn select(c: &mut Criterion) {
    let algorithms = [
        ("round-robin", Algorithm::RoundRobin),
        ("least-conn", Algorithm::LeastConn),
        ("p2c", Algorithm::PowerOfTwo),
        ("random", Algorithm::Random),
        ("maglev", Algorithm::maglev()),
    ];
    let mut group = c.benchmark_group("lb_select");
    for n in [3usize, 100, 1000] {
        let pool = pool(n);
        let snapshot = pool.snapshot();
        let members = snapshot.backends();
        for (name, algorithm) in &algorithms {
            let picker = algorithm.selector().unwrap().prepare(members);
            let mut k: u32 = 0;
            group.bench_function(BenchmarkId::new(*name, n), |b| {
                b.iter(|| {
                    // A different client each time, as Maglev hashes the source address.
                    k = k.wrapping_add(0x9e37_79b9);
                    let client = SocketAddr::from((Ipv4Addr::from(k), 40000));
                    let ctx = PickContext::new(client, members, &[]);
                    black_box(picker.pick(black_box(&ctx)))
                })
            });
        }
    }
    group.finish();
}

/// Building the picker on a membership or state change (Maglev fills its 65,537-slot table;
/// round robin computes one cycle of its sequence).
fn prepare(c: &mut Criterion) {
    let mut group = c.benchmark_group("lb_prepare");
    for n in [3usize, 100, 1000] {
        let pool = pool(n);
        let snapshot = pool.snapshot();
        for (name, algorithm) in [
            ("maglev", Algorithm::maglev()),
            ("round-robin", Algorithm::RoundRobin),
        ] {
            let selector = algorithm.selector().unwrap();
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(selector.prepare(black_box(snapshot.backends()))))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, select, prepare);
criterion_main!(benches);
