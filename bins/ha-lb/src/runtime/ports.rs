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
//! `ha-lb run` runs every port on one thread of its own, one event loop for all of them
//! ([`super::vrrp_thread`]); an embedder's ports are tasks on its tokio runtime
//! ([`Port::run`]). Both drive a port the same way ([`Port::after_wake`]).
//!
//! The receive path keeps the order RFC 5798's timers need: queued adverts are read before due
//! timers are run, each handed over with the time the kernel received it, so a task that was
//! late (CPU starvation) does not take a silent Master for a dead one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use vrrp_core::packet::Family;
use vrrp_core::{Demux, DemuxError, Output, Router, RouterId};

use super::instance::{now, Clock, Command, Driver};
use super::readiness::{register, Owned};
use super::vrrp_thread::{ThreadWaker, VrrpThread};
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
    tx: PortTx,
    members: usize,
}

/// Where a port's messages go. A port on the VRRP thread is not a task that a channel wakes:
/// every message, and every sender going (the last one closes the port), wakes the thread.
#[derive(Debug, Clone)]
struct PortTx {
    /// `None` only while dropping.
    tx: Option<mpsc::UnboundedSender<PortMessage>>,
    /// The VRRP thread's waker, for its ports.
    waker: Option<ThreadWaker>,
}

impl PortTx {
    fn send(&self, message: PortMessage) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(message);
        }
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}

impl Drop for PortTx {
    fn drop(&mut self) {
        // Released first, so that the thread finds the port closed if this was its last.
        drop(self.tx.take());
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}

/// What a port is told.
#[derive(Debug)]
pub(super) enum PortMessage {
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
    tx: PortTx,
    left: bool,
    /// Its advert interval (centiseconds), which paces the VRRP thread.
    interval_cs: u16,
}

/// Where commands for one instance go; cloned freely (ignored once the instance stopped).
#[derive(Debug, Clone)]
pub struct Commands {
    tx: PortTx,
    member: u64,
}

impl Commands {
    /// Sends a command to the instance.
    pub fn send(&self, command: Command) {
        self.tx.send(PortMessage::Command {
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
                // Dropping the last sender closes the port and its socket.
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
    /// Ports that all run on one thread of their own, one event loop for all (started at the
    /// first [`join`](Self::join), in the network namespace of the thread that calls it), so
    /// that VRRP neither pays for nor competes with the rest of the node.
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
                let (tx, rx) = mpsc::unbounded_channel();
                let name = format!(
                    "{} {}{}",
                    interface.name(),
                    if key.ipv6 { "IPv6" } else { "IPv4" },
                    key.unicast_src
                        .map_or_else(|| " multicast".to_owned(), |s| format!(" unicast {s}")),
                );
                let waker = match &self.thread {
                    Some(thread) => Some(
                        thread
                            .open(Port::new(name, socket), rx)
                            .map_err(|e| NetError::io("start the VRRP thread")(e))?,
                    ),
                    None => {
                        // Registered with the reactor of the runtime that will poll it.
                        let socket = register(socket)
                            .map_err(|e| NetError::io("register VRRP socket")(e))?;
                        drop(tokio::spawn(Port::new(name, socket).run(rx)));
                        None
                    }
                };
                let tx = PortTx {
                    tx: Some(tx),
                    waker,
                };
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
        tx.send(PortMessage::Join {
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

/// The socket a port reads and sends on, as its runner holds it: registered with tokio's
/// reactor ([`Port::run`]), or plain on the VRRP thread (which registers its descriptor).
pub(super) trait PortSocket {
    /// The socket.
    fn vrrp(&self) -> &VrrpSocket;
}

impl PortSocket for VrrpSocket {
    fn vrrp(&self) -> &VrrpSocket {
        self
    }
}

impl PortSocket for AsyncFd<Owned<VrrpSocket>> {
    fn vrrp(&self) -> &VrrpSocket {
        &self.get_ref().0
    }
}

/// One port: the socket, the routers behind it, and each one's driver.
pub(super) struct Port<S> {
    /// For logs: interface, family and mode.
    name: String,
    socket: S,
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

impl<S: PortSocket> Port<S> {
    fn new(name: String, socket: S) -> Self {
        Self {
            name,
            socket,
            demux: Demux::new(),
            drivers: HashMap::new(),
            members: HashMap::new(),
            touched: Touched::default(),
            publish_at: None,
        }
    }

    /// For logs: interface, family and mode.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The socket.
    pub(super) fn socket(&self) -> &VrrpSocket {
        self.socket.vrrp()
    }

    /// When the port must be woken at the latest: a router's timer, or counters to publish.
    pub(super) fn deadline(&self) -> Option<Instant> {
        [self.demux.poll_timeout(), self.publish_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Everything a wake-up of the port does, whatever woke it (a busy socket must starve
    /// neither the timers nor the instances' commands): queued adverts read first when the
    /// socket is `readable`, each at the time it arrived (as keepalived reads ready sockets
    /// before expiring timers, so a Backup starved of CPU does not take a silent Master for a
    /// dead one), then due timers, then the instances' messages, then every output performed.
    /// The routers keep periodic timers on their schedule, so wake-up latency does not add up.
    /// Returns whether the port is closed (its last sender went).
    pub(super) fn after_wake(
        &mut self,
        readable: bool,
        batch: &mut RecvBatch,
        rx: &mut mpsc::UnboundedReceiver<PortMessage>,
    ) -> bool {
        if readable {
            self.receive_all(batch);
        }
        self.run_due();
        let closed = loop {
            match rx.try_recv() {
                Ok(message) => self.message(message),
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        self.drain();
        closed
    }

    /// The port closes: every instance left through a shutdown before the registry let go
    /// of it; any other goes now.
    pub(super) fn close(mut self) {
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
        let now = now();
        if self.demux.poll_timeout().is_some_and(|at| at <= now) {
            self.demux.handle_timeout(now);
        }
        if self.publish_at.is_some_and(|at| at <= now) {
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
            let count = match self.socket.vrrp().recv_batch(batch) {
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
            self.publish_at = Some(now() + PUBLISH_EVERY);
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
            driver.perform(router, output, self.socket.vrrp());
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

impl Port<AsyncFd<Owned<VrrpSocket>>> {
    /// The port as a task on the caller's tokio runtime (an embedder's ports).
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PortMessage>) {
        tracing::debug!(port = %self.name, "VRRP port opened");
        let mut batch = RecvBatch::default();
        // One timer for the task's life, moved when the next deadline moves: a new sleep on
        // every wake-up was a timer-wheel insert and removal each time.
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            let deadline = self.deadline();
            if let Some(d) = deadline.filter(|&d| armed != Some(d)) {
                sleep.as_mut().reset(tokio::time::Instant::from_std(d));
            }
            armed = deadline;
            // Adverts first: a due timer and queued adverts both ready (the task was starved of
            // CPU) must not look like a silent Master.
            let event = tokio::select! {
                biased;
                ready = self.socket.readable() => Event::Readable(ready.map(|mut g| g.clear_ready())),
                () = &mut sleep, if deadline.is_some() => Event::Timeout,
                message = rx.recv() => Event::Message(message),
            };
            // Readiness is cleared before the reads, so a datagram that arrives after the last
            // one raises it again. A timer or a message that woke the task found the socket
            // not ready (readiness is polled first above): nothing to read then.
            let readable = match event {
                Event::Readable(Ok(())) => true,
                Event::Timeout => false,
                Event::Readable(Err(e)) => {
                    tracing::error!(port = %self.name, error = %e, "VRRP socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    true
                }
                Event::Message(Some(message)) => {
                    self.message(message);
                    false
                }
                Event::Message(None) => break,
            };
            if self.after_wake(readable, &mut batch, &mut rx) {
                break;
            }
        }
        self.close();
    }
}
