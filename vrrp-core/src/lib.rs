#![doc = include_str!("../README.md")]
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
