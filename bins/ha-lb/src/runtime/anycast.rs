//! `[anycast.NAME]` at run time: the VIPs on the group's dummy interface while everything it
//! tracks is healthy, gone otherwise. The node's routing daemon (BIRD, FRR) exports the
//! interface's host routes, so adding an address announces the route and removing it withdraws
//! it: ha-lb speaks no BGP. See docs/bgp.md.
//!
//! - start: the dummy interface is made (or kept), and addresses an earlier run left (on it,
//!   and on `lo` from a stop cut short) go before anything is announced;
//! - health: a group is announced only once every tracked check has passed (an unknown check
//!   does not count: a node that just started must not attract traffic before its first
//!   result) and every tracked pool has a backend that takes connections;
//! - graceful stop ([`Anycast::withdraw`]): each VIP first gets a local route without an
//!   address (`ip route add local VIP dev lo table local`, which no routing daemon exports),
//!   then leaves the dummy interface: the route is withdrawn while the VIP stays local, so the
//!   connections the router still sends during the withdrawal are served; after
//!   `withdraw_wait_ms` the listeners drain and [`Anycast::finish`] removes the local routes.
//!   (A second address on `lo` would not do: FRR's zebra keeps announcing the connected route
//!   of the dummy interface when the same address is on another interface.)
//! - a dummy interface ha-lb has just made gets no VIP for [`NEW_LINK_SETTLE`];
//! - worker death: the supervisor calls [`release`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::error::RuntimeError;
use super::health::{backend_key, Health};
use super::links::Links;
use super::shared::Shared;
use crate::config::{self, Config};
use crate::net::{Addresses, IfAddr, Interface, NetError};

/// How long a dummy interface that ha-lb has just made stays without VIPs. A routing daemon may
/// learn links and addresses on different netlink sockets: FRR 8's zebra reads links in its
/// main thread and addresses in its dataplane thread, and silently drops an address whose link
/// its main thread has not seen yet, so that address is never exported (in the FRR e2e, where
/// the link and its VIP came 2 ms apart while zebra was busy with its clients: in 4 of 128
/// two-node set-ups). An interface that exists is not held: only the first start after a boot,
/// or one made again after someone deleted it, waits.
pub const NEW_LINK_SETTLE: Duration = Duration::from_secs(1);

/// One group as it runs.
#[derive(Debug)]
struct Group {
    config: config::Anycast,
    /// The dummy interface's index.
    ifindex: u32,
    /// Whether the VIPs are on the dummy interface (the routes announced).
    announced: bool,
    /// The VIPs changed by a reload: the next update adds or removes them all again.
    dirty: bool,
    /// [`Anycast::withdraw`] gave the VIPs local routes.
    local_routes: bool,
    /// Why it is not announced, as last seen.
    reason: Option<String>,
    /// An operator's maintenance (`ha-lb ctl anycast NAME maintenance on`): withdrawn, the
    /// VIPs kept local by local routes, until off. Kept across reloads.
    maintenance: bool,
}

/// Every anycast group of the node.
#[derive(Debug, Default)]
pub struct Anycast {
    groups: BTreeMap<String, Group>,
    /// The dummy interfaces ha-lb made less than [`NEW_LINK_SETTLE`] ago, by index, with
    /// when: no VIP goes on them yet (every group on one waits the same).
    made: BTreeMap<u32, Instant>,
}

/// What the announcement of a group depends on, from the node's current view.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The configuration (pools and their backends).
    pub config: &'a Config,
    /// The health monitors.
    pub health: &'a Health,
    /// Link state of the followed interfaces.
    pub links: &'a Links,
    /// The balancer (passive health).
    pub shared: &'a Shared,
}

impl View<'_> {
    /// Why `group` must not be announced now, or `None` when it may.
    pub fn down_reason(&self, group: &config::Anycast) -> Option<String> {
        for c in &group.track_checks {
            let state = self.health.state(&super::health::MonitorKey {
                check: c.clone(),
                target: None,
            });
            if state != Some(healthcheck::State::Up) {
                let s = state.map_or_else(|| "not running".to_owned(), |s| s.to_string());
                return Some(format!("check {c} is {s}"));
            }
        }
        for p in &group.track_pools {
            let balancer = self.shared.balancer();
            let ejected = balancer.ejected(p);
            let healthy = self.config.pools.get(p).is_some_and(|pool| {
                pool.backends.iter().any(|b| {
                    balancer.operator_allows(p, b)
                        && !ejected.contains(&b.address)
                        && backend_key(self.config, b)
                            .is_none_or(|k| self.health.state(&k) == Some(healthcheck::State::Up))
                })
            });
            if !healthy {
                return Some(format!("pool {p} has no healthy backend"));
            }
        }
        for i in &group.track_interfaces {
            if !self.links.is_up(i) {
                return Some(format!("interface {i} is down"));
            }
        }
        None
    }
}

fn err(group: &str) -> impl Fn(NetError) -> RuntimeError + '_ {
    move |source| RuntimeError::Anycast {
        group: group.to_owned(),
        source,
    }
}

fn host(vip: &config::Vip) -> IfAddr {
    IfAddr::new(vip.address, vip.prefix)
}

/// The index of `lo`, the device of the local routes that keep VIPs local during a stop.
fn lo_index() -> Result<u32, NetError> {
    Interface::by_name("lo").map(|i| i.index())
}

impl Anycast {
    /// Makes the groups those of `new`: a new group gets its dummy interface (and what an
    /// earlier run left there, and its VIPs' local routes, removed), a removed one withdraws
    /// its VIPs, a changed one withdraws the VIPs it no longer lists. What to announce is
    /// decided by [`Anycast::update`]. The interfaces a group tracks must be followed by the
    /// caller.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Anycast`] when a dummy interface cannot be made (a link of that name
    /// that is not a dummy one, no CAP_NET_ADMIN): the first such error, after every other
    /// group was applied (the failed ones are left out).
    pub fn apply(&mut self, new: &Config) -> Result<(), RuntimeError> {
        let old = std::mem::take(&mut self.groups);
        let mut addresses = Addresses::new().map_err(err("all"))?;
        for (name, g) in &old {
            let kept = new.anycast.get(name);
            let gone: Vec<&config::Vip> = match kept {
                Some(n) if n.interface == g.config.interface => g
                    .config
                    .vips
                    .iter()
                    .filter(|v| !n.vips.iter().any(|w| w.address == v.address))
                    .collect(),
                _ => g.config.vips.iter().collect(),
            };
            for vip in gone {
                match addresses.remove(g.ifindex, host(vip)) {
                    Ok(true) => {
                        tracing::info!(anycast = %name, vip = %vip.address, "VIP withdrawn (reload)");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(anycast = %name, vip = %vip.address, error = %e, "cannot remove VIP");
                    }
                }
            }
        }
        // What the groups that stay hold: a new group sharing their interface must not take
        // them for what a crashed run left.
        let keep: Vec<IpAddr> = old
            .iter()
            .filter(|(name, _)| new.anycast.contains_key(*name))
            .flat_map(|(_, g)| addresses_of(&g.config))
            .collect();
        let mut old = old;
        let mut first_error = None;
        for (name, a) in &new.anycast {
            let kept = old
                .remove(name)
                .filter(|g| g.config.interface == a.interface);
            let group = match kept {
                Some(mut g) => {
                    // Added VIPs of an announced group go on at the next update.
                    g.dirty = g.config.vips != a.vips;
                    g.config = a.clone();
                    g
                }
                None => match start_group(name, a, &mut addresses, &keep) {
                    Ok(link) => {
                        if link.made {
                            self.made.insert(link.index, Instant::now());
                        }
                        Group {
                            config: a.clone(),
                            ifindex: link.index,
                            announced: false,
                            dirty: false,
                            local_routes: false,
                            reason: Some("starting".to_owned()),
                            maintenance: false,
                        }
                    }
                    Err(e) => {
                        tracing::error!(anycast = %name, error = %e, "cannot start the group");
                        first_error.get_or_insert(e);
                        continue;
                    }
                },
            };
            self.groups.insert(name.clone(), group);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Puts group `name` in maintenance or out of it (applied by the next
    /// [`Anycast::update`]). Returns `false` when there is no such group.
    pub fn set_maintenance(&mut self, name: &str, on: bool) -> bool {
        let Some(g) = self.groups.get_mut(name) else {
            return false;
        };
        if g.maintenance != on {
            g.maintenance = on;
            g.dirty = true;
        }
        true
    }

    /// Announces the groups that are healthy in `view` and withdraws the others. A group in
    /// maintenance is withdrawn as on a graceful stop: its VIPs stay local through local
    /// routes, so the connections the router still sends, and those open, are served.
    pub fn update(&mut self, view: View<'_>) {
        self.made.retain(|_, at| at.elapsed() < NEW_LINK_SETTLE);
        let mut addresses = None;
        let lo = lo_index().ok();
        for (name, g) in &mut self.groups {
            if g.maintenance {
                g.reason = Some("maintenance (ha-lb ctl)".to_owned());
                if g.dirty {
                    g.dirty = false;
                    if let Some(lo) = lo {
                        g.local_routes = true;
                        for vip in &g.config.vips {
                            if let Err(e) = crate::net::local_route::add(vip.address, lo) {
                                tracing::warn!(anycast = %name, vip = %vip.address, error = %e, "cannot keep the VIP local");
                            }
                        }
                    }
                    if let Ok(mut a) = Addresses::new() {
                        remove_all(&mut a, name, g.ifindex, &g.config);
                    }
                    g.announced = false;
                    tracing::warn!(anycast = %name, "maintenance: routes withdrawn, the VIPs stay local");
                }
                continue;
            }
            if std::mem::take(&mut g.local_routes) {
                // Out of maintenance: the addresses come back below if healthy; the local
                // routes go first, so that a withdrawn group does not keep answering.
                if let Some(lo) = lo {
                    for vip in &g.config.vips {
                        if let Err(e) = crate::net::local_route::remove(vip.address, lo) {
                            tracing::error!(anycast = %name, vip = %vip.address, error = %e, "cannot remove the local route");
                        }
                    }
                }
            }
            let reason = view.down_reason(&g.config).or_else(|| {
                self.made.contains_key(&g.ifindex).then(|| {
                    format!(
                        "interface {} was just made: its VIPs wait {} ms for routing daemons to learn it",
                        g.config.interface,
                        NEW_LINK_SETTLE.as_millis()
                    )
                })
            });
            let want = reason.is_none();
            g.reason.clone_from(&reason);
            if want == g.announced && !g.dirty {
                continue;
            }
            g.dirty = false;
            let a = match &mut addresses {
                Some(a) => a,
                None => match Addresses::new() {
                    Ok(a) => addresses.insert(a),
                    Err(e) => {
                        tracing::error!(anycast = %name, error = %e, "netlink socket");
                        return;
                    }
                },
            };
            if want {
                let mut ok = true;
                for vip in &g.config.vips {
                    if let Err(e) = a.add_vip(g.ifindex, host(vip)) {
                        ok = false;
                        tracing::error!(anycast = %name, vip = %vip.address, error = %e, "cannot add VIP");
                    }
                }
                // One that failed is tried again at the next update (a few times a second).
                g.announced = ok;
                if ok {
                    tracing::info!(anycast = %name, interface = %g.config.interface, vips = ?addresses_of(&g.config), "healthy: VIPs added, routes announced");
                }
            } else {
                remove_all(a, name, g.ifindex, &g.config);
                g.announced = false;
                tracing::warn!(anycast = %name, reason = reason.as_deref().unwrap_or(""), "unhealthy: VIPs removed, routes withdrawn");
            }
        }
    }

    /// Interface `ifindex` was deleted: the groups whose dummy interface it was make it again
    /// (their VIPs went with it) and are announced again at the next update. Returns whether
    /// any group was on it.
    pub fn link_removed(&mut self, ifindex: u32) -> bool {
        let mut any = false;
        for (name, g) in self.groups.iter_mut().filter(|(_, g)| g.ifindex == ifindex) {
            any = true;
            g.announced = false;
            match crate::net::dummy::ensure(&g.config.interface) {
                Ok(link) => {
                    tracing::warn!(anycast = %name, interface = %g.config.interface, index = link.index, "the anycast interface was deleted: made again");
                    g.ifindex = link.index;
                    if link.made {
                        self.made.insert(link.index, Instant::now());
                    }
                }
                Err(e) => {
                    tracing::error!(anycast = %name, interface = %g.config.interface, error = %e, "the anycast interface was deleted and cannot be made again");
                }
            }
        }
        any
    }

    /// Every group's state, for `/status` and `/metrics`.
    pub fn statuses(&self) -> Vec<crate::status::AnycastStatus> {
        self.groups
            .iter()
            .map(|(name, g)| crate::status::AnycastStatus {
                name: name.clone(),
                interface: g.config.interface.clone(),
                vips: addresses_of(&g.config)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                announced: g.announced,
                reason: if g.announced {
                    String::new()
                } else {
                    g.reason
                        .clone()
                        .unwrap_or_else(|| "cannot add the VIPs (see the log)".to_owned())
                },
            })
            .collect()
    }

    /// Graceful stop, first step: every announced VIP gets a local route (it stays local) and
    /// leaves the dummy interface (the route is withdrawn). Returns how long the listeners should
    /// keep accepting: the longest `withdraw_wait_ms` of an announced group (zero when none
    /// was announced).
    pub fn withdraw(&mut self) -> Duration {
        let mut wait = Duration::ZERO;
        let Ok(mut addresses) = Addresses::new() else {
            return wait;
        };
        let lo = lo_index();
        for (name, g) in &mut self.groups {
            if g.announced {
                wait = wait.max(Duration::from_millis(g.config.withdraw_wait_ms));
                if let Ok(lo) = &lo {
                    g.local_routes = true;
                    for vip in &g.config.vips {
                        if let Err(e) = crate::net::local_route::add(vip.address, *lo) {
                            tracing::warn!(anycast = %name, vip = %vip.address, error = %e, "cannot keep the VIP local while withdrawing");
                        }
                    }
                }
                g.announced = false;
                tracing::info!(anycast = %name, wait_ms = g.config.withdraw_wait_ms, "stopping: routes withdrawn, still accepting meanwhile");
            }
            remove_all(&mut addresses, name, g.ifindex, &g.config);
        }
        wait
    }

    /// Graceful stop, last step (the listeners closed): the VIPs' local routes go.
    pub fn finish(&mut self) {
        let Ok(lo) = lo_index() else {
            return;
        };
        for (name, g) in &mut self.groups {
            if std::mem::take(&mut g.local_routes) {
                for vip in &g.config.vips {
                    if let Err(e) = crate::net::local_route::remove(vip.address, lo) {
                        tracing::error!(anycast = %name, vip = %vip.address, error = %e, "cannot remove the local route");
                    }
                }
            }
        }
    }
}

fn addresses_of(a: &config::Anycast) -> Vec<IpAddr> {
    a.vips.iter().map(|v| v.address).collect()
}

fn remove_all(addresses: &mut Addresses, name: &str, ifindex: u32, a: &config::Anycast) {
    for vip in &a.vips {
        if let Err(e) = addresses.remove(ifindex, host(vip)) {
            tracing::error!(anycast = %name, vip = %vip.address, error = %e, "cannot remove VIP");
        }
    }
}

/// Makes group `name`'s dummy interface and removes what an earlier run left: every ha-lb
/// address on the dummy interface but those of `keep` (held by running groups), and the
/// local routes of the group's VIPs (tagged as ha-lb's).
fn start_group(
    name: &str,
    a: &config::Anycast,
    addresses: &mut Addresses,
    keep: &[IpAddr],
) -> Result<crate::net::dummy::DummyLink, RuntimeError> {
    let link = crate::net::dummy::ensure(&a.interface).map_err(err(name))?;
    let ifindex = link.index;
    let configured = addresses_of(a);
    for e in addresses.list(ifindex).map_err(err(name))? {
        let stale = (e.is_vip || configured.contains(&e.addr.addr)) && !keep.contains(&e.addr.addr);
        if stale && addresses.remove(ifindex, e.addr).map_err(err(name))? {
            tracing::warn!(anycast = name, vip = %e.addr.addr, "removed a VIP left by an earlier run");
        }
    }
    let lo = lo_index().map_err(err(name))?;
    for addr in crate::net::local_route::list().map_err(err(name))? {
        if configured.contains(&addr)
            && crate::net::local_route::remove(addr, lo).map_err(err(name))?
        {
            tracing::warn!(anycast = name, vip = %addr, "removed a local route an interrupted stop left");
        }
    }
    tracing::info!(anycast = name, interface = %a.interface, ifindex, made = link.made, "anycast dummy interface ready");
    Ok(link)
}

/// Supervisor side: the worker died, so its listeners are gone: every anycast VIP of `config`
/// leaves its dummy interface (the routes are withdrawn at once), and loses the local route
/// of a stop it was in. The restarted worker announces them again once healthy. Returns how
/// many addresses and routes were removed.
pub fn release(config: &Config) -> usize {
    let Ok(mut addresses) = Addresses::new() else {
        return 0;
    };
    let lo = lo_index().ok();
    let mut removed = 0;
    for (name, a) in &config.anycast {
        let dummy = match crate::net::dummy::find_link(&a.interface) {
            Ok(Some((index, true))) => Some(index),
            _ => None,
        };
        let places: Vec<(u32, IfAddr)> = dummy
            .map(|d| a.vips.iter().map(|v| (d, host(v))).collect())
            .unwrap_or_default();
        let mut here = 0;
        if let Some(lo) = lo {
            for vip in &a.vips {
                if crate::net::local_route::remove(vip.address, lo).unwrap_or(false) {
                    here += 1;
                }
            }
        }
        for (ifindex, addr) in places {
            match addresses.remove(ifindex, addr) {
                Ok(true) => here += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(anycast = %name, vip = %addr.addr, error = %e, "cannot remove VIP for the dead worker");
                }
            }
        }
        if here > 0 {
            tracing::warn!(anycast = %name, addresses = here, "released for the dead worker: VIPs removed, routes withdrawn");
        }
        removed += here;
    }
    removed
}
