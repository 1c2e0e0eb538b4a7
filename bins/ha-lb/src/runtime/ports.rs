//! The node's VRRP ports: one raw socket per (interface, family, receive mode), shared by every
//! instance on it, each run by one task that owns a vrrp-core [`Demux`] of their routers (as
//! keepalived's socket pool does).
//!
//! Why: with a socket per instance, every advert on the interface was copied to, woken for and
//! rejected by every instance's socket and task, so a Backup's cost grew with the square of
//! the number of instances. Here each advert is read once, routed by its VRID to its one
//! router, and the task wakes once per batch of adverts or due timers, whatever the number of
//! instances. Multicast instances of one interface and family share one socket; unicast ones
//! share one per source address (the socket is bound to it). Instances join and leave a port
//! without disturbing the others on it; the last one to leave closes it.
//!
//! `ha-lb run` runs every port task on one thread of its own ([`super::vrrp_thread`]); an
//! embedder's ports run on its runtime.
//!
//! The receive path keeps the order RFC 5798's timers need: queued adverts are read before due
//! timers are run, each handed over with the time the kernel received it, so a task that was
//! late (CPU starvation) does not take a silent Master for a dead one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vrrp_core::packet::Family;
use vrrp_core::{Demux, DemuxError, Output, Router, RouterId};

use super::instance::{now, Clock, Command, Driver};
use super::readiness::{register, Owned};
use super::vrrp_thread::VrrpThread;
use crate::net::{
    Interface, NetError, Received, RecvBatch, VrrpSocket, VrrpSocketConfig, RECV_BATCH,
};

/// How long counters-only changes (an advert heard, a packet dropped) may wait before they
/// show in `/status`: state changes show at once. A second: each publication is a lookup in
/// the status of every instance, and at hundreds of instances publishing more often cost a
/// few per cent of the Backup's CPU.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// What tells one port from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    ifindex: u32,
    ipv6: bool,
    /// The address a unicast socket is bound to; `None` for the multicast socket.
    unicast_src: Option<IpAddr>,
}

/// A running port, as the registry holds it.
#[derive(Debug)]
struct PortEntry {
    tx: mpsc::UnboundedSender<PortMessage>,
    members: usize,
}

/// What a port's task is told.
#[derive(Debug)]
enum PortMessage {
    /// A new instance: its router (not started) and its driver.
    Join {
        member: u64,
        router: Box<Router>,
        driver: Box<Driver>,
    },
    /// A command for one of its instances.
    Command { member: u64, command: Command },
}

/// The node's ports, by interface, family and receive mode. Cloning shares them.
///
/// [`Ports::default`] runs the ports' tasks on the tokio runtime that [`join`](Ports::join)s
/// (an embedder's); [`Ports::dedicated`] on a thread of their own ([`VrrpThread`]), as
/// `ha-lb run` does.
#[derive(Debug, Clone, Default)]
pub struct Ports {
    by_key: Arc<Mutex<BTreeMap<PortKey, PortEntry>>>,
    next_member: Arc<Mutex<u64>>,
    /// Where the ports' tasks run: `None`, the caller's runtime.
    thread: Option<VrrpThread>,
}

/// An instance's place in its port: where its commands go, and its leave.
#[derive(Debug)]
pub struct Membership {
    ports: Ports,
    key: PortKey,
    member: u64,
    tx: mpsc::UnboundedSender<PortMessage>,
    left: bool,
    /// Its advert interval (centiseconds), which paces the VRRP thread.
    interval_cs: u16,
}

/// Where commands for one instance go; cloned freely (ignored once the instance stopped).
#[derive(Debug, Clone)]
pub struct Commands {
    tx: mpsc::UnboundedSender<PortMessage>,
    member: u64,
}

impl Commands {
    /// Sends a command to the instance.
    pub fn send(&self, command: Command) {
        let _ = self.tx.send(PortMessage::Command {
            member: self.member,
            command,
        });
    }
}

impl Membership {
    /// Sends a command to the instance (ignored once its port has stopped).
    pub fn send(&self, command: Command) {
        self.commands().send(command);
    }

    /// A sender of commands to the instance that other tasks can keep.
    pub fn commands(&self) -> Commands {
        Commands {
            tx: self.tx.clone(),
            member: self.member,
        }
    }

    /// Stops the instance (priority 0 if Master, VIPs removed, its stop command run) and
    /// waits until it has; the port closes if it was its last instance.
    pub async fn shutdown(mut self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Shutdown(done));
        let _ = wait.await;
        self.leave();
    }

    fn leave(&mut self) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
        if let Some(thread) = &self.ports.thread {
            thread.remove_interval(self.interval_cs);
        }
        let mut map = self.ports.lock();
        if let Some(entry) = map.get_mut(&self.key) {
            entry.members = entry.members.saturating_sub(1);
            if entry.members == 0 {
                // Dropping the last sender ends the port's task, which closes the socket.
                map.remove(&self.key);
            }
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if !self.left {
            // Dropped without a shutdown (a failed start): the instance stops on its own.
            let (done, _) = tokio::sync::oneshot::channel();
            self.send(Command::Shutdown(done));
            self.leave();
        }
    }
}

impl Ports {
    /// Ports whose tasks all run on one thread of their own, with a current-thread runtime
    /// (started at the first [`join`](Self::join), in the network namespace of the thread
    /// that calls it), so that VRRP neither pays for nor competes with the rest of the node.
    pub fn dedicated() -> Self {
        Self {
            thread: Some(VrrpThread::default()),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PortKey, PortEntry>> {
        self.by_key.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts an instance's router (not started yet) and driver on the port of `interface` for
    /// its family and mode, opening the port's socket if it is the first. Must run within the
    /// tokio runtime (also with [`dedicated`](Self::dedicated) ports: the instance's notify
    /// commands run there).
    ///
    /// # Errors
    ///
    /// [`NetError`] when the socket cannot be opened (no CAP_NET_RAW, the interface went) or
    /// the VRRP thread cannot be started.
    pub fn join(
        &self,
        interface: &Interface,
        unicast: bool,
        router: Router,
        driver: Driver,
    ) -> Result<Membership, NetError> {
        let source = router.config().primary_address;
        let key = PortKey {
            ifindex: interface.index(),
            ipv6: router.family() == Family::Ipv6,
            unicast_src: unicast.then_some(source),
        };
        let member = {
            let mut next = self
                .next_member
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let mut map = self.lock();
        let entry = match map.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let socket = VrrpSocket::open(
                    interface,
                    &VrrpSocketConfig {
                        source,
                        join_group: !unicast,
                    },
                )?;
                socket.set_nonblocking(true)?;
                let runtime = match &self.thread {
                    Some(thread) => Some(
                        thread
                            .handle()
                            .map_err(|e| NetError::io("start the VRRP thread")(e))?,
                    ),
                    None => None,
                };
                // Registered with the reactor of the runtime that will poll it.
                let socket = {
                    let _entered = runtime.as_ref().map(Handle::enter);
                    register(socket).map_err(|e| NetError::io("register VRRP socket")(e))?
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let port = Port {
                    name: format!(
                        "{} {}{}",
                        interface.name(),
                        if key.ipv6 { "IPv6" } else { "IPv4" },
                        key.unicast_src
                            .map_or_else(|| " multicast".to_owned(), |s| format!(" unicast {s}")),
                    ),
                    socket,
                    demux: Demux::new(),
                    drivers: HashMap::new(),
                    members: HashMap::new(),
                    touched: Touched::default(),
                    publish_at: None,
                };
                match runtime {
                    Some(runtime) => drop(runtime.spawn(port.run(rx))),
                    None => drop(tokio::spawn(port.run(rx))),
                }
                v.insert(PortEntry { tx, members: 0 })
            }
        };
        entry.members += 1;
        let tx = entry.tx.clone();
        drop(map);
        let interval_cs = router.config().advert_interval_cs;
        if let Some(thread) = &self.thread {
            thread.add_interval(interval_cs);
        }
        let _ = tx.send(PortMessage::Join {
            member,
            router: Box::new(router),
            driver: Box::new(driver),
        });
        Ok(Membership {
            ports: self.clone(),
            key,
            member,
            tx,
            left: false,
            interval_cs,
        })
    }
}

/// What woke a port's task.
enum Event {
    Readable(std::io::Result<()>),
    Timeout,
    Message(Option<PortMessage>),
}

/// One port's task: the socket, the routers behind it, and each one's driver.
struct Port {
    /// For logs: interface, family and mode.
    name: String,
    socket: AsyncFd<Owned<VrrpSocket>>,
    demux: Demux,
    drivers: HashMap<RouterId, Driver>,
    /// Member number (as the instance's [`Membership`] knows it) to router.
    members: HashMap<u64, RouterId>,
    /// Routers whose counters changed since their status was last published.
    touched: Touched,
    /// When `touched` is published.
    publish_at: Option<Instant>,
}

/// Routers whose counters changed since they were last published: a flag per router and
/// the list of those flagged, so that marking one (once per advert) is a store, not a tree
/// insert.
#[derive(Debug, Default)]
struct Touched {
    flags: Vec<bool>,
    list: Vec<RouterId>,
}

impl Touched {
    fn insert(&mut self, id: RouterId) {
        if self.flags.len() <= id.0 {
            self.flags.resize(id.0 + 1, false);
        }
        if let Some(flag) = self.flags.get_mut(id.0) {
            if !*flag {
                *flag = true;
                self.list.push(id);
            }
        }
    }

    fn remove(&mut self, id: RouterId) {
        if let Some(flag) = self.flags.get_mut(id.0) {
            *flag = false;
        }
    }

    /// The flagged routers, each once, unflagged.
    fn drain(&mut self) -> impl Iterator<Item = RouterId> + '_ {
        let flags = &mut self.flags;
        self.list.drain(..).filter(move |id| {
            flags
                .get_mut(id.0)
                .is_some_and(|f| std::mem::replace(f, false))
        })
    }
}

impl Port {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PortMessage>) {
        tracing::debug!(port = %self.name, "VRRP port opened");
        let mut batch = RecvBatch::default();
        loop {
            let deadline = [
                self.demux.poll_timeout().map(Instant::from_std),
                self.publish_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            // Adverts first: a due timer and queued adverts both ready (the task was starved of
            // CPU) must not look like a silent Master.
            let event = tokio::select! {
                biased;
                ready = self.socket.readable() => Event::Readable(ready.map(|mut g| g.clear_ready())),
                () = sleep => Event::Timeout,
                message = rx.recv() => Event::Message(message),
            };
            match event {
                // Readiness is cleared first, then every queued datagram is read below: one
                // that arrives after the last read raises readiness again.
                Event::Readable(Ok(())) | Event::Timeout => {}
                Event::Readable(Err(e)) => {
                    tracing::error!(port = %self.name, error = %e, "VRRP socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Event::Message(Some(message)) => self.message(message),
                Event::Message(None) => break,
            }
            // Whatever woke the task, everything is done in this one wake-up (a busy socket
            // must starve neither the timers nor the instances' commands). Adverts that came
            // meanwhile are read first, each at the time it arrived (as keepalived reads ready
            // sockets before expiring timers); the routers keep periodic timers on their
            // schedule, so wake-up latency does not add up.
            self.receive_all(&mut batch);
            self.run_due();
            let closed = loop {
                match rx.try_recv() {
                    Ok(message) => self.message(message),
                    Err(mpsc::error::TryRecvError::Empty) => break false,
                    Err(mpsc::error::TryRecvError::Disconnected) => break true,
                }
            };
            self.drain();
            if closed {
                break;
            }
        }
        // Every instance left through a shutdown before the registry let go of the port.
        for (_, driver) in self.drivers.drain() {
            driver.abandon();
        }
        tracing::debug!(port = %self.name, "VRRP port closed");
    }

    fn message(&mut self, message: PortMessage) {
        match message {
            PortMessage::Join {
                member,
                router,
                driver,
            } => self.join(member, *router, *driver),
            PortMessage::Command { member, command } => self.command(member, command),
        }
    }

    /// Runs the routers' due timers, and publishes counters when it is time.
    fn run_due(&mut self) {
        // One clock read for both.
        let clock = Instant::now();
        let now = clock.into_std();
        if self.demux.poll_timeout().is_some_and(|at| at <= now) {
            self.demux.handle_timeout(now);
        }
        if self.publish_at.is_some_and(|at| at <= clock) {
            self.publish_touched();
        }
    }

    fn join(&mut self, member: u64, router: Router, driver: Driver) {
        let now = now();
        let name = driver.name().to_owned();
        match self.demux.add(router) {
            Ok(id) => {
                self.members.insert(member, id);
                self.drivers.insert(id, driver);
                if let Some(mut r) = self.demux.get_mut(id) {
                    r.handle_startup(now);
                }
            }
            Err(e) => {
                // check-config refuses two instances of one VRID and family on an interface.
                tracing::error!(port = %self.name, instance = %name, error = %e, "instance not started");
                driver.abandon();
            }
        }
    }

    fn command(&mut self, member: u64, command: Command) {
        let Some(&id) = self.members.get(&member) else {
            if let Command::Shutdown(done) = command {
                let _ = done.send(());
            }
            return;
        };
        if let Command::Shutdown(done) = command {
            self.leave(member, id, done);
            return;
        }
        let (Some(driver), Some(mut router)) = (self.drivers.get_mut(&id), self.demux.get_mut(id))
        else {
            return;
        };
        if driver.command(&mut router, command) {
            // A priority or a reason may have changed without any output: shown now.
            drop(router);
            self.touched.remove(id);
            if let (Some(driver), Some(router)) = (self.drivers.get_mut(&id), self.demux.get(id)) {
                driver.publish(router);
            }
        }
    }

    /// An instance stops: priority 0 if Master, its outputs performed, then it leaves.
    fn leave(&mut self, member: u64, id: RouterId, done: tokio::sync::oneshot::Sender<()>) {
        if let (Some(driver), Some(mut router)) =
            (self.drivers.get_mut(&id), self.demux.get_mut(id))
        {
            driver.begin_stop(&mut router);
        }
        self.drain();
        self.members.remove(&member);
        self.touched.remove(id);
        let router = self.demux.remove(id);
        match (self.drivers.remove(&id), router) {
            (Some(driver), Some(router)) => driver.finish_stop(&router, done),
            _ => {
                let _ = done.send(());
            }
        }
    }

    /// Reads every datagram queued on the socket, [`RECV_BATCH`] per system call, and hands
    /// each to its router.
    fn receive_all(&mut self, batch: &mut RecvBatch) {
        let mut errors = 0u32;
        loop {
            let count = match self.socket.get_ref().0.recv_batch(batch) {
                Ok(count) => count,
                Err(NetError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return;
                }
                // A socket error is reported, then the queue reads on; a bound on them in a
                // row keeps a socket stuck in error from spinning this loop.
                Err(e) => {
                    tracing::debug!(port = %self.name, error = %e, "VRRP receive");
                    errors += 1;
                    if errors > 8 {
                        return;
                    }
                    continue;
                }
            };
            let clock = Clock::read();
            for i in 0..count {
                if let Some((rx, bytes)) = batch.get(i) {
                    self.receive(rx, bytes, clock);
                }
            }
            // A short batch emptied the queue; a datagram that came after it raised the
            // socket's readiness again (cleared before the first read).
            if count < RECV_BATCH {
                return;
            }
        }
    }

    /// Hands one datagram read from the socket to its router.
    fn receive(&mut self, rx: &Result<Received, NetError>, datagram: &[u8], clock: Clock) {
        let rx = match rx {
            Ok(rx) => rx,
            // A datagram that does not parse was consumed: counted by nobody, logged.
            Err(e) => {
                tracing::debug!(port = %self.name, error = %e, "datagram dropped");
                return;
            }
        };
        let Some(bytes) = datagram.get(rx.payload.clone()) else {
            return;
        };
        let at = clock.arrival(rx.at);
        if rx.truncated {
            // Never decoded: only counted, by its router if its VRID is one of ours.
            let family = Family::of(&rx.src);
            if let Some(id) = bytes.get(1).and_then(|&v| self.demux.lookup(v, family)) {
                if let Some(mut router) = self.demux.get_mut(id) {
                    router.handle_truncated(at);
                }
                self.touch(id);
            }
            tracing::debug!(port = %self.name, src = %rx.src, "advert longer than the receive buffer dropped");
            return;
        }
        let received = vrrp_core::Received {
            src: rx.src,
            dst: rx.dst,
            ttl: rx.ttl,
            bytes,
        };
        match self.demux.handle_packet(at, &received) {
            Ok(id) => self.touch(id),
            Err(DemuxError::Dropped { router, reason }) => {
                self.touch(router);
                tracing::trace!(port = %self.name, src = %rx.src, %reason, "advert dropped");
            }
            Err(e) => {
                tracing::trace!(port = %self.name, src = %rx.src, error = %e, "advert for no instance here")
            }
        }
    }

    /// A router's counters changed: published within [`PUBLISH_EVERY`].
    fn touch(&mut self, id: RouterId) {
        self.touched.insert(id);
        if self.publish_at.is_none() {
            self.publish_at = Some(Instant::now() + PUBLISH_EVERY);
        }
    }

    fn publish_touched(&mut self) {
        self.publish_at = None;
        let mut touched = std::mem::take(&mut self.touched);
        for id in touched.drain() {
            if let (Some(driver), Some(router)) = (self.drivers.get_mut(&id), self.demux.get(id)) {
                driver.publish_counters(router);
            }
        }
        self.touched = touched;
    }

    /// Performs every output the routers have queued. An instance whose state, want or
    /// addresses changed is published at once; adverts and announcements only move counters.
    fn drain(&mut self) {
        let mut changed = BTreeSet::new();
        while let Some((id, output)) = self.demux.poll_output() {
            let (Some(driver), Some(router)) = (self.drivers.get_mut(&id), self.demux.get(id))
            else {
                continue;
            };
            let counters_only = matches!(output, Output::Transmit(_) | Output::Announce { .. });
            driver.perform(router, output, &self.socket.get_ref().0);
            if counters_only {
                self.touch(id);
            } else {
                changed.insert(id);
            }
        }
        for id in changed {
            self.touched.remove(id);
            if let (Some(driver), Some(router)) = (self.drivers.get_mut(&id), self.demux.get(id)) {
                driver.publish(router);
            }
        }
    }
}
