//! Listener counters and gauges, and their plain snapshot for export.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of one listener's counters and gauges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// The address it listens on.
    pub addr: Option<SocketAddr>,
    /// The pool it sends connections to.
    pub pool: String,
    /// Client connections accepted since start.
    pub accepted: u64,
    /// Client connections open now.
    pub active: u64,
    /// Bytes received from clients (and sent to backends).
    pub bytes_from_clients: u64,
    /// Bytes received from backends (and sent to clients).
    pub bytes_to_clients: u64,
    /// Failed connection attempts to backends.
    pub connect_errors: u64,
    /// Attempts on another backend after a failed one.
    pub retries: u64,
    /// Client connections closed without a backend: none was available, or every attempt
    /// (1 + retries) failed.
    pub no_backend: u64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Connections ended by an I/O error (reset, broken pipe) rather than a clean close.
    pub errors: u64,
    /// Connections closed because their backend went down (`close_on_down`) or was disabled.
    pub closed_by_backend_state: u64,
}

/// The live atomics behind [`ListenerStats`].
#[derive(Debug, Default)]
pub(crate) struct ListenerCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) bytes_from_clients: AtomicU64,
    pub(crate) bytes_to_clients: AtomicU64,
    pub(crate) connect_errors: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) no_backend: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) closed_by_backend_state: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ListenerCounters {
    pub(crate) fn snapshot(&self, addr: Option<SocketAddr>, pool: &str) -> ListenerStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerStats {
            addr,
            pool: pool.to_string(),
            accepted: l(&self.accepted),
            active: l(&self.active),
            bytes_from_clients: l(&self.bytes_from_clients),
            bytes_to_clients: l(&self.bytes_to_clients),
            connect_errors: l(&self.connect_errors),
            retries: l(&self.retries),
            no_backend: l(&self.no_backend),
            idle_timeouts: l(&self.idle_timeouts),
            errors: l(&self.errors),
            closed_by_backend_state: l(&self.closed_by_backend_state),
        }
    }
}
