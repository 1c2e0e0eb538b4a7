//! `[admin]`: the HTTP endpoint for `/metrics` and `/status`. Off unless the table is present.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Default admin address: loopback only, so nothing is exposed by accident.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9555);

/// The admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address and port to serve on. Default `127.0.0.1:9555`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Accept the write requests of `ha-lb ctl` (drain, disable, enable, weight, maintenance).
    /// Default false: the endpoint is read-only.
    #[serde(default)]
    pub control: bool,
    /// A file whose content (trimmed) is the bearer token write requests must carry. Required
    /// with `control = true` when `listen` is not a loopback address. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: DEFAULT_ADMIN_LISTEN,
            control: false,
            token_file: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_ADMIN_LISTEN
}
