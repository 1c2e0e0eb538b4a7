//! A listening socket that hands its connections to a pool, and its graceful stop.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::conn_log::ConnectionLog;
use crate::connection::serve;
use crate::pool::Pool;
use crate::stats::{inc, ListenerCounters, ListenerStats};
use crate::transfer::{TransferMode, TransferOptions};
use crate::Error;

/// The plain configuration of a listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Address and port to listen on (IPv4 or IPv6; IPv6 listeners are IPv6-only, so an IPv4
    /// listener can share the port).
    pub addr: SocketAddr,
    /// Name of the pool that serves it (used by [`crate::Balancer`]).
    pub pool: String,
    /// Bind even if the address is not (yet) on this host (IP_FREEBIND), so a backup node can
    /// listen on a virtual IP before it holds it.
    pub freebind: bool,
    /// Let several sockets (processes, threads) share the port (SO_REUSEPORT); the kernel
    /// spreads connections among them.
    pub reuseport: bool,
    /// Kernel accept queue length.
    pub backlog: u32,
    /// Most client connections open at once (0 = unlimited). Past it the listener stops
    /// accepting: new clients wait in the kernel's accept queue (up to `backlog`, then the
    /// kernel drops their SYNs and they retry) until a connection ends, as haproxy's `maxconn`.
    pub max_connections: u32,
    /// Close a connection when no byte has moved either way for this long (haproxy's
    /// `timeout tunnel`); `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Set TCP_NODELAY on both legs (on by default: the balancer must not add latency).
    pub nodelay: bool,
    /// Enable TCP keepalive on both legs, first probe after this much idleness.
    pub keepalive: Option<Duration>,
    /// How bytes are moved.
    pub transfer: TransferMode,
    /// Userspace copy buffer per direction, in bytes.
    pub buffer_size: usize,
    /// Where a record of each connection goes when it ends; `None` (the default) = no log.
    pub log: Option<ConnectionLog>,
}

impl ListenerConfig {
    /// A listener on `addr` for pool `pool`: backlog 1024, no connection limit, 1 h idle
    /// timeout, TCP_NODELAY, no TCP keepalive (haproxy's default; the idle timeout reaps dead
    /// peers), transfer mode auto, 64 KiB buffers.
    pub fn new(addr: SocketAddr, pool: impl Into<String>) -> Self {
        ListenerConfig {
            addr,
            pool: pool.into(),
            freebind: false,
            reuseport: false,
            backlog: 1024,
            max_connections: 0,
            idle_timeout: Some(Duration::from_secs(3600)),
            nodelay: true,
            keepalive: None,
            transfer: TransferMode::Auto,
            buffer_size: 64 * 1024,
            log: None,
        }
    }
}

/// Options each connection task reads.
#[derive(Debug)]
pub(crate) struct ConnOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) transfer: TransferOptions,
}

/// What a listener's connection tasks share.
#[derive(Debug)]
pub(crate) struct ListenerShared {
    pub(crate) pool: Pool,
    pub(crate) counters: ListenerCounters,
    pub(crate) options: ConnOptions,
    pub(crate) log: Option<ConnectionLog>,
}

/// A bound listener, not yet accepting. Binding first lets a caller fail fast on every
/// address before any starts serving.
#[derive(Debug)]
pub struct Listener {
    socket: TcpListener,
    local_addr: SocketAddr,
    max_connections: u32,
    shared: Arc<ListenerShared>,
}

fn bind_socket(config: &ListenerConfig) -> io::Result<std::net::TcpListener> {
    let addr = config.addr;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if config.reuseport {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        if config.freebind {
            socket.set_freebind_v6(true)?;
        }
    } else if config.freebind {
        socket.set_freebind_v4(true)?;
    }
    // Inherited by every accepted socket (Linux), saving two system calls per connection.
    crate::connection::tune(
        socket2::SockRef::from(&socket),
        config.nodelay,
        config.keepalive,
    );
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(config.backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

impl Listener {
    /// Binds the socket. Must be called within a tokio runtime ([`Error::NoRuntime`] if not).
    pub fn bind(config: &ListenerConfig, pool: Pool) -> Result<Listener, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        if config.buffer_size == 0 {
            return Err(Error::Invalid("buffer_size must be above 0".into()));
        }
        let bind_err = |source| Error::Bind {
            addr: config.addr,
            source,
        };
        let std_listener = bind_socket(config).map_err(bind_err)?;
        let socket = TcpListener::from_std(std_listener).map_err(bind_err)?;
        let local_addr = socket.local_addr().map_err(bind_err)?;
        Ok(Listener {
            socket,
            local_addr,
            max_connections: config.max_connections,
            shared: Arc::new(ListenerShared {
                pool,
                counters: ListenerCounters::default(),
                options: ConnOptions {
                    nodelay: config.nodelay,
                    keepalive: config.keepalive,
                    transfer: TransferOptions {
                        mode: config.transfer,
                        buffer_size: config.buffer_size,
                        idle_timeout: config.idle_timeout,
                    },
                },
                log: config.log.clone(),
            }),
        })
    }

    /// The bound address (with the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts accepting on the current tokio runtime.
    pub fn spawn(self) -> ListenerHandle {
        let (stop_tx, stop_rx) = watch::channel(None);
        let shared = Arc::clone(&self.shared);
        let local_addr = self.local_addr;
        let task = tokio::spawn(accept_loop(self, stop_rx));
        ListenerHandle {
            local_addr,
            shared,
            stop: stop_tx,
            task,
        }
    }
}

/// What a graceful stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Connections open when accepting stopped.
    pub in_flight: usize,
    /// Of those, how many ended by themselves before the deadline.
    pub finished: usize,
    /// Of those, how many were cut at the deadline.
    pub aborted: usize,
}

/// A running listener: its stats, its pool, and its stop. Dropping the handle without a stop
/// detaches the listener: it serves on until the runtime ends.
#[derive(Debug)]
pub struct ListenerHandle {
    local_addr: SocketAddr,
    shared: Arc<ListenerShared>,
    stop: watch::Sender<Option<Instant>>,
    task: JoinHandle<ShutdownReport>,
}

impl ListenerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The pool it serves from (a handle to change backends at run time).
    pub fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    /// A copy of its counters now.
    pub fn stats(&self) -> ListenerStats {
        self.shared
            .counters
            .snapshot(Some(self.local_addr), self.shared.pool.name())
    }

    /// Stops accepting now (the socket is closed, so new clients are refused) and gives open
    /// connections until `grace` from now to end; returns at once. Await [`Self::wait`] next.
    pub fn begin_shutdown(&self, grace: Duration) {
        let _ = self.stop.send(Some(Instant::now() + grace));
    }

    /// Waits for the listener to finish after [`Self::begin_shutdown`].
    pub async fn wait(self) -> ShutdownReport {
        self.task.await.unwrap_or_default()
    }

    /// Graceful stop: stop accepting, let open connections finish for up to `grace`, then cut
    /// the rest.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        self.begin_shutdown(grace);
        self.wait().await
    }
}

async fn accept_loop(
    listener: Listener,
    mut stop: watch::Receiver<Option<Instant>>,
) -> ShutdownReport {
    let Listener {
        socket,
        max_connections,
        shared,
        ..
    } = listener;
    let limit = (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections as usize)));
    let mut conns = JoinSet::new();
    // Dropping the handle without a stop detaches the listener: it serves on, like a task
    // whose JoinHandle is dropped.
    let mut detached = false;
    loop {
        let accept = async {
            let permit = match &limit {
                Some(s) => Arc::clone(s).acquire_owned().await.ok(),
                None => None,
            };
            (permit, socket.accept().await)
        };
        tokio::select! {
            biased;
            r = stop.changed(), if !detached => {
                if r.is_err() {
                    detached = true;
                } else if stop.borrow().is_some() {
                    break;
                }
            }
            (permit, res) = accept => match res {
                Ok((client, peer)) => {
                    inc(&shared.counters.accepted);
                    conns.spawn(serve(client, peer, Arc::clone(&shared), permit));
                    while conns.try_join_next().is_some() {}
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors or memory: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(socket);
    let deadline = (*stop.borrow()).unwrap_or_else(Instant::now);
    while conns.try_join_next().is_some() {}
    let in_flight = conns.len();
    let mut finished = 0;
    loop {
        tokio::select! {
            r = conns.join_next() => match r {
                Some(_) => finished += 1,
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let aborted = conns.len();
    conns.shutdown().await;
    tracing::info!(
        in_flight,
        finished,
        aborted,
        active = shared.counters.active.load(Ordering::Relaxed),
        "listener stopped"
    );
    ShutdownReport {
        in_flight,
        finished,
        aborted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listener sets TCP_NODELAY and keepalive once, relying on Linux copying them to
    /// accepted sockets; this checks that the kernel does.
    #[test]
    fn accepted_sockets_inherit_nodelay_and_keepalive() {
        let mut cfg = ListenerConfig::new("127.0.0.1:0".parse().unwrap(), "p");
        cfg.keepalive = Some(Duration::from_secs(42));
        let l = bind_socket(&cfg).unwrap();
        l.set_nonblocking(false).unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        let s = socket2::SockRef::from(&a);
        assert!(s.tcp_nodelay().unwrap());
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(42));
    }
}
