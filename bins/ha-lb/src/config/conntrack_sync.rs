//! `[conntrack_sync]`: the kernel's connection tracking state copied to the peer balancer by
//! conntrackd (Debian's conntrack-tools, FTFW mode), so that the flows of NAT listeners survive
//! a failover: the node that takes the VIP already holds each flow's translation.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// conntrackd's usual sync port.
pub const DEFAULT_CONNTRACK_PORT: u16 = 3780;
/// Where Debian installs conntrackd.
pub const DEFAULT_CONNTRACKD: &str = "/usr/sbin/conntrackd";
/// The name of conntrackd's control socket in its state directory.
pub const CONNTRACKD_SOCKET: &str = "conntrackd.ctl";
/// The name of conntrackd's configuration file in its state directory.
pub const CONNTRACKD_CONF: &str = "conntrackd.conf";
/// The name of conntrackd's lock file in its state directory.
pub const CONNTRACKD_LOCK: &str = "conntrackd.lock";
/// Where ha-lb writes conntrackd's configuration, lock file and control socket.
pub const DEFAULT_CONNTRACK_STATE_DIR: &str = "/run/ha-lb/conntrackd";

/// The conntrackd that ha-lb starts, configures and drives on the instance's transitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConntrackSync {
    /// The interface of the sync link (a dedicated link, or the VRRP one). Required.
    pub interface: String,
    /// This node's address on that link. Required.
    pub local: IpAddr,
    /// The other balancer's address on that link. Required.
    pub peer: IpAddr,
    /// The VRRP instance whose transitions drive conntrackd (the one holding the NAT
    /// listeners' VIP). Default: the only instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// UDP port of the sync messages, on both nodes. Default 3780.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The conntrackd program. Default `/usr/sbin/conntrackd`.
    #[serde(default = "default_program")]
    pub program: PathBuf,
    /// Directory of conntrackd's configuration, lock file and control socket (one per node
    /// on a host). Default `/run/ha-lb/conntrackd`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

impl ConntrackSync {
    /// The instance that drives conntrackd: `instance`, or the only one of `instances`.
    pub fn driving_instance<'a>(
        &'a self,
        instances: impl IntoIterator<Item = &'a String>,
    ) -> Option<&'a str> {
        if let Some(name) = &self.instance {
            return Some(name);
        }
        let mut all = instances.into_iter();
        match (all.next(), all.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}

fn default_port() -> u16 {
    DEFAULT_CONNTRACK_PORT
}

fn default_program() -> PathBuf {
    PathBuf::from(DEFAULT_CONNTRACKD)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_CONNTRACK_STATE_DIR)
}
