//! The connection log (haproxy's `option tcplog`, nginx's `ngx_stream_log_module`): one
//! [`ConnectionRecord`] per client connection, handed to a bounded queue that the embedder
//! drains. The data path never waits for the log: when the queue is full the record is
//! dropped and counted.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

/// How a client connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The client closed first (then the backend).
    ClientClosed,
    /// The backend closed first (then the client).
    BackendClosed,
    /// Nothing moved either way for the listener's idle timeout.
    IdleTimeout,
    /// Every backend tried (1 + retries) refused or timed out.
    ConnectFailed,
    /// No backend was available (all down, drained, ejected).
    NoBackend,
    /// The available backends were all at their `max_connections`.
    LimitReached,
    /// A read or write failed (reset, broken pipe).
    Error,
    /// Closed because its backend's health check went down (`on_backend_down = close`).
    BackendDown,
    /// Closed because an operator disabled its backend.
    Disabled,
    /// Cut when the listener stopped (graceful stop or reload) and its grace ran out.
    Drained,
}

impl End {
    /// The word written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            End::ClientClosed => "client_closed",
            End::BackendClosed => "backend_closed",
            End::IdleTimeout => "idle_timeout",
            End::ConnectFailed => "connect_failed",
            End::NoBackend => "no_backend",
            End::LimitReached => "limit_reached",
            End::Error => "error",
            End::BackendDown => "backend_down",
            End::Disabled => "disabled",
            End::Drained => "drained",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            End::BackendDown => 1,
            End::Disabled => 2,
            _ => 0,
        }
    }

    pub(crate) fn from_close_cause(v: u8) -> End {
        match v {
            2 => End::Disabled,
            _ => End::BackendDown,
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One client connection, from accept to close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// When it was accepted.
    pub accepted_at: SystemTime,
    /// The listener's label (its name in the embedder's configuration).
    pub listener: Arc<str>,
    /// The client's address.
    pub client: SocketAddr,
    /// The pool.
    pub pool: String,
    /// The backend that served it, if a connect succeeded.
    pub backend: Option<SocketAddr>,
    /// Backends tried before, whose connect failed, in order.
    pub tried: Vec<SocketAddr>,
    /// From the first connect attempt to the established backend connection.
    pub connect_time: Option<Duration>,
    /// Bytes from the client (to the backend).
    pub bytes_from_client: u64,
    /// Bytes to the client (from the backend).
    pub bytes_to_client: u64,
    /// From accept to close.
    pub duration: Duration,
    /// How it ended.
    pub end: End,
}

/// The sending side of a connection log, given to a listener in
/// [`crate::ListenerConfig::log`]. Clones share the queue and the dropped counter.
#[derive(Debug, Clone)]
pub struct ConnectionLog {
    label: Arc<str>,
    tx: mpsc::Sender<ConnectionRecord>,
    dropped: Arc<AtomicU64>,
}

impl ConnectionLog {
    /// A log whose queue holds up to `capacity` records (at least 1), and its receiving end.
    pub fn new(capacity: usize) -> (ConnectionLog, mpsc::Receiver<ConnectionRecord>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            ConnectionLog {
                label: Arc::from(""),
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            rx,
        )
    }

    /// The same queue, with records labelled `label` (a listener's name).
    pub fn with_label(&self, label: &str) -> ConnectionLog {
        ConnectionLog {
            label: Arc::from(label),
            tx: self.tx.clone(),
            dropped: Arc::clone(&self.dropped),
        }
    }

    /// The label records get.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// Records dropped because the queue was full (or its reader gone), over every clone.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a record without waiting; counts it as dropped if it cannot be queued.
    pub fn send(&self, record: ConnectionRecord) {
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
