//! What an instance tracks: checks, pools and interfaces, each with a weight.
//!
//! The weight follows keepalived: negative lowers the priority by that much while the tracked
//! thing is down, positive raises it while it is up, 0 puts the instance in Fault while down.

use serde::{Deserialize, Serialize};

/// A check tracked by an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackCheck {
    /// Name of a `[checks.NAME]` table. Required.
    pub check: String,
    /// Priority change, -253..=253; 0 means Fault while the check fails. Default 0.
    #[serde(default)]
    pub weight: i32,
}

/// A pool tracked by an instance: it is down when none of its backends is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackPool {
    /// Name of a `[pools.NAME]` table. Required.
    pub pool: String,
    /// Priority change, -253..=253; 0 means Fault while the pool has no healthy backend.
    /// Default 0.
    #[serde(default)]
    pub weight: i32,
}

/// An interface tracked by an instance: it is down when its link is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInterface {
    /// Interface name. Required.
    pub interface: String,
    /// Priority change, -253..=253; 0 means Fault while the link is down. Default 0.
    #[serde(default)]
    pub weight: i32,
}
