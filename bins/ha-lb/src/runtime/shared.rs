//! The live state the runtime updates and the admin endpoint reads: the status document
//! ([`crate::status`]) as it is now, the balancer, readiness and the event loop's heartbeat.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::balancer::Balancer;
use super::router_config;
use crate::status::{
    AnycastStatus, BackendStatus, CheckStatus, InstanceStatus, ListenerStatus, NodeStatus,
    PoolStatus, Reloads,
};

/// The live state the runtime updates and the admin endpoint reads.
#[derive(Debug, Default)]
pub struct Shared {
    router_id: Mutex<String>,
    instances: Mutex<BTreeMap<String, InstanceStatus>>,
    checks: Mutex<Vec<CheckStatus>>,
    anycast: Mutex<Vec<AnycastStatus>>,
    balancer: Mutex<Balancer>,
    /// What `/readyz` reports; `None` until the node has started.
    readiness: Mutex<Option<Readiness>>,
    /// The event loop's end of `/healthz` pings.
    heartbeat: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
    /// Configuration loads, for the reload metrics.
    reloads: Mutex<Reloads>,
}

/// Whether the node is ready to serve (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Everything the configuration names runs; how many instances and listeners.
    Ready {
        /// VRRP instances running.
        instances: usize,
        /// Listeners bound.
        listeners: usize,
    },
    /// Started, but these are not running (one line each, with the reason).
    Missing(Vec<String>),
    /// Stopping after SIGTERM/SIGINT.
    Stopping,
}

/// Why the event loop did not answer a `/healthz` ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    /// The runtime has not started its event loop yet.
    NotStarted,
    /// Pings are queued and not taken: the loop is stuck.
    Busy,
    /// The loop did not answer within the time allowed.
    NoAnswer,
    /// The loop has ended.
    Gone,
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unhealthy::NotStarted => "the event loop has not started",
            Unhealthy::Busy => "the event loop is not taking pings (stuck)",
            Unhealthy::NoAnswer => "the event loop did not answer in time",
            Unhealthy::Gone => "the event loop has ended",
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these cannot leave it inconsistent in a way that matters
    // more than stopping the node would.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Sets the router id shown.
    pub fn set_router_id(&self, id: String) {
        *lock(&self.router_id) = id;
    }

    /// Records an instance's status.
    pub fn set_instance(&self, status: InstanceStatus) {
        lock(&self.instances).insert(status.name.clone(), status);
    }

    /// Replaces only an instance's counters (an advert sent or heard moves nothing else):
    /// no allocation, so the VRRP ports can do it for hundreds of instances a second.
    pub fn set_counters(&self, name: &str, counters: &vrrp_core::Stats) {
        if let Some(status) = lock(&self.instances).get_mut(name) {
            status.counters.clone_from(counters);
        }
    }

    /// Forgets an instance (stopped, or removed by a reload).
    pub fn remove_instance(&self, name: &str) {
        lock(&self.instances).remove(name);
    }

    /// Records every check's state.
    pub fn set_checks(&self, checks: Vec<CheckStatus>) {
        *lock(&self.checks) = checks;
    }

    /// Replaces the anycast groups' states.
    pub fn set_anycast(&self, anycast: Vec<AnycastStatus>) {
        *lock(&self.anycast) = anycast;
    }

    /// The balancer, locked (never across an await).
    pub fn balancer(&self) -> MutexGuard<'_, Balancer> {
        lock(&self.balancer)
    }

    /// Records whether the node is ready (`/readyz`).
    pub fn set_readiness(&self, readiness: Readiness) {
        *lock(&self.readiness) = Some(readiness);
    }

    /// Whether the node is ready; `None` while it starts.
    pub fn readiness(&self) -> Option<Readiness> {
        lock(&self.readiness).clone()
    }

    /// Makes the channel that `/healthz` pings go through; the event loop answers each one on
    /// the receiver.
    pub fn heartbeat_channel(&self) -> mpsc::Receiver<oneshot::Sender<()>> {
        // A few pings may wait while the loop handles a burst; more means it is stuck.
        let (tx, rx) = mpsc::channel(8);
        *lock(&self.heartbeat) = Some(tx);
        rx
    }

    /// Asks the event loop to answer within `timeout` (`/healthz`).
    ///
    /// # Errors
    ///
    /// [`Unhealthy`]: why it did not.
    pub async fn ping(&self, timeout: Duration) -> Result<(), Unhealthy> {
        let tx = lock(&self.heartbeat).clone().ok_or(Unhealthy::NotStarted)?;
        let (reply, answer) = oneshot::channel();
        tx.try_send(reply).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Unhealthy::Busy,
            mpsc::error::TrySendError::Closed(_) => Unhealthy::Gone,
        })?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Unhealthy::Gone),
            Err(_) => Err(Unhealthy::NoAnswer),
        }
    }

    /// Counts a configuration load: applied (`true`) or rejected.
    pub fn count_reload(&self, applied: bool) {
        let mut r = lock(&self.reloads);
        if applied {
            r.success += 1;
            r.last_success_unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
        } else {
            r.failure += 1;
        }
    }

    /// The whole status now.
    pub fn snapshot(&self) -> NodeStatus {
        let balancer = self.balancer();
        let stats = balancer.stats();
        let log_dropped = balancer.connection_log_dropped();
        let nat = balancer.nat_views();
        let mut status = NodeStatus {
            router_id: lock(&self.router_id).clone(),
            instances: lock(&self.instances).values().cloned().collect(),
            checks: lock(&self.checks).clone(),
            anycast: lock(&self.anycast).clone(),
            pools: stats
                .pools
                .iter()
                .map(|p| PoolStatus {
                    name: p.name.clone(),
                    backends: p
                        .backends
                        .iter()
                        .map(|b| BackendStatus {
                            address: b.addr.to_string(),
                            state: b.state.to_string(),
                            weight: b.weight,
                            admin: balancer.admin_note(&p.name, b.addr),
                            ejected: b.ejected,
                            active: b.active,
                            connections: b.connections,
                            connect_errors: b.connect_errors,
                        })
                        .collect(),
                })
                .collect(),
            listeners: stats
                .listeners
                .iter()
                .map(|l| ListenerStatus {
                    listen: l.addr.map(|a| a.to_string()).unwrap_or_default(),
                    pool: l.pool.clone(),
                    accepted: l.accepted,
                    active: l.active,
                    connect_errors: l.connect_errors,
                    no_backend: l.no_backend,
                    bytes_from_clients: l.bytes_from_clients,
                    bytes_to_clients: l.bytes_to_clients,
                })
                .collect(),
            nat: Vec::new(),
            connection_log_dropped: log_dropped,
            reloads: *lock(&self.reloads),
        };
        drop(balancer);
        // The conntrack table is read without the balancer locked.
        status.nat = super::nat::status(nat);
        status
    }
}

/// The status of an instance that does not run yet because its interface is missing: in
/// Fault, `why`.
pub fn waiting(name: &str, inst: &crate::config::Instance, why: &str) -> InstanceStatus {
    // check-config bounds both; the status of a bad one is no reason to fail.
    let priority = router_config::priority(name, inst).unwrap_or(u8::MAX);
    InstanceStatus {
        name: name.to_owned(),
        interface: inst.interface.clone(),
        vrid: router_config::vrid(name, inst).unwrap_or(0),
        state: vrrp_core::State::Fault.to_string(),
        reason: why.to_owned(),
        priority,
        base_priority: priority,
        master: None,
        vips: inst.vips.iter().map(|v| v.address.to_string()).collect(),
        sync_held: false,
        wants_master: false,
        maintenance: false,
        counters: vrrp_core::Stats::default(),
    }
}
