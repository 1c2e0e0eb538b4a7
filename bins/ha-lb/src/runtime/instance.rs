//! The driver of one VRRP instance: a task that owns a vrrp-core [`Router`], its raw socket and
//! its VIPs. It feeds the router what happens (received adverts, timeouts, tracked objects,
//! link state, shutdown), performs every output the router asks for, drained until empty, and
//! sleeps until `poll_timeout()` or the next event.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vrrp_core::packet::{Auth, Version};
use vrrp_core::{AnnounceConfig, Output, Router, RouterConfig, State, TrackId};

use super::announcers::Announcers;
use super::error::RuntimeError;
use super::notify::{commands_for, state_word, Notifier};
use super::readiness::{register, Owned};
use super::status::{InstanceStatus, Shared};
use super::tracks::{router_tracks, TrackSource, Tracked};
use super::vips::{AnnounceSpacing, Vips};
use crate::config::Instance;
use crate::net::{
    link_state, Addresses, Interface, LinkState, NetError, VrrpSocket, VrrpSocketConfig,
    RECV_BUFFER_LEN,
};

/// How long a stopping instance waits for its queued notify commands.
const NOTIFY_DRAIN: Duration = Duration::from_secs(5);

/// What the runtime tells an instance.
#[derive(Debug)]
pub enum Command {
    /// A tracked object changed (or may have): its new state and why.
    Track(TrackId, bool, String),
    /// The instance's interface went down or came back.
    InterfaceUp(bool),
    /// Its sync group holds it back from Master (`true`) or lets it go (`false`).
    Hold(bool),
    /// Its sync group goes Backup: a Master steps down (priority 0 first); why, for the log.
    StepDown(String),
    /// A reload changed only what applies in place (see [`in_place`]): the new priority and
    /// notify commands.
    Reconfigure(u8, crate::config::Notify),
    /// An operator's maintenance (`ha-lb ctl instance NAME maintenance on|off`): on, a Master
    /// hands over at once (priority 0, as a graceful stop) and the instance stays Backup until
    /// off.
    Maintenance(bool),
    /// Stop: priority 0 if Master, remove the VIPs, run the stop command; answer when done.
    Shutdown(oneshot::Sender<()>),
}

/// A state change, as an instance reports it to the runtime (for sync groups).
#[derive(Debug, Clone)]
pub struct StateEvent {
    /// The instance.
    pub name: String,
    /// Its new state.
    pub state: State,
    /// In Fault for a cause of its own (not because its sync group is).
    pub own_fault: bool,
    /// Its effective priority.
    pub priority: u8,
    /// Held by its sync group, it would otherwise be Master.
    pub wants_master: bool,
    /// The state left and why; `None` when only `wants_master` changed (then `state` and
    /// `own_fault` are not news).
    pub change: Option<(State, vrrp_core::Reason)>,
}

/// A running instance, as the runtime holds it.
#[derive(Debug)]
pub struct InstanceHandle {
    /// The instance name.
    pub name: String,
    /// Its configuration (to tell, on reload, whether it changed).
    pub config: Instance,
    /// Its tracked objects.
    pub tracked: Vec<Tracked>,
    /// The index of its interface.
    pub ifindex: u32,
    tx: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl InstanceHandle {
    /// Sends a command (ignored once the instance has stopped).
    pub fn send(&self, command: Command) {
        let _ = self.tx.send(command);
    }

    /// Stops the instance and waits until it has.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

fn setting(instance: &str, message: String) -> RuntimeError {
    RuntimeError::InstanceSetting {
        instance: instance.to_owned(),
        message,
    }
}

/// The vrrp-core configuration of an instance whose adverts leave from `source`.
///
/// # Errors
///
/// [`RuntimeError::InstanceSetting`] for values vrrp-core cannot take.
pub fn router_config(
    name: &str,
    inst: &Instance,
    source: IpAddr,
    tracks: Vec<vrrp_core::Track>,
) -> Result<RouterConfig, RuntimeError> {
    let vrid =
        u8::try_from(inst.vrid).map_err(|_| setting(name, format!("vrid {} > 255", inst.vrid)))?;
    let version = if inst.version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    let vips = inst.vips.iter().map(|v| v.address).collect();
    let mut c = RouterConfig::new(vrid, version, source, vips);
    c.priority = if inst.address_owner {
        255
    } else {
        u8::try_from(inst.priority)
            .map_err(|_| setting(name, format!("priority {} > 254", inst.priority)))?
    };
    c.advert_interval_cs = u16::try_from((inst.advert_interval_ms / 10).max(1))
        .map_err(|_| setting(name, "advert interval too long".into()))?;
    c.preempt = inst.preempt;
    c.preempt_delay = Duration::from_millis(inst.preempt_delay_ms);
    c.accept_mode = inst.accept_mode;
    if let Some(p) = &inst.password {
        c.auth = Auth::simple(p.as_bytes()).map_err(|e| setting(name, e.to_string()))?;
    }
    c.unicast_peers.clone_from(&inst.unicast_peers);
    c.unicast_min_ttl = inst.unicast_min_ttl;
    c.checksum = inst.checksum_mode();
    let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
    c.announce = AnnounceConfig {
        master_repeat: inst.garp.master_repeat,
        master_delay: ms(inst.garp.master_delay_ms),
        refresh: ms(inst.garp.master_refresh_ms),
        refresh_repeat: inst.garp.master_refresh_repeat,
        lower_prio_repeat: inst.garp.lower_prio_repeat,
        lower_prio_delay: ms(inst.garp.lower_prio_delay_ms),
    };
    c.tracks = tracks;
    Ok(c)
}

/// Whether a reload from `old` to `new` changes only what a running instance takes in place
/// (the priority and the notify commands), so that it keeps its state and VIPs instead of
/// restarting (which hands the VIPs over).
pub fn in_place(old: &Instance, new: &Instance) -> bool {
    let mut o = old.clone();
    o.priority = new.priority;
    o.notify.clone_from(&new.notify);
    o == *new && !new.address_owner
}

/// The address adverts leave from: `unicast_src`, else the interface's primary IPv4 address or
/// its IPv6 link-local address.
///
/// # Errors
///
/// [`RuntimeError::Instance`] when there is none.
pub fn source_address(
    name: &str,
    inst: &Instance,
    iface: &Interface,
) -> Result<IpAddr, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: name.to_owned(),
        source,
    };
    if let Some(src) = inst.unicast_src {
        return Ok(src);
    }
    let ipv6 = inst.is_ipv6();
    Addresses::new()
        .and_then(|mut a| a.vrrp_source(iface.index(), ipv6))
        .map_err(err)?
        .ok_or_else(|| {
            err(NetError::NoSourceAddress {
                ifname: iface.name().to_owned(),
                what: if ipv6 { "IPv6 link-local" } else { "IPv4" },
            })
        })
}

/// Sets an instance up on its interface and starts its driver task; its announcements go
/// through the interface's announcer in `announcers`. Must run within the tokio runtime.
///
/// # Errors
///
/// [`RuntimeError`] when the interface, the socket, the addresses or the router cannot be set
/// up.
pub fn start(
    name: &str,
    inst: &Instance,
    tracked: Vec<Tracked>,
    is_up: impl Fn(&TrackSource) -> bool,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<StateEvent>,
    announcers: &Announcers,
) -> Result<InstanceHandle, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: name.to_owned(),
        source,
    };
    let iface = Interface::by_name(&inst.interface).map_err(err)?;
    let source = source_address(name, inst, &iface)?;
    let socket = VrrpSocket::open(
        &iface,
        &VrrpSocketConfig {
            source,
            join_group: !inst.is_unicast(),
        },
    )
    .map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    let socket = register(socket).map_err(|e| err(NetError::io("register VRRP socket")(e)))?;
    let config = router_config(name, inst, source, router_tracks(&tracked, &is_up))?;
    let mut router = Router::new(config).map_err(|source| RuntimeError::Router {
        instance: name.to_owned(),
        source,
    })?;
    let na_source = match source {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    };
    let spacing = AnnounceSpacing {
        arp: Duration::from_millis(inst.garp.interval_ms),
        na: Duration::from_millis(inst.garp.gna_interval_ms),
    };
    let vips = Vips::new(name, &iface, &inst.vips, na_source, spacing, announcers)?;
    let link = link_state(iface.index()).ok();
    let link_up = link.as_ref().is_some_and(LinkState::is_usable);
    if let Some(mtu) = link.and_then(|l| l.mtu) {
        let len = inst.advert_ip_len();
        if len > mtu as usize {
            return Err(setting(
                name,
                format!(
                    "its advert ({len} bytes with the IP header, for {} VIPs) does not fit the \
                     MTU of {} ({mtu}): peers would never hear it; split the VIPs over several \
                     instances",
                    inst.vips.len(),
                    inst.interface
                ),
            ));
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let group_tracks: Vec<TrackId> = tracked
        .iter()
        .filter(|t| matches!(t.source, TrackSource::SyncGroup(_)))
        .map(|t| t.id)
        .collect();
    if !group_tracks.is_empty() {
        // A sync group member starts held: the group lets it go when the others agree.
        router.set_master_hold(now(), true);
    }
    let driver = Driver {
        group_hold: !group_tracks.is_empty(),
        maintenance: false,
        link_up,
        events,
        group_tracks,
        name: name.to_owned(),
        interface: inst.interface.clone(),
        notify: inst.notify.clone(),
        router,
        socket,
        vips,
        notifier: Notifier::start(name),
        shared,
        reason: "startup".into(),
    };
    tracing::info!(
        instance = name,
        interface = %inst.interface,
        vrid = inst.vrid,
        %source,
        priority = driver.router.effective_priority(),
        "instance starting"
    );
    let task = tokio::spawn(driver.run(rx, link_up));
    Ok(InstanceHandle {
        name: name.to_owned(),
        config: inst.clone(),
        tracked,
        ifindex: iface.index(),
        tx,
        task,
    })
}

enum Event {
    Readable(std::io::Result<()>),
    Timeout,
    Command(Option<Command>),
}

struct Driver {
    /// Held back from Master by its sync group.
    group_hold: bool,
    /// Held back from Master by an operator.
    maintenance: bool,
    /// The interface's last known state (the kernel repeats link messages).
    link_up: bool,
    events: mpsc::UnboundedSender<StateEvent>,
    group_tracks: Vec<TrackId>,
    name: String,
    interface: String,
    notify: crate::config::Notify,
    router: Router,
    socket: AsyncFd<Owned<VrrpSocket>>,
    vips: Vips,
    notifier: Notifier,
    shared: Arc<Shared>,
    reason: String,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The monotonic instant a datagram arrived, from the kernel's real-time stamp: now, less how
/// long ago the stamp is. Without a stamp, or with a real-time clock that stepped back since,
/// it is now; a stamp in the future cannot be later than now. The router never goes back in
/// time whatever this says.
fn arrival(stamp: Option<std::time::SystemTime>) -> std::time::Instant {
    let now = now();
    stamp
        .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
        .and_then(|age| now.checked_sub(age))
        .unwrap_or(now)
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, link_up: bool) {
        if !link_up {
            self.router.set_interface_up(now(), false);
        }
        self.router.handle_startup(now());
        self.drain();
        let mut buf = vec![0u8; RECV_BUFFER_LEN];
        loop {
            let deadline = self.router.poll_timeout().map(Instant::from_std);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            // Adverts first: a timeout and queued adverts both ready (the worker was starved
            // of CPU) must not look like a silent Master.
            let event = tokio::select! {
                biased;
                ready = self.socket.readable() => Event::Readable(ready.map(|mut g| g.clear_ready())),
                () = sleep => Event::Timeout,
                cmd = rx.recv() => Event::Command(cmd),
            };
            match event {
                // Readiness was cleared first, then every queued datagram is read: one that
                // arrives after the last read raises readiness again.
                Event::Readable(Ok(())) => self.receive_all(&mut buf),
                Event::Readable(Err(e)) => {
                    tracing::error!(instance = %self.name, error = %e, "VRRP socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // The timer fired. Adverts that came meanwhile are read first, each at the time
                // it arrived (as keepalived reads ready sockets before expiring timers): a
                // Backup that woke late still hears its Master. The router re-arms periodic
                // timers from their schedule, so wake-up latency does not add up as drift.
                Event::Timeout => {
                    self.receive_all(&mut buf);
                    self.router.handle_timeout(now());
                }
                Event::Command(Some(Command::Track(id, up, why))) => self.track(id, up, &why),
                Event::Command(Some(Command::InterfaceUp(up))) if up == self.link_up => {}
                Event::Command(Some(Command::InterfaceUp(up))) => {
                    self.link_up = up;
                    tracing::info!(instance = %self.name, interface = %self.interface, up, "link state changed");
                    self.reason = format!(
                        "interface {} {}",
                        self.interface,
                        if up { "up" } else { "down" }
                    );
                    self.router.set_interface_up(now(), up);
                }
                Event::Command(Some(Command::Hold(hold))) => {
                    self.group_hold = hold;
                    self.router.set_master_hold(now(), hold || self.maintenance);
                }
                Event::Command(Some(Command::Maintenance(on))) => self.set_maintenance(on),
                Event::Command(Some(Command::StepDown(why))) => {
                    self.reason = why;
                    self.router.handle_step_down(now());
                }
                Event::Command(Some(Command::Reconfigure(priority, notify))) => {
                    self.reconfigure(priority, notify);
                }
                Event::Command(Some(Command::Shutdown(done))) => {
                    self.stop().await;
                    let _ = done.send(());
                    return;
                }
                Event::Command(None) => {
                    self.stop().await;
                    return;
                }
            }
            self.drain();
        }
    }

    /// New priority and notify commands from a reload, without a restart: the state, the
    /// VIPs and the counters stay. A Master advertises a changed priority at once, without
    /// waiting for its advert timer (a lower one lets a peer with preempt take over a
    /// Master_Down_Interval sooner); a Backup with a higher one preempts as the RFC says (the
    /// lower-priority Master's adverts no longer reset its Master_Down_Timer).
    fn reconfigure(&mut self, priority: u8, notify: crate::config::Notify) {
        self.notify = notify;
        let before = self.router.base_priority();
        if before == priority {
            return;
        }
        if let Err(e) = self.router.set_base_priority(now(), priority) {
            tracing::error!(instance = %self.name, error = %e, "reload: priority not changed");
            return;
        }
        tracing::info!(
            instance = %self.name,
            priority_before = before,
            priority = self.router.effective_priority(),
            "reload: priority changed in place"
        );
        self.reason = format!("reload: priority {before} to {priority}");
    }

    /// Maintenance on: held from Master, and a Master steps down now (one priority-0 advert,
    /// VIPs removed); off: the sync group's hold alone, so it becomes Master again if no
    /// other node is.
    fn set_maintenance(&mut self, on: bool) {
        if self.maintenance == on {
            return;
        }
        self.maintenance = on;
        tracing::info!(instance = %self.name, on, state = %self.router.state(), "maintenance");
        self.reason = format!("maintenance {}", if on { "on" } else { "off" });
        self.router.set_master_hold(now(), on || self.group_hold);
        if on {
            self.router.handle_step_down(now());
        }
    }

    fn track(&mut self, id: TrackId, up: bool, why: &str) {
        if self.router.is_tracked_up(id) == Some(up) {
            return;
        }
        let before = self.router.effective_priority();
        if let Err(e) = self.router.set_tracked(now(), id, up) {
            tracing::error!(instance = %self.name, error = %e, "set tracked");
        }
        tracing::info!(
            instance = %self.name,
            tracked = %why,
            up,
            priority_before = before,
            priority = self.router.effective_priority(),
            "tracked object changed"
        );
        self.reason = format!("{why} {}", if up { "up" } else { "down" });
    }

    /// Reads every datagram queued on the socket and hands those of this VRID to the router.
    fn receive_all(&mut self, buf: &mut [u8]) {
        let vrid = self.router.vrid();
        let mut errors = 0u32;
        loop {
            let rx = match self.socket.get_ref().0.recv(buf) {
                Ok(rx) => rx,
                Err(NetError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return;
                }
                // A datagram that does not parse was consumed: read on.
                Err(e @ NetError::Malformed(_)) => {
                    tracing::debug!(instance = %self.name, error = %e, "datagram dropped");
                    continue;
                }
                // A socket error is reported once, then the queue reads on; a bound on them
                // in a row keeps a socket stuck in error from spinning this loop.
                Err(e) => {
                    tracing::debug!(instance = %self.name, error = %e, "VRRP receive");
                    errors += 1;
                    if errors > 8 {
                        return;
                    }
                    continue;
                }
            };
            let Some(bytes) = buf.get(rx.payload.clone()) else {
                continue;
            };
            // Other instances on this interface share the protocol: theirs are not errors.
            if bytes.get(1).is_some_and(|&v| v != vrid) {
                continue;
            }
            let at = arrival(rx.at);
            if rx.truncated {
                tracing::debug!(instance = %self.name, src = %rx.src, "advert longer than the receive buffer dropped");
                self.router.handle_truncated(at);
                continue;
            }
            let received = vrrp_core::Received {
                src: rx.src,
                dst: rx.dst,
                ttl: rx.ttl,
                bytes,
            };
            if let Err(reason) = self.router.handle_packet(at, &received) {
                tracing::trace!(instance = %self.name, src = %rx.src, %reason, "advert dropped");
            }
        }
    }

    /// Performs every output the router has queued.
    fn drain(&mut self) {
        while let Some(output) = self.router.poll_output() {
            match output {
                Output::Transmit(t) => {
                    if let Err(e) = self.socket.get_ref().0.send_to(&t.payload, t.dst) {
                        if e.is_link_gone() {
                            tracing::debug!(instance = %self.name, error = %e, "advert not sent: link down");
                        } else {
                            tracing::warn!(instance = %self.name, dst = %t.dst, error = %e, "advert not sent");
                        }
                    }
                }
                Output::AddAddresses(addrs) => self.vips.add(&addrs),
                Output::RemoveAddresses(addrs) => self.vips.remove(&addrs),
                Output::Announce { addresses, repeat } => self.vips.announce(&addresses, repeat),
                Output::StateChanged { from, to, reason } => self.state_changed(from, to, reason),
                // A want that ended because the router left Backup is reported with that
                // state change, so that the group never sees it neither wanting nor Master.
                Output::WantsMaster(false) if self.router.state() != State::Backup => {}
                Output::WantsMaster(wants) => {
                    if wants {
                        tracing::info!(instance = %self.name, "would be Master, held by its sync group");
                    } else {
                        tracing::info!(instance = %self.name, "no longer wants Master: heard a master");
                    }
                    // Only the want changed: the state and its cause are reported with it
                    // as they are, and the runtime reads only `wants_master`.
                    let _ = self.events.send(StateEvent {
                        name: self.name.clone(),
                        state: self.router.state(),
                        own_fault: false,
                        priority: self.router.effective_priority(),
                        // In maintenance it wants nothing its group should act on.
                        wants_master: wants && !self.maintenance,
                        change: None,
                    });
                }
            }
        }
        self.publish();
    }

    fn state_changed(&mut self, from: State, to: State, reason: vrrp_core::Reason) {
        let why = match reason {
            vrrp_core::Reason::Fault(_)
            | vrrp_core::Reason::FaultCleared
            | vrrp_core::Reason::SteppedDown
                if !self.reason.is_empty() =>
            {
                format!("{reason} ({})", self.reason)
            }
            _ => reason.to_string(),
        };
        tracing::info!(
            instance = %self.name,
            %from,
            %to,
            reason = %why,
            priority = self.router.effective_priority(),
            "VRRP state changed"
        );
        self.reason = why;
        let own_fault = match reason {
            vrrp_core::Reason::Fault(vrrp_core::FaultCause::TrackDown(id)) => {
                !self.group_tracks.contains(&id)
            }
            vrrp_core::Reason::Fault(_) => true,
            _ => false,
        };
        let _ = self.events.send(StateEvent {
            name: self.name.clone(),
            state: to,
            own_fault,
            priority: self.router.effective_priority(),
            wants_master: self.router.wants_master() && !self.maintenance,
            change: Some((from, reason)),
        });
        crate::supervisor::report_held(&self.name, to == State::Master);
        if let Some(word) = state_word(to) {
            self.notifier.queue(commands_for(
                &self.notify,
                "INSTANCE",
                &self.name,
                word,
                self.router.effective_priority(),
            ));
        }
    }

    fn publish(&self) {
        self.shared.set_instance(InstanceStatus {
            name: self.name.clone(),
            interface: self.interface.clone(),
            vrid: self.router.vrid(),
            state: self.router.state().to_string(),
            reason: self.reason.clone(),
            priority: self.router.effective_priority(),
            base_priority: self.router.base_priority(),
            master: self.router.master_address().map(|a| a.to_string()),
            vips: self
                .router
                .virtual_addresses()
                .iter()
                .map(ToString::to_string)
                .collect(),
            sync_held: self.group_hold && self.router.is_master_held(),
            wants_master: self.router.wants_master(),
            maintenance: self.maintenance,
            counters: self.router.stats().clone(),
        });
    }

    async fn stop(mut self) {
        self.reason = "shutdown".into();
        self.router.handle_shutdown(now());
        self.drain();
        // Whatever the state was, none of our VIPs stays behind.
        self.vips.remove_all();
        crate::supervisor::report_held(&self.name, false);
        self.notifier.queue(commands_for(
            &self.notify,
            "INSTANCE",
            &self.name,
            "STOP",
            self.router.effective_priority(),
        ));
        self.shared.remove_instance(&self.name);
        tracing::info!(instance = %self.name, "instance stopped");
        self.notifier.finish(NOTIFY_DRAIN).await;
    }
}
