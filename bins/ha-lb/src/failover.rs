//! Failover for your own program: one VRRP virtual router on a real interface, run by the same
//! driver as `ha-lb run` (shared raw socket per interface, VIPs over netlink, gratuitous ARP /
//! unsolicited NA, link following, stale-VIP clean-up), configured in code instead of a file.
//!
//! ```no_run
//! use std::time::Duration;
//! use ha_lb::failover::Failover;
//! use tokio::sync::watch;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Your service's health: false lowers this node's priority by 60.
//! let (healthy, health) = watch::channel(true);
//! let failover = Failover::builder("eth0", 101)
//!     .priority(150)
//!     .vip("192.0.2.200/24".parse()?)
//!     .advert_interval(Duration::from_millis(100))
//!     .track("backends", health, -60)
//!     .spawn()
//!     .await?;
//! let mut state = failover.state();
//! state.changed().await?;
//! println!("now {} ({})", state.borrow().state, state.borrow().reason);
//! healthy.send(false)?; // the peer (priority 100) takes the VIP over
//! failover.shutdown().await; // priority 0 if Master, VIPs removed
//! # Ok(()) }
//! ```
//!
//! Privileges: `CAP_NET_RAW` (the raw VRRP socket, gratuitous ARP / NA) and `CAP_NET_ADMIN`
//! (the VIPs); [`FailoverBuilder::spawn`] says which is missing. It must run within a tokio
//! runtime with the IO and time drivers enabled.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, Instance, Vip};
use crate::runtime::announcers::Announcers;
use crate::runtime::instance::{self, Command, Context, InstanceHandle, StateEvent};
use crate::runtime::ports::Ports;
use crate::runtime::shared::Shared;
use crate::runtime::tracks::{TrackSource, Tracked};
use crate::runtime::{capabilities, vips, RuntimeError};

/// Why a [`Failover`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    /// The settings break a rule `ha-lb check-config` enforces: each problem as
    /// `key: message (hint)`.
    #[error("invalid failover settings: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The process lacks `CAP_NET_RAW` or `CAP_NET_ADMIN`, or the interface, its socket or
    /// its addresses could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The state of the virtual router as the program sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailoverState {
    /// `Initialize` until it starts, then `Backup`, `Master` or `Fault`.
    pub state: vrrp_core::State,
    /// Why it entered that state (as `ha-lb status` says it).
    pub reason: String,
    /// The priority it advertises now.
    pub priority: u8,
}

/// Settings of a [`Failover`]; start with [`Failover::builder`].
#[derive(Debug)]
#[must_use]
pub struct FailoverBuilder {
    instance: Instance,
    name: String,
    tracks: Vec<(String, watch::Receiver<bool>, i16)>,
}

/// One virtual router running on a real interface. Dropping it without
/// [`shutdown`](Self::shutdown) stops it too, without waiting.
#[derive(Debug)]
pub struct Failover {
    handle: Option<InstanceHandle>,
    state: watch::Receiver<FailoverState>,
    tasks: Vec<JoinHandle<()>>,
}

impl Failover {
    /// Settings for virtual router `vrid` (1..=255) on `interface`: VRRPv3, priority 100,
    /// adverts every second, preemption on, multicast; add at least one VIP.
    pub fn builder(interface: &str, vrid: u8) -> FailoverBuilder {
        FailoverBuilder {
            instance: Instance::new(interface, u32::from(vrid)),
            name: format!("{interface}-vrid{vrid}"),
            tracks: Vec::new(),
        }
    }

    /// The state now, and every change from here on (`changed().await`).
    pub fn state(&self) -> watch::Receiver<FailoverState> {
        self.state.clone()
    }

    /// Stops: a Master sends priority 0 (the peer takes over after its Skew_Time) and the VIPs
    /// are removed; returns once done.
    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Failover {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // The instance's port stops it when its handle goes.
    }
}

impl FailoverBuilder {
    /// The name in logs and notify-style messages (default `INTERFACE-vridN`).
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The priority, 1..=254 (default 100); the highest is Master.
    pub fn priority(mut self, priority: u8) -> Self {
        self.instance.priority = u32::from(priority);
        self
    }

    /// Adds a virtual address with its prefix (`"192.0.2.200/24".parse()?`); all of one family.
    pub fn vip(mut self, vip: Vip) -> Self {
        self.instance.vips.push(vip);
        self
    }

    /// The VRRP version, 2 or 3 (default 3).
    pub fn version(mut self, version: u8) -> Self {
        self.instance.version = u32::from(version);
        self
    }

    /// The advert interval (default 1 s): VRRPv3 10 ms..=40.95 s in steps of 10 ms, VRRPv2
    /// whole seconds.
    pub fn advert_interval(mut self, interval: Duration) -> Self {
        self.instance.advert_interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Whether a higher priority takes the VIPs from a Master (default true).
    pub fn preempt(mut self, preempt: bool) -> Self {
        self.instance.preempt = preempt;
        self
    }

    /// Adverts go to these peers instead of the multicast group.
    pub fn unicast_peers(mut self, peers: impl IntoIterator<Item = IpAddr>) -> Self {
        self.instance.unicast_peers = peers.into_iter().collect();
        self
    }

    /// The source address of adverts (default: the interface's primary address of the VIPs'
    /// family, or its IPv6 link-local address).
    pub fn unicast_src(mut self, source: IpAddr) -> Self {
        self.instance.unicast_src = Some(source);
        self
    }

    /// Follows a health signal: while it is `false` the priority moves by `weight`
    /// (-253..=253, keepalived's semantics: negative lowers it while down, positive raises it
    /// while up, 0 puts the router in Fault). `what` names it in logs.
    pub fn track(mut self, what: &str, health: watch::Receiver<bool>, weight: i16) -> Self {
        self.tracks.push((what.to_owned(), health, weight));
        self
    }

    /// The settings as `ha-lb run` would read them from a file.
    fn config(&self) -> Config {
        let mut config = Config::default();
        config
            .instances
            .insert(self.name.clone(), self.instance.clone());
        config
    }

    /// Checks the settings as `ha-lb check-config` does, without starting anything.
    ///
    /// # Errors
    ///
    /// [`FailoverError::Invalid`] with every problem.
    pub fn validate(&self) -> Result<(), FailoverError> {
        let mut problems: Vec<String> = crate::config::validate(&self.config())
            .into_iter()
            .map(|p| format!("{}: {} ({})", p.path, p.message, p.hint))
            .collect();
        for (what, _, weight) in &self.tracks {
            if weight.unsigned_abs() > vrrp_core::MAX_TRACK_WEIGHT.unsigned_abs() {
                problems.push(format!(
                    "track {what}: weight {weight} is outside -253..=253 (keepalived's bounds)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FailoverError::Invalid(problems))
        }
    }

    /// Starts the virtual router in Backup (an earlier run's VIPs left on the interface are
    /// removed first); it becomes Master when the election says so.
    ///
    /// # Errors
    ///
    /// [`FailoverError::Invalid`] for settings `check-config` would refuse;
    /// [`FailoverError::Runtime`] for missing privileges, a missing interface or address, or
    /// a socket that cannot be opened.
    pub async fn spawn(self) -> Result<Failover, FailoverError> {
        self.validate()?;
        capabilities::require_vrrp()?;
        let name = self.name;
        let inst = self.instance;
        let iface = crate::net::Interface::by_name(&inst.interface).map_err(|source| {
            RuntimeError::Instance {
                instance: name.clone(),
                source,
            }
        })?;
        let configured: Vec<IpAddr> = inst.vips.iter().map(|v| v.address).collect();
        for removed in vips::remove_stale(&name, iface.index(), &configured)? {
            tracing::warn!(instance = %name, vip = %removed, "removed a VIP left by an earlier run");
        }
        let tracked: Vec<Tracked> = self
            .tracks
            .iter()
            .zip(1u32..)
            .map(|((what, _, weight), id)| Tracked {
                id: vrrp_core::TrackId(id),
                source: TrackSource::External(what.clone()),
                weight: *weight,
            })
            .collect();
        let initially: Vec<bool> = self.tracks.iter().map(|(_, rx, _)| *rx.borrow()).collect();
        let shared = Arc::new(Shared::default());
        let (events_tx, mut events) = mpsc::unbounded_channel::<StateEvent>();
        let ports = Ports::default();
        let announcers = Announcers::default();
        let handle = instance::start(
            &name,
            &inst,
            tracked.clone(),
            |source| {
                tracked
                    .iter()
                    .zip(&initially)
                    .find(|(t, _)| &t.source == source)
                    .is_none_or(|(_, up)| *up)
            },
            &Context {
                shared: &shared,
                events: &events_tx,
                announcers: &announcers,
                ports: &ports,
            },
        )?;
        let (state_tx, state) = watch::channel(FailoverState {
            state: vrrp_core::State::Initialize,
            reason: "starting".to_owned(),
            priority: 0,
        });
        let mut tasks = Vec::new();
        // State changes, with their reasons.
        tasks.push(tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let StateEvent::Changed {
                    to, why, priority, ..
                } = event
                {
                    let _ = state_tx.send(FailoverState {
                        state: to,
                        reason: why,
                        priority,
                    });
                }
            }
        }));
        // Each health signal becomes the tracked object's state.
        let commands = handle.commands();
        for (t, (what, mut rx, _)) in tracked.iter().zip(self.tracks) {
            let commands = commands.clone();
            let id = t.id;
            tasks.push(tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let up = *rx.borrow_and_update();
                    commands.send(Command::Track {
                        id,
                        up,
                        what: format!("track {what}"),
                    });
                }
            }));
        }
        // The interface's link state.
        let (link_tx, mut links) = mpsc::unbounded_channel();
        crate::runtime::links::watch(link_tx)?;
        let ifindex = iface.index();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = links.recv().await {
                let up = match event {
                    crate::net::LinkEvent::Changed(s) if s.ifindex == ifindex => s.is_usable(),
                    crate::net::LinkEvent::Removed { ifindex: i } if i == ifindex => false,
                    _ => continue,
                };
                commands.send(Command::InterfaceUp(up));
            }
        }));
        // The driver announces its start in the status it publishes; wait for the first
        // state so that `state()` never shows Initialize after spawn returns.
        let mut first = state.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), first.changed()).await;
        Ok(Failover {
            handle: Some(handle),
            state,
            tasks,
        })
    }
}
