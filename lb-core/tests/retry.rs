//! Connect failures: retries on other backends, passive ejection and return.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lb_core::{Algorithm, BackendConfig, BackendState, PoolConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_past_refused_backends_with_no_client_failure() {
    let live = backend(7, false).await;
    let dead1 = refused_addr().await;
    let dead2 = refused_addr().await;
    let mut pool = PoolConfig::new(
        "retry",
        vec![
            BackendConfig::new(dead1),
            BackendConfig::new(dead2),
            BackendConfig::new(live.addr),
        ],
    );
    // Random draws keep hitting the dead ones; passive ejection is off so every connection
    // must retry. Two retries suffice only if a failed backend is never tried twice.
    pool.algorithm = Algorithm::Random;
    pool.retries = 2;
    pool.max_fails = 0;
    let lb = start(pool, |_| {});
    for _ in 0..300 {
        assert_eq!(which(front(&lb)).await.unwrap(), 7);
    }
    let s = lb.stats();
    let l = &s.listeners[0];
    assert_eq!(l.accepted, 300);
    assert_eq!(l.no_backend, 0);
    assert!(l.connect_errors > 100, "{l:?}");
    assert_eq!(l.retries, l.connect_errors);
    let errors: u64 = s.pools[0].backends.iter().map(|b| b.connect_errors).sum();
    assert_eq!(errors, l.connect_errors);
    assert_eq!(live.count(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_close_the_client_and_count_no_backend() {
    let mut pool = PoolConfig::new(
        "none",
        vec![
            BackendConfig::new(refused_addr().await),
            BackendConfig::new(refused_addr().await),
        ],
    );
    pool.max_fails = 0;
    pool.retries = 5;
    let lb = start(pool, |_| {});
    assert!(which(front(&lb)).await.is_err());
    let l = &lb.stats().listeners[0];
    // Two backends: two attempts, one retry, then no backend left to try.
    assert_eq!(l.connect_errors, 2);
    assert_eq!(l.retries, 1);
    assert_eq!(l.no_backend, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_ejection_and_return_by_timer() {
    let live = backend(1, false).await;
    // Reserve a port, free it: the backend there refuses until we listen again.
    let dead = refused_addr().await;
    let mut pool = PoolConfig::new(
        "eject",
        vec![BackendConfig::new(dead), BackendConfig::new(live.addr)],
    );
    pool.max_fails = 2;
    pool.fail_timeout = Duration::from_millis(1500);
    let lb = start(pool, |_| {});
    let f = front(&lb);
    for _ in 0..100 {
        assert_eq!(which(f).await.unwrap(), 1);
    }
    let stats = lb.stats().pools[0].backends[0].clone();
    // Two failures in a row eject it; then it gets no more attempts during the cool-down.
    assert_eq!(stats.connect_errors, 2, "{stats:?}");
    assert_eq!(stats.ejections, 1);
    assert!(stats.ejected);
    let ejected_at = Instant::now();

    // Bring the backend up; once the cool-down ends it takes traffic again.
    let revived = backend_on(TcpListener::bind(dead).await.unwrap(), 2, false);
    let deadline = Instant::now() + SOON;
    while revived.count() == 0 {
        assert!(Instant::now() < deadline, "ejected backend never returned");
        assert_eq!(which(f).await.unwrap() == 2, revived.count() > 0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // It could only return after the timer (minus the time spent before ejected_at).
    assert!(ejected_at.elapsed() >= Duration::from_millis(1000));
    assert!(!lb.stats().pools[0].backends[0].ejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_state_up_ends_an_ejection_early() {
    let live = backend(1, false).await;
    let dead = refused_addr().await;
    let mut pool = PoolConfig::new(
        "eject",
        vec![BackendConfig::new(dead), BackendConfig::new(live.addr)],
    );
    pool.max_fails = 1;
    pool.fail_timeout = Duration::from_secs(3600);
    let lb = start(pool, |_| {});
    let f = front(&lb);
    for _ in 0..10 {
        assert_eq!(which(f).await.unwrap(), 1);
    }
    assert!(lb.stats().pools[0].backends[0].ejected);
    let revived = backend_on(TcpListener::bind(dead).await.unwrap(), 2, false);
    // An active health check reports it up.
    lb.pool("eject")
        .unwrap()
        .set_state(dead, BackendState::Up)
        .unwrap();
    let mut seen = [0u32; 3];
    for _ in 0..10 {
        seen[which(f).await.unwrap() as usize] += 1;
    }
    assert_eq!(seen[2], 5, "round robin over both again: {seen:?}");
    assert_eq!(revived.count(), 5);
}

/// A listener whose accept queue is full: further SYNs are dropped, so connects hang.
fn black_hole() -> (socket2::Socket, std::net::TcpStream, std::net::SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue (never accepted).
    let filler = std::net::TcpStream::connect(addr).unwrap();
    (s, filler, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_moves_on_to_another_backend() {
    let (_hole, _filler, hole) = black_hole();
    let live = backend(5, false).await;
    let mut pool = PoolConfig::new(
        "timeout",
        vec![BackendConfig::new(hole), BackendConfig::new(live.addr)],
    );
    pool.connect_timeout = Duration::from_millis(300);
    pool.retries = 1;
    pool.max_fails = 1;
    let lb = start(pool, |_| {});
    let t0 = Instant::now();
    // Round robin tries the black hole first, times out, then reaches the live one.
    assert_eq!(which(front(&lb)).await.unwrap(), 5);
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    let st = lb.stats();
    assert_eq!(st.listeners[0].connect_errors, 1);
    assert_eq!(st.listeners[0].retries, 1);
    assert!(st.pools[0].backends[0].ejected);
    // While ejected, no more waiting.
    assert_eq!(which(front(&lb)).await.unwrap(), 5);
    assert_eq!(lb.stats().listeners[0].connect_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_bytes_sent_with_the_connect_survive_retries() {
    // Clients that speak first: their first bytes go out with the connect attempt; when that
    // attempt is refused they must reach the next backend intact.
    let live = backend(8, true).await;
    let mut pool = PoolConfig::new(
        "first",
        vec![
            BackendConfig::new(refused_addr().await),
            BackendConfig::new(refused_addr().await),
            BackendConfig::new(live.addr),
        ],
    );
    pool.algorithm = Algorithm::Random;
    pool.retries = 2;
    pool.max_fails = 0;
    let lb = start(pool, |_| {});
    for i in 0..200u32 {
        let msg = format!("request {i}");
        let mut s = tokio::net::TcpStream::connect(front(&lb)).await.unwrap();
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut got = vec![0u8; 1 + msg.len()];
        tokio::time::timeout(SOON, s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got[0], 8);
        assert_eq!(&got[1..], msg.as_bytes());
    }
    let l = &lb.stats().listeners[0];
    assert_eq!(l.no_backend, 0);
    assert!(l.connect_errors > 50, "{l:?}");
}
