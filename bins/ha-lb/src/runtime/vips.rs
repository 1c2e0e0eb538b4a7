//! The virtual addresses of one instance on the system: added when vrrp-core says Master,
//! removed when it leaves Master, and announced (gratuitous ARP / unsolicited NA).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::announcers::{Announcers, Kind, PacedAnnouncer};
use super::error::RuntimeError;
use crate::config::Vip;
use crate::net::{Addresses, IfAddr, Interface, NetError, VipOptions};

/// One VIP resolved to its interface.
#[derive(Debug)]
struct Placed {
    vip: Vip,
    ifindex: u32,
}

/// The VIPs of one instance, and the means to add, remove and announce them.
#[derive(Debug)]
pub struct Vips {
    instance: String,
    placed: Vec<Placed>,
    addresses: Addresses,
    announcer: Option<Arc<PacedAnnouncer>>,
    /// Source of unsolicited NAs: the interface's link-local address.
    na_source: Option<std::net::Ipv6Addr>,
    spacing: AnnounceSpacing,
    /// Bumped each time addresses are removed: a spaced burst still running in the background
    /// stops, so a node that left Master never announces after its successor did.
    removals: Arc<AtomicU64>,
}

/// The minimum gap between two announcements on the interface (keepalived's
/// `vrrp_garp_interval` and `vrrp_gna_interval`), for switches that drop bursts: kept between
/// the spaced announcements of every instance on the interface. Zero: a burst goes out at
/// once, unpaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnnounceSpacing {
    /// Between two gratuitous ARPs.
    pub arp: Duration,
    /// Between two unsolicited neighbour advertisements.
    pub na: Duration,
}

impl Vips {
    /// Resolves each VIP's interface (its `dev`, else the instance's), opens the netlink
    /// socket in the calling thread's network namespace, and takes the interface's announcer
    /// from `announcers` (shared with the other instances on it).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Instance`] when an interface does not exist or a socket cannot open.
    pub fn new(
        instance: &str,
        interface: &Interface,
        vips: &[Vip],
        na_source: Option<std::net::Ipv6Addr>,
        spacing: AnnounceSpacing,
        announcers: &Announcers,
    ) -> Result<Self, RuntimeError> {
        let err = |source| RuntimeError::Instance {
            instance: instance.to_owned(),
            source,
        };
        let mut placed = Vec::new();
        for vip in vips {
            let ifindex = match &vip.dev {
                Some(dev) => Interface::by_name(dev).map_err(err)?.index(),
                None => interface.index(),
            };
            placed.push(Placed {
                vip: vip.clone(),
                ifindex,
            });
        }
        let announcer = match announcers.get(interface) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(instance, error = %e, "cannot send gratuitous ARP / NA on this interface");
                None
            }
        };
        Ok(Vips {
            instance: instance.to_owned(),
            placed,
            addresses: Addresses::new().map_err(err)?,
            announcer,
            na_source,
            spacing,
            removals: Arc::default(),
        })
    }

    /// Removes the instance's own addresses wherever they are (before it starts in Backup,
    /// and when it stops).
    pub fn remove_all(&mut self) {
        let all: Vec<IpAddr> = self.placed.iter().map(|p| p.vip.address).collect();
        self.remove(&all);
    }

    /// Adds these addresses (those of the instance's VIPs).
    pub fn add(&mut self, addrs: &[IpAddr]) {
        for p in self
            .placed
            .iter()
            .filter(|p| addrs.contains(&p.vip.address))
        {
            let a = IfAddr::new(p.vip.address, p.vip.prefix);
            let options = VipOptions {
                label: p.vip.label.clone(),
                broadcast: p.vip.broadcast,
            };
            match self.addresses.add_vip_with(p.ifindex, a, &options) {
                Ok(_) => tracing::info!(instance = %self.instance, vip = %a, "VIP added"),
                Err(e) => {
                    tracing::error!(instance = %self.instance, vip = %a, error = %e, "cannot add VIP")
                }
            }
        }
    }

    /// Removes these addresses, and stops the spaced bursts still running.
    pub fn remove(&mut self, addrs: &[IpAddr]) {
        self.removals.fetch_add(1, Ordering::SeqCst);
        for p in self
            .placed
            .iter()
            .filter(|p| addrs.contains(&p.vip.address))
        {
            let a = IfAddr::new(p.vip.address, p.vip.prefix);
            match self.addresses.remove(p.ifindex, a) {
                Ok(true) => tracing::info!(instance = %self.instance, vip = %a, "VIP removed"),
                Ok(false) => {}
                Err(e) if e.is_link_gone() => {}
                Err(e) => {
                    tracing::error!(instance = %self.instance, vip = %a, error = %e, "cannot remove VIP")
                }
            }
        }
    }

    /// Sends `repeat` gratuitous ARPs / unsolicited NAs for each address: at once, or, with a
    /// spacing, from a thread of its own so the instance's loop never waits for it (the
    /// interface's other announcements are spaced from these too).
    pub fn announce(&self, addrs: &[IpAddr], repeat: u32) {
        let Some(announcer) = &self.announcer else {
            return;
        };
        let burst = Burst {
            announcer: announcer.clone(),
            instance: self.instance.clone(),
            na_source: self.na_source,
            spacing: self.spacing,
            addrs: addrs.to_vec(),
            repeat,
            removals: self.removals.clone(),
            epoch: self.removals.load(Ordering::SeqCst),
        };
        if self.spacing == AnnounceSpacing::default() {
            burst.send(false);
        } else {
            std::thread::spawn(move || burst.send(true));
        }
    }
}

/// One burst of announcements.
struct Burst {
    announcer: Arc<PacedAnnouncer>,
    instance: String,
    na_source: Option<std::net::Ipv6Addr>,
    spacing: AnnounceSpacing,
    addrs: Vec<IpAddr>,
    repeat: u32,
    removals: Arc<AtomicU64>,
    /// `removals` when the burst was asked for: once it moves, the rest is not sent.
    epoch: u64,
}

impl Burst {
    /// Sends the burst; `paced`: each packet waits for its turn on the interface (from a
    /// thread of its own), else all go at once.
    fn send(self, paced: bool) {
        let a = &self.announcer.announcer;
        for _ in 0..self.repeat {
            for addr in &self.addrs {
                let (kind, gap) = match addr {
                    IpAddr::V4(_) => (Kind::Arp, self.spacing.arp),
                    IpAddr::V6(_) => (Kind::Na, self.spacing.na),
                };
                let send = || -> Result<(), NetError> {
                    // Checked again after the pacing's wait.
                    if self.removals.load(Ordering::SeqCst) != self.epoch {
                        return Ok(());
                    }
                    match (addr, self.na_source) {
                        (IpAddr::V4(ip), _) => a.gratuitous_arp(*ip),
                        // RFC 5798 §6.4.1 / §6.4.2: a virtual router's NA has the
                        // Router flag set; hosts drop a default router whose R goes to 0.
                        (IpAddr::V6(ip), Some(src)) => a.neighbor_advertisement(*ip, src, true),
                        (IpAddr::V6(_), None) => Ok(()),
                    }
                };
                if self.removals.load(Ordering::SeqCst) != self.epoch {
                    tracing::debug!(instance = %self.instance, "announcements stopped: the addresses were removed");
                    return;
                }
                let sent = if paced && !gap.is_zero() {
                    self.announcer.pacing.paced(kind, gap, send)
                } else {
                    send()
                };
                if let Err(e) = sent {
                    tracing::debug!(instance = %self.instance, %addr, error = %e, "announcement not sent");
                }
            }
        }
    }
}

/// Removes, once before any instance starts, the VIPs a crashed earlier run left: every
/// configured VIP and every address tagged as ha-lb's on the instances' interfaces.
///
/// # Errors
///
/// [`RuntimeError::Instance`] when an interface cannot be listed.
pub fn remove_stale(
    instance: &str,
    ifindex: u32,
    configured: &[IpAddr],
) -> Result<Vec<IfAddr>, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: instance.to_owned(),
        source,
    };
    Addresses::new()
        .map_err(err)?
        .remove_stale(ifindex, configured)
        .map_err(err)
}
