//! ha-lb as a library: the Linux driver around vrrp-core (sockets, virtual addresses,
//! announcements, link state), the configuration, and the keepalived.conf importer, so other
//! Rust programs can reuse them.

pub mod admin;
pub mod config;
pub mod failover;
pub mod keepalived;
pub mod kube;
pub mod net;
pub mod runtime;
pub mod sd_notify;
pub mod supervisor;
