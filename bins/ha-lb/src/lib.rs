//! ha-lb as a library. The designed entry point is [`failover`]: VRRP on a real interface
//! from any tokio program, run by the driver `ha-lb run` uses (see docs/embedding.md).
//! [`config`] (the TOML format and its validation) and [`keepalived`] (the importer) are
//! stable enough to build tools on. The other modules are the binary's internals, public for
//! its own tests: no stability is promised for them.

pub mod admin;
pub mod config;
pub mod failover;
pub mod keepalived;
pub mod kube;
pub mod net;
pub mod runtime;
pub mod sd_notify;
pub mod supervisor;

/// The workspace README's examples (the ways in), compiled as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
