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
//! - [`groups`]: sync groups (vrrp-core's `SyncGroup` decides: hold, let go, step down);
//! - [`router_config`]: the one adapter from the configuration to vrrp-core;
//! - [`shared`]: the live state the admin endpoint reads (the status document, readiness);
//! - [`node`]: what runs and what each event does to it; [`reload`]: SIGHUP;
//! - this file: the wiring and the event loop (SIGTERM/SIGINT: graceful stop; SIGHUP:
//!   reload).

pub mod announcers;
pub mod anycast;
pub mod balancer;
pub mod capabilities;
pub mod conn_log;
pub mod conntrack_sync;
pub mod control;
pub mod error;
pub mod groups;
pub mod health;
pub mod instance;
pub mod links;
pub mod nat;
pub mod node;
pub mod notify;
pub mod ports;
pub mod readiness;
mod reload;
pub mod router_config;
pub mod scripts;
pub mod shared;
pub mod tracks;
pub mod vips;
pub mod vrrp_thread;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::RuntimeError;
use groups::Groups;
use health::{Health, HealthEvent};
use instance::StateEvent;
use links::Links;
use node::Node;
use shared::Shared;

use crate::config::{self, Config};
use crate::net::LinkEvent;

/// How often tracked pools are re-evaluated for passive health (backends taken out by failed
/// connects), which lb-core does not announce.
const PASSIVE_POLL: Duration = Duration::from_millis(200);

/// Starts the admin endpoint of `[admin]`: binds it and serves the node's state in a task
/// (aborting the handle stops it), sending operators' requests to the control channel. The
/// command line passes the admin module's; the runtime calls it at start and when a reload
/// changes `[admin]`, so it does not depend on the endpoint that reads it.
pub type AdminServer =
    fn(
        config::Admin,
        Arc<Shared>,
        control::ControlSender,
    ) -> Pin<Box<dyn Future<Output = Result<JoinHandle<()>, RuntimeError>> + Send>>;

/// How `run` behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file (read again on SIGHUP).
    pub config_path: PathBuf,
    /// How long open connections may last after a stop signal before they are cut.
    pub drain_timeout: Duration,
    /// Serves `[admin]`.
    pub admin: AdminServer,
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
        slots: BTreeMap::new(),
        announcers: announcers::Announcers::default(),
        ports: ports::Ports::dedicated(),
        state_tx,
        groups: Groups::default(),
        admin: None,
        anycast: anycast::Anycast::default(),
        control_tx,
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
        node.admin = Some(
            (node.options.admin)(admin.clone(), shared.clone(), node.control_tx.clone()).await?,
        );
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
    node.groups.regroup(&config);
    node.apply_group_commands();
    node.shared.set_checks(node.health.statuses());
    let started = node.start_instances(&config);
    if let Err(e) = started {
        node.stop().await;
        return Err(e);
    }
    // Passive health (failed connects) has no events: look at it a few times a second.
    // systemd's watchdog is fed from this loop, so a hung loop gets the service restarted.
    let mut watchdog = crate::reporting::watchdog_interval().map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut passive = tokio::time::interval(PASSIVE_POLL);
    passive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        instances = node.running().count(),
        listeners = node.config.listeners.len(),
        "ha-lb running"
    );
    node.publish_readiness();
    crate::reporting::report_ready();

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
                crate::reporting::report_reloading();
                node.reload().await;
                node.publish_readiness();
                crate::reporting::report_ready();
            }
            () = tick(&mut watchdog) => crate::reporting::report_alive(),
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
    node.shared.set_readiness(shared::Readiness::Stopping);
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
