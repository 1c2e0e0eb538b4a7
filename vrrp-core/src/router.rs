//! The [`Router`]: one virtual router's state machine, RFC 5798 §6.4 plus keepalived's
//! extensions, driven by inputs and drained for outputs.

use core::net::IpAddr;
use std::collections::VecDeque;
use std::time::Instant;

use crate::config::{validate_priority, ConfigError, RouterConfig, PRIORITY_OWNER, PRIORITY_STOP};
use crate::io::{DropReason, Output, Received, Transmit};
use crate::packet::{
    AddressList, Advertisement, Auth, Family, IpContext, OwnedAddressList, Packet, PacketError,
    Version, TTL,
};
use crate::state::{FaultCause, Reason, State};
use crate::stats::{ProtoErrReason, Stats};
use crate::timers::{centis, master_down_interval, next_period, skew_time, Timer, Timers};
use crate::track::{TrackId, Tracking};

/// One virtual router: a VRID and an address family on one interface.
///
/// Sans-IO: it never reads a clock or touches a socket. The driver feeds it inputs with the
/// current time (`handle_*`), then drains [`poll_output`](Self::poll_output) until `None`, and
/// calls [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout)'s
/// deadline passes. Every input first runs the timers already due, so a late driver still sees
/// events in order; a timeout with nothing due does nothing.
///
/// ```
/// use std::time::{Duration, Instant};
/// use vrrp_core::{Output, Router, RouterConfig, State, packet::Version};
///
/// let config = RouterConfig::new(
///     101,
///     Version::V3,
///     "192.0.2.1".parse()?,
///     vec!["192.0.2.100".parse()?],
/// );
/// let mut router = Router::new(config)?;
/// let t0 = Instant::now();
/// router.handle_startup(t0);
/// assert_eq!(router.state(), State::Backup);
/// // Nobody advertises: after Master_Down_Interval (3.609375 s at priority 100) it takes over.
/// let deadline = router.poll_timeout().unwrap();
/// assert_eq!(deadline - t0, Duration::from_micros(3_609_375));
/// router.handle_timeout(deadline);
/// assert_eq!(router.state(), State::Master);
/// while let Some(output) = router.poll_output() {
///     match output {
///         Output::Transmit(t) => { /* send t.payload from t.src to t.dst, TTL t.ttl */ }
///         Output::AddAddresses(a) => { /* ip addr add ... */ }
///         _ => {}
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Router {
    config: RouterConfig,
    vips: OwnedAddressList,
    multicast: bool,
    state: State,
    started: bool,
    interface_up: bool,
    tracking: Tracking,
    /// Master_Adver_Interval, learned from the master's adverts (VRRPv3).
    master_adver_interval_cs: u16,
    /// The primary address of the master, as far as this router knows.
    master: Option<IpAddr>,
    /// A Backup ignored a lower-priority master since it last reset Master_Down_Timer: if the
    /// timer expires, it preempted rather than found the master gone.
    ignored_lower: bool,
    timers: Timers,
    /// How many announcements the pending delayed burst (`timers.garp_delay`) sends: the
    /// second burst after becoming Master, or after hearing a lower priority.
    delayed_repeat: u32,
    /// When the last burst for a lower-priority advert went out (one per advert interval).
    lower_prio_announced: Option<Instant>,
    /// Set by the driver (a sync group): do not become Master, only say so.
    master_hold: bool,
    /// Held, it would have become Master, for this reason.
    wanted_master: Option<Reason>,
    last_now: Option<Instant>,
    outputs: VecDeque<Output>,
    stats: Stats,
}

impl Router {
    /// A router in [`State::Initialize`]; [`handle_startup`](Self::handle_startup) starts it.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`RouterConfig::validate`].
    pub fn new(config: RouterConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let family = config.family();
        let vips = AddressList::encode(family, &config.virtual_addresses)
            .map_err(|_| ConfigError::TooManyVirtualAddresses(config.virtual_addresses.len()))?;
        Ok(Router {
            vips,
            multicast: config.unicast_peers.is_empty(),
            state: State::Initialize,
            started: false,
            interface_up: true,
            tracking: Tracking::new(config.priority, config.tracks.clone()),
            master_adver_interval_cs: config.advert_interval_cs,
            master: None,
            ignored_lower: false,
            timers: Timers::default(),
            delayed_repeat: 0,
            lower_prio_announced: None,
            master_hold: false,
            wanted_master: None,
            last_now: None,
            outputs: VecDeque::new(),
            stats: Stats::default(),
            config,
        })
    }

    // ---- accessors ----

    /// The configuration it runs with (the priority field is the configured one; see
    /// [`base_priority`](Self::base_priority) for the current one).
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The VRID.
    pub fn vrid(&self) -> u8 {
        self.config.vrid
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.config.family()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The priority it advertises: the base priority moved by tracked objects, 1..=254, or 255
    /// for the owner.
    pub fn effective_priority(&self) -> u8 {
        self.tracking.effective()
    }

    /// The base priority, before tracking.
    pub fn base_priority(&self) -> u8 {
        self.tracking.base()
    }

    /// Whether a tracked object is up; `None` when it is not configured.
    pub fn is_tracked_up(&self, id: TrackId) -> Option<bool> {
        self.tracking.is_up(id)
    }

    /// Master_Adver_Interval in centiseconds: learned from the master (VRRPv3), else ours.
    pub fn master_adver_interval_cs(&self) -> u16 {
        self.master_adver_interval_cs
    }

    /// Skew_Time at the current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> core::time::Duration {
        skew_time(
            self.config.version,
            self.effective_priority(),
            self.master_adver_interval_cs,
        )
    }

    /// Master_Down_Interval at the current priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> core::time::Duration {
        master_down_interval(
            self.config.version,
            self.effective_priority(),
            self.master_adver_interval_cs,
        )
    }

    /// The primary address of the current master, if known (ours when Master).
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master
    }

    /// Accept_Mode: whether the driver should accept packets addressed to the virtual
    /// addresses while Master. Always true for the owner (RFC 5798 §6.1).
    pub fn accept_mode(&self) -> bool {
        self.config.accept_mode || self.effective_priority() == PRIORITY_OWNER
    }

    /// Whether [`set_master_hold`](Self::set_master_hold) holds it back from Master.
    pub fn is_master_held(&self) -> bool {
        self.master_hold
    }

    /// Whether it is a held Backup that would otherwise be Master: its Master_Down_Timer (or
    /// `preempt_delay`) ran out, or it is the address owner. Announced by
    /// [`Output::WantsMaster`] each time it changes.
    pub fn wants_master(&self) -> bool {
        self.wanted_master.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The virtual addresses.
    pub fn virtual_addresses(&self) -> &[IpAddr] {
        &self.config.virtual_addresses
    }

    // ---- outputs ----

    /// The next action for the driver; call until `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Whether [`poll_output`](Self::poll_output) has something to give.
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due; never before the latest `now`
    /// given to the router. `None` when no timer runs (Initialize, Fault).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- inputs ----

    /// The Startup event (RFC 5798 §6.4.1): the owner becomes Master, any other router Backup;
    /// straight to Fault if the interface is down or a weight-0 tracked object is down.
    /// A router already started ignores it.
    pub fn handle_startup(&mut self, now: Instant) {
        let now = self.advance(now);
        if self.started {
            return;
        }
        self.started = true;
        match self.fault_cause() {
            Some(cause) => self.transition(State::Fault, Reason::Fault(cause)),
            None => self.start(now, Reason::Startup),
        }
    }

    /// The Shutdown event: a Master sends priority 0 and removes its addresses; any router goes
    /// back to Initialize. [`handle_startup`](Self::handle_startup) starts it again.
    pub fn handle_shutdown(&mut self, now: Instant) {
        let _ = self.advance(now);
        if !self.started {
            return;
        }
        self.started = false;
        self.leave(State::Initialize, Reason::Shutdown);
    }

    /// Runs the timers due at `now`. Spurious or early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.advance(now);
    }

    /// A received VRRP packet (RFC 5798 §7.1 validation, then §6.4.2 / §6.4.3).
    ///
    /// # Errors
    ///
    /// Why the packet was dropped; it is also counted in [`stats`](Self::stats). The driver
    /// may log it; nothing else is needed.
    pub fn handle_packet(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        let now = self.advance(now);
        let result = self.receive(now, rx);
        if let Err(e) = &result {
            self.count_drop(e);
        }
        result
    }

    /// A datagram for this router that the driver could only read cut short (its buffer was
    /// smaller than the datagram): it is not decoded, only counted as a packet length error.
    /// A buffer of [`packet::MAX_PACKET_LEN`](crate::packet::MAX_PACKET_LEN) plus the IP
    /// header never cuts a legal advert.
    pub fn handle_truncated(&mut self, now: Instant) {
        let _ = self.advance(now);
        self.stats.packet_length_errors += 1;
    }

    /// A tracked object went up or down.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownTrack`] when `id` is not configured; nothing changes.
    pub fn set_tracked(&mut self, now: Instant, id: TrackId, up: bool) -> Result<(), ConfigError> {
        let now = self.advance(now);
        let before = self.effective_priority();
        self.tracking
            .set(id, up)
            .ok_or(ConfigError::UnknownTrack(id))?;
        self.after_priority_change(now, before);
        Ok(())
    }

    /// Changes the base priority at run time (1..=255).
    ///
    /// # Errors
    ///
    /// [`ConfigError::PriorityZero`]; nothing changes.
    pub fn set_base_priority(&mut self, now: Instant, priority: u8) -> Result<(), ConfigError> {
        let now = self.advance(now);
        validate_priority(priority)?;
        let before = self.effective_priority();
        self.tracking.set_base(priority);
        self.after_priority_change(now, before);
        Ok(())
    }

    /// The interface went up or down: down means Fault.
    pub fn set_interface_up(&mut self, now: Instant, up: bool) {
        let now = self.advance(now);
        if self.interface_up == up {
            return;
        }
        self.interface_up = up;
        self.update_fault(now);
    }

    /// Holds it back from Master (`hold`), or lets it go, for a sync group that moves its
    /// members together: a member becomes Master only when all of them would.
    ///
    /// While held, a Backup whose Master_Down_Timer or `preempt_delay` runs out, and the
    /// address owner when it starts (it enters Backup instead of Master), stays in Backup and
    /// wants Master: [`wants_master`](Self::wants_master) is true and [`Output::WantsMaster`]
    /// says so. No timer is left running for it, so [`poll_timeout`](Self::poll_timeout)
    /// does not come back at once. An advert that resets Master_Down_Timer (a master it
    /// accepts) ends the want and restarts the timer as usual; a priority-0 advert does not.
    /// Letting a wanting router go makes it Master at once, as if its timer ran out now (an
    /// advert and the announcements). The hold does not touch a Master: see
    /// [`handle_step_down`](Self::handle_step_down). It outlasts Shutdown and Fault.
    ///
    /// ```
    /// use std::time::Instant;
    /// use vrrp_core::{Output, Router, RouterConfig, State, packet::Version};
    ///
    /// let config = RouterConfig::new(7, Version::V3, "192.0.2.1".parse()?, vec!["192.0.2.100".parse()?]);
    /// let mut router = Router::new(config)?;
    /// let t0 = Instant::now();
    /// router.set_master_hold(t0, true);
    /// router.handle_startup(t0);
    /// // Nobody advertises: Master_Down_Timer runs out, but the router only wants Master.
    /// let deadline = router.poll_timeout().unwrap();
    /// router.handle_timeout(deadline);
    /// assert_eq!(router.state(), State::Backup);
    /// assert!(router.wants_master());
    /// assert_eq!(router.poll_timeout(), None);
    /// assert!(std::iter::from_fn(|| router.poll_output()).any(|o| o == Output::WantsMaster(true)));
    /// // The rest of its group wants Master too: let it go.
    /// router.set_master_hold(deadline, false);
    /// assert_eq!(router.state(), State::Master);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_master_hold(&mut self, now: Instant, hold: bool) {
        let now = self.advance(now);
        self.master_hold = hold;
        if !hold {
            if let Some(reason) = self.wanted_master {
                self.become_master(now, reason);
            }
        }
    }

    /// Steps a Master down to Backup because its sync group goes Backup (another member lost
    /// its election); nothing in another state.
    ///
    /// It leaves as if it heard a better master, but first sends one priority-0 advert: the
    /// peer that should take over then does so after its Skew_Time, instead of waiting out
    /// Master_Down_Interval (no master can be heard, as none advertises yet). It removes the
    /// addresses, and waits as a Backup with a fresh Master_Down_Timer, so that if no peer
    /// takes over it becomes Master again (or wants to, if held). Counted in
    /// [`Stats::step_downs`].
    ///
    /// The timer runs Master_Down_Interval plus a back-off of less than one advert interval,
    /// drawn from the primary address and the step-down count: two nodes whose groups stepped
    /// each other down (each won one member and lost the other: crossed priorities) then do not
    /// both come back at the same instant, over and over; the first back wins both.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use vrrp_core::{Output, Reason, Router, RouterConfig, State, packet::Version};
    ///
    /// let config = RouterConfig::new(7, Version::V3, "192.0.2.1".parse()?, vec!["192.0.2.100".parse()?]);
    /// let mut router = Router::new(config)?;
    /// let t0 = Instant::now();
    /// router.handle_startup(t0);
    /// let t1 = router.poll_timeout().unwrap();
    /// router.handle_timeout(t1);
    /// assert_eq!(router.state(), State::Master);
    /// while router.poll_output().is_some() {}
    ///
    /// router.handle_step_down(t1);
    /// let outputs: Vec<Output> = std::iter::from_fn(|| router.poll_output()).collect();
    /// assert_eq!(router.state(), State::Backup);
    /// assert!(outputs.contains(&Output::StateChanged {
    ///     from: State::Master,
    ///     to: State::Backup,
    ///     reason: Reason::SteppedDown,
    /// }));
    /// assert!(outputs.iter().any(|o| matches!(o, Output::Transmit(t) if t.priority == 0)));
    /// let wait = router.poll_timeout().unwrap() - t1;
    /// assert!(wait >= router.master_down_interval());
    /// assert!(wait < router.master_down_interval() + Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_step_down(&mut self, now: Instant) {
        let now = self.advance(now);
        if self.state != State::Master {
            return;
        }
        self.stats.step_downs += 1;
        self.timers.clear();
        self.ignored_lower = false;
        self.master = None;
        self.master_adver_interval_cs = self.config.advert_interval_cs;
        self.transition(State::Backup, Reason::SteppedDown);
        self.send_advert(PRIORITY_STOP);
        self.outputs.push_back(Output::RemoveAddresses(
            self.config.virtual_addresses.clone(),
        ));
        let backoff = step_down_backoff(
            &self.config.primary_address,
            self.stats.step_downs,
            centis(self.master_adver_interval_cs),
        );
        self.timers.master_down = Some(now + self.master_down_interval() + backoff);
    }

    // ---- internals ----

    /// Makes time monotonic and runs the timers due.
    fn advance(&mut self, now: Instant) -> Instant {
        let now = match self.last_now {
            Some(last) if last > now => last,
            _ => now,
        };
        self.last_now = Some(now);
        while let Some((timer, due)) = self.timers.take_due(now) {
            self.on_timer(now, timer, due);
        }
        now
    }

    fn on_timer(&mut self, now: Instant, timer: Timer, due: Instant) {
        match (timer, self.state) {
            (Timer::MasterDown, State::Backup) => {
                let reason = if self.ignored_lower {
                    Reason::Preempted
                } else {
                    Reason::MasterNoResponse
                };
                self.become_master_unless_held(now, reason);
            }
            (Timer::Preempt, State::Backup) => {
                self.become_master_unless_held(now, Reason::Preempted);
            }
            (Timer::Adver, State::Master) => {
                self.send_advert(self.effective_priority());
                self.timers.adver = Some(next_period(
                    due,
                    now,
                    centis(self.config.advert_interval_cs),
                ));
            }
            (Timer::GarpLowerPrio, State::Master) => self.lower_prio_burst(now),
            (Timer::GarpDelay, State::Master) => {
                self.announce(self.delayed_repeat);
            }
            (Timer::GarpRefresh, State::Master) => {
                self.announce(self.config.announce.refresh_repeat);
                self.timers.garp_refresh = self
                    .config
                    .announce
                    .refresh
                    .filter(|d| !d.is_zero())
                    .map(|d| next_period(due, now, d));
            }
            // A timer of a state already left: timers are cleared on transitions, so this
            // does not happen; ignoring it is the safe answer anyway.
            _ => {}
        }
    }

    fn fault_cause(&self) -> Option<FaultCause> {
        if !self.interface_up {
            return Some(FaultCause::InterfaceDown);
        }
        self.tracking.fault().map(FaultCause::TrackDown)
    }

    /// Enters Fault, or leaves it, as the causes say.
    fn update_fault(&mut self, now: Instant) {
        if !self.started {
            return;
        }
        match (self.fault_cause(), self.state) {
            (Some(_), State::Fault) | (None, State::Backup | State::Master) => {}
            (Some(cause), _) => self.leave(State::Fault, Reason::Fault(cause)),
            (None, State::Fault) => self.start(now, Reason::FaultCleared),
            (None, State::Initialize) => self.start(now, Reason::Startup),
        }
    }

    /// Initialize or Fault to Master (owner) or Backup.
    fn start(&mut self, now: Instant, reason: Reason) {
        if self.effective_priority() == PRIORITY_OWNER && !self.master_hold {
            self.become_master(now, Reason::AddressOwner);
        } else {
            self.master_adver_interval_cs = self.config.advert_interval_cs;
            self.master = None;
            self.transition(State::Backup, reason);
            if self.effective_priority() == PRIORITY_OWNER {
                // A held owner waits in Backup for its group, with no timer to run out.
                self.want_master(Reason::AddressOwner);
            } else {
                self.reset_master_down(now);
            }
        }
    }

    /// Master_Down_Timer or `preempt_delay` ran out: Master, or only wanting it if held.
    fn become_master_unless_held(&mut self, now: Instant, reason: Reason) {
        if self.master_hold {
            // The timer that fired is not re-armed: the want lasts until an advert or the
            // release, and poll_timeout does not return a past deadline over and over.
            self.timers.master_down = None;
            self.timers.preempt = None;
            self.want_master(reason);
        } else {
            self.become_master(now, reason);
        }
    }

    fn want_master(&mut self, reason: Reason) {
        if self.wanted_master.is_none() {
            self.outputs.push_back(Output::WantsMaster(true));
        }
        self.wanted_master = Some(reason);
    }

    fn end_want(&mut self) {
        if self.wanted_master.take().is_some() {
            self.outputs.push_back(Output::WantsMaster(false));
        }
    }

    /// Leaves Backup or Master for Initialize or Fault.
    fn leave(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.end_want();
        self.timers.clear();
        self.ignored_lower = false;
        self.master = None;
        self.transition(to, reason);
        if from == State::Master {
            // Priority 0 tells the Backups to take over after Skew_Time rather than
            // Master_Down_Interval. With the interface down it could not leave anyway.
            if self.interface_up {
                self.send_advert(PRIORITY_STOP);
            }
            self.outputs.push_back(Output::RemoveAddresses(
                self.config.virtual_addresses.clone(),
            ));
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.end_want();
        self.timers.clear();
        self.ignored_lower = false;
        self.master = Some(self.config.primary_address);
        self.transition(State::Master, reason);
        self.stats.master_transitions += 1;
        if let Some(r) = reason.new_master_reason() {
            self.stats.new_master_reason = r;
        }
        self.outputs
            .push_back(Output::AddAddresses(self.config.virtual_addresses.clone()));
        self.send_advert(self.effective_priority());
        self.announce(self.config.announce.master_repeat);
        self.timers.adver = Some(now + centis(self.config.advert_interval_cs));
        self.timers.garp_delay = after(now, self.config.announce.master_delay);
        self.delayed_repeat = self.config.announce.master_repeat;
        self.lower_prio_announced = None;
        self.timers.garp_refresh = after(now, self.config.announce.refresh);
    }

    /// Master to Backup on hearing a better master.
    fn become_backup(&mut self, now: Instant, from: IpAddr, interval_cs: u16) {
        self.timers.clear();
        self.transition(State::Backup, Reason::HigherPriorityAdvert);
        self.outputs.push_back(Output::RemoveAddresses(
            self.config.virtual_addresses.clone(),
        ));
        self.accept_master(now, from, interval_cs);
    }

    fn transition(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.outputs
            .push_back(Output::StateChanged { from, to, reason });
    }

    /// Backup: (VRRPv3) learn Master_Adver_Interval and reset Master_Down_Timer.
    fn accept_master(&mut self, now: Instant, from: IpAddr, interval_cs: u16) {
        if self.config.version == Version::V3 {
            self.master_adver_interval_cs = interval_cs;
        }
        self.master = Some(from);
        self.ignored_lower = false;
        self.timers.preempt = None;
        self.end_want();
        self.reset_master_down(now);
    }

    fn reset_master_down(&mut self, now: Instant) {
        self.timers.master_down = Some(now + self.master_down_interval());
    }

    fn after_priority_change(&mut self, now: Instant, before: u8) {
        let state = self.state;
        self.update_fault(now);
        let after = self.effective_priority();
        if after == before || self.state != state {
            return;
        }
        match self.state {
            State::Master => {
                // Tell the Backups at once: a lowered master is preempted sooner.
                self.send_advert(after);
                self.timers.adver = Some(now + centis(self.config.advert_interval_cs));
            }
            State::Backup => self.shift_master_down(now, before),
            State::Initialize | State::Fault => {}
        }
    }

    /// A Backup's priority changed from `before` while its Master_Down_Timer runs: the
    /// deadline moves by the change in Skew_Time, as keepalived does, so that after a master
    /// crash the Backups still expire in priority order (one that was lowered must not win
    /// with the head start of its old priority). A deadline that moves to now or before has
    /// run out: it fires at once, so no deadline is ever left at or before `now`.
    fn shift_master_down(&mut self, now: Instant, before: u8) {
        let Some(deadline) = self.timers.master_down else {
            return;
        };
        let old = skew_time(self.config.version, before, self.master_adver_interval_cs);
        let new = self.skew_time();
        let shifted = if new >= old {
            deadline + (new - old)
        } else {
            deadline.checked_sub(old - new).unwrap_or(now)
        };
        self.timers.master_down = Some(shifted.max(now));
        while let Some((timer, due)) = self.timers.take_due(now) {
            self.on_timer(now, timer, due);
        }
    }

    fn announce(&mut self, repeat: u32) {
        if repeat > 0 {
            self.outputs.push_back(Output::Announce {
                addresses: self.config.virtual_addresses.clone(),
                repeat,
            });
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = Advertisement {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval_cs: self.config.advert_interval_cs,
            auth: self.config.auth,
            addresses: self.vips.as_list(),
        };
        let group = [self.family().multicast_group()];
        let dsts: &[IpAddr] = if self.multicast {
            &group
        } else {
            &self.config.unicast_peers
        };
        for &dst in dsts {
            let ctx = IpContext {
                src: self.config.primary_address,
                dst,
                checksum: self.config.checksum,
            };
            let mut payload = vec![0u8; advert.buffer_len()];
            // The configuration was validated, so emitting cannot fail; if it ever did, the
            // advert is simply not sent (the peers' timers cover a lost advert).
            if let Ok(len) = advert.emit(&mut payload, &ctx) {
                payload.truncate(len);
                self.stats.sent_advertisements += 1;
                if priority == PRIORITY_STOP {
                    self.stats.sent_pri_zero_packets += 1;
                }
                self.outputs.push_back(Output::Transmit(Transmit {
                    src: self.config.primary_address,
                    dst,
                    ttl: TTL,
                    priority,
                    payload,
                }));
            }
        }
    }

    fn receive(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        if !matches!(self.state, State::Backup | State::Master) {
            return Err(DropReason::NotListening(self.state));
        }
        let family = self.family();
        if Family::of(&rx.src) != family || Family::of(&rx.dst) != family {
            return Err(DropReason::WrongFamily);
        }
        if rx.src == self.config.primary_address {
            return Err(DropReason::OwnPacket);
        }
        // RFC 5798 §7.1: every advert, unicast ones included, must not have crossed a router;
        // a unicast advert with a lower TTL may come from anywhere the host is reachable. Only
        // a unicast router may be told to accept less, for a peer that sends less.
        let min_ttl = if self.multicast {
            TTL
        } else {
            self.config.unicast_min_ttl
        };
        if rx.ttl < min_ttl {
            return Err(DropReason::BadTtl(rx.ttl));
        }
        // A multicast router's socket also receives adverts sent to any of the host's
        // addresses, and a unicast router has no business with the group's.
        if self.multicast && rx.dst != family.multicast_group() {
            return Err(DropReason::ExpectedMulticast(rx.dst));
        }
        if !self.multicast && rx.dst.is_multicast() {
            return Err(DropReason::ExpectedUnicast(rx.dst));
        }
        if !self.multicast && !self.config.unicast_peers.contains(&rx.src) {
            return Err(DropReason::UnknownPeer(rx.src));
        }
        // The version before the checksum: a VRRPv2 packet to a VRRPv3 router is a version
        // error, not a checksum error.
        if !rx.bytes.is_empty() {
            let v = Packet::new_unchecked(rx.bytes, family).version_number();
            if v != self.config.version.number() && Version::from_number(v).is_some() {
                return Err(DropReason::WrongVersion(v));
            }
        }
        let ctx = IpContext {
            src: rx.src,
            dst: rx.dst,
            checksum: self.config.checksum,
        };
        let adv = Advertisement::decode(rx.bytes, &ctx)?;
        if adv.vrid != self.config.vrid {
            return Err(DropReason::WrongVrid(adv.vrid));
        }
        if self.config.version == Version::V2 {
            match (adv.auth, self.config.auth) {
                (Auth::None, Auth::None) => {}
                (Auth::Simple(got), Auth::Simple(want)) => {
                    if got != want {
                        return Err(DropReason::AuthFailure);
                    }
                }
                (got, _) => return Err(DropReason::AuthTypeMismatch(got.type_number())),
            }
            if adv.interval_cs != self.config.advert_interval_cs {
                return Err(DropReason::BadInterval(adv.interval_cs));
            }
        } else if adv.interval_cs == 0 {
            return Err(DropReason::BadInterval(0));
        }
        if self.config.version == Version::V3 && adv.addresses.is_empty() {
            // RFC 5798 §5.2.5 (erratum 3222): Count IPvX Addr is at least 1.
            return Err(DropReason::NoAddresses);
        }
        let same_addresses = same_addresses(&adv.addresses, &self.vips.as_list());
        if !same_addresses && self.config.version == Version::V2 && adv.priority != PRIORITY_OWNER {
            // RFC 3768 §7.1: MUST drop unless the owner sent it (keepalived 2.2.x drops it).
            return Err(DropReason::AddressListMismatch);
        }
        self.stats.rcvd_advertisements += 1;
        if !same_addresses {
            // VRRPv3: RFC 5798 §7.1 only says to log it; the advert is used.
            self.stats.address_list_errors += 1;
        }
        if adv.priority == PRIORITY_STOP {
            self.stats.rcvd_pri_zero_packets += 1;
        }
        match self.state {
            State::Backup => self.backup_receive(now, rx.src, &adv),
            State::Master => self.master_receive(now, rx.src, &adv),
            State::Initialize | State::Fault => {}
        }
        Ok(())
    }

    /// RFC 5798 §6.4.2, with keepalived's `preempt_delay`.
    fn backup_receive(&mut self, now: Instant, src: IpAddr, adv: &Advertisement<'_>) {
        let local = self.effective_priority();
        // The address owner always preempts (RFC 5798 §6.1: it "will always become Master"),
        // whatever Preempt_Mode says; keepalived resets `nopreempt` at priority 255 too.
        let preempt = self.config.preempt || local == PRIORITY_OWNER;
        if adv.priority == PRIORITY_STOP {
            // A held router that already wants Master keeps wanting: the master is leaving.
            if self.wanted_master.is_none() {
                self.timers.master_down = Some(now + self.skew_time());
            }
            self.master = None;
        } else if !preempt || adv.priority >= local {
            self.accept_master(now, src, adv.interval_cs);
        } else if !self.config.preempt_delay.is_zero() {
            // A lower-priority master is kept for preempt_delay after it is first heard.
            self.master = Some(src);
            if self.timers.preempt.is_none() && self.wanted_master.is_none() {
                self.timers.preempt = Some(now + self.config.preempt_delay);
            }
            if self.config.version == Version::V3 {
                self.master_adver_interval_cs = adv.interval_cs;
            }
            if self.wanted_master.is_none() {
                self.reset_master_down(now);
            }
        } else {
            // Discard it: Master_Down_Timer runs out and this router preempts.
            self.ignored_lower = true;
        }
    }

    /// RFC 5798 §6.4.3, with keepalived's answer to lower-priority adverts.
    fn master_receive(&mut self, now: Instant, src: IpAddr, adv: &Advertisement<'_>) {
        let local = self.effective_priority();
        if adv.priority == PRIORITY_STOP {
            self.send_advert(local);
            self.timers.adver = Some(now + centis(self.config.advert_interval_cs));
            // Only another Master sends priority 0 (leaving, or stepped down by its sync
            // group): it held the addresses, and may have announced them.
            self.announce_after_other_master(now);
        } else if adv.priority > local
            || (adv.priority == local && addr_greater(&src, &self.config.primary_address))
        {
            // Two Masters: a partition healed. This one may have announced the addresses as
            // its own while the other could not hear it, and the other may never have heard
            // it advertise (its advert came first): one advert at our own priority, before
            // leaving Master, tells the winner that another Master held the addresses, and
            // it re-announces them (below). Priority 0 would not do: it cuts every Backup's
            // timer to Skew_Time, less than an advert interval, and could make one preempt.
            self.stats.heal_adverts += 1;
            self.send_advert(local);
            self.become_backup(now, src, adv.interval_cs);
        } else {
            if self.config.answer_lower_priority {
                self.send_advert(local);
                self.timers.adver = Some(now + centis(self.config.advert_interval_cs));
            }
            self.announce_after_other_master(now);
        }
    }

    /// Another Master is talking (a lower priority, or priority 0): it may have announced the
    /// addresses as its own while it thought it was the only one, so announce them again
    /// (keepalived's `garp_lower_prio_*`). One burst per advert interval at most; an advert
    /// heard within the interval of the last burst gets one more burst at its end, never none,
    /// so that a burst always follows the last advert of another Master (which may have
    /// announced after our previous burst, its delayed or refresh burst).
    fn announce_after_other_master(&mut self, now: Instant) {
        if self.config.announce.lower_prio_repeat == 0 {
            return;
        }
        let interval = centis(self.config.advert_interval_cs);
        match self.lower_prio_announced {
            Some(at) if now < at + interval => {
                self.timers.garp_lower_prio.get_or_insert(at + interval);
            }
            _ => self.lower_prio_burst(now),
        }
    }

    /// The burst of [`announce_after_other_master`](Self::announce_after_other_master), and
    /// the second one `lower_prio_delay` later.
    fn lower_prio_burst(&mut self, now: Instant) {
        let repeat = self.config.announce.lower_prio_repeat;
        self.lower_prio_announced = Some(now);
        self.timers.garp_lower_prio = None;
        self.stats.lower_prio_announcements += 1;
        self.announce(repeat);
        if let Some(at) = after(now, self.config.announce.lower_prio_delay) {
            self.timers.garp_delay = Some(at);
            self.delayed_repeat = repeat;
        }
    }

    fn count_drop(&mut self, e: &DropReason) {
        let s = &mut self.stats;
        match e {
            DropReason::NotListening(_) | DropReason::OwnPacket => {
                if matches!(e, DropReason::OwnPacket) {
                    s.own_packets += 1;
                }
            }
            DropReason::BadTtl(_) => {
                s.ip_ttl_errors += 1;
                s.proto_err_reason = ProtoErrReason::IpTtlError;
            }
            DropReason::UnknownPeer(_) => s.unknown_peer_errors += 1,
            DropReason::ExpectedMulticast(_) | DropReason::ExpectedUnicast(_) => {
                s.destination_errors += 1;
            }
            DropReason::WrongFamily => s.family_errors += 1,
            DropReason::WrongVersion(_) => {
                s.version_errors += 1;
                s.proto_err_reason = ProtoErrReason::VersionError;
            }
            DropReason::WrongVrid(_) => {
                s.vrid_errors += 1;
                s.proto_err_reason = ProtoErrReason::VrIdError;
            }
            DropReason::AuthTypeMismatch(_) => s.auth_type_mismatch += 1,
            DropReason::AuthFailure => s.auth_failures += 1,
            DropReason::BadInterval(_) => s.adv_interval_errors += 1,
            DropReason::AddressListMismatch | DropReason::NoAddresses => {
                s.address_list_errors += 1;
            }
            DropReason::Malformed(p) => match p {
                PacketError::Truncated { .. } | PacketError::LengthMismatch { .. } => {
                    s.packet_length_errors += 1;
                }
                PacketError::BadVersion(_) | PacketError::VersionMismatch { .. } => {
                    s.version_errors += 1;
                    s.proto_err_reason = ProtoErrReason::VersionError;
                }
                PacketError::BadType(_) => s.rcvd_invalid_type_packets += 1,
                PacketError::BadChecksum { .. } => {
                    s.checksum_errors += 1;
                    s.proto_err_reason = ProtoErrReason::ChecksumError;
                }
                PacketError::AuthAhUnsupported | PacketError::BadAuthType(_) => {
                    s.invalid_auth_type += 1;
                }
                _ => s.family_errors += 1,
            },
        }
    }
}

/// `now + d`, where a zero (or absent) delay means "off", as in keepalived: a zero-period timer
/// would fire forever.
fn after(now: Instant, d: Option<core::time::Duration>) -> Option<Instant> {
    d.filter(|d| !d.is_zero()).map(|d| now + d)
}

/// A wait in `0..interval`, the same for the same address and count, and spread for others
/// (splitmix64 of both): see [`Router::handle_step_down`].
fn step_down_backoff(
    addr: &IpAddr,
    count: u64,
    interval: core::time::Duration,
) -> core::time::Duration {
    let bits = match addr {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    };
    let mut z = (bits as u64) ^ ((bits >> 64) as u64) ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // 1/1024ths of the interval: fine enough, and no overflow for any u16 interval.
    interval * u32::try_from(z % 1024).unwrap_or(0) / 1024
}

/// The same addresses, in any order: keepalived compares them so, and a peer listing the VIPs
/// in another order is not misconfigured.
fn same_addresses(theirs: &AddressList<'_>, ours: &AddressList<'_>) -> bool {
    // Almost always the same list in the same order: one comparison of bytes.
    (theirs.family() == ours.family() && theirs.as_bytes() == ours.as_bytes())
        || (theirs.len() == ours.len() && ours.iter().all(|a| theirs.contains(&a)))
}

/// `a > b` as unsigned integers in network order (RFC 5798 §6.4.3's tie-break).
pub(crate) fn addr_greater(a: &IpAddr, b: &IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}
