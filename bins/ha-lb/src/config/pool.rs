//! `[pools.NAME]`: a set of backends and how the balancer spreads connections over them.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Default number of other backends tried when a connect fails.
pub const DEFAULT_RETRIES: u32 = 2;
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3000;
/// Default passive failures before a backend is taken out (nginx's `max_fails`).
pub const DEFAULT_MAX_FAILS: u32 = 1;
/// Default time a backend stays out after `max_fails` (nginx's `fail_timeout`).
pub const DEFAULT_FAIL_TIMEOUT_MS: u64 = 10_000;

/// How a pool picks a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Weighted round robin.
    #[default]
    Roundrobin,
    /// Fewest open connections (weighted).
    Leastconn,
    /// Power of two random choices on open connections.
    P2c,
    /// Weighted random.
    Random,
    /// Maglev consistent hashing on the client address.
    Maglev,
    /// NAT listeners only: the client address hashed (nftables `jhash`, keepalived's `sh`)
    /// over the weighted backends. A client keeps its backend while the healthy set is
    /// unchanged; a change moves most clients (not consistent hashing: use `maglev` with a
    /// proxy listener for that).
    Sourcehash,
}

impl Algorithm {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Roundrobin => "roundrobin",
            Algorithm::Leastconn => "leastconn",
            Algorithm::P2c => "p2c",
            Algorithm::Random => "random",
            Algorithm::Maglev => "maglev",
            Algorithm::Sourcehash => "sourcehash",
        }
    }

    /// Whether nftables can do it, i.e. a NAT listener may use it.
    pub fn nat_capable(self) -> bool {
        matches!(
            self,
            Algorithm::Roundrobin | Algorithm::Random | Algorithm::Sourcehash
        )
    }
}

/// PROXY protocol header sent to backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// No header.
    #[default]
    Off,
    /// Text header (version 1).
    V1,
    /// Binary header (version 2).
    V2,
}

/// What happens to the open connections of a backend whose check goes down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBackendDown {
    /// They go on (nginx, and haproxy's default).
    #[default]
    Keep,
    /// They are closed at once (haproxy's `on-marked-down shutdown-sessions`), so that long
    /// streams such as Kubernetes watches move to a healthy backend.
    Close,
}

/// One pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Backend choice. Default `roundrobin`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Other backends tried after a failed connect, 0..=100. Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Connect timeout to a backend, ms, 1..=3600000. Default 3000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// PROXY protocol header to send to backends: `off`, `v1`, `v2`. Default `off`.
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    /// Failed connects within `fail_timeout_ms` that take a backend out; 0 = never. Default 1.
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    /// Window for `max_fails` and time the backend then stays out, ms. Default 10000.
    #[serde(default = "default_fail_timeout_ms")]
    pub fail_timeout_ms: u64,
    /// What happens to the open connections of a backend whose check goes down: `keep` or
    /// `close`. Default `keep`.
    #[serde(default)]
    pub on_backend_down: OnBackendDown,
    /// Ramp a backend's weight up over this long after its check comes back up (haproxy's
    /// `slowstart`), ms, 0..=3600000; 0 = at once. Default 0.
    #[serde(default)]
    pub slow_start_ms: u64,
    /// The backends. Required, at least one.
    pub backends: Vec<Backend>,
}

/// One backend of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Where to connect. Required.
    pub address: SocketAddr,
    /// Relative weight, 0..=1000; 0 takes no new connections (drain). Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Most open connections to this backend; 0 = no limit. Default 0.
    #[serde(default)]
    pub max_conns: u32,
    /// Used only while no other backend is healthy. Default false.
    #[serde(default)]
    pub backup: bool,
    /// Name of a `[checks.NAME]` that decides this backend's health. Default: none (healthy
    /// unless passive failures take it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

impl Pool {
    /// A pool of `backends` with every other setting at its default.
    pub fn new(backends: Vec<Backend>) -> Self {
        Pool {
            algorithm: Algorithm::default(),
            retries: DEFAULT_RETRIES,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            proxy_protocol: ProxyProtocol::default(),
            max_fails: DEFAULT_MAX_FAILS,
            fail_timeout_ms: DEFAULT_FAIL_TIMEOUT_MS,
            on_backend_down: OnBackendDown::default(),
            slow_start_ms: 0,
            backends,
        }
    }
}

impl Backend {
    /// A primary backend at `address`, weight 1, no check, no limit.
    pub fn new(address: SocketAddr) -> Self {
        Backend {
            address,
            weight: default_weight(),
            max_conns: 0,
            backup: false,
            check: None,
        }
    }
}

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_max_fails() -> u32 {
    DEFAULT_MAX_FAILS
}

fn default_fail_timeout_ms() -> u64 {
    DEFAULT_FAIL_TIMEOUT_MS
}

fn default_weight() -> u32 {
    1
}
