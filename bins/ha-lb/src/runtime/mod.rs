//! `ha-lb run`: everything the configuration names, in one process.
//!
//! - [`instance`]: a VRRP instance (a vrrp-core `Router` and its driver), run by the task of
//!   its [`ports`] entry: one socket and one vrrp-core `Demux` per interface, family and mode;
//! - [`vips`]: its virtual addresses (netlink) and announcements (GARP / NA), through the
//!   [`announcers`] shared per interface;
//! - [`health`]: the health monitors; [`tracks`]: how checks, pools and interfaces move an
//!   instance's priority (keepalived's weights); [`links`]: link state;
//! - [`anycast`]: anycast VIPs on a dummy interface, announced by a routing daemon while
//!   healthy;
//! - [`balancer`]: lb-core listeners on the VIPs and their pools; [`nat`]: listeners in NAT
//!   mode (nftables);
//! - [`notify`]: notify commands, in order per instance;
//! - [`status`]: what `/status` and `/metrics` show;
//! - sync groups: vrrp-core's `SyncGroup` decides (hold, let go, step down), this file
//!   applies its decisions and runs the group's notify;
//! - this file: the node that wires them and handles signals (SIGTERM/SIGINT: graceful stop;
//!   SIGHUP: reload).

pub mod announcers;
pub mod anycast;
pub mod balancer;
pub mod capabilities;
pub mod conn_log;
pub mod conntrack_sync;
pub mod control;
pub mod error;
pub mod health;
pub mod instance;
pub mod links;
pub mod nat;
pub mod notify;
pub mod ports;
pub mod readiness;
pub mod scripts;
pub mod status;
pub mod tracks;
pub mod vips;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

pub use error::RuntimeError;
use health::{backend_key, Health, HealthEvent};
use instance::{Command, InstanceHandle, StateEvent};
use links::Links;
use status::Shared;
use tracks::{tracked, TrackSource};

use vrrp_core::{Decision, Leave, State, StateReport, SyncGroup};

use crate::config::{self, Config};
use crate::net::LinkEvent;

/// How often tracked pools are re-evaluated for passive health (backends taken out by failed
/// connects), which lb-core does not announce.
const PASSIVE_POLL: Duration = Duration::from_millis(200);

/// How `run` behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file (read again on SIGHUP).
    pub config_path: PathBuf,
    /// How long open connections may last after a stop signal before they are cut.
    pub drain_timeout: Duration,
}

/// Reads and validates the configuration file.
///
/// # Errors
///
/// [`RuntimeError::Config`] with every diagnostic.
pub fn load(path: &std::path::Path) -> Result<Config, RuntimeError> {
    config::load(path).map_err(|e| RuntimeError::Config {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The node: what runs, and the current configuration.
struct Node {
    options: Options,
    config: Config,
    shared: Arc<Shared>,
    health: Health,
    links: Links,
    /// Instances whose interface was deleted and made again: they restart on the new one.
    rebind: BTreeSet<String>,
    /// GARP / NA senders, one per interface, shared by its instances.
    announcers: announcers::Announcers,
    /// VRRP sockets, one per interface, family and mode, shared by its instances.
    ports: ports::Ports,
    instances: BTreeMap<String, InstanceHandle>,
    /// Each sync group's rule and its members' view (state, own Fault, want, hold, running).
    sync_groups: BTreeMap<String, SyncGroup<String>>,
    state_tx: mpsc::UnboundedSender<StateEvent>,
    /// Per sync group: its notify queue and the state it last announced.
    groups: BTreeMap<String, (notify::Notifier, Option<&'static str>)>,
    /// The admin endpoint's task.
    admin: Option<tokio::task::JoinHandle<()>>,
    /// The anycast groups.
    anycast: anycast::Anycast,
    /// Where the admin endpoint sends operators' requests.
    control_tx: control::ControlSender,
    /// Instances an operator put in maintenance (kept across reloads while they exist).
    maintenance: BTreeSet<String>,
    /// conntrackd, when `[conntrack_sync]` asks for it.
    conntrack: conntrack_sync::Conntrack,
}

fn router_id(config: &Config) -> String {
    config.global.router_id.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "ha-lb".into())
    })
}

/// Runs until SIGTERM or SIGINT, then stops gracefully. Must run within a tokio runtime.
///
/// # Errors
///
/// [`RuntimeError`] when something the configuration names cannot start; a reload error is
/// logged and the old configuration keeps running.
pub async fn run(options: Options, shared: Arc<Shared>) -> Result<(), RuntimeError> {
    // Signals first: one that comes while starting (a supervisor passing on a reload) is
    // handled once running, instead of killing the process with the default action.
    let mut term = signal(SignalKind::terminate()).map_err(RuntimeError::io("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(RuntimeError::io("SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(RuntimeError::io("SIGHUP handler"))?;
    let config = load(&options.config_path)?;
    if !config.instances.is_empty() {
        capabilities::require_vrrp()?;
    }
    if !config.anycast.is_empty() {
        capabilities::require_net_admin()?;
    }
    scripts::verify(&config).map_err(RuntimeError::Scripts)?;
    scripts::set_global_run_as(config.global.run_as.clone());

    let (health_tx, mut health_rx) = mpsc::unbounded_channel::<HealthEvent>();
    let (link_tx, mut link_rx) = mpsc::unbounded_channel::<LinkEvent>();
    let (state_tx, mut state_rx) = mpsc::unbounded_channel::<StateEvent>();
    let mut heartbeat = shared.heartbeat_channel();
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<control::ControlRequest>();
    shared.set_router_id(router_id(&config));
    shared.balancer().set_connection_log(conn_log::start());
    let mut node = Node {
        options,
        config: Config::default(),
        shared: shared.clone(),
        health: Health::new(health_tx),
        links: Links::default(),
        rebind: BTreeSet::new(),
        announcers: announcers::Announcers::default(),
        ports: ports::Ports::default(),
        instances: BTreeMap::new(),
        sync_groups: BTreeMap::new(),
        state_tx,
        groups: BTreeMap::new(),
        admin: None,
        anycast: anycast::Anycast::default(),
        control_tx,
        maintenance: BTreeSet::new(),
        conntrack: conntrack_sync::Conntrack::default(),
    };
    node.health.apply(&config)?;
    // Before any instance starts: its first transition drives the daemon.
    node.conntrack
        .apply(&config)
        .await
        .map_err(RuntimeError::ConntrackSync)?;
    let retired = node.shared.balancer().apply(&config)?;
    drop(retired);
    if let Some(admin) = &config.admin {
        node.admin =
            Some(crate::admin::serve(admin, shared.clone(), node.control_tx.clone()).await?);
    }
    node.shared.count_reload(true);
    // Always watched, so that a reload adding instances has link state too.
    if let Err(e) = links::watch(link_tx) {
        if !config.instances.is_empty() {
            return Err(e);
        }
        tracing::warn!(error = %e, "no link state: instances added by a reload will not see link changes");
    }
    // VIPs a crashed earlier run left behind go before any instance starts in Backup.
    for (name, inst) in &config.instances {
        remove_stale(name, inst)?;
    }
    // Before any VIP can arrive: a Master without Accept_Mode must not answer on it.
    set_no_accept(&config, None)?;
    node.config = config.clone();
    node.follow_anycast();
    node.anycast.apply(&config)?;
    node.update_anycast();
    node.regroup();
    node.shared.set_checks(node.health.statuses());
    let started = node.start_instances(&config);
    if let Err(e) = started {
        node.stop().await;
        return Err(e);
    }
    // Passive health (failed connects) has no events: look at it a few times a second.
    // systemd's watchdog is fed from this loop, so a hung loop gets the service restarted.
    let mut watchdog = crate::supervisor::watchdog_interval().map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut passive = tokio::time::interval(PASSIVE_POLL);
    passive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        instances = node.instances.len(),
        listeners = node.config.listeners.len(),
        "ha-lb running"
    );
    node.publish_readiness();
    crate::supervisor::report_ready();

    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: stopping");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping");
                break;
            }
            _ = hup.recv() => {
                crate::supervisor::report_reloading();
                node.reload().await;
                node.publish_readiness();
                crate::supervisor::report_ready();
            }
            () = tick(&mut watchdog) => crate::supervisor::report_alive(),
            // /healthz: this loop is alive when it answers.
            Some(reply) = heartbeat.recv() => { let _ = reply.send(()); }
            Some(event) = health_rx.recv() => node.health_changed(&event),
            Some(event) = link_rx.recv() => node.link_changed(&event).await,
            Some(event) = state_rx.recv() => node.state_changed(event),
            Some(request) = control_rx.recv() => node.control(request),
            _ = passive.tick() => {
                node.push_tracks();
                node.update_anycast();
                node.rebind_instances().await;
                node.publish_readiness();
            }
        }
    }
    node.shared.set_readiness(status::Readiness::Stopping);
    crate::sd_notify::notify("STOPPING=1");
    node.stop().await;
    Ok(())
}

/// The next tick of `interval`, or never without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The VIPs a Master must not accept traffic for: those of instances with `accept_mode =
/// false` that do not own them.
fn no_accept_addresses(config: &Config) -> Vec<IpAddr> {
    config
        .instances
        .values()
        .filter(|i| !i.accept_mode && !i.address_owner)
        .flat_map(|i| i.vips.iter().map(|v| v.address))
        .collect()
}

/// Makes the nftables rules drop traffic to the no-accept VIPs of `new`, when they differ
/// from those of `old` (`None`: at start). Without any, the table is only removed once at
/// start, in case a killed earlier run left it (its file may have changed since); a kernel
/// without nf_tables is then no error.
fn set_no_accept(new: &Config, old: Option<&Config>) -> Result<(), RuntimeError> {
    let addresses = no_accept_addresses(new);
    let before = old.map(no_accept_addresses).unwrap_or_default();
    if old.is_none() && addresses.is_empty() {
        if let Err(e) = crate::net::firewall::apply(&[]) {
            tracing::debug!(error = %e, "no leftover nftables table removed");
        }
        return Ok(());
    }
    if old.is_some() && before == addresses {
        return Ok(());
    }
    crate::net::firewall::apply(&addresses).map_err(RuntimeError::AcceptMode)?;
    tracing::info!(vips = ?addresses, "accept_mode = false: a Master drops traffic to these VIPs (nftables table inet ha_lb)");
    Ok(())
}

/// The sync group `instance` belongs to in `config`.
fn group_of_in(config: &Config, instance: &str) -> Option<String> {
    config
        .sync_groups
        .iter()
        .find(|(_, g)| g.instances.iter().any(|m| m == instance))
        .map(|(n, _)| n.clone())
}

fn remove_stale(name: &str, inst: &config::Instance) -> Result<(), RuntimeError> {
    // An interface that does not exist holds no address; its instance waits for it.
    let Ok(iface) = crate::net::Interface::by_name(&inst.interface) else {
        return Ok(());
    };
    // An address owner's VIPs are its real addresses: only ha-lb-tagged ones are stale.
    let configured: Vec<IpAddr> = if inst.address_owner {
        Vec::new()
    } else {
        inst.vips.iter().map(|v| v.address).collect()
    };
    for removed in vips::remove_stale(name, iface.index(), &configured)? {
        tracing::warn!(instance = name, vip = %removed, "removed a VIP left by an earlier run");
    }
    // VMAC interfaces (with the VIPs on them) a crashed run left on this interface, whether
    // this instance still uses one or not.
    let names: Vec<String> = inst.vmac().into_iter().collect();
    let removed = crate::net::vmac::remove_stale(iface.index(), &names).map_err(|source| {
        RuntimeError::Instance {
            instance: name.to_owned(),
            source,
        }
    })?;
    for vmac in removed {
        tracing::warn!(instance = name, %vmac, "removed a VMAC interface left by an earlier run");
    }
    Ok(())
}

impl Node {
    /// Follows the link state of the interfaces the anycast groups track.
    fn follow_anycast(&mut self) {
        for a in self.config.anycast.values() {
            for i in &a.track_interfaces {
                self.links.follow(i);
            }
        }
    }

    /// Announces the healthy anycast groups, withdraws the others.
    fn update_anycast(&mut self) {
        self.anycast.update(anycast::View {
            config: &self.config,
            health: &self.health,
            links: &self.links,
            shared: &self.shared,
        });
        self.shared.set_anycast(self.anycast.statuses());
    }

    /// An operator's request from the admin endpoint.
    fn control(&mut self, request: control::ControlRequest) {
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
                    if on {
                        self.maintenance.insert(instance.clone());
                    } else {
                        self.maintenance.remove(&instance);
                    }
                    if let Some(h) = self.instances.get(&instance) {
                        h.send(Command::Maintenance(on));
                    }
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
            TrackSource::SyncGroup(g) => self
                .sync_groups
                .get(g)
                .is_none_or(|group| group.fault_followed(instance).is_none()),
            // A configuration file names no embedder's signal.
            TrackSource::External(_) => true,
        }
    }

    /// An instance changed state (or its want of Master): its sync group follows, and the
    /// group's notify runs.
    fn state_changed(&mut self, event: StateEvent) {
        if event.change.is_some() {
            self.conntrack.state_changed(&event.name, event.state);
        }
        let Some(group) = group_of_in(&self.config, &event.name) else {
            return;
        };
        let Some(rule) = self.sync_groups.get_mut(&group) else {
            return;
        };
        let Some((from, reason)) = event.change else {
            rule.handle_wants_master(&event.name, event.wants_master);
            self.coordinate(&group);
            return;
        };
        rule.handle_state_changed(
            &event.name,
            StateReport {
                from,
                to: event.state,
                reason,
                wants_master: event.wants_master,
                own_fault: event.own_fault,
            },
        );
        let word = match rule.state() {
            Some(State::Fault) => Some("FAULT"),
            Some(State::Master) => Some("MASTER"),
            Some(State::Backup) => Some("BACKUP"),
            _ => None,
        };
        self.coordinate(&group);
        self.push_tracks();
        let notify = self
            .config
            .sync_groups
            .get(&group)
            .map(|g| g.notify.clone())
            .unwrap_or_default();
        let entry = self
            .groups
            .entry(group.clone())
            .or_insert_with(|| (notify::Notifier::start(&group), None));
        if let Some(w) = word {
            if entry.1 != Some(w) {
                entry.1 = Some(w);
                tracing::info!(sync_group = %group, state = w, "sync group state");
                entry.0.queue(notify::commands_for(
                    &notify,
                    "GROUP",
                    &group,
                    w,
                    event.priority,
                ));
            }
        }
    }

    /// Sends the members of sync group `group` what it decided (see `vrrp_core::SyncGroup`),
    /// logged with the reasons.
    fn coordinate(&mut self, group: &str) {
        let Some(rule) = self.sync_groups.get_mut(group) else {
            return;
        };
        while let Some(d) = rule.poll_decision() {
            match d {
                Decision::StepDown { member, why } => {
                    tracing::info!(sync_group = %group, instance = %member, reason = %why, "sync group: stepping down to Backup");
                    if let Some(h) = self.instances.get(&member) {
                        h.send(Command::StepDown(format!("sync group {group}: {why}")));
                    }
                }
                Decision::Hold { member, held, why } => {
                    if held {
                        tracing::info!(sync_group = %group, instance = %member, reason = %why, "sync group: holding back from Master");
                    } else {
                        tracing::info!(sync_group = %group, instance = %member, reason = %why, "sync group: letting go to Master");
                    }
                    if let Some(h) = self.instances.get(&member) {
                        h.send(Command::Hold(held));
                    }
                }
                other => {
                    tracing::warn!(sync_group = %group, decision = ?other, "sync group decision not applied");
                }
            }
        }
    }

    /// `name` leaves its sync group in the current configuration for a while (see `Leave`).
    fn leave_group(&mut self, name: &str, leave: Leave) {
        let Some(group) = group_of_in(&self.config, name) else {
            return;
        };
        if let Some(rule) = self.sync_groups.get_mut(&group) {
            rule.handle_leave(name, leave);
        }
        self.coordinate(&group);
    }

    /// Makes the sync groups those of the configuration: a group that stays keeps its
    /// members' view (those still in it), a new one starts with none running.
    fn regroup(&mut self) {
        let mut old = std::mem::take(&mut self.sync_groups);
        for (name, g) in &self.config.sync_groups {
            let mut rule = old.remove(name).unwrap_or_else(|| SyncGroup::new([]));
            rule.set_members(g.instances.iter().cloned());
            self.sync_groups.insert(name.clone(), rule);
        }
        let names: Vec<String> = self.sync_groups.keys().cloned().collect();
        for name in names {
            self.coordinate(&name);
        }
    }

    /// Starts the instances of `new` that are not running (a reload has stopped those it must
    /// restart).
    fn start_instances(&mut self, new: &Config) -> Result<(), RuntimeError> {
        for (name, inst) in &new.instances {
            if self.instances.contains_key(name) {
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
        let group = group_of_in(config, name);
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
                if self.rebind.insert(name.to_owned()) {
                    tracing::warn!(instance = name, interface = %inst.interface, error = %e, "waiting in Fault for the interface");
                }
                self.shared.set_instance(status::InstanceStatus::waiting(
                    name,
                    inst,
                    &e.to_string(),
                ));
                self.leave_group(name, Leave::Fault);
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if self.maintenance.contains(name) {
            handle.send(Command::Maintenance(true));
        }
        self.instances.insert(name.to_owned(), handle);
        // A member starts held (see instance::start); the group lets it go.
        if let Some(group) = group {
            if let Some(rule) = self.sync_groups.get_mut(&group) {
                rule.handle_start(name);
            }
            self.coordinate(&group);
        }
        Ok(true)
    }

    /// Starts the instances waiting for their interface, and restarts those whose interface
    /// was made again (their socket, VIPs and announcer are bound to the old index). One that
    /// cannot start yet (no such interface, or no address on it yet) stays pending and is
    /// tried again on the next tick.
    async fn rebind_instances(&mut self) {
        let pending: Vec<String> = self.rebind.iter().cloned().collect();
        for name in pending {
            let Some(inst) = self.config.instances.get(&name).cloned() else {
                // Removed by a reload while it waited.
                self.rebind.remove(&name);
                if !self.instances.contains_key(&name) {
                    self.shared.remove_instance(&name);
                }
                continue;
            };
            // Checked before the old instance stops, so that a try too early leaves it as it
            // was (in Fault, its link gone).
            let ready = crate::net::Interface::by_name(&inst.interface)
                .map_err(|source| RuntimeError::Instance {
                    instance: name.clone(),
                    source,
                })
                .and_then(|i| instance::source_address(&name, &inst, &i).map(|_| i.index()));
            let ifindex = match ready {
                Ok(i) => i,
                Err(e) => {
                    tracing::debug!(instance = %name, error = %e, "not yet ready on the re-created interface");
                    continue;
                }
            };
            if let Some(h) = self.instances.remove(&name) {
                if h.ifindex == ifindex {
                    self.instances.insert(name.clone(), h);
                    self.rebind.remove(&name);
                    continue;
                }
                // Until it runs again, its group sees it neither Master nor wanting.
                self.leave_group(&name, Leave::Restart);
                h.shutdown().await;
            }
            let config = self.config.clone();
            match self.start_one(&name, &inst, &config) {
                Ok(true) => {
                    tracing::info!(instance = %name, interface = %inst.interface, ifindex, "instance started on its interface");
                    self.rebind.remove(&name);
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
    fn publish_readiness(&self) {
        let mut missing = Vec::new();
        for (name, inst) in &self.config.instances {
            if !self.instances.contains_key(name) {
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
            status::Readiness::Ready {
                instances: self.instances.len(),
                listeners: listening.len(),
            }
        } else {
            status::Readiness::Missing(missing)
        });
    }

    /// Tells every instance the current state of everything it tracks.
    fn push_tracks(&self) {
        for handle in self.instances.values() {
            for t in &handle.tracked {
                handle.send(Command::Track(
                    t.id,
                    self.track_up(&t.source, &handle.name),
                    t.source.to_string(),
                ));
            }
        }
    }

    /// Sets the backends' state in the balancer from their monitors: those `only` names, or
    /// all. (Setting a backend up also ends its passive-health cool-down, so it is done only
    /// when its own check says so.)
    fn push_backend_states(&self, only: Option<&health::MonitorKey>) {
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

    fn health_changed(&mut self, event: &HealthEvent) {
        if !self.health.is_current(event) {
            return;
        }
        tracing::info!(monitor = %event.key, state = %event.state, reason = %event.reason, "health changed");
        self.push_backend_states(Some(&event.key));
        self.push_tracks();
        self.update_anycast();
        self.shared.set_checks(self.health.statuses());
    }

    async fn link_changed(&mut self, event: &LinkEvent) {
        // An instance's own link, by index: its socket and VIPs are bound to that one.
        let (ifindex, up) = match event {
            LinkEvent::Changed(s) => (s.ifindex, s.is_usable()),
            LinkEvent::Removed { ifindex } => (*ifindex, false),
        };
        for h in self.instances.values().filter(|h| h.ifindex == ifindex) {
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
                let moved = self
                    .instances
                    .values()
                    .filter(|h| h.config.interface == c.name && h.ifindex != c.ifindex);
                self.rebind.extend(moved.map(|h| h.name.clone()));
            }
        }
        self.rebind_instances().await;
        self.push_tracks();
        self.update_anycast();
    }

    /// SIGHUP: read the file again and apply what changed; on any error the old configuration
    /// keeps running.
    async fn reload(&mut self) {
        tracing::info!(path = %self.options.config_path.display(), "SIGHUP: reloading");
        let new = match load(&self.options.config_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload rejected, the running configuration stays:\n{e}");
                self.shared.count_reload(false);
                return;
            }
        };
        if new == self.config {
            tracing::info!("reload: configuration unchanged");
            self.shared.count_reload(true);
            return;
        }
        if !new.instances.is_empty() {
            if let Err(e) = capabilities::require_vrrp() {
                tracing::error!("reload rejected, the running configuration stays: {e}");
                self.shared.count_reload(false);
                return;
            }
        }
        if !new.anycast.is_empty() {
            if let Err(e) = capabilities::require_net_admin() {
                tracing::error!("reload rejected, the running configuration stays: {e}");
                self.shared.count_reload(false);
                return;
            }
        }
        if let Err(e) = scripts::verify(&new) {
            tracing::error!("reload rejected, the running configuration stays: {e}");
            self.shared.count_reload(false);
            return;
        }
        if let Err(e) = set_no_accept(&new, Some(&self.config)) {
            tracing::error!(error = %e, "reload rejected, the running configuration stays");
            self.shared.count_reload(false);
            return;
        }
        let retired = match self.shared.balancer().apply(&new) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reload rejected (balancer), the running configuration stays");
                self.shared.count_reload(false);
                return;
            }
        };
        self.shared.count_reload(true);
        scripts::set_global_run_as(new.global.run_as.clone());
        self.maintenance
            .retain(|name| new.instances.contains_key(name));
        if let Err(e) = self.health.apply(&new) {
            tracing::error!(error = %e, "reload: health checks not changed");
        }
        let old = std::mem::replace(&mut self.config, new.clone());
        if old.admin != new.admin {
            if let Some(task) = self.admin.take() {
                // Gone before the new one binds the same port.
                task.abort();
                let _ = task.await;
            }
            if let Some(admin) = &new.admin {
                match crate::admin::serve(admin, self.shared.clone(), self.control_tx.clone()).await
                {
                    Ok(task) => self.admin = Some(task),
                    Err(e) => tracing::error!(error = %e, "reload: admin endpoint not started"),
                }
            }
        }
        tokio::spawn(balancer::drain(retired, self.options.drain_timeout));
        // Instances removed or changed stop (priority 0, VIPs removed); unchanged ones keep
        // their state and VIPs, and so do those whose change applies in place (priority,
        // notify commands).
        let mut changed = Vec::new();
        for (name, h) in &mut self.instances {
            let regrouped = group_of_in(&new, name) != group_of_in(&old, name);
            match new.instances.get(name) {
                Some(n) if *n == h.config && !regrouped => {}
                Some(n) if instance::in_place(&h.config, n) && !regrouped => {
                    tracing::info!(instance = %name, "reload: priority / notify changed, applied in place");
                    h.send(Command::Reconfigure(
                        u8::try_from(n.priority).unwrap_or(u8::MAX),
                        n.notify.clone(),
                    ));
                    h.config = n.clone();
                }
                _ => changed.push(name.clone()),
            }
        }
        // They leave their groups first, all of them, so that only the members that stay are
        // stepped down with them (see `Leave::Reload`).
        for name in &changed {
            if let Some(group) = group_of_in(&old, name) {
                if let Some(rule) = self.sync_groups.get_mut(&group) {
                    rule.handle_leave(name.as_str(), Leave::Reload);
                }
            }
        }
        let groups: Vec<String> = self.sync_groups.keys().cloned().collect();
        for group in groups {
            self.coordinate(&group);
        }
        for name in changed {
            if let Some(h) = self.instances.remove(&name) {
                tracing::info!(instance = %name, "reload: instance changed or removed, restarting it");
                h.shutdown().await;
            }
        }
        self.regroup();
        if let Err(e) = self.start_instances(&new) {
            tracing::error!(error = %e, "reload: an instance could not start");
        }
        self.push_backend_states(None);
        self.push_tracks();
        self.follow_anycast();
        if let Err(e) = self.anycast.apply(&new) {
            tracing::error!(error = %e, "reload: an anycast group could not start");
        }
        self.update_anycast();
        self.shared.set_checks(self.health.statuses());
        self.shared.set_router_id(router_id(&new));
        if let Err(e) = self.conntrack.apply(&new).await {
            tracing::error!(error = %e, "reload: conntrack sync not running");
        }
        tracing::info!("reload done");
    }

    /// Graceful stop: every instance sends priority 0 and removes its VIPs (at once, all
    /// together), the anycast routes are withdrawn (their VIPs stay local on `lo` while the
    /// listeners keep accepting for `withdraw_wait_ms`), then the listeners drain up to the
    /// deadline.
    async fn stop(&mut self) {
        let withdrawn = tokio::time::Instant::now();
        let wait = self.anycast.withdraw();
        let instances = std::mem::take(&mut self.instances);
        let stops: Vec<_> = instances
            .into_values()
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
