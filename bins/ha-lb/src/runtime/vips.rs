//! The virtual addresses of one instance on the system: added when vrrp-core says Master,
//! removed when it leaves Master, and announced (gratuitous ARP / unsolicited NA).

use std::net::IpAddr;

use super::error::RuntimeError;
use crate::config::Vip;
use crate::net::{Addresses, Announcer, IfAddr, Interface, NetError, VipOptions};

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
    announcer: Option<Announcer>,
    /// Source of unsolicited NAs: the interface's link-local address.
    na_source: Option<std::net::Ipv6Addr>,
}

impl Vips {
    /// Resolves each VIP's interface (its `dev`, else the instance's) and opens the netlink
    /// and announcement sockets, in the calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Instance`] when an interface does not exist or a socket cannot open.
    pub fn new(
        instance: &str,
        interface: &Interface,
        vips: &[Vip],
        na_source: Option<std::net::Ipv6Addr>,
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
        let announcer = match Announcer::open(interface) {
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

    /// Removes these addresses.
    pub fn remove(&mut self, addrs: &[IpAddr]) {
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

    /// Sends `repeat` gratuitous ARPs / unsolicited NAs for each address.
    pub fn announce(&self, addrs: &[IpAddr], repeat: u32) {
        let Some(announcer) = &self.announcer else {
            return;
        };
        for _ in 0..repeat {
            for addr in addrs {
                let sent: Result<(), NetError> = match addr {
                    IpAddr::V4(a) => announcer.gratuitous_arp(*a),
                    IpAddr::V6(a) => match self.na_source {
                        Some(src) => announcer.neighbor_advertisement(*a, src, false),
                        None => Ok(()),
                    },
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
