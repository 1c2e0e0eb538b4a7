//! Moving bytes: integrity in every mode, half-close both ways, idle timeout.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lb_core::{BackendConfig, PoolConfig, TransferMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_echo_is_intact_in_every_mode() {
    let b = backend(3, true).await;
    for mode in MODES {
        let lb = start(pool_of(&[&b]), |l| l.transfer = mode);
        let (s, id) = open(front(&lb)).await;
        assert_eq!(id, 3);
        let data = payload(4 << 20);
        let (mut r, mut w) = s.into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        tokio::time::timeout(SOON, r.read_to_end(&mut back))
            .await
            .unwrap()
            .unwrap();
        writer.await.unwrap();
        assert!(back == data, "{mode:?}: echoed data differs");
        let st = lb.stats().listeners[0].clone();
        assert_eq!(st.bytes_from_clients, data.len() as u64, "{mode:?}");
        // The id byte plus the echo.
        assert_eq!(st.bytes_to_clients, data.len() as u64 + 1, "{mode:?}");
        let report = lb.shutdown(SOON).await;
        assert_eq!(report[0].aborted, 0);
    }
}

/// A backend that reads to EOF, then answers with the byte count and closes.
async fn count_then_answer() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await.unwrap();
                s.write_all(format!("got {}", buf.len()).as_bytes())
                    .await
                    .unwrap();
            });
        }
    });
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_half_close_reaches_backend_and_reply_comes_back() {
    let backend = count_then_answer().await;
    for mode in MODES {
        let lb = start(
            PoolConfig::new("hc", vec![BackendConfig::new(backend)]),
            |l| l.transfer = mode,
        );
        let mut s = TcpStream::connect(front(&lb)).await.unwrap();
        s.write_all(b"hello world").await.unwrap();
        s.shutdown().await.unwrap(); // FIN: the backend sees EOF, we keep reading.
        let mut reply = String::new();
        tokio::time::timeout(SOON, s.read_to_string(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply, "got 11", "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_half_close_reaches_client_and_client_can_still_send() {
    // The backend says hello, half-closes, then reads what the client sends afterwards.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = l.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                s.write_all(b"hello").await.unwrap();
                s.shutdown().await.unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).await.unwrap();
                tx.send(rest).unwrap();
            });
        }
    });
    for mode in MODES {
        let lb = start(
            PoolConfig::new("hc", vec![BackendConfig::new(backend)]),
            |l| l.transfer = mode,
        );
        let mut s = TcpStream::connect(front(&lb)).await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(SOON, s.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, b"hello", "{mode:?}");
        s.write_all(b"after your FIN").await.unwrap();
        s.shutdown().await.unwrap();
        let rest = tokio::time::timeout(SOON, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"after your FIN", "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_quiet_connections_only() {
    let b = backend(1, true).await;
    let idle = Duration::from_millis(1000);
    for mode in [TransferMode::Userspace, TransferMode::Splice] {
        let lb = start(pool_of(&[&b]), |l| {
            l.idle_timeout = Some(idle);
            l.transfer = mode;
        });
        // A busy connection outlives the timeout: a round trip every 100 ms, meanwhile a quiet
        // one is closed (the client reads EOF).
        let (mut busy, _) = open(front(&lb)).await;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let pinger = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                echo(&mut busy, b"ping").await.unwrap();
                if stop_rx.try_recv().is_ok() {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let (mut quiet, _) = open(front(&lb)).await;
        let t0 = Instant::now();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(SOON, quiet.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(
            t0.elapsed() >= idle - Duration::from_millis(50),
            "{:?}",
            t0.elapsed()
        );
        // Keep the busy one going past two idle periods in all.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        stop_tx.send(()).unwrap();
        let lived = pinger.await.unwrap();
        assert!(lived > idle * 2, "{lived:?}");
        let st = lb.stats().listeners[0].clone();
        assert_eq!(st.idle_timeouts, 1, "{mode:?}");
    }
}
