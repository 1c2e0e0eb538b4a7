//! Day-2 operations on loopback: closing the connections of a backend that goes down or is
//! disabled, slow start, and the connection log.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use std::time::Duration;

use common::*;
use lb_core::{BackendConfig, BackendState, ConnectionLog, End};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF or error; true if the stream was closed (EOF or reset) within `SOON`.
async fn closed_soon(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(SOON, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_on_down_cuts_open_connections_and_leaves_others() {
    let a = backend(1, true).await;
    let b = backend(2, true).await;
    let mut pool = pool_of(&[&a, &b]);
    pool.close_on_down = true;
    let lb = start(pool, |_| {});
    let f = front(&lb);
    let (mut on_a, id_a) = open(f).await;
    let (mut on_b, id_b) = open(f).await;
    assert_eq!((id_a, id_b), (1, 2));
    echo(&mut on_a, b"before").await.unwrap();
    let p = lb.pool("test").unwrap();
    // Drain does not close (only Down does).
    p.set_state(a.addr, BackendState::Drain).unwrap();
    echo(&mut on_a, b"drained, still open").await.unwrap();
    p.set_state(a.addr, BackendState::Down).unwrap();
    assert!(
        closed_soon(&mut on_a).await,
        "connection to the down backend stays"
    );
    echo(&mut on_b, b"other backend untouched").await.unwrap();
    assert_eq!(lb.stats().listeners[0].closed_by_backend_state, 1);
    // A connection made after the close is not affected by it.
    p.set_state(a.addr, BackendState::Up).unwrap();
    p.set_state(b.addr, BackendState::Drain).unwrap();
    let (mut again, id) = open(f).await;
    assert_eq!(id, 1);
    echo(&mut again, b"new one lives").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_close_on_down_connections_go_on() {
    let a = backend(1, true).await;
    let lb = start(pool_of(&[&a]), |_| {});
    let (mut on_a, _) = open(front(&lb)).await;
    lb.pool("test")
        .unwrap()
        .set_state(a.addr, BackendState::Down)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    echo(&mut on_a, b"still here").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_connections_is_what_disable_uses() {
    let a = backend(1, true).await;
    let (log, mut rx) = ConnectionLog::new(16);
    let lb = start(pool_of(&[&a]), |l| l.log = Some(log.with_label("web")));
    let (mut on_a, _) = open(front(&lb)).await;
    let p = lb.pool("test").unwrap();
    p.set_state(a.addr, BackendState::Maintenance).unwrap();
    echo(&mut on_a, b"maintenance keeps it").await.unwrap();
    p.close_connections(a.addr, End::Disabled).unwrap();
    assert!(closed_soon(&mut on_a).await);
    let r = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.end, End::Disabled);
    assert_eq!(r.backend, Some(a.addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_start_ramps_a_recovered_backend_up() {
    let a = backend(1, false).await;
    let b = backend(2, false).await;
    let mut pool = pool_of(&[&a, &b]);
    pool.slow_start = Duration::from_millis(3000);
    pool.backends = vec![
        BackendConfig::new(a.addr).weight(10),
        BackendConfig::new(b.addr).weight(10),
    ];
    let lb = start(pool, |_| {});
    let f = front(&lb);
    let p = lb.pool("test").unwrap();
    // At start no ramp: both at full weight.
    assert!(!lb.stats().pools[0].backends[0].ramping);
    p.set_state(a.addr, BackendState::Down).unwrap();
    p.set_state(a.addr, BackendState::Up).unwrap();
    let st = &lb.stats().pools[0].backends[0];
    assert!(st.ramping, "{st:?}");
    assert!(
        st.weight <= 2,
        "weight right after coming up: {}",
        st.weight
    );
    // Early in the ramp a (weight 1 or 2 of 10) gets far less than b.
    let mut early = [0u32; 3];
    for _ in 0..40 {
        early[usize::from(which(f).await.unwrap())] += 1;
    }
    assert!(early[1] * 2 < early[2], "early share {early:?}");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut late = [0u32; 3];
    for _ in 0..40 {
        late[usize::from(which(f).await.unwrap())] += 1;
    }
    assert_eq!(late[1], 20, "after the ramp, an even share: {late:?}");
    let st = &lb.stats().pools[0].backends[0];
    assert!(!st.ramping);
    assert_eq!(st.weight, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_log_records_backend_bytes_and_how_it_ended() {
    let a = backend(1, true).await;
    let refused = refused_addr().await;
    let mut pool = pool_of(&[&a]);
    pool.backends = vec![BackendConfig::new(refused), BackendConfig::new(a.addr)];
    pool.max_fails = 0;
    let (log, mut rx) = ConnectionLog::new(16);
    let lb = start(pool, |l| l.log = Some(log.with_label("web")));
    let f = front(&lb);
    let next = |rx: &mut tokio::sync::mpsc::Receiver<lb_core::ConnectionRecord>| {
        let r = rx.try_recv();
        r.ok()
    };
    // Round robin tries the refused one first: it is in `tried`.
    let (mut s, id) = open(f).await;
    assert_eq!(id, 1);
    echo(&mut s, b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    assert!(closed_soon(&mut s).await);
    let r = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*r.listener, "web");
    assert_eq!(r.pool, "test");
    assert_eq!(r.client, s.local_addr().unwrap());
    assert_eq!(r.backend, Some(a.addr));
    assert_eq!(r.tried, vec![refused]);
    assert!(r.connect_time.is_some());
    assert_eq!(r.bytes_from_client, 5);
    assert_eq!(r.bytes_to_client, 6, "id byte and the echo");
    assert_eq!(r.end, End::ClientClosed);
    assert!(r.duration >= r.connect_time.unwrap());
    // A backend that speaks and closes first.
    let c = backend(3, false).await;
    lb.pool("test").unwrap().remove(a.addr).unwrap();
    lb.pool("test").unwrap().remove(refused).unwrap();
    lb.pool("test")
        .unwrap()
        .add(BackendConfig::new(c.addr))
        .unwrap();
    let (mut s, _) = open(f).await;
    assert!(closed_soon(&mut s).await);
    drop(s);
    let r = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.end, End::BackendClosed);
    assert_eq!(r.bytes_to_client, 1);
    // No backend at all.
    lb.pool("test")
        .unwrap()
        .set_state(c.addr, BackendState::Down)
        .unwrap();
    let mut s = TcpStream::connect(f).await.unwrap();
    assert!(closed_soon(&mut s).await);
    let r = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.end, End::NoBackend);
    assert_eq!(r.backend, None);
    assert!(next(&mut rx).is_none());
    assert_eq!(log.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_log_never_blocks_and_counts_what_it_drops() {
    let a = backend(1, false).await;
    // A queue of 2 that nobody reads.
    let (log, _rx) = ConnectionLog::new(2);
    let lb = start(pool_of(&[&a]), |l| l.log = Some(log.with_label("web")));
    let f = front(&lb);
    for _ in 0..10 {
        let (mut s, _) = open(f).await;
        assert!(closed_soon(&mut s).await);
    }
    let deadline = std::time::Instant::now() + SOON;
    while log.dropped() < 8 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.dropped(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_log_limit_reached_and_drained() {
    let a = backend(1, true).await;
    let mut pool = pool_of(&[&a]);
    pool.backends = vec![BackendConfig::new(a.addr).max_connections(1)];
    let (log, mut rx) = ConnectionLog::new(16);
    let lb = start(pool, |l| l.log = Some(log.with_label("web")));
    let f = front(&lb);
    let (_held, _) = open(f).await;
    let mut s = TcpStream::connect(f).await.unwrap();
    assert!(closed_soon(&mut s).await);
    let r = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.end, End::LimitReached);
    // A stop whose grace runs out cuts the held one: drained.
    lb.shutdown(Duration::from_millis(50)).await;
    let r = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.end, End::Drained);
    assert_eq!(r.backend, Some(a.addr));
}
