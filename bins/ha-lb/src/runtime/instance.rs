//! One VRRP instance: its vrrp-core [`Router`] (configured from the TOML instance) and its
//! [`Driver`], which performs what the router asks for (VIPs, announcements, notify commands,
//! status, sync-group events) and turns the runtime's commands into router inputs. Both run in
//! the task of the instance's [port](super::ports), which owns the socket shared by every
//! instance on that interface, family and mode.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use vrrp_core::{Output, Router, State, TrackId};

use super::announcers::Announcers;
use super::error::RuntimeError;
use super::notify::{commands_for, state_word, Notifier};
use super::ports::{Commands, Membership, Ports};
use super::router_config::{self, router_config, source_address};
use super::shared::Shared;
use super::tracks::{router_tracks, TrackSource, Tracked};
use super::vips::{AnnounceSpacing, Vips};
use crate::config::Instance;
use crate::net::{link_state, Interface, LinkState, VrrpSocket};
use crate::status::InstanceStatus;

/// How long a stopping instance waits for its queued notify commands.
const NOTIFY_DRAIN: Duration = Duration::from_secs(5);

/// What the runtime tells an instance.
#[derive(Debug)]
pub enum Command {
    /// A tracked object changed (or may have).
    Track {
        /// Which.
        id: TrackId,
        /// Its state now.
        up: bool,
        /// What it is, for the log (`pool web`, `check api`).
        what: String,
    },
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

/// What an instance reports to the runtime (its sync group follows; the embedding API's
/// state comes from it).
#[derive(Debug, Clone)]
pub enum StateEvent {
    /// It changed state.
    Changed {
        /// The instance.
        name: String,
        /// The state it left.
        from: State,
        /// Its new state.
        to: State,
        /// Why, as vrrp-core says it.
        reason: vrrp_core::Reason,
        /// In Fault for a cause of its own (not because its sync group is).
        own_fault: bool,
        /// Its effective priority.
        priority: u8,
        /// Held by its sync group, it would otherwise be Master.
        wants_master: bool,
        /// Why, as the log and `ha-lb status` say it.
        why: String,
    },
    /// Only its want of Master changed (held by its sync group, it would otherwise be
    /// Master; or no longer).
    WantsMaster {
        /// The instance.
        name: String,
        /// Whether it wants Master now.
        wants_master: bool,
    },
}

impl StateEvent {
    /// The instance it is about.
    pub fn name(&self) -> &str {
        match self {
            StateEvent::Changed { name, .. } | StateEvent::WantsMaster { name, .. } => name,
        }
    }
}

/// What every instance of the node shares: where it reports, and the per-interface announcers
/// and VRRP ports.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The status `/status` and `/metrics` show.
    pub shared: &'a Arc<Shared>,
    /// Where state changes go (for sync groups).
    pub events: &'a mpsc::UnboundedSender<StateEvent>,
    /// GARP / NA senders, one per interface.
    pub announcers: &'a Announcers,
    /// VRRP sockets, one per interface, family and mode.
    pub ports: &'a Ports,
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
    membership: Membership,
}

impl InstanceHandle {
    /// Sends a command (ignored once the instance has stopped).
    pub fn send(&self, command: Command) {
        self.membership.send(command);
    }

    /// A sender of commands to the instance that other tasks can keep.
    pub fn commands(&self) -> Commands {
        self.membership.commands()
    }

    /// Stops the instance and waits until it has.
    pub async fn shutdown(self) {
        self.membership.shutdown().await;
    }
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

/// Sets an instance up on its interface and puts it on the port of that interface, family and
/// mode in `context.ports` (opening the port's socket if it is the first there), which starts
/// it; its announcements go through the interface's announcer. Must run within the tokio
/// runtime.
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
    context: &Context<'_>,
) -> Result<InstanceHandle, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: name.to_owned(),
        source,
    };
    let iface = Interface::by_name(&inst.interface).map_err(err)?;
    let source = source_address(name, inst, &iface)?;
    let vmac = match inst.vmac() {
        Some(vmac_name) => Some(open_vmac(name, inst, &iface, &vmac_name, source)?),
        None => None,
    };
    // Multicast adverts are sent and heard on the VMAC interface: a macvlan in private mode
    // hands a frame whose source is its own MAC (a peer's advert from the same virtual MAC)
    // to the macvlan alone, never to the parent. So such an instance has a port of its own,
    // on its VMAC interface. Unicast adverts come to the parent's MAC: its port's.
    let socket_iface = match &vmac {
        Some(v) if !inst.vmac_xmit_base && !inst.is_unicast() => v.iface.clone(),
        _ => iface.clone(),
    };
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
    let vip_iface = vmac.as_ref().map_or(&iface, |v| &v.iface);
    let vips = Vips::new(
        name,
        vip_iface,
        &inst.vips,
        na_source,
        spacing,
        context.announcers,
    )?;
    let link = link_state(iface.index()).ok();
    let link_up = link.as_ref().is_some_and(LinkState::is_usable);
    if let Some(mtu) = link.and_then(|l| l.mtu) {
        let len = inst.advert_ip_len();
        if len > mtu as usize {
            return Err(RuntimeError::setting(
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
    let group_tracks: Vec<TrackId> = tracked
        .iter()
        .filter(|t| matches!(t.source, TrackSource::SyncGroup(_)))
        .map(|t| t.id)
        .collect();
    let t0 = now();
    if !group_tracks.is_empty() {
        // A sync group member starts held: the group lets it go when the others agree.
        router.set_master_hold(t0, true);
    }
    if !link_up {
        router.set_interface_up(t0, false);
    }
    tracing::info!(
        instance = name,
        interface = %inst.interface,
        vrid = inst.vrid,
        %source,
        priority = router.effective_priority(),
        "instance starting"
    );
    let driver = Driver {
        group_hold: !group_tracks.is_empty(),
        maintenance: false,
        link_up,
        events: context.events.clone(),
        group_tracks,
        name: name.to_owned(),
        interface: inst.interface.clone(),
        notify: inst.notify.clone(),
        vmac,
        vips,
        notifier: Notifier::start(name),
        shared: context.shared.clone(),
        reason: "startup".into(),
        published_master: None,
    };
    let membership = context
        .ports
        .join(&socket_iface, inst.is_unicast(), router, driver)
        .map_err(err)?;
    Ok(InstanceHandle {
        name: name.to_owned(),
        config: inst.clone(),
        tracked,
        ifindex: iface.index(),
        membership,
    })
}

/// One instance's side of its port: what it does with its router's outputs and the runtime's
/// commands (VIPs, announcements, notify commands, status, sync-group events). The router
/// itself sits in the port's demultiplexer.
#[derive(Debug)]
pub struct Driver {
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
    /// The VMAC interface (`use_vmac`), deleted when the instance stops.
    vmac: Option<VmacIface>,
    vips: Vips,
    notifier: Notifier,
    shared: Arc<Shared>,
    reason: String,
    /// The master address `/status` shows (an advert from a new master changes only it and
    /// the counters).
    published_master: Option<IpAddr>,
}

/// An instance's VMAC interface (`use_vmac`).
#[derive(Debug)]
struct VmacIface {
    name: String,
    iface: Interface,
    /// The socket unicast adverts leave from, on the VMAC interface (the instance's port, on
    /// the parent, hears them); `None` for multicast (the port is on the VMAC interface) and
    /// with `vmac_xmit_base`.
    tx: Option<VrrpSocket>,
}

/// Makes the instance's VMAC interface on `parent` (replacing one a crashed run left), gives
/// it the advert source for IPv6 (the parent's link-local address: RFC 5798 wants adverts from
/// a link-local address, and the peers know this one), and for unicast peers opens the socket
/// adverts leave from, unless `vmac_xmit_base`.
fn open_vmac(
    name: &str,
    inst: &Instance,
    parent: &Interface,
    vmac_name: &str,
    source: IpAddr,
) -> Result<VmacIface, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: name.to_owned(),
        source,
    };
    let vrid = router_config::vrid(name, inst)?;
    let mac = crate::net::vmac::virtual_mac(vrid, inst.is_ipv6());
    crate::net::vmac::create(parent.index(), parent.name(), vmac_name, mac).map_err(err)?;
    let iface = Interface::by_name(vmac_name).map_err(err)?;
    if let IpAddr::V6(ll) = source {
        crate::net::Addresses::new()
            .and_then(|mut a| a.add_vip(iface.index(), crate::net::IfAddr::new(IpAddr::V6(ll), 64)))
            .map_err(err)?;
    }
    let tx = if inst.vmac_xmit_base || !inst.is_unicast() {
        None
    } else {
        Some(
            crate::net::VrrpSocket::open(
                &iface,
                &crate::net::VrrpSocketConfig {
                    source,
                    join_group: false,
                },
            )
            .map_err(err)?,
        )
    };
    tracing::info!(
        instance = name,
        vmac = vmac_name,
        mac = %crate::net::vmac::mac_text(&mac),
        parent = %parent.name(),
        xmit_base = inst.vmac_xmit_base,
        "VMAC interface made"
    );
    Ok(VmacIface {
        name: vmac_name.to_owned(),
        iface,
        tx,
    })
}

impl VmacIface {
    /// Deletes the interface (its VIPs go with it).
    fn delete(self, instance: &str) {
        match crate::net::vmac::delete(&self.name) {
            Ok(_) => tracing::info!(instance, vmac = %self.name, "VMAC interface removed"),
            Err(e) => {
                tracing::error!(instance, vmac = %self.name, error = %e, "cannot remove the VMAC interface");
            }
        }
    }
}

pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The two clocks read together: arrival times of a batch of datagrams are worked out
/// against one reading, rather than two clock reads per datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    now: std::time::Instant,
    wall: std::time::SystemTime,
}

impl Clock {
    /// Reads both clocks.
    pub(crate) fn read() -> Self {
        Self {
            now: now(),
            wall: std::time::SystemTime::now(),
        }
    }

    /// The monotonic instant a datagram arrived, from the kernel's real-time stamp: the
    /// reading, less how long before it the stamp is. Without a stamp, with a stamp after the
    /// reading (it came while the batch was read) or with a real-time clock that stepped back
    /// since, it is the reading. The router never goes back in time whatever this says.
    pub(crate) fn arrival(self, stamp: Option<std::time::SystemTime>) -> std::time::Instant {
        stamp
            .and_then(|at| self.wall.duration_since(at).ok())
            .and_then(|age| self.now.checked_sub(age))
            .unwrap_or(self.now)
    }
}

impl Driver {
    /// The instance name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// A command from the runtime, given to the instance's router (Shutdown is the port's).
    /// Whether it may have changed what `/status` shows (a tracked object or the link that
    /// did not change did not).
    pub(crate) fn command(&mut self, router: &mut Router, command: Command) -> bool {
        match command {
            Command::Track { id, up, what } => return self.track(router, id, up, &what),
            Command::InterfaceUp(up) if up == self.link_up => return false,
            Command::InterfaceUp(up) => {
                self.link_up = up;
                tracing::info!(instance = %self.name, interface = %self.interface, up, "link state changed");
                self.reason = format!(
                    "interface {} {}",
                    self.interface,
                    if up { "up" } else { "down" }
                );
                router.set_interface_up(now(), up);
            }
            Command::Hold(hold) => {
                self.group_hold = hold;
                router.set_master_hold(now(), hold || self.maintenance);
            }
            Command::Maintenance(on) => self.set_maintenance(router, on),
            Command::StepDown(why) => {
                self.reason = why;
                router.handle_step_down(now());
            }
            Command::Reconfigure(priority, notify) => {
                self.reconfigure(router, priority, notify);
            }
            Command::Shutdown(done) => {
                let _ = done.send(());
            }
        }
        true
    }

    /// New priority and notify commands from a reload, without a restart: the state, the
    /// VIPs and the counters stay. A changed priority is advertised at once by a Master (a
    /// peer with preempt then takes over if this one is now lower); a Backup raised above the
    /// Master preempts as the RFC says, when it next hears the Master's advert.
    fn reconfigure(&mut self, router: &mut Router, priority: u8, notify: crate::config::Notify) {
        self.notify = notify;
        let before = router.base_priority();
        if before == priority {
            return;
        }
        if let Err(e) = router.set_base_priority(now(), priority) {
            tracing::error!(instance = %self.name, error = %e, "reload: priority not changed");
            return;
        }
        tracing::info!(
            instance = %self.name,
            priority_before = before,
            priority = router.effective_priority(),
            "reload: priority changed in place"
        );
        self.reason = format!("reload: priority {before} to {priority}");
    }

    /// Maintenance on: held from Master, and a Master steps down now (one priority-0 advert,
    /// VIPs removed); off: the sync group's hold alone, so it becomes Master again if no
    /// other node is.
    fn set_maintenance(&mut self, router: &mut Router, on: bool) {
        if self.maintenance == on {
            return;
        }
        self.maintenance = on;
        tracing::info!(instance = %self.name, on, state = %router.state(), "maintenance");
        self.reason = format!("maintenance {}", if on { "on" } else { "off" });
        router.set_master_hold(now(), on || self.group_hold);
        if on {
            router.handle_step_down(now());
        }
    }

    /// Whether the tracked object changed.
    fn track(&mut self, router: &mut Router, id: TrackId, up: bool, why: &str) -> bool {
        if router.is_tracked_up(id) == Some(up) {
            return false;
        }
        let before = router.effective_priority();
        if let Err(e) = router.set_tracked(now(), id, up) {
            tracing::error!(instance = %self.name, error = %e, "set tracked");
        }
        tracing::info!(
            instance = %self.name,
            tracked = %why,
            up,
            priority_before = before,
            priority = router.effective_priority(),
            "tracked object changed"
        );
        self.reason = format!("{why} {}", if up { "up" } else { "down" });
        true
    }

    /// Performs one output of its router; adverts leave through the port's socket.
    pub(crate) fn perform(&mut self, router: &Router, output: Output, socket: &VrrpSocket) {
        match output {
            Output::Transmit(t) => {
                // From the VMAC interface when it has its own sending socket (its MAC is the
                // source), else through the port.
                let sent = match self.vmac.as_ref().and_then(|v| v.tx.as_ref()) {
                    Some(tx) => tx.send_from(&t.payload, t.src, t.dst),
                    None => socket.send_from(&t.payload, t.src, t.dst),
                };
                if let Err(e) = sent {
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
            Output::StateChanged { from, to, reason } => {
                self.state_changed(router, from, to, reason);
            }
            // A want that ended because the router left Backup is reported with that
            // state change, so that the group never sees it neither wanting nor Master.
            Output::WantsMaster(false) if router.state() != State::Backup => {}
            Output::WantsMaster(wants) => {
                if wants {
                    tracing::info!(instance = %self.name, "would be Master, held by its sync group");
                } else {
                    tracing::info!(instance = %self.name, "no longer wants Master: heard a master");
                }
                let _ = self.events.send(StateEvent::WantsMaster {
                    name: self.name.clone(),
                    // In maintenance it wants nothing its group should act on.
                    wants_master: wants && !self.maintenance,
                });
            }
            other => {
                tracing::warn!(instance = %self.name, output = ?other, "router output not performed");
            }
        }
    }

    fn state_changed(
        &mut self,
        router: &Router,
        from: State,
        to: State,
        reason: vrrp_core::Reason,
    ) {
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
            priority = router.effective_priority(),
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
        let _ = self.events.send(StateEvent::Changed {
            name: self.name.clone(),
            from,
            to,
            reason,
            own_fault,
            priority: router.effective_priority(),
            wants_master: router.wants_master() && !self.maintenance,
            why: self.reason.clone(),
        });
        crate::reporting::report_held(&self.name, to == State::Master);
        if let Some(word) = state_word(to) {
            self.notifier.queue(commands_for(
                &self.notify,
                "INSTANCE",
                &self.name,
                word,
                router.effective_priority(),
            ));
        }
    }

    /// Shows the instance's counters in `/status`: only them, unless the master changed too
    /// (then all of it). For adverts sent and heard, which change nothing else.
    pub(crate) fn publish_counters(&mut self, router: &Router) {
        if router.master_address() == self.published_master {
            self.shared.set_counters(&self.name, router.stats());
        } else {
            self.publish(router);
        }
    }

    /// Shows the instance in `/status`.
    pub(crate) fn publish(&mut self, router: &Router) {
        self.published_master = router.master_address();
        self.shared.set_instance(InstanceStatus {
            name: self.name.clone(),
            interface: self.interface.clone(),
            vrid: router.vrid(),
            state: router.state().to_string(),
            reason: self.reason.clone(),
            priority: router.effective_priority(),
            base_priority: router.base_priority(),
            master: router.master_address().map(|a| a.to_string()),
            vips: router
                .virtual_addresses()
                .iter()
                .map(ToString::to_string)
                .collect(),
            sync_held: self.group_hold && router.is_master_held(),
            wants_master: router.wants_master(),
            maintenance: self.maintenance,
            counters: router.stats().clone(),
        });
    }

    /// The instance stops: its router shuts down (priority 0 if Master); the port performs
    /// the outputs, then calls [`finish_stop`](Self::finish_stop).
    pub(crate) fn begin_stop(&mut self, router: &mut Router) {
        self.reason = "shutdown".into();
        router.handle_shutdown(now());
    }

    /// After the last outputs: no VIP stays behind, the stop command runs, and `done` is
    /// answered once the queued notify commands finished (or [`NOTIFY_DRAIN`] passed).
    pub(crate) fn finish_stop(mut self, router: &Router, done: oneshot::Sender<()>) {
        // Whatever the state was, none of our VIPs stays behind.
        self.vips.remove_all();
        if let Some(vmac) = self.vmac.take() {
            vmac.delete(&self.name);
        }
        crate::reporting::report_held(&self.name, false);
        self.notifier.queue(commands_for(
            &self.notify,
            "INSTANCE",
            &self.name,
            "STOP",
            router.effective_priority(),
        ));
        self.shared.remove_instance(&self.name);
        tracing::info!(instance = %self.name, "instance stopped");
        let notifier = self.notifier;
        tokio::spawn(async move {
            notifier.finish(NOTIFY_DRAIN).await;
            let _ = done.send(());
        });
    }

    /// Dropped without a graceful stop (its port closed, or it could not join): its VIPs go.
    pub(crate) fn abandon(mut self) {
        self.vips.remove_all();
        if let Some(vmac) = self.vmac.take() {
            vmac.delete(&self.name);
        }
        crate::reporting::report_held(&self.name, false);
        self.shared.remove_instance(&self.name);
    }
}
