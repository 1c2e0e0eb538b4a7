//! What a monitor says about its target: the state, and the transitions between states.

use std::fmt;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::failure::Outcome;

/// The health of a target as decided by the rise/fall thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Healthy: serve it.
    Up,
    /// Unhealthy: don't.
    Down,
    /// No result yet (only before the first check, when so configured).
    Unknown,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Up => "up",
            State::Down => "down",
            State::Unknown => "unknown",
        })
    }
}

/// Where an outcome came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A check run by the monitor.
    Active,
    /// An outcome reported by the data path (e.g. a failed connect to the backend).
    Passive,
}

/// Why a transition happened: the outcome that crossed the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Who observed the outcome.
    pub source: Source,
    /// The outcome that completed the streak (`Err` holds the failure reason).
    pub outcome: Outcome,
    /// How many outcomes of this kind came in a row (≥ `rise` or `fall`, 1 from `Unknown`).
    pub streak: u32,
}

/// A change of state, as published to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Increases by one with every transition of this target, so gaps and reordering show.
    pub seq: u64,
    /// When the outcome that caused it was recorded.
    pub at: Instant,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why.
    pub reason: Reason,
}

impl Transition {
    /// The wall-clock time of [`Transition::at`], for logs (approximate: derived from the
    /// monotonic clock now).
    pub fn wall_time(&self) -> SystemTime {
        let ago = Instant::now().saturating_duration_since(self.at);
        SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} (", self.from, self.to)?;
        if self.reason.source == Source::Passive {
            write!(f, "passive, ")?;
        }
        match &self.reason.outcome {
            Ok(()) => write!(f, "{} success(es) in a row)", self.reason.streak),
            Err(e) => write!(f, "{} failure(s) in a row, last: {e})", self.reason.streak),
        }
    }
}
