//! What the node is doing now, shared by the runtime (which updates it) and the admin endpoint
//! (which serves it as `/status` JSON and `/metrics`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use serde::{Deserialize, Serialize};

use super::balancer::Balancer;
use super::health::CheckStatus;

/// One VRRP instance now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The instance name.
    pub name: String,
    /// Its interface.
    pub interface: String,
    /// Its VRID.
    pub vrid: u8,
    /// `Initialize`, `Backup`, `Master` or `Fault`.
    pub state: String,
    /// Why it last changed state.
    pub reason: String,
    /// The effective priority (base and tracked weights).
    pub priority: u8,
    /// The configured priority.
    pub base_priority: u8,
    /// The master's address, when known.
    pub master: Option<String>,
    /// The VIPs.
    pub vips: Vec<String>,
    /// Held back from Master by its sync group.
    #[serde(default)]
    pub sync_held: bool,
    /// Would be Master but for its sync group (or maintenance).
    #[serde(default)]
    pub wants_master: bool,
    /// In maintenance (`ha-lb ctl instance NAME maintenance on`): stays Backup.
    #[serde(default)]
    pub maintenance: bool,
    /// vrrp-core's counters (RFC 6527 names).
    pub counters: vrrp_core::Stats,
}

impl InstanceStatus {
    /// An instance that does not run yet because its interface is missing: in Fault, `why`.
    pub fn waiting(name: &str, inst: &crate::config::Instance, why: &str) -> Self {
        let priority = if inst.address_owner {
            255
        } else {
            u8::try_from(inst.priority).unwrap_or(u8::MAX)
        };
        InstanceStatus {
            name: name.to_owned(),
            interface: inst.interface.clone(),
            vrid: u8::try_from(inst.vrid).unwrap_or(0),
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
}

/// One backend now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// Its address.
    pub address: String,
    /// `up`, `down`, `drain` or `maintenance`.
    pub state: String,
    /// Its weight now (the operator's or the file's; less while slow start ramps it up).
    #[serde(default)]
    pub weight: u32,
    /// An operator's change kept until the file changes the backend: `drain`, `disable`,
    /// `weight N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Taken out by passive health.
    pub ejected: bool,
    /// Open connections.
    pub active: u64,
    /// Connections made.
    pub connections: u64,
    /// Failed connects.
    pub connect_errors: u64,
}

/// One pool now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// The pool name.
    pub name: String,
    /// Its backends.
    pub backends: Vec<BackendStatus>,
}

/// One listener now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStatus {
    /// Where it listens.
    pub listen: String,
    /// Its pool.
    pub pool: String,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open.
    pub active: u64,
    /// Failed connects to backends.
    pub connect_errors: u64,
    /// Clients turned away for want of a healthy backend.
    pub no_backend: u64,
    /// Bytes from clients.
    pub bytes_from_clients: u64,
    /// Bytes to clients.
    pub bytes_to_clients: u64,
}

/// One anycast group now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnycastStatus {
    /// The group name.
    pub name: String,
    /// Its dummy interface.
    pub interface: String,
    /// Its VIPs.
    pub vips: Vec<String>,
    /// Whether the VIPs are on the interface (the routes announced).
    pub announced: bool,
    /// Why it is not announced (empty when it is).
    pub reason: String,
}

/// The whole node: the `/status` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// `global.router_id`, or the hostname.
    pub router_id: String,
    /// VRRP instances.
    pub instances: Vec<InstanceStatus>,
    /// Health checks.
    pub checks: Vec<CheckStatus>,
    /// Pools.
    pub pools: Vec<PoolStatus>,
    /// Listeners.
    pub listeners: Vec<ListenerStatus>,
    /// Anycast groups (absent from the documents of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anycast: Vec<AnycastStatus>,
    /// Connection log lines dropped because the log could not keep up.
    #[serde(default)]
    pub connection_log_dropped: u64,
    /// Configuration loads (at start and on SIGHUP).
    #[serde(default)]
    pub reloads: Reloads,
}

/// Configuration loads and their outcome, for `ha_lb_config_reload_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Reloads {
    /// Loads applied (the one at start included).
    pub success: u64,
    /// Loads rejected (the running configuration stayed).
    pub failure: u64,
    /// When the last applied one was, in seconds since the Unix epoch (0: never).
    pub last_success_unix: f64,
}

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
        NodeStatus {
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
            connection_log_dropped: log_dropped,
            reloads: *lock(&self.reloads),
        }
    }
}
