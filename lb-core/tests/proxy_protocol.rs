//! PROXY protocol headers as a backend receives them.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed unwrap fails the test

mod common;

use std::net::SocketAddr;

use common::*;
use lb_core::proxy_protocol::V2_SIGNATURE;
use lb_core::{BackendConfig, Balancer, BalancerConfig, ListenerConfig, PoolConfig, ProxyProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend that reads `n` bytes (the header) plus "hello" and sends them back in a channel.
async fn recording_backend(
    n: usize,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; n + 5];
            s.read_exact(&mut buf).await.unwrap();
            tx.send(buf).unwrap();
        }
    });
    (addr, rx)
}

async fn header_for(
    listen: &str,
    pp: ProxyProtocol,
    header_len: usize,
) -> (Vec<u8>, SocketAddr, SocketAddr) {
    let (backend, mut rx) = recording_backend(header_len).await;
    let mut pool = PoolConfig::new("pp", vec![BackendConfig::new(backend)]);
    pool.proxy_protocol = pp;
    let lb = Balancer::start(BalancerConfig {
        pools: vec![pool],
        listeners: vec![ListenerConfig::new(listen.parse().unwrap(), "pp")],
    })
    .unwrap();
    let front = lb.listeners()[0].local_addr();
    let mut c = TcpStream::connect(front).await.unwrap();
    let client = c.local_addr().unwrap();
    c.write_all(b"hello").await.unwrap();
    let got = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    (got, client, front)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_header_precedes_client_bytes() {
    let (got, client, front) = header_for_v1_any_len().await;
    let want = format!(
        "PROXY TCP4 {} {} {} {}\r\nhello",
        client.ip(),
        front.ip(),
        client.port(),
        front.port()
    );
    // The spec's bound on a v1 line.
    assert!(got.len() - 5 <= 107);
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

/// v1 headers vary in length: read up to CRLF, then "hello".
async fn header_for_v1_any_len() -> (Vec<u8>, SocketAddr, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = l.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n") {
            s.read_exact(&mut byte).await.unwrap();
            got.push(byte[0]);
        }
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).await.unwrap();
        got.extend_from_slice(&hello);
        tx.send(got).unwrap();
    });
    let mut pool = PoolConfig::new("pp", vec![BackendConfig::new(backend)]);
    pool.proxy_protocol = ProxyProtocol::V1;
    let lb = start(pool, |_| {});
    let f = front(&lb);
    let mut c = TcpStream::connect(f).await.unwrap();
    let client = c.local_addr().unwrap();
    c.write_all(b"hello").await.unwrap();
    let got = tokio::time::timeout(SOON, rx.recv())
        .await
        .unwrap()
        .unwrap();
    (got, client, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_ipv4_header_precedes_client_bytes() {
    let (got, client, front) = header_for("127.0.0.1:0", ProxyProtocol::V2, 28).await;
    let mut want = V2_SIGNATURE.to_vec();
    want.extend_from_slice(&[0x21, 0x11, 0x00, 12]);
    want.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
    want.extend_from_slice(&client.port().to_be_bytes());
    want.extend_from_slice(&front.port().to_be_bytes());
    want.extend_from_slice(b"hello");
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_ipv6_header_precedes_client_bytes() {
    let (got, client, front) = header_for("[::1]:0", ProxyProtocol::V2, 52).await;
    let mut want = V2_SIGNATURE.to_vec();
    want.extend_from_slice(&[0x21, 0x21, 0x00, 36]);
    let one = std::net::Ipv6Addr::LOCALHOST.octets();
    want.extend_from_slice(&one);
    want.extend_from_slice(&one);
    want.extend_from_slice(&client.port().to_be_bytes());
    want.extend_from_slice(&front.port().to_be_bytes());
    want.extend_from_slice(b"hello");
    assert_eq!(got, want);
}
