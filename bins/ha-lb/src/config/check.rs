//! `[checks.NAME]`: an active health check (tcp, http, https, exec, process) with rise/fall.
//!
//! One flat table with a `kind`: the keys that do not apply to a kind are rejected by
//! validation, with the line of the key, rather than silently ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Default time between two runs of a check.
pub const DEFAULT_INTERVAL_MS: u64 = 2000;
/// Default number of successes in a row that make a down target up (haproxy's default).
pub const DEFAULT_RISE: u32 = 2;
/// Default number of failures in a row that make an up target down (haproxy's default).
pub const DEFAULT_FALL: u32 = 3;

/// What a check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// A TCP connect to `address` succeeds.
    Tcp,
    /// An HTTP request to `address` + `path` answers with an expected status.
    Http,
    /// The same over TLS, with `[tls]` options.
    Https,
    /// `command` exits 0.
    Exec,
    /// A process named `process` is running.
    Process,
}

impl CheckKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
            CheckKind::Exec => "exec",
            CheckKind::Process => "process",
        }
    }
}

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// What the check does. Required.
    pub kind: CheckKind,
    /// Time between two runs, ms, 10..=3600000. Default 2000.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Time a run may take before it counts as failed, ms, 1..=3600000. Default: the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Successes in a row that make a down target up, 1..=100. Default 2.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Failures in a row that make an up target down, 1..=100. Default 3.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// tcp, http, https: the address to connect to. When absent, each backend that uses the
    /// check is probed at its own address; a check tracked by an instance needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    /// http, https: the request path, starting with `/`. Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// http, https: the `Host` header. Default: the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// http, https: the request method. Default `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// http, https: extra request headers. Default none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// http, https: the statuses that count as healthy. Default: any 2xx or 3xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Vec<u16>>,
    /// http, https: a string the body must contain. Default: body not inspected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// https: TLS options. Default: verify against the system roots, SNI from `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// exec: the command as an argument vector (no shell). Required for exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// exec: run the command as this `user[:group]` instead of `global.run_as`. Default: the
    /// global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// process: the process name as in /proc/PID/comm (at most 15 bytes). A process check
    /// needs this or `pidfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// process: a file holding the PID of the process to watch, instead of `process`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<PathBuf>,
}

impl Check {
    /// The timeout in force: `timeout_ms`, or the interval when not set.
    pub fn effective_timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(self.interval_ms)
    }
}

/// TLS options of an https check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Name sent as SNI and verified in the certificate. Default: `host`, else the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM file of CA certificates to trust instead of the system roots (e.g. the cluster CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that ask for one. Needs `client_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Do not verify the server certificate at all. Default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_interval_ms() -> u64 {
    DEFAULT_INTERVAL_MS
}

fn default_rise() -> u32 {
    DEFAULT_RISE
}

fn default_fall() -> u32 {
    DEFAULT_FALL
}
