//! The status document: what a running node is doing, as its admin endpoint serves it at
//! `/status` (JSON) and `ha-lb status` prints it. The runtime fills it, the admin endpoint
//! reads it; [`fetch`] gets it from a running node, [`render`] makes the tables.

mod client;
mod table;

pub use client::{fetch, StatusError};
pub use table::render;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One VRRP instance now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The instance name.
    pub name: String,
    /// Its interface.
    pub interface: String,
    /// Its VRID.
    pub vrid: u8,
    /// `Initialize`, `Backup`, `Master` or `Fault`.
    pub state: String,
    /// Why it last changed state.
    pub reason: String,
    /// The effective priority (base and tracked weights).
    pub priority: u8,
    /// The configured priority.
    pub base_priority: u8,
    /// The master's address, when known.
    pub master: Option<String>,
    /// The VIPs.
    pub vips: Vec<String>,
    /// Held back from Master by its sync group.
    #[serde(default)]
    pub sync_held: bool,
    /// Would be Master but for its sync group (or maintenance).
    #[serde(default)]
    pub wants_master: bool,
    /// In maintenance (`ha-lb ctl instance NAME maintenance on`): stays Backup.
    #[serde(default)]
    pub maintenance: bool,
    /// vrrp-core's counters (RFC 6527 names).
    pub counters: vrrp_core::Stats,
}

/// One backend now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// Its address.
    pub address: String,
    /// `up`, `down`, `drain` or `maintenance`.
    pub state: String,
    /// Its weight now (the operator's or the file's; less while slow start ramps it up).
    #[serde(default)]
    pub weight: u32,
    /// An operator's change kept until the file changes the backend: `drain`, `disable`,
    /// `weight N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Taken out by passive health.
    pub ejected: bool,
    /// Open connections.
    pub active: u64,
    /// Connections made.
    pub connections: u64,
    /// Failed connects.
    pub connect_errors: u64,
}

/// One pool now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// The pool name.
    pub name: String,
    /// Its backends.
    pub backends: Vec<BackendStatus>,
}

/// One listener now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStatus {
    /// Where it listens.
    pub listen: String,
    /// Its pool.
    pub pool: String,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open.
    pub active: u64,
    /// Failed connects to backends.
    pub connect_errors: u64,
    /// Clients turned away for want of a healthy backend.
    pub no_backend: u64,
    /// Bytes from clients.
    pub bytes_from_clients: u64,
    /// Bytes to clients.
    pub bytes_to_clients: u64,
}

/// One backend of a NAT listener now: its share of new flows and its flows in the kernel's
/// conntrack table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatBackendStatus {
    /// Its address.
    pub address: String,
    /// Map slots it has (its share of new flows; 0: it takes none now).
    pub slots: u32,
    /// Flows to it in the conntrack table now (any TCP state).
    pub flows: u64,
    /// Of those, the established ones.
    pub established: u64,
    /// Bytes from clients over the flows in the table now (0 without conntrack accounting).
    pub bytes_from_clients: u64,
    /// Bytes to clients over the flows in the table now.
    pub bytes_to_clients: u64,
    /// Flows to it since ha-lb started: ended ones (conntrack's events) and those in the table.
    #[serde(default)]
    pub flows_total: u64,
    /// Bytes from clients over those flows.
    #[serde(default)]
    pub bytes_from_clients_total: u64,
    /// Bytes to clients over those flows.
    #[serde(default)]
    pub bytes_to_clients_total: u64,
}

/// One NAT listener now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatListenerStatus {
    /// The listener's name.
    pub name: String,
    /// Address and port it rewrites.
    pub listen: String,
    /// Its pool.
    pub pool: String,
    /// `masquerade`, `vip` or `preserve`.
    pub nat_source: String,
    /// Every backend of the pool.
    pub backends: Vec<NatBackendStatus>,
    /// Why the flows are unknown (the conntrack table could not be read), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One anycast group now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnycastStatus {
    /// The group name.
    pub name: String,
    /// Its dummy interface.
    pub interface: String,
    /// Its VIPs.
    pub vips: Vec<String>,
    /// Whether the VIPs are on the interface (the routes announced).
    pub announced: bool,
    /// Why it is not announced (empty when it is).
    pub reason: String,
}

/// The whole node: the `/status` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// `global.router_id`, or the hostname.
    pub router_id: String,
    /// VRRP instances.
    pub instances: Vec<InstanceStatus>,
    /// Health checks.
    pub checks: Vec<CheckStatus>,
    /// Pools.
    pub pools: Vec<PoolStatus>,
    /// Listeners.
    pub listeners: Vec<ListenerStatus>,
    /// Listeners in NAT mode (absent from the documents of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nat: Vec<NatListenerStatus>,
    /// Anycast groups (absent from the documents of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anycast: Vec<AnycastStatus>,
    /// Connection log lines dropped because the log could not keep up.
    #[serde(default)]
    pub connection_log_dropped: u64,
    /// Configuration loads (at start and on SIGHUP).
    #[serde(default)]
    pub reloads: Reloads,
}

/// Configuration loads and their outcome, for `ha_lb_config_reload_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Reloads {
    /// Loads applied (the one at start included).
    pub success: u64,
    /// Loads rejected (the running configuration stayed).
    pub failure: u64,
    /// When the last applied one was, in seconds since the Unix epoch (0: never).
    pub last_success_unix: f64,
}

/// One check's status, for `/status` and `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckStatus {
    /// The check name.
    pub check: String,
    /// The backend probed, for a template check.
    pub target: Option<SocketAddr>,
    /// `up`, `down` or `unknown`.
    pub state: String,
}
