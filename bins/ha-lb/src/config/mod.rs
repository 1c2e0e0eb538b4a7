//! The ha-lb TOML configuration: schema, defaults and validation.
//!
//! One file describes the whole node: VRRP `instances` (and `sync_groups`), `anycast` VIPs
//! announced by a routing daemon, health `checks`,
//! balancer `listeners` and `pools`, `conntrack_sync` and the `admin` endpoint. Every key is documented with its
//! default in docs/config.md. [`load`] reads and validates a file; every problem comes back as a
//! [`Diagnostic`] with file, line, column and a hint. The types are plain data, independent of
//! the crates that run them.

mod admin;
mod advice;
mod anycast;
mod check;
mod conntrack_sync;
mod error;
mod garp;
mod global;
mod instance;
mod key_path;
mod listener;
mod load;
mod notify;
mod pool;
mod source_map;
mod summary;
mod sync_group;
mod track;
mod validate;
mod vip;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use admin::{Admin, DEFAULT_ADMIN_LISTEN};
pub use advice::advise;
pub use anycast::{
    Anycast, DEFAULT_ANYCAST_INTERFACE, DEFAULT_WITHDRAW_WAIT_MS, MAX_WITHDRAW_WAIT_MS,
};
pub use check::{Check, CheckKind, Tls};
pub use conntrack_sync::{
    ConntrackSync, CONNTRACKD_CONF, CONNTRACKD_LOCK, CONNTRACKD_SOCKET, DEFAULT_CONNTRACKD,
    DEFAULT_CONNTRACK_PORT, DEFAULT_CONNTRACK_STATE_DIR,
};
pub use error::{ConfigError, Diagnostic, Location, Severity};
pub use garp::Garp;
pub use global::Global;
pub use instance::Instance;
pub use key_path::{KeyPath, Segment};
pub use listener::{Listener, ListenerMode, NatSource};
pub use load::{load, load_with_warnings, parse, parse_with_warnings};
pub use notify::Notify;
pub use pool::{Algorithm, Backend, OnBackendDown, Pool, ProxyProtocol};
pub use sync_group::SyncGroup;
pub use track::{TrackCheck, TrackInterface, TrackPool};
pub use validate::{validate, Problem, MAX_DURATION_MS, MAX_IDLE_TIMEOUT_MS};
pub use vip::{Vip, VipParseError};

/// A whole ha-lb configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings. Default: all defaults.
    #[serde(default, skip_serializing_if = "Global::is_empty")]
    pub global: Global,
    /// The admin endpoint; off when the table is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Admin>,
    /// VRRP instances by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, Instance>,
    /// Anycast VIP groups by name: announced by a routing daemon (BGP), not VRRP.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub anycast: BTreeMap<String, Anycast>,
    /// Sync groups by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sync_groups: BTreeMap<String, SyncGroup>,
    /// Health checks by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Check>,
    /// Balancer pools by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, Pool>,
    /// Balancer listeners by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub listeners: BTreeMap<String, Listener>,
    /// Connection tracking state synced to the peer by conntrackd; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_sync: Option<ConntrackSync>,
}
