//! `[listeners.NAME]`: a TCP address the balancer accepts on, and the pool it forwards to.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::instance::default_true;

/// Default idle timeout: one hour, as haproxy's `timeout tunnel` is often set; long enough for
/// most long-lived connections, short enough to reap dead ones.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 3_600_000;

/// How a listener moves a client's connection to a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerMode {
    /// ha-lb accepts the connection and opens another one to the backend (a userspace L4
    /// proxy, haproxy's `mode tcp`).
    #[default]
    Proxy,
    /// The kernel rewrites the destination (nftables DNAT, keepalived's LVS NAT): no byte
    /// crosses into userspace; ha-lb only programs the rules.
    Nat,
}

impl ListenerMode {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerMode::Proxy => "proxy",
            ListenerMode::Nat => "nat",
        }
    }
}

/// The source address backends see from a NAT listener's clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatSource {
    /// The balancer's address on the way to the backend (nftables `masquerade`): replies come
    /// back through the balancer in any topology.
    #[default]
    Masquerade,
    /// The listener's address, usually the VIP (`snat to VIP`): replies go to whichever node
    /// holds the VIP, so connection state synced between the nodes survives a failover.
    Vip,
    /// The client's own address: backends must route their replies back through the
    /// balancer (their default route or a route to the clients via it).
    Preserve,
}

impl NatSource {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            NatSource::Masquerade => "masquerade",
            NatSource::Vip => "vip",
            NatSource::Preserve => "preserve",
        }
    }
}

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
    /// `proxy` (ha-lb relays the bytes) or `nat` (the kernel rewrites addresses, nftables).
    /// Default `proxy`.
    #[serde(default)]
    pub mode: ListenerMode,
    /// NAT mode only: the source address backends see, `masquerade`, `vip` or `preserve`.
    /// Default (in NAT mode) `masquerade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_source: Option<NatSource>,
}

impl Listener {
    /// The source NAT in force for a NAT listener: `nat_source`, or `masquerade`.
    pub fn effective_nat_source(&self) -> NatSource {
        self.nat_source.unwrap_or_default()
    }
}

impl Listener {
    /// A proxy listener on `listen` forwarding to pool `pool`, every other setting at its
    /// default.
    pub fn new(listen: SocketAddr, pool: String) -> Self {
        Listener {
            listen,
            pool,
            non_local_bind: true,
            max_connections: 0,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            log: false,
            mode: ListenerMode::Proxy,
            nat_source: None,
        }
    }
}

fn default_idle_timeout_ms() -> u64 {
    DEFAULT_IDLE_TIMEOUT_MS
}
