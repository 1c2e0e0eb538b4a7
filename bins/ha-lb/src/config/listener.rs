//! `[listeners.NAME]`: a TCP address the balancer accepts on, and the pool it forwards to.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::instance::default_true;

/// Default idle timeout: one hour, as haproxy's `timeout tunnel` is often set; long enough for
/// most long-lived connections, short enough to reap dead ones.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 3_600_000;

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Address and port to accept on, usually a VIP. Required.
    pub listen: SocketAddr,
    /// Name of the `[pools.NAME]` to forward to. Required.
    pub pool: String,
    /// Bind even while the address is not on this node (`IP_FREEBIND`), so a listener on a
    /// VIP serves as soon as the VIP arrives. Default true.
    #[serde(default = "default_true")]
    pub non_local_bind: bool,
    /// Most client connections open at once; 0 = no limit. Default 0.
    #[serde(default)]
    pub max_connections: u32,
    /// Close a connection when no byte moved either way for this long, ms,
    /// 1..=604800000 (7 days). Default 3600000 (1 hour).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Log one line per connection (client, backend, bytes, duration, how it ended) at info
    /// level, target `ha_lb::connection`. Default false.
    #[serde(default)]
    pub log: bool,
}

impl Listener {
    /// A listener on `listen` forwarding to pool `pool`, every other setting at its default.
    pub fn new(listen: SocketAddr, pool: String) -> Self {
        Listener {
            listen,
            pool,
            non_local_bind: true,
            max_connections: 0,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            log: false,
        }
    }
}

fn default_idle_timeout_ms() -> u64 {
    DEFAULT_IDLE_TIMEOUT_MS
}
