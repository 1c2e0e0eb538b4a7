//! Tracked objects and the effective priority they give, with keepalived's semantics.

use core::fmt;

use crate::config::{Track, PRIORITY_OWNER};

/// The name a driver gives a tracked object (a health check, an interface, a file...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u32);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The configured priority and the tracked objects' current states.
#[derive(Debug, Clone)]
pub(crate) struct Tracking {
    base: u8,
    tracks: Vec<Track>,
}

impl Tracking {
    pub(crate) fn new(base: u8, tracks: Vec<Track>) -> Self {
        Tracking { base, tracks }
    }

    pub(crate) fn base(&self) -> u8 {
        self.base
    }

    pub(crate) fn set_base(&mut self, base: u8) {
        self.base = base;
    }

    /// Sets an object's state; `None` when it is not configured.
    pub(crate) fn set(&mut self, id: TrackId, up: bool) -> Option<()> {
        let t = self.tracks.iter_mut().find(|t| t.id == id)?;
        t.up = up;
        Some(())
    }

    pub(crate) fn is_up(&self, id: TrackId) -> Option<bool> {
        self.tracks.iter().find(|t| t.id == id).map(|t| t.up)
    }

    /// The first weight-0 object that is down: it holds the router in Fault.
    pub(crate) fn fault(&self) -> Option<TrackId> {
        self.tracks
            .iter()
            .find(|t| t.weight == 0 && !t.up)
            .map(|t| t.id)
    }

    /// The effective priority: the base plus positive weights of objects up and negative weights
    /// of objects down, clamped to 1..=254. An owner (255) keeps 255: keepalived ignores weights
    /// on an address owner, since its priority is what makes it the owner.
    pub(crate) fn effective(&self) -> u8 {
        if self.base == PRIORITY_OWNER {
            return PRIORITY_OWNER;
        }
        let sum: i32 = self
            .tracks
            .iter()
            .map(|t| match (t.weight, t.up) {
                (w, true) if w > 0 => i32::from(w),
                (w, false) if w < 0 => i32::from(w),
                _ => 0,
            })
            .sum::<i32>()
            + i32::from(self.base);
        // The clamp makes the value fit a u8.
        sum.clamp(1, 254) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u32, weight: i16, up: bool) -> Track {
        Track {
            id: TrackId(id),
            weight,
            up,
        }
    }

    #[test]
    fn weights_follow_keepalived() {
        let mut tr = Tracking::new(100, vec![t(1, -20, true), t(2, 30, false), t(3, 0, true)]);
        assert_eq!(tr.effective(), 100);
        tr.set(TrackId(1), false).unwrap();
        assert_eq!(tr.effective(), 80);
        tr.set(TrackId(2), true).unwrap();
        assert_eq!(tr.effective(), 110);
        assert_eq!(tr.fault(), None);
        tr.set(TrackId(3), false).unwrap();
        assert_eq!(tr.fault(), Some(TrackId(3)));
        assert!(tr.set(TrackId(9), true).is_none());
    }

    #[test]
    fn clamped_to_1_254_and_owner_fixed() {
        let tr = Tracking::new(240, vec![t(1, 100, true)]);
        assert_eq!(tr.effective(), 254);
        let tr = Tracking::new(10, vec![t(1, -200, false)]);
        assert_eq!(tr.effective(), 1);
        let tr = Tracking::new(255, vec![t(1, -200, false)]);
        assert_eq!(tr.effective(), 255);
    }
}
