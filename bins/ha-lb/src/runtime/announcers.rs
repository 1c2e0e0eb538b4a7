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

/// When each kind was last sent on one interface.
#[derive(Debug, Default)]
pub struct Pacing {
    /// Per kind ([ARP, NA]): the last paced send. The lock is held while waiting for the
    /// next slot, so paced senders (each burst has its own thread) go one at a time and the
    /// gap is measured from the previous packet actually sent.
    last: [Mutex<Option<Instant>>; 2],
}

impl Pacing {
    /// Runs `send` once `gap` has passed since the last paced send of `kind` on the
    /// interface, sleeping this thread until then (call it from a burst's own thread).
    pub fn paced<T>(&self, kind: Kind, gap: Duration, send: impl FnOnce() -> T) -> T {
        let mut last = self.last[kind as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(due) = last.map(|l| l + gap) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let out = send();
        *last = Some(Instant::now());
        out
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
