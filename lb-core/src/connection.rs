//! One client connection: choose a backend, connect with retries, copy both ways.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::SendFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::backend::Backend;
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

/// Picks and connects, trying up to `1 + retries` different backends; `payload` (PROXY
/// header and the client's first bytes) goes to the one that answers. Returns how much of it
/// went out already.
async fn open_backend(
    shared: &ListenerShared,
    peer: SocketAddr,
    payload: &[u8],
) -> Option<(Slot, TcpStream, usize)> {
    let pool = &shared.pool;
    let counters = &shared.counters;
    let mut excluded: Vec<u64> = Vec::new();
    loop {
        let chosen = pool.load().select(peer, &excluded);
        let Some(backend) = chosen else {
            inc(&counters.no_backend);
            tracing::debug!(%peer, tried = excluded.len(), "no backend available");
            return None;
        };
        if !excluded.is_empty() {
            inc(&counters.retries);
        }
        let slot = Slot(backend);
        match connect(slot.0.addr(), pool.connect_timeout(), shared, payload).await {
            Ok((s, sent)) => {
                slot.0.record_connect_ok();
                return Some((slot, s, sent));
            }
            Err(e) => {
                tracing::debug!(backend = %slot.0.addr(), error = %e, "connect failed");
                slot.0
                    .record_connect_error(pool.max_fails(), pool.fail_timeout());
                inc(&counters.connect_errors);
                excluded.push(slot.0.id());
                drop(slot);
                if excluded.len() as u64 > u64::from(pool.retries()) {
                    inc(&counters.no_backend);
                    return None;
                }
            }
        }
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
    let mut first = Buffer::get(shared.options.transfer.buffer_size);
    let first_len = match read_first(&client, first.as_mut()) {
        Ok(n) => n,
        Err(_) => {
            inc(&shared.counters.errors);
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
            return;
        };
        let mut h = pp.header(peer, local);
        h.extend_from_slice(first_bytes);
        with_header = h;
        &with_header
    };
    let Some((slot, upstream, sent)) = open_backend(shared, peer, payload).await else {
        return;
    };
    if write_all(&upstream, payload.get(sent..).unwrap_or_default())
        .await
        .is_err()
    {
        inc(&shared.counters.errors);
        return;
    }
    drop(first);
    let backend = &slot.0;
    if first_len > 0 {
        shared
            .counters
            .bytes_from_clients
            .fetch_add(first_len as u64, Ordering::Relaxed);
        backend.add_bytes(first_len as u64, 0);
    }
    let counters = &shared.counters;
    let up = |n: usize| {
        counters
            .bytes_from_clients
            .fetch_add(n as u64, Ordering::Relaxed);
        backend.add_bytes(n as u64, 0);
    };
    let down = |n: usize| {
        counters
            .bytes_to_clients
            .fetch_add(n as u64, Ordering::Relaxed);
        backend.add_bytes(0, n as u64);
    };
    match transfer::run(&client, &upstream, &shared.options.transfer, &up, &down).await {
        Outcome::Closed => {}
        Outcome::Idle => {
            inc(&counters.idle_timeouts);
            tracing::debug!(%peer, backend = %backend.addr(), "idle timeout");
        }
        Outcome::Error => inc(&counters.errors),
    }
}
