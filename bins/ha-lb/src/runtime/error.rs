//! The errors of the runtime: what stops `ha-lb run` from starting, or a reload from applying.

use std::path::PathBuf;

use crate::net::NetError;

/// Why the runtime could not start (or a reload could not apply).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The configuration file is invalid (the message holds every diagnostic).
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The diagnostics, formatted.
        message: String,
    },
    /// The process lacks a capability it needs.
    #[error("{0}")]
    Privileges(String),
    /// An instance could not be set up on its interface.
    #[error("instance {instance}: {source}")]
    Instance {
        /// The instance name.
        instance: String,
        /// What failed.
        #[source]
        source: NetError,
    },
    /// An anycast group's dummy interface or addresses could not be set up.
    #[error("anycast {group}: {source}")]
    Anycast {
        /// The group name.
        group: String,
        /// What failed.
        #[source]
        source: NetError,
    },
    /// conntrackd (`[conntrack_sync]`) could not be started.
    #[error("conntrack_sync: {0}")]
    ConntrackSync(#[source] super::conntrack_sync::ConntrackError),
    /// The nftables rules of `accept_mode = false` could not be applied.
    #[error("accept_mode = false: {0}")]
    AcceptMode(#[source] NetError),
    /// The nftables rules of the NAT listeners could not be set.
    #[error("cannot program the NAT listeners (nftables table inet ha_lb_nat): {0}")]
    Nat(#[source] NetError),
    /// vrrp-core refused an instance's configuration.
    #[error("instance {instance}: {source}")]
    Router {
        /// The instance name.
        instance: String,
        /// What vrrp-core said.
        #[source]
        source: vrrp_core::ConfigError,
    },
    /// An instance setting the runtime cannot express.
    #[error("instance {instance}: {message}")]
    InstanceSetting {
        /// The instance name.
        instance: String,
        /// What is wrong.
        message: String,
    },
    /// A health check could not be built.
    #[error("check {check}: {source}")]
    Check {
        /// The check name.
        check: String,
        /// What healthcheck said.
        #[source]
        source: healthcheck::ConfigError,
    },
    /// A program the configuration runs is unsafe to run as root, or a `run_as` user does not
    /// exist.
    #[error("{0}")]
    Scripts(String),
    /// The admin endpoint's settings cannot be used (its token file).
    #[error("{0}")]
    Admin(String),
    /// The balancer refused a pool or listener.
    #[error("balancer: {0}")]
    Balancer(#[from] lb_core::Error),
    /// An OS-level failure (signals, admin socket, link watcher...).
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A failure of the Linux driver outside any instance (e.g. the link watcher).
    #[error(transparent)]
    Net(#[from] NetError),
}

impl RuntimeError {
    /// Whether an instance could not start because its interface does not exist (yet) or has
    /// no address to send from (yet): worth waiting for, not a reason to stop.
    pub fn is_interface_not_ready(&self) -> bool {
        matches!(
            self,
            RuntimeError::Instance { source, .. }
                if source.is_link_gone() || matches!(source, NetError::NoSourceAddress { .. })
        )
    }

    /// An instance setting the driver cannot take, with what is wrong.
    pub fn setting(instance: &str, message: String) -> RuntimeError {
        RuntimeError::InstanceSetting {
            instance: instance.to_owned(),
            message,
        }
    }

    /// Wraps an OS error with the operation that failed.
    pub fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
        move |source| RuntimeError::Io { op, source }
    }
}
