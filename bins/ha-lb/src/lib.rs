//! ha-lb as a library. The designed entry point is [`failover`]: VRRP on a real interface
//! from any tokio program, run by the driver `ha-lb run` uses (see docs/embedding.md).
//! [`config`] (the TOML format and its validation), [`keepalived`] (the importer),
//! [`status`] (the admin endpoint's status document and a client for it) and [`net`] (the
//! Linux pieces under the driver: the VRRP socket, addresses, GARP / NA, link state, nf_tables)
//! are there to build tools on. [`cli`] is the `ha-lb` binary's command line. Everything else
//! (the runtime, the supervisor, the admin endpoint) is private to the binary.

pub mod cli;
pub mod config;
pub mod failover;
pub mod keepalived;
pub mod net;
pub mod status;

pub(crate) mod admin;
pub(crate) mod kube;
pub(crate) mod reporting;
pub(crate) mod runtime;
pub(crate) mod sd_notify;
pub(crate) mod supervisor;

/// What the end-to-end tests drive below the designed API: an instance's VIPs and the
/// per-interface pacing of their announcements (tests/e2e/net_announce.rs), and how long a
/// new anycast interface stays without VIPs (tests/e2e/bgp.rs). Not part of the API: no
/// stability is promised.
#[doc(hidden)]
pub mod testing {
    pub use crate::runtime::announcers::Announcers;
    pub use crate::runtime::anycast::NEW_LINK_SETTLE;
    pub use crate::runtime::vips::{AnnounceSpacing, Vips};
}

/// The workspace README's examples (the ways in), compiled as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
