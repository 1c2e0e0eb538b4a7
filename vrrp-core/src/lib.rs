//! A sans-IO VRRP engine: VRRPv3 (RFC 5798) and VRRPv2 (RFC 3768), for IPv4 and IPv6.
//!
//! The crate holds no sockets, reads no clock and spawns nothing: a driver hands it received
//! packets and the current time, and drains the actions it asks for. See the crate README for
//! how to embed it.
//!
//! - [`packet`]: the advertisement on the wire (parse / emit, checksums).
//! - [`Router`]: one virtual router's state machine (RFC 5798 §6.4, keepalived's extensions).
//! - [`Demux`]: several routers on one interface, packets routed by (VRID, family).
//! - [`SyncGroup`]: a sync group's rule (hold, let go, step down its members' routers).
//! - [`timers`]: Skew_Time and Master_Down_Interval.
#![forbid(unsafe_code)]

mod checksum;
mod config;
mod demux;
mod io;
pub mod packet;
mod router;
mod state;
mod stats;
mod sync_group;
pub mod timers;
mod track;

pub use config::{
    AnnounceConfig, ConfigError, RouterConfig, Track, MAX_DELAY, MAX_TRACK_WEIGHT,
    PRIORITY_DEFAULT, PRIORITY_OWNER, PRIORITY_STOP,
};
pub use demux::{Demux, DemuxError, DemuxStats, RouterId, RouterMut};
pub use io::{DropReason, Output, Received, Transmit};
pub use router::Router;
pub use state::{FaultCause, NewMasterReason, Reason, State};
pub use stats::{ProtoErrReason, Stats};
pub use sync_group::{Decision, Leave, Member, StateReport, SyncGroup, Why};
pub use track::TrackId;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
