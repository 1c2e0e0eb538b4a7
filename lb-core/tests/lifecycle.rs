//! Run-time operations: drain, graceful stop, limits, backends changed under load.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lb_core::{BackendConfig, BackendState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_keeps_existing_connections_and_takes_no_new_ones() {
    let a = backend(1, true).await;
    let b = backend(2, true).await;
    let lb = start(pool_of(&[&a, &b]), |_| {});
    let f = front(&lb);
    // Round robin: the first connection goes to a.
    let (mut on_a, id) = open(f).await;
    assert_eq!(id, 1);
    lb.pool("test")
        .unwrap()
        .set_state(a.addr, BackendState::Drain)
        .unwrap();
    for _ in 0..20 {
        assert_eq!(which(f).await.unwrap(), 2);
    }
    echo(&mut on_a, b"still served").await.unwrap();
    let st = &lb.stats().pools[0].backends[0];
    assert_eq!(st.state, BackendState::Drain);
    assert_eq!(st.active, 1);
    assert_eq!(a.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_refuses_new_clients_and_lets_open_ones_finish() {
    let b = backend(1, true).await;
    let lb = start(pool_of(&[&b]), |_| {});
    let f = front(&lb);
    let (mut s, _) = open(f).await;
    let stopping = tokio::spawn(lb.shutdown(SOON));
    // Accepting stops: new connections are refused.
    let deadline = Instant::now() + SOON;
    while TcpStream::connect(f).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The open connection still works, and the stop waits for it.
    echo(&mut s, b"in flight").await.unwrap();
    assert!(!stopping.is_finished());
    drop(s);
    let report = tokio::time::timeout(SOON, stopping).await.unwrap().unwrap();
    assert_eq!(report.len(), 1);
    // Probes accepted before the stop took effect may be in flight too; all end by themselves.
    assert!(report[0].in_flight >= 1, "{report:?}");
    assert_eq!(report[0].finished, report[0].in_flight);
    assert_eq!(report[0].aborted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_cuts_connections_past_the_deadline() {
    let b = backend(1, true).await;
    let lb = start(pool_of(&[&b]), |_| {});
    let (mut s, _) = open(front(&lb)).await;
    let report = lb.shutdown(Duration::from_millis(300)).await;
    assert_eq!(report[0].in_flight, 1);
    assert_eq!(report[0].aborted, 1);
    // The client sees its connection end.
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(SOON, s.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_limit_holds_new_clients_in_the_queue_until_a_slot_frees() {
    let b = backend(1, true).await;
    let lb = start(pool_of(&[&b]), |l| l.max_connections = 2);
    let f = front(&lb);
    let (mut c1, _) = open(f).await;
    let (mut c2, _) = open(f).await;
    // The third completes the TCP handshake (kernel queue) but is not served yet.
    let mut c3 = TcpStream::connect(f).await.unwrap();
    let mut id = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), c3.read_exact(&mut id)).await;
    assert!(early.is_err(), "third connection served past the limit");
    assert_eq!(lb.stats().listeners[0].active, 2);
    echo(&mut c1, b"a").await.unwrap();
    echo(&mut c2, b"b").await.unwrap();
    drop(c1);
    tokio::time::timeout(SOON, c3.read_exact(&mut id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id[0], 1);
    echo(&mut c3, b"c").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_limit_spills_over_then_refuses_when_all_are_full() {
    let a = backend(1, true).await;
    let b = backend(2, true).await;
    let mut pool = pool_of(&[&a, &b]);
    pool.backends[0].max_connections = 1;
    pool.backends[1].max_connections = 1;
    let lb = start(pool, |_| {});
    let f = front(&lb);
    let (_c1, id1) = open(f).await;
    let (_c2, id2) = open(f).await;
    assert_ne!(id1, id2);
    // Both full: the client is closed at once, counted as no backend.
    let mut c3 = TcpStream::connect(f).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(SOON, c3.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    let st = lb.stats();
    assert_eq!(st.listeners[0].no_backend, 1);
    assert!(st.pools[0].backends.iter().all(|b| b.active == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_change_under_load_without_failed_connections() {
    let b1 = backend(1, true).await;
    let b2 = backend(2, true).await;
    let b3 = backend(3, true).await;
    let lb = start(pool_of(&[&b1, &b2]), |_| {});
    let f = front(&lb);
    let pool = lb.pool("test").unwrap().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
        clients.push(tokio::spawn(async move {
            let mut n = 0u32;
            // Bounded: at most 2,000 connections per client.
            while !stop.load(Ordering::Relaxed) && n < 2000 {
                let (mut s, _) = open(f).await;
                echo(&mut s, b"hello").await.unwrap();
                s.shutdown().await.unwrap();
                ok.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    let step = Duration::from_millis(100);
    tokio::time::sleep(step).await;
    pool.add(BackendConfig::new(b3.addr).weight(3)).unwrap();
    tokio::time::sleep(step).await;
    pool.remove(b1.addr).unwrap();
    tokio::time::sleep(step).await;
    pool.set_weight(b2.addr, 5).unwrap();
    pool.set_state(b3.addr, BackendState::Drain).unwrap();
    tokio::time::sleep(step).await;
    pool.add(BackendConfig::new(b1.addr)).unwrap();
    pool.set_state(b3.addr, BackendState::Up).unwrap();
    tokio::time::sleep(step).await;
    pool.set_backends(&[BackendConfig::new(b3.addr), BackendConfig::new(b1.addr)])
        .unwrap();
    tokio::time::sleep(step).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let st = lb.stats();
    assert_eq!(st.listeners[0].no_backend, 0);
    assert_eq!(st.listeners[0].connect_errors, 0);
    assert_eq!(st.listeners[0].errors, 0);
    assert_eq!(st.listeners[0].accepted, ok.load(Ordering::Relaxed));
    assert!(b3.count() > 0 && b1.count() > 0 && b2.count() > 0);
}
