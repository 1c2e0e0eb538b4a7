//! Helpers shared by the loopback tests: small backends and a balancer in front of them.
#![allow(dead_code, clippy::unwrap_used)]
// Test helpers: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lb_core::{BackendConfig, Balancer, BalancerConfig, ListenerConfig, PoolConfig, TransferMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound for anything that should happen "soon" on a loaded CI machine.
pub const SOON: Duration = Duration::from_secs(20);

/// A backend that writes its id byte, then echoes until EOF, then closes. Counts connections.
pub struct Backend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub fn count(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a backend; with `echo` false it only writes its id and closes.
pub async fn backend(id: u8, echo: bool) -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    backend_on(l, id, echo)
}

pub fn backend_on(l: TcpListener, id: u8, echo: bool) -> Backend {
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                if s.write_all(&[id]).await.is_err() || !echo {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Backend {
        addr,
        accepted,
        task,
    }
}

/// An address where nothing listens (connections are refused).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// A balancer with one pool and one listener on 127.0.0.1:0.
pub fn start(pool: PoolConfig, tweak: impl FnOnce(&mut ListenerConfig)) -> Balancer {
    let mut l = ListenerConfig::new("127.0.0.1:0".parse().unwrap(), pool.name.clone());
    tweak(&mut l);
    Balancer::start(BalancerConfig {
        pools: vec![pool],
        listeners: vec![l],
    })
    .unwrap()
}

pub fn front(b: &Balancer) -> SocketAddr {
    b.listeners()[0].local_addr()
}

pub fn pool_of(backends: &[&Backend]) -> PoolConfig {
    PoolConfig::new(
        "test",
        backends
            .iter()
            .map(|b| BackendConfig::new(b.addr))
            .collect(),
    )
}

/// Connects through the balancer and returns the id byte of the backend that answered.
pub async fn which(front: SocketAddr) -> std::io::Result<u8> {
    let mut s = TcpStream::connect(front).await?;
    let mut id = [0u8; 1];
    s.read_exact(&mut id).await?;
    Ok(id[0])
}

/// Connects and reads the backend id; the stream stays open for more.
pub async fn open(front: SocketAddr) -> (TcpStream, u8) {
    let mut s = tokio::time::timeout(SOON, TcpStream::connect(front))
        .await
        .unwrap()
        .unwrap();
    let mut id = [0u8; 1];
    tokio::time::timeout(SOON, s.read_exact(&mut id))
        .await
        .unwrap()
        .unwrap();
    (s, id[0])
}

/// One echo round trip on an open stream.
pub async fn echo(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    s.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(SOON, s.read_exact(&mut back))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    assert_eq!(back, msg);
    Ok(())
}

pub const MODES: [TransferMode; 3] = [
    TransferMode::Userspace,
    TransferMode::Splice,
    TransferMode::Auto,
];
