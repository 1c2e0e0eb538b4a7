//! The node: what runs (instances by name in [`Slot`]s, health monitors, links, anycast
//! groups, sync groups) and the configuration it runs, with what it does on each event of
//! the runtime's loop: a health or link change, a member's state event, an operator's
//! request, the periodic tick, and the graceful stop. A reload is in `reload.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vrrp_core::Leave;

use super::groups::{self, Groups};
use super::health::{backend_key, Health, HealthEvent};
use super::instance::{self, Command, InstanceHandle, StateEvent};
use super::links::Links;
use super::shared::{self, Shared};
use super::tracks::{tracked, TrackSource};
use super::{
    announcers, anycast, balancer, conntrack_sync, control, health, ports, router_config,
    set_no_accept, Options, RuntimeError,
};
use crate::config::{self, Config};
use crate::net::LinkEvent;

/// One configured VRRP instance: running, or waiting for its interface; and what an operator
/// set on it. One entry per instance, so that removing one is one line.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// The instance, while it runs.
    pub running: Option<InstanceHandle>,
    /// Its interface is missing, or was deleted and made again: (re)start it there on the
    /// next tick.
    pub rebind: bool,
    /// An operator's maintenance (kept across reloads while the instance exists).
    pub maintenance: bool,
}

impl Slot {
    /// Sends a command to the instance if it runs.
    fn send(&self, command: Command) {
        if let Some(h) = &self.running {
            h.send(command);
        }
    }
}

/// The node: what runs, and the current configuration.
pub(super) struct Node {
    pub options: Options,
    pub config: Config,
    pub shared: Arc<Shared>,
    pub health: Health,
    pub links: Links,
    /// The instances of the configuration by name.
    pub slots: BTreeMap<String, Slot>,
    /// GARP / NA senders, one per interface, shared by its instances.
    pub announcers: announcers::Announcers,
    /// VRRP sockets, one per interface, family and mode, shared by its instances.
    pub ports: ports::Ports,
    /// Where instances report their state events.
    pub state_tx: mpsc::UnboundedSender<StateEvent>,
    /// The sync groups of the configuration.
    pub groups: Groups,
    /// The admin endpoint's task.
    pub admin: Option<JoinHandle<()>>,
    /// The anycast groups.
    pub anycast: anycast::Anycast,
    /// Where the admin endpoint sends operators' requests.
    pub control_tx: control::ControlSender,
    /// conntrackd, when `[conntrack_sync]` asks for it.
    pub conntrack: conntrack_sync::Conntrack,
}

impl Node {
    /// The running instances.
    pub fn running(&self) -> impl Iterator<Item = &InstanceHandle> {
        self.slots.values().filter_map(|s| s.running.as_ref())
    }

    /// Follows the link state of the interfaces the anycast groups track.
    pub(super) fn follow_anycast(&mut self) {
        for a in self.config.anycast.values() {
            for i in &a.track_interfaces {
                self.links.follow(i);
            }
        }
    }

    /// Announces the healthy anycast groups, withdraws the others.
    pub(super) fn update_anycast(&mut self) {
        self.anycast.update(anycast::View {
            config: &self.config,
            health: &self.health,
            links: &self.links,
            shared: &self.shared,
        });
        self.shared.set_anycast(self.anycast.statuses());
    }

    /// An operator's request from the admin endpoint.
    pub(super) fn control(&mut self, request: control::ControlRequest) {
        let answer = match request.request {
            control::Request::Backend {
                pool,
                backend,
                action,
                grace,
            } => {
                let r = self.shared.balancer().control(&pool, backend, action);
                if r.is_ok() && action == balancer::BackendAction::Disable {
                    let grace = grace.unwrap_or(self.options.drain_timeout);
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        shared.balancer().close_if_disabled(&pool, backend);
                    });
                }
                self.push_tracks();
                r
            }
            control::Request::Maintenance { instance, on } => {
                if self.config.instances.contains_key(&instance) {
                    let slot = self.slots.entry(instance.clone()).or_default();
                    slot.maintenance = on;
                    slot.send(Command::Maintenance(on));
                    tracing::info!(instance = %instance, on, "operator: maintenance");
                    Ok(format!(
                        "instance {instance}: maintenance {}",
                        if on { "on" } else { "off" }
                    ))
                } else {
                    let known: Vec<&String> = self.config.instances.keys().collect();
                    Err(format!("no instance {instance:?} (instances: {known:?})"))
                }
            }
            control::Request::AnycastMaintenance { group, on } => {
                if self.anycast.set_maintenance(&group, on) {
                    tracing::info!(anycast = %group, on, "operator: maintenance");
                    self.update_anycast();
                    Ok(format!(
                        "anycast {group}: maintenance {}",
                        if on { "on" } else { "off" }
                    ))
                } else {
                    let known: Vec<&String> = self.config.anycast.keys().collect();
                    Err(format!("no anycast group {group:?} (groups: {known:?})"))
                }
            }
        };
        let _ = request.reply.send(answer);
    }

    /// Whether `source`, tracked by `instance`, is up.
    fn track_up(&self, source: &TrackSource, instance: &str) -> bool {
        match source {
            TrackSource::Check(c) => self.health.check_up(c),
            TrackSource::Pool(p) => {
                // Healthy: its check (if any) is not down, passive health has not taken it out,
                // and it takes new connections (weight > 0).
                let balancer = self.shared.balancer();
                let ejected = balancer.ejected(p);
                self.config.pools.get(p).is_some_and(|pool| {
                    pool.backends.iter().any(|b| {
                        balancer.operator_allows(p, b)
                            && self.health.backend_up(&self.config, b)
                            && !ejected.contains(&b.address)
                    })
                })
            }
            TrackSource::Interface(i) => self.links.is_up(i),
            TrackSource::SyncGroup(g) => self.groups.lets_run(g, instance),
            // A configuration file names no embedder's signal.
            TrackSource::External(_) => true,
        }
    }

    /// An instance changed state (or its want of Master): its sync group follows (and runs
    /// its notify), and the members are told what the group decided.
    pub(super) fn state_changed(&mut self, event: StateEvent) {
        if let StateEvent::Changed { name, to, .. } = &event {
            self.conntrack.state_changed(name, *to);
        }
        let changed = self.groups.handle_event(&self.config, event);
        self.apply_group_commands();
        if changed {
            self.push_tracks();
        }
    }

    /// Sends the members what their sync groups decided (see `vrrp_core::SyncGroup`).
    pub(super) fn apply_group_commands(&mut self) {
        for (member, command) in self.groups.poll_commands() {
            if let Some(slot) = self.slots.get(&member) {
                slot.send(command);
            }
        }
    }

    /// Starts the instances of `new` that are not running (a reload has stopped those it must
    /// restart).
    pub(super) fn start_instances(&mut self, new: &Config) -> Result<(), RuntimeError> {
        for (name, inst) in &new.instances {
            if self.slots.get(name).is_some_and(|s| s.running.is_some()) {
                continue;
            }
            self.start_one(name, inst, new)?;
        }
        Ok(())
    }

    /// Starts instance `name` of `config`, following its interfaces. Returns `false` when its
    /// interface does not exist yet or has no address: the instance then shows as Fault and
    /// is tried again every tick (a VLAN or bond made after ha-lb starts, a typo seen in the
    /// log and `ha-lb status`).
    fn start_one(
        &mut self,
        name: &str,
        inst: &config::Instance,
        config: &Config,
    ) -> Result<bool, RuntimeError> {
        self.links.follow(&inst.interface);
        for t in &inst.track_interfaces {
            self.links.follow(&t.interface);
        }
        let group = groups::group_of(config, name);
        let tracked = tracked(inst, group.as_deref());
        let started = instance::start(
            name,
            inst,
            tracked,
            |s| self.track_up(s, name),
            &instance::Context {
                shared: &self.shared,
                events: &self.state_tx,
                announcers: &self.announcers,
                ports: &self.ports,
            },
        );
        let handle = match started {
            Ok(h) => h,
            Err(e) if e.is_interface_not_ready() => {
                let slot = self.slots.entry(name.to_owned()).or_default();
                if !std::mem::replace(&mut slot.rebind, true) {
                    tracing::warn!(instance = name, interface = %inst.interface, error = %e, "waiting in Fault for the interface");
                }
                self.shared
                    .set_instance(shared::waiting(name, inst, &e.to_string()));
                self.groups.leave(config, name, Leave::Fault);
                self.apply_group_commands();
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let slot = self.slots.entry(name.to_owned()).or_default();
        if slot.maintenance {
            handle.send(Command::Maintenance(true));
        }
        slot.running = Some(handle);
        // A member starts held (see instance::start); the group lets it go.
        self.groups.started(config, name);
        self.apply_group_commands();
        Ok(true)
    }

    /// Starts the instances waiting for their interface, and restarts those whose interface
    /// was made again (their socket, VIPs and announcer are bound to the old index). One that
    /// cannot start yet (no such interface, or no address on it yet) stays pending and is
    /// tried again on the next tick.
    pub(super) async fn rebind_instances(&mut self) {
        let pending: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.rebind)
            .map(|(n, _)| n.clone())
            .collect();
        for name in pending {
            // A reload removes the slots of the instances it removes.
            let Some(inst) = self.config.instances.get(&name).cloned() else {
                continue;
            };
            // Checked before the old instance stops, so that a try too early leaves it as it
            // was (in Fault, its link gone).
            let ready = crate::net::Interface::by_name(&inst.interface)
                .map_err(|source| RuntimeError::Instance {
                    instance: name.clone(),
                    source,
                })
                .and_then(|i| router_config::source_address(&name, &inst, &i).map(|_| i.index()));
            let ifindex = match ready {
                Ok(i) => i,
                Err(e) => {
                    tracing::debug!(instance = %name, error = %e, "not yet ready on the re-created interface");
                    continue;
                }
            };
            let Some(slot) = self.slots.get_mut(&name) else {
                continue;
            };
            if let Some(h) = slot.running.take() {
                if h.ifindex == ifindex {
                    slot.running = Some(h);
                    slot.rebind = false;
                    continue;
                }
                // Until it runs again, its group sees it neither Master nor wanting.
                self.groups.leave(&self.config, &name, Leave::Restart);
                self.apply_group_commands();
                h.shutdown().await;
            }
            let config = self.config.clone();
            match self.start_one(&name, &inst, &config) {
                Ok(true) => {
                    tracing::info!(instance = %name, interface = %inst.interface, ifindex, "instance started on its interface");
                    if let Some(slot) = self.slots.get_mut(&name) {
                        slot.rebind = false;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(instance = %name, error = %e, "cannot restart on the re-created interface; trying again")
                }
            }
        }
    }

    /// Tells `/readyz` what runs: every configured instance (one waiting for its interface is
    /// missing) and every listener.
    pub(super) fn publish_readiness(&self) {
        let mut missing = Vec::new();
        for (name, inst) in &self.config.instances {
            if self.slots.get(name).is_none_or(|s| s.running.is_none()) {
                missing.push(format!(
                    "instance {name}: not running (waiting for interface {})",
                    inst.interface
                ));
            }
        }
        let listening = self.shared.balancer().listening();
        for (name, l) in &self.config.listeners {
            if !listening.contains(name) {
                missing.push(format!("listener {name} ({}): not bound", l.listen));
            }
        }
        self.shared.set_readiness(if missing.is_empty() {
            shared::Readiness::Ready {
                instances: self.running().count(),
                listeners: listening.len(),
            }
        } else {
            shared::Readiness::Missing(missing)
        });
    }

    /// Tells every instance the current state of everything it tracks.
    pub(super) fn push_tracks(&self) {
        for handle in self.running() {
            for t in &handle.tracked {
                handle.send(Command::Track {
                    id: t.id,
                    up: self.track_up(&t.source, &handle.name),
                    what: t.source.to_string(),
                });
            }
        }
    }

    /// Sets the backends' state in the balancer from their monitors: those `only` names, or
    /// all. (Setting a backend up also ends its passive-health cool-down, so it is done only
    /// when its own check says so.)
    pub(super) fn push_backend_states(&self, only: Option<&health::MonitorKey>) {
        let mut balancer = self.shared.balancer();
        for (pool_name, pool) in &self.config.pools {
            for b in &pool.backends {
                let key = backend_key(&self.config, b);
                if key.is_some() && (only.is_none() || key.as_ref() == only) {
                    let up = self.health.backend_up(&self.config, b);
                    if let Err(e) = balancer.set_backend_state(pool_name, b.address, up) {
                        tracing::warn!(pool = %pool_name, backend = %b.address, error = %e, "backend state");
                    }
                }
            }
        }
    }

    pub(super) fn health_changed(&mut self, event: &HealthEvent) {
        if !self.health.is_current(event) {
            return;
        }
        tracing::info!(monitor = %event.key, state = %event.state, reason = %event.reason, "health changed");
        self.push_backend_states(Some(&event.key));
        self.push_tracks();
        self.update_anycast();
        self.shared.set_checks(self.health.statuses());
    }

    pub(super) async fn link_changed(&mut self, event: &LinkEvent) {
        // An instance's own link, by index: its socket and VIPs are bound to that one.
        let (ifindex, up) = match event {
            LinkEvent::Changed(s) => (s.ifindex, s.is_usable()),
            LinkEvent::Removed { ifindex } => (*ifindex, false),
        };
        for h in self.running().filter(|h| h.ifindex == ifindex) {
            h.send(Command::InterfaceUp(up));
        }
        if matches!(event, LinkEvent::Removed { .. }) && self.anycast.link_removed(ifindex) {
            self.update_anycast();
        }
        let changes = self.links.apply(event);
        if changes.is_empty() {
            return;
        }
        for c in &changes {
            tracing::info!(interface = %c.name, ifindex = c.ifindex, up = c.up, "link changed");
            if c.up {
                for slot in self.slots.values_mut() {
                    let moved = slot
                        .running
                        .as_ref()
                        .is_some_and(|h| h.config.interface == c.name && h.ifindex != c.ifindex);
                    slot.rebind |= moved;
                }
            }
        }
        self.rebind_instances().await;
        self.push_tracks();
        self.update_anycast();
    }

    /// Graceful stop: every instance sends priority 0 and removes its VIPs (at once, all
    /// together), the anycast routes are withdrawn (their VIPs stay local on `lo` while the
    /// listeners keep accepting for `withdraw_wait_ms`), then the listeners drain up to the
    /// deadline.
    pub(super) async fn stop(&mut self) {
        let withdrawn = tokio::time::Instant::now();
        let wait = self.anycast.withdraw();
        let stops: Vec<_> = std::mem::take(&mut self.slots)
            .into_values()
            .filter_map(|s| s.running)
            .map(|h| tokio::spawn(h.shutdown()))
            .collect();
        for s in stops {
            let _ = s.await;
        }
        if let Err(e) = set_no_accept(&Config::default(), Some(&self.config)) {
            tracing::warn!(error = %e, "the nftables table inet ha_lb stays");
        }
        if let Err(e) = self.shared.balancer().clear_nat() {
            tracing::warn!(error = %e, "the NAT listeners' rules stay");
        }
        // The peer, now Master, holds the flows; ours end with the node.
        self.conntrack.stop().await;
        tokio::time::sleep_until(withdrawn + wait).await;
        let listeners = self.shared.balancer().take_listeners();
        balancer::drain(listeners, self.options.drain_timeout).await;
        self.anycast.finish();
        tracing::info!("stopped");
    }
}
