//! One client connection: choose a backend, connect with retries, copy both ways.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::SendFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::backend::Backend;
use crate::conn_log::{ConnectionLog, ConnectionRecord, End};
use crate::copy::{write_all, Buffer};
use crate::listener::ListenerShared;
use crate::proxy_protocol::ProxyProtocol;
use crate::stats::inc;
use crate::transfer::{self, Outcome};

/// A connection slot on a backend, given back when the connection ends (or its task is
/// aborted).
struct Slot(Arc<Backend>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Keeps the listener's `active` gauge right, whatever way the task ends.
struct Active<'a>(&'a ListenerShared);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// TCP_NODELAY and keepalive for a socket. Accepted sockets inherit both from the listening
/// socket on Linux, so this runs once per listener and once per backend connection.
pub(crate) fn tune(s: socket2::SockRef<'_>, nodelay: bool, keepalive: Option<Duration>) {
    if nodelay {
        let _ = s.set_tcp_nodelay(true);
    }
    if let Some(idle) = keepalive {
        let ka = socket2::TcpKeepalive::new().with_time(idle);
        let _ = s.set_tcp_keepalive(&ka);
    }
}

/// Starts a non-blocking connect to `addr` and, if `payload` is not empty, tries to send it at
/// once: a send that succeeds proves the connection is up, so no event-loop round is spent
/// waiting for epoll to say so (haproxy does the same). A send that would block (handshake
/// still going) falls back to waiting for writability, up to `timeout`. Returns the stream and
/// how much of `payload` went out.
async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    shared: &ListenerShared,
    payload: &[u8],
) -> io::Result<(TcpStream, usize)> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )?;
    tune(
        socket2::SockRef::from(&socket),
        shared.options.nodelay,
        shared.options.keepalive,
    );
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    if !payload.is_empty() {
        // Straight to the socket: tokio has seen no readiness yet and would not even try.
        match rustix::net::send(&stream, payload, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok((stream, n)),
            Err(Errno::AGAIN) => {}
            // Refused, reset, unreachable: a failed connect, nothing delivered.
            Err(e) => return Err(e.into()),
        }
    }
    let ready = match tokio::time::timeout(timeout, stream.ready(Interest::WRITABLE)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    // A failed connect shows as error/hang-up; only then ask the socket why (SO_ERROR). A
    // plain "writable" means connected, which saves that system call on every connection.
    if ready.is_error() || ready.is_write_closed() {
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()));
    }
    Ok((stream, 0))
}

/// Why no backend connection was made.
enum NoConnection {
    /// None available, or all full.
    Unavailable(End),
    /// Every attempt failed.
    Failed,
}

/// Picks and connects, trying up to `1 + retries` different backends; `payload` (PROXY
/// header and the client's first bytes) goes to the one that answers. Returns how much of it
/// went out already. The addresses that failed go into `tried` when it is given (a log).
async fn open_backend(
    shared: &ListenerShared,
    peer: SocketAddr,
    payload: &[u8],
    mut tried: Option<&mut Vec<SocketAddr>>,
) -> Result<(Slot, TcpStream, usize), NoConnection> {
    let pool = &shared.pool;
    let counters = &shared.counters;
    let mut excluded: Vec<u64> = Vec::new();
    loop {
        let snapshot = pool.load_for_pick();
        let chosen = snapshot.select(peer, &excluded);
        let Some(backend) = chosen else {
            inc(&counters.no_backend);
            tracing::debug!(%peer, tried = excluded.len(), "no backend available");
            if !excluded.is_empty() {
                return Err(NoConnection::Failed);
            }
            // Only on this path: were the ones that could take it all at their limit?
            let full = snapshot.backends().iter().any(|b| {
                b.state() == crate::BackendState::Up
                    && b.weight() > 0
                    && !b.is_ejected()
                    && b.max_connections() > 0
                    && b.active() >= u64::from(b.max_connections())
            });
            return Err(NoConnection::Unavailable(if full {
                End::LimitReached
            } else {
                End::NoBackend
            }));
        };
        drop(snapshot);
        if !excluded.is_empty() {
            inc(&counters.retries);
        }
        let slot = Slot(backend);
        match connect(slot.0.addr(), pool.connect_timeout(), shared, payload).await {
            Ok((s, sent)) => {
                slot.0.record_connect_ok();
                return Ok((slot, s, sent));
            }
            Err(e) => {
                tracing::debug!(backend = %slot.0.addr(), error = %e, "connect failed");
                slot.0
                    .record_connect_error(pool.max_fails(), pool.fail_timeout());
                inc(&counters.connect_errors);
                excluded.push(slot.0.id());
                if let Some(t) = tried.as_deref_mut() {
                    t.push(slot.0.addr());
                }
                drop(slot);
                if excluded.len() as u64 > u64::from(pool.retries()) {
                    inc(&counters.no_backend);
                    return Err(NoConnection::Failed);
                }
            }
        }
    }
}

/// The connection's log record, sent when it is dropped: whatever way the task ends, also
/// when the listener's stop aborts it (then it says [`End::Drained`]).
struct Record<'a> {
    log: &'a ConnectionLog,
    started: std::time::Instant,
    record: ConnectionRecord,
    end: Option<End>,
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        let client = self.record.client;
        let mut r = std::mem::replace(
            &mut self.record,
            ConnectionRecord {
                accepted_at: std::time::UNIX_EPOCH,
                listener: Arc::clone(self.log.label()),
                client,
                pool: String::new(),
                backend: None,
                tried: Vec::new(),
                connect_time: None,
                bytes_from_client: 0,
                bytes_to_client: 0,
                duration: Duration::ZERO,
                end: End::Drained,
            },
        );
        r.duration = self.started.elapsed();
        r.end = self.end.unwrap_or(End::Drained);
        self.log.send(r);
    }
}

/// The client's first bytes if they are already here (a request, a TLS ClientHello usually
/// is); 0 if none yet (the server may speak first) or the client already closed.
fn read_first(client: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    match rustix::io::read(client, buf) {
        Ok(n) => Ok(n),
        Err(Errno::AGAIN) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Serves one accepted client connection to its end.
pub(crate) async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    shared: Arc<ListenerShared>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let shared = &*shared;
    shared.counters.active.fetch_add(1, Ordering::Relaxed);
    let _active = Active(shared);
    let mut record = shared.log.as_ref().map(|log| Record {
        log,
        started: std::time::Instant::now(),
        record: ConnectionRecord {
            accepted_at: std::time::SystemTime::now(),
            listener: Arc::clone(log.label()),
            client: peer,
            pool: shared.pool.name().to_owned(),
            backend: None,
            tried: Vec::new(),
            connect_time: None,
            bytes_from_client: 0,
            bytes_to_client: 0,
            duration: Duration::ZERO,
            end: End::Drained,
        },
        end: None,
    });
    let end = |record: &mut Option<Record<'_>>, end: End| {
        if let Some(r) = record {
            r.end = Some(end);
        }
    };
    let mut first = Buffer::get(shared.options.transfer.buffer_size);
    let first_len = match read_first(&client, first.as_mut()) {
        Ok(n) => n,
        Err(_) => {
            inc(&shared.counters.errors);
            end(&mut record, End::Error);
            return;
        }
    };
    let first_bytes = first.as_mut().get(..first_len).unwrap_or_default();
    let pp = shared.pool.proxy_protocol();
    let with_header;
    let payload: &[u8] = if pp == ProxyProtocol::None {
        first_bytes
    } else {
        let Ok(local) = client.local_addr() else {
            end(&mut record, End::Error);
            return;
        };
        let mut h = pp.header(peer, local);
        h.extend_from_slice(first_bytes);
        with_header = h;
        &with_header
    };
    let connect_start = std::time::Instant::now();
    let tried = record.as_mut().map(|r| &mut r.record.tried);
    let (slot, upstream, sent) = match open_backend(shared, peer, payload, tried).await {
        Ok(c) => c,
        Err(NoConnection::Unavailable(why)) => {
            end(&mut record, why);
            return;
        }
        Err(NoConnection::Failed) => {
            end(&mut record, End::ConnectFailed);
            return;
        }
    };
    if let Some(r) = &mut record {
        r.record.backend = Some(slot.0.addr());
        r.record.connect_time = Some(connect_start.elapsed());
    }
    if write_all(&upstream, payload.get(sent..).unwrap_or_default())
        .await
        .is_err()
    {
        inc(&shared.counters.errors);
        end(&mut record, End::Error);
        return;
    }
    drop(first);
    let backend = &slot.0;
    // Subscribed before any byte moves: a close asked for from now on reaches it.
    let mut close = backend.close_watch();
    let counters = &shared.counters;
    // Per-connection totals, for the log.
    let moved_up = AtomicU64::new(first_len as u64);
    let moved_down = AtomicU64::new(0);
    if first_len > 0 {
        counters
            .bytes_from_clients
            .fetch_add(first_len as u64, Ordering::Relaxed);
        backend.add_bytes(first_len as u64, 0);
    }
    let up = |n: usize| {
        counters
            .bytes_from_clients
            .fetch_add(n as u64, Ordering::Relaxed);
        moved_up.fetch_add(n as u64, Ordering::Relaxed);
        backend.add_bytes(n as u64, 0);
    };
    let down = |n: usize| {
        counters
            .bytes_to_clients
            .fetch_add(n as u64, Ordering::Relaxed);
        moved_down.fetch_add(n as u64, Ordering::Relaxed);
        backend.add_bytes(0, n as u64);
    };
    let closed = async {
        if close.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = tokio::select! {
        o = transfer::run(&client, &upstream, &shared.options.transfer, &up, &down) => Some(o),
        () = closed => None,
    };
    let how = match outcome {
        Some(Outcome::Closed { client_first: true }) => End::ClientClosed,
        Some(Outcome::Closed {
            client_first: false,
        }) => End::BackendClosed,
        Some(Outcome::Idle) => {
            inc(&counters.idle_timeouts);
            tracing::debug!(%peer, backend = %backend.addr(), "idle timeout");
            End::IdleTimeout
        }
        Some(Outcome::Error) => {
            inc(&counters.errors);
            End::Error
        }
        None => {
            inc(&counters.closed_by_backend_state);
            backend.close_cause()
        }
    };
    if let Some(r) = &mut record {
        r.record.bytes_from_client = moved_up.load(Ordering::Relaxed);
        r.record.bytes_to_client = moved_down.load(Ordering::Relaxed);
        r.end = Some(how);
    }
}
