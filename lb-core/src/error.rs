//! Typed errors of the balancer.

use std::net::SocketAddr;

/// Everything that can go wrong when building or changing a balancer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listening socket could not be created, configured or bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// A backend with this address is already in the pool.
    #[error("backend {0} is already in the pool")]
    DuplicateBackend(SocketAddr),
    /// No backend with this address is in the pool.
    #[error("no backend {0} in the pool")]
    UnknownBackend(SocketAddr),
    /// A listener names a pool that the configuration does not define.
    #[error("listener {listener} refers to unknown pool {pool:?}")]
    UnknownPool {
        /// The listener's address.
        listener: SocketAddr,
        /// The pool name it asked for.
        pool: String,
    },
    /// Two pools share a name.
    #[error("pool {0:?} is defined twice")]
    DuplicatePool(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// Called outside a tokio runtime (with I/O and time enabled).
    #[error("lb-core needs a tokio runtime with I/O and time enabled")]
    NoRuntime,
    /// Another I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
