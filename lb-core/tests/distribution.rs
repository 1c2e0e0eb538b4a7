//! Each algorithm shares 10,000 real connections in proportion to the weights.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use lb_core::{Algorithm, BackendConfig, PoolConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

const CONNECTIONS: u64 = 10_000;
const CLIENTS: u64 = 16;
const WEIGHTS: [u32; 3] = [1, 2, 3];

/// Runs 10,000 connections (from `sources` distinct client IPs) and returns each backend's
/// share.
async fn shares(algorithm: Algorithm, sources: u64) -> Vec<f64> {
    let b: Vec<Backend> = futures_backends().await;
    let mut pool = PoolConfig::new(
        "dist",
        b.iter()
            .zip(WEIGHTS)
            .map(|(b, w)| BackendConfig::new(b.addr).weight(w))
            .collect(),
    );
    pool.algorithm = algorithm;
    let lb = start(pool, |_| {});
    let front = front(&lb);
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let failures = Arc::clone(&failures);
        tasks.push(tokio::spawn(async move {
            let mut k = c;
            while k < CONNECTIONS {
                let src = k % sources;
                if connect_from(src, front).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                k += CLIENTS;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed connections");
    let counts: Vec<u64> = b.iter().map(|b| b.count()).collect();
    assert_eq!(counts.iter().sum::<u64>(), CONNECTIONS);
    let stats = lb.stats();
    assert_eq!(stats.listeners[0].accepted, CONNECTIONS);
    assert_eq!(stats.listeners[0].no_backend, 0);
    lb.shutdown(SOON).await;
    counts
        .iter()
        .map(|&c| c as f64 / CONNECTIONS as f64)
        .collect()
}

async fn futures_backends() -> Vec<Backend> {
    let mut v = Vec::new();
    for id in 0..3 {
        v.push(backend(id, false).await);
    }
    v
}

/// Connects from 127.1.x.y (one of `sources` loopback addresses), reads the backend id.
async fn connect_from(src: u64, front: SocketAddr) -> std::io::Result<u8> {
    let s = TcpSocket::new_v4()?;
    let ip = Ipv4Addr::new(127, 1, (src / 250) as u8, (src % 250) as u8 + 1);
    s.bind(SocketAddr::from((ip, 0)))?;
    let mut stream = s.connect(front).await?;
    let mut id = [0u8; 1];
    stream.read_exact(&mut id).await?;
    Ok(id[0])
}

fn assert_weighted(name: &str, got: &[f64], tolerance: f64) {
    let total: u32 = WEIGHTS.iter().sum();
    for (i, (&g, &w)) in got.iter().zip(&WEIGHTS).enumerate() {
        let want = f64::from(w) / f64::from(total);
        assert!(
            (g - want).abs() <= tolerance,
            "{name}: backend {i} got {g:.3}, want {want:.3} ± {tolerance}; all {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_follows_weights() {
    // Smooth weighted round robin is exact over whole cycles.
    assert_weighted(
        "round-robin",
        &shares(Algorithm::RoundRobin, 1).await,
        0.005,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_follows_weights() {
    assert_weighted("least-conn", &shares(Algorithm::LeastConn, 1).await, 0.04);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_of_two_follows_weights() {
    assert_weighted("p2c", &shares(Algorithm::PowerOfTwo, 1).await, 0.04);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_follows_weights() {
    // Binomial with n = 10,000: 4 standard deviations are under 2 %.
    assert_weighted("random", &shares(Algorithm::Random, 1).await, 0.025);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglev_follows_weights_over_many_clients() {
    // 2,500 client IPs, 4 connections each; each IP sticks to one backend.
    assert_weighted("maglev", &shares(Algorithm::maglev(), 2_500).await, 0.04);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglev_is_sticky_per_client_ip() {
    let b = futures_backends().await;
    let mut pool = pool_of(&[&b[0], &b[1], &b[2]]);
    pool.algorithm = Algorithm::maglev();
    let lb = start(pool, |_| {});
    let front = front(&lb);
    for src in 0..50 {
        let first = connect_from(src, front).await.unwrap();
        for _ in 0..3 {
            assert_eq!(connect_from(src, front).await.unwrap(), first);
        }
    }
}
