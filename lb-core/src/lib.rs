//! A pluggable, embeddable L4 TCP load balancer on tokio.
//!
//! - [`Pool`]: backends with weights, limits, backup flag and state, changed at run time
//!   (`add`, `remove`, `set_weight`, `set_state`) while connections read a lock-free snapshot.
//! - [`Selector`]/[`Picker`]: the selection trait you can implement; built in are smooth
//!   weighted round robin, weighted least connections, power of two choices, random and Maglev
//!   source hashing ([`Algorithm`]).
//! - [`Listener`]: IPv4/IPv6, optional IP_FREEBIND and SO_REUSEPORT; per connection a backend
//!   is picked, connected with a timeout and retried on another backend on failure; passive
//!   health takes failing backends out for a while; bytes move both ways with half-close, an
//!   idle timeout, and splice(2) or a userspace copy; PROXY protocol v1/v2 per pool.
//! - [`ConnectionLog`]: an optional record of every connection (client, backend, bytes, how it
//!   ended) through a bounded queue that never holds up the data path.
//! - [`Balancer`]: pools and listeners from one [`BalancerConfig`], stats, graceful stop.
//!
//! ```no_run
//! use lb_core::{Balancer, BalancerConfig, BackendConfig, ListenerConfig, PoolConfig};
//! # async fn run() -> Result<(), lb_core::Error> {
//! let backends = vec![
//!     BackendConfig::new("127.0.0.1:8081".parse().unwrap()),
//!     BackendConfig::new("127.0.0.1:8082".parse().unwrap()).weight(2),
//! ];
//! let balancer = Balancer::start(BalancerConfig {
//!     pools: vec![PoolConfig::new("web", backends)],
//!     listeners: vec![ListenerConfig::new("127.0.0.1:8080".parse().unwrap(), "web")],
//! })?;
//! // A health checker reports a backend down:
//! if let Some(pool) = balancer.pool("web") {
//!     pool.set_state("127.0.0.1:8081".parse().unwrap(), lb_core::BackendState::Down)?;
//! }
//! balancer.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

mod backend;
mod balancer;
mod clock;
mod conn_log;
mod connection;
mod copy;
mod error;
mod listener;
mod pool;
pub mod proxy_protocol;
pub mod select;
mod splice;
mod stats;
mod transfer;

pub use backend::{Backend, BackendConfig, BackendState, BackendStats};
pub use balancer::{Balancer, BalancerConfig, BalancerStats};
pub use conn_log::{ConnectionLog, ConnectionRecord, End};
pub use error::Error;
pub use listener::{Listener, ListenerConfig, ListenerHandle, ShutdownReport};
pub use pool::{Pool, PoolConfig, PoolStats, Snapshot};
pub use proxy_protocol::ProxyProtocol;
pub use select::{Algorithm, PickContext, Picker, Selector};
pub use stats::ListenerStats;
pub use transfer::TransferMode;
