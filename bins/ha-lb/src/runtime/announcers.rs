//! The node's announcers, one per interface and shared by every instance on it, so that
//! `garp.interval_ms` / `gna_interval_ms` space the gratuitous ARPs and unsolicited NAs of
//! the whole interface (as keepalived's per-interface delays do), not only those of one
//! instance's burst: two instances becoming Master together do not double the rate a switch
//! sees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::net::{Announcer, Interface, NetError};

/// What is announced: the two kinds have their own spacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Gratuitous ARP (IPv4).
    Arp,
    /// Unsolicited neighbour advertisement (IPv6).
    Na,
}

/// When each kind was last (or will next be) sent on one interface.
#[derive(Debug, Default)]
pub struct Pacing {
    /// The latest send reserved per kind: [ARP, NA].
    last: Mutex<[Option<Instant>; 2]>,
}

impl Pacing {
    /// Reserves the next send of `kind`: no earlier than `now` nor than `gap` after the last
    /// one reserved by anyone. Returns the reserved instant; the caller sleeps until then and
    /// sends.
    pub fn reserve(&self, kind: Kind, gap: Duration, now: Instant) -> Instant {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut last[kind as usize];
        let at = slot.map_or(now, |l| (l + gap).max(now));
        *slot = Some(at);
        at
    }
}

/// One interface's announcer and its pacing.
#[derive(Debug)]
pub struct PacedAnnouncer {
    /// Sends the packets.
    pub announcer: Announcer,
    /// Spaces them.
    pub pacing: Pacing,
}

/// The node's announcers by interface index. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Announcers {
    by_index: Arc<Mutex<BTreeMap<u32, Weak<PacedAnnouncer>>>>,
}

impl Announcers {
    /// The announcer of `interface`: the one other instances on it use, or a new one.
    ///
    /// # Errors
    ///
    /// [`NetError`] when its sockets cannot be opened.
    pub fn get(&self, interface: &Interface) -> Result<Arc<PacedAnnouncer>, NetError> {
        let mut map = self.by_index.lock().unwrap_or_else(PoisonError::into_inner);
        // Those no instance holds any more (an interface re-made gets a new index) go.
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(a) = map.get(&interface.index()).and_then(Weak::upgrade) {
            return Ok(a);
        }
        let a = Arc::new(PacedAnnouncer {
            announcer: Announcer::open(interface)?,
            pacing: Pacing::default(),
        });
        map.insert(interface.index(), Arc::downgrade(&a));
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_from_two_bursts_interleave_a_gap_apart() {
        let pacing = Pacing::default();
        let t0 = Instant::now();
        let gap = Duration::from_millis(50);
        // Two instances ask at the same instant, twice each: four slots, 50 ms apart.
        for k in 0..4u32 {
            assert_eq!(pacing.reserve(Kind::Arp, gap, t0) - t0, gap * k);
        }
        // The other kind has its own schedule.
        assert_eq!(pacing.reserve(Kind::Na, gap, t0), t0);
        // Long after: at once.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(pacing.reserve(Kind::Arp, gap, later), later);
        // No gap of its own: not later than asked, and not before the last reservation.
        assert_eq!(pacing.reserve(Kind::Arp, Duration::ZERO, later), later);
        let soon = t0 + Duration::from_millis(100);
        assert_eq!(pacing.reserve(Kind::Arp, Duration::ZERO, soon), later);
    }
}
