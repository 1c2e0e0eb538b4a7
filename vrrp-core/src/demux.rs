//! Several routers on one interface: received packets routed by (VRID, family).

use core::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::config::ConfigError;
use crate::io::{DropReason, Output, Received};
use crate::packet::Family;
use crate::router::Router;

/// A router's place in a [`Demux`]: stable while it is there; a removed router's place may be
/// given to the next one added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterId(pub usize);

/// Packets a [`Demux`] could not hand to any router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DemuxStats {
    /// `vrrp3RouterVrIdErrors` at the interface level: no router for that (VRID, family).
    pub vrid_errors: u64,
    /// Packets too short to carry a VRID.
    pub packet_length_errors: u64,
}

/// Why a [`Demux`] did not use a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DemuxError {
    /// No router runs that VRID in that family.
    #[error("no virtual router {vrid} for {family}")]
    NoRouter {
        /// The VRID in the packet.
        vrid: u8,
        /// The family of the packet.
        family: Family,
    },
    /// The packet is too short to carry a VRID.
    #[error("packet truncated before the VRID")]
    Truncated,
    /// The router it went to dropped it.
    #[error("router {router:?} dropped it: {reason}")]
    Dropped {
        /// The router.
        router: RouterId,
        /// Why.
        reason: DropReason,
    },
}

/// The virtual routers behind one socket (an interface and family, say), with a table from
/// (VRID, family) to router: the seed's active-active pair VI_1 / VI_2 runs as two routers here.
///
/// Every operation costs the same with 1 or 500 routers: a packet is routed by one array
/// index, deadlines sit in a heap ([`poll_timeout`](Self::poll_timeout) and
/// [`handle_timeout`](Self::handle_timeout) touch only the routers that are due), and routers
/// with outputs wait in a queue ([`poll_output`](Self::poll_output) never scans the others).
/// Routers can be added and removed while the others run (a reload).
///
/// ```
/// use std::time::Instant;
/// use vrrp_core::{Demux, Router, RouterConfig, State, packet::Version};
///
/// let mut demux = Demux::new();
/// for vrid in [101, 102] {
///     let c = RouterConfig::new(vrid, Version::V3, "192.0.2.1".parse()?, vec!["192.0.2.200".parse()?]);
///     demux.add(Router::new(c)?)?;
/// }
/// let t0 = Instant::now();
/// demux.handle_startup(t0);
/// while let Some((_id, _output)) = demux.poll_output() { /* perform it */ }
/// // Nobody advertises: both routers' Master_Down_Timers run out together.
/// let deadline = demux.poll_timeout().unwrap();
/// demux.handle_timeout(deadline);
/// assert!(demux.routers().all(|(_, r)| r.state() == State::Master));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Demux {
    slots: Vec<Option<Slot>>,
    /// Positions of removed routers, reused by [`add`](Self::add).
    free: Vec<usize>,
    /// `index[family][vrid]` = position in `slots` + 1 (0: none), so the table is plain data.
    index: [[u16; 256]; 2],
    /// (deadline, position, generation). An entry is current while the router at that position
    /// is of that generation and still has that deadline; others are skipped when they surface.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Positions of routers with outputs, in the order they got them; each router at most once.
    ready: VecDeque<usize>,
    next_generation: u64,
    stats: DemuxStats,
}

/// A router and what the demultiplexer knows of it.
#[derive(Debug, Clone)]
struct Slot {
    router: Router,
    /// Told apart from a removed router that had the same position.
    generation: u64,
    /// The deadline it has in the heap.
    scheduled: Option<Instant>,
    /// It is in `ready`.
    queued: bool,
}

impl Default for Demux {
    fn default() -> Self {
        Self::new()
    }
}

fn family_slot(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

/// A router borrowed from a [`Demux`] to give it inputs directly (tracking, priority, a sync
/// group's hold); when it is dropped, the demultiplexer takes note of its new deadline and
/// outputs.
#[derive(Debug)]
pub struct RouterMut<'a> {
    demux: &'a mut Demux,
    position: usize,
}

impl core::ops::Deref for RouterMut<'_> {
    type Target = Router;

    fn deref(&self) -> &Router {
        // A RouterMut is only made for an occupied slot, which it borrows exclusively.
        match self.demux.slots.get(self.position) {
            Some(Some(slot)) => &slot.router,
            _ => unreachable!("RouterMut of an empty slot"),
        }
    }
}

impl core::ops::DerefMut for RouterMut<'_> {
    fn deref_mut(&mut self) -> &mut Router {
        match self.demux.slots.get_mut(self.position) {
            Some(Some(slot)) => &mut slot.router,
            _ => unreachable!("RouterMut of an empty slot"),
        }
    }
}

impl Drop for RouterMut<'_> {
    fn drop(&mut self) {
        self.demux.sync(self.position);
        self.demux.clean();
    }
}

impl Demux {
    /// An empty demultiplexer.
    pub fn new() -> Self {
        Demux {
            slots: Vec::new(),
            free: Vec::new(),
            index: [[0; 256]; 2],
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            next_generation: 0,
            stats: DemuxStats::default(),
        }
    }

    /// Adds a router (in whatever state it is: a new one is started with
    /// [`handle_startup`](Self::handle_startup) or through [`get_mut`](Self::get_mut)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::DuplicateRouter`] when a router with the same (VRID, family) is already
    /// there.
    pub fn add(&mut self, router: Router) -> Result<RouterId, ConfigError> {
        let family = family_slot(router.family());
        let vrid = usize::from(router.vrid());
        if self.index[family][vrid] != 0 {
            return Err(ConfigError::DuplicateRouter {
                vrid: router.vrid(),
                family: router.family(),
            });
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let slot = Some(Slot {
            router,
            generation,
            scheduled: None,
            queued: false,
        });
        let position = match self.free.pop() {
            Some(p) => {
                self.slots[p] = slot;
                p
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        // At most 2 * 256 routers can be in the table, so positions fit a u16.
        self.index[family][vrid] = (position + 1) as u16;
        self.sync(position);
        Ok(RouterId(position))
    }

    /// Removes a router and returns it, with any outputs it has not given yet. Shut it down
    /// first (through [`get_mut`](Self::get_mut)) and drain its outputs if it should leave
    /// gracefully.
    pub fn remove(&mut self, id: RouterId) -> Option<Router> {
        let slot = self.slots.get_mut(id.0)?.take()?;
        self.index[family_slot(slot.router.family())][usize::from(slot.router.vrid())] = 0;
        self.free.push(id.0);
        if slot.queued {
            self.ready.retain(|&p| p != id.0);
        }
        self.clean();
        Some(slot.router)
    }

    /// The router for (VRID, family), if any.
    pub fn lookup(&self, vrid: u8, family: Family) -> Option<RouterId> {
        match self.index[family_slot(family)][usize::from(vrid)] {
            0 => None,
            n => Some(RouterId(usize::from(n) - 1)),
        }
    }

    /// A router.
    pub fn get(&self, id: RouterId) -> Option<&Router> {
        self.slots.get(id.0)?.as_ref().map(|s| &s.router)
    }

    /// A router, to give it inputs directly (tracking, priority, a sync group's hold, step
    /// down); the demultiplexer catches up with it when the guard is dropped.
    pub fn get_mut(&mut self, id: RouterId) -> Option<RouterMut<'_>> {
        matches!(self.slots.get(id.0), Some(Some(_))).then(|| RouterMut {
            demux: self,
            position: id.0,
        })
    }

    /// The routers, with their ids, in id order.
    pub fn routers(&self) -> impl Iterator<Item = (RouterId, &Router)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (RouterId(i), &s.router)))
    }

    /// How many routers it holds.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether it holds no router.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packets no router took.
    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    /// Starts every router.
    pub fn handle_startup(&mut self, now: Instant) {
        self.each(|r| r.handle_startup(now));
    }

    /// Shuts every router down (each Master sends priority 0).
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.each(|r| r.handle_shutdown(now));
    }

    /// Routes a received packet to its router by the VRID byte and the source's family.
    ///
    /// # Errors
    ///
    /// [`DemuxError`]: no router, truncated, or the router's own [`DropReason`].
    pub fn handle_packet(
        &mut self,
        now: Instant,
        rx: &Received<'_>,
    ) -> Result<RouterId, DemuxError> {
        let Some(&vrid) = rx.bytes.get(1) else {
            self.stats.packet_length_errors += 1;
            return Err(DemuxError::Truncated);
        };
        let family = Family::of(&rx.src);
        let Some(id) = self.lookup(vrid, family) else {
            self.stats.vrid_errors += 1;
            return Err(DemuxError::NoRouter { vrid, family });
        };
        // The index only holds positions of routers that exist.
        let Some(Some(slot)) = self.slots.get_mut(id.0) else {
            self.stats.vrid_errors += 1;
            return Err(DemuxError::NoRouter { vrid, family });
        };
        let result = slot.router.handle_packet(now, rx);
        self.sync(id.0);
        self.clean();
        result
            .map(|()| id)
            .map_err(|reason| DemuxError::Dropped { router: id, reason })
    }

    /// Runs the due timers of the routers that have any.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, position, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(Some(slot)) = self.slots.get_mut(position) else {
                continue;
            };
            if slot.generation != generation || slot.scheduled != Some(at) {
                continue;
            }
            slot.scheduled = None;
            slot.router.handle_timeout(now);
            self.sync(position);
        }
        self.clean();
    }

    /// The earliest deadline of all routers.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // `clean` after every change keeps the top of the heap current.
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// The next action of any router, with the router it comes from; routers take turns, so
    /// one busy router cannot starve the others.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<(RouterId, Output)> {
        while let Some(position) = self.ready.pop_front() {
            let Some(Some(slot)) = self.slots.get_mut(position) else {
                continue;
            };
            let Some(output) = slot.router.poll_output() else {
                slot.queued = false;
                continue;
            };
            if slot.router.has_output() {
                self.ready.push_back(position);
            } else {
                slot.queued = false;
            }
            // A router's deadline may change only through an input, which syncs it.
            return Some((RouterId(position), output));
        }
        None
    }

    fn each(&mut self, mut f: impl FnMut(&mut Router)) {
        for position in 0..self.slots.len() {
            if let Some(Some(slot)) = self.slots.get_mut(position) {
                f(&mut slot.router);
                self.sync(position);
            }
        }
        self.clean();
    }

    /// Takes note of a router's deadline and outputs after an input.
    fn sync(&mut self, position: usize) {
        let Some(Some(slot)) = self.slots.get_mut(position) else {
            return;
        };
        let deadline = slot.router.poll_timeout();
        if deadline != slot.scheduled {
            slot.scheduled = deadline;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, position, slot.generation)));
            }
        }
        if !slot.queued && slot.router.has_output() {
            slot.queued = true;
            self.ready.push_back(position);
        }
    }

    /// Drops heap entries that are no longer current from the top, so the top is a real
    /// deadline ([`poll_timeout`](Self::poll_timeout) needs only `&self`).
    fn clean(&mut self) {
        while let Some(&Reverse((at, position, generation))) = self.timers.peek() {
            let current = matches!(
                self.slots.get(position),
                Some(Some(s)) if s.generation == generation && s.scheduled == Some(at)
            );
            if current {
                break;
            }
            self.timers.pop();
        }
    }
}
