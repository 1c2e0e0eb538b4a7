//! Several routers on one interface: received packets routed by (VRID, family).

use std::time::Instant;

use crate::config::ConfigError;
use crate::io::{DropReason, Output, Received};
use crate::packet::Family;
use crate::router::Router;

/// The index of a router in a [`Demux`], in the order they were added.
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

/// The virtual routers of one interface (one socket per family, say), with a table from
/// (VRID, family) to router: the seed's active-active pair VI_1 / VI_2 runs as two routers here.
///
/// Lookup is one array index, so a packet costs the same with 1 or 255 routers.
#[derive(Debug, Clone)]
pub struct Demux {
    routers: Vec<Router>,
    /// `index[family][vrid]` = position in `routers` + 1 (0: none), so the table is plain data.
    index: [[u16; 256]; 2],
    /// Where [`poll_output`](Self::poll_output) resumes, so one busy router cannot starve others.
    next_output: usize,
    stats: DemuxStats,
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

impl Demux {
    /// An empty demultiplexer.
    pub fn new() -> Self {
        Demux {
            routers: Vec::new(),
            index: [[0; 256]; 2],
            next_output: 0,
            stats: DemuxStats::default(),
        }
    }

    /// Adds a router.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DuplicateRouter`] when a router with the same (VRID, family) is already
    /// there.
    pub fn add(&mut self, router: Router) -> Result<RouterId, ConfigError> {
        let slot = &mut self.index[family_slot(router.family())][usize::from(router.vrid())];
        if *slot != 0 {
            return Err(ConfigError::DuplicateRouter {
                vrid: router.vrid(),
                family: router.family(),
            });
        }
        // At most 2 * 255 routers can be added, so the index fits a u16.
        *slot = (self.routers.len() + 1) as u16;
        self.routers.push(router);
        Ok(RouterId(self.routers.len() - 1))
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
        self.routers.get(id.0)
    }

    /// A router, to give it inputs directly (tracking, priority, ...).
    pub fn get_mut(&mut self, id: RouterId) -> Option<&mut Router> {
        self.routers.get_mut(id.0)
    }

    /// All routers, in [`RouterId`] order.
    pub fn routers(&self) -> &[Router] {
        &self.routers
    }

    /// The packets no router took.
    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    /// Starts every router.
    pub fn handle_startup(&mut self, now: Instant) {
        for r in &mut self.routers {
            r.handle_startup(now);
        }
    }

    /// Shuts every router down (each Master sends priority 0).
    pub fn handle_shutdown(&mut self, now: Instant) {
        for r in &mut self.routers {
            r.handle_shutdown(now);
        }
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
        let Some(router) = self.routers.get_mut(id.0) else {
            self.stats.vrid_errors += 1;
            return Err(DemuxError::NoRouter { vrid, family });
        };
        router
            .handle_packet(now, rx)
            .map(|()| id)
            .map_err(|reason| DemuxError::Dropped { router: id, reason })
    }

    /// Runs every router's due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for r in &mut self.routers {
            if r.poll_timeout().is_some_and(|t| t <= now) {
                r.handle_timeout(now);
            }
        }
    }

    /// The earliest deadline of all routers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.routers.iter().filter_map(Router::poll_timeout).min()
    }

    /// The next action of any router, with the router it comes from, round robin.
    pub fn poll_output(&mut self) -> Option<(RouterId, Output)> {
        let n = self.routers.len();
        for k in 0..n {
            let i = (self.next_output + k) % n;
            if let Some(out) = self.routers[i].poll_output() {
                self.next_output = (i + 1) % n;
                return Some((RouterId(i), out));
            }
        }
        None
    }
}
