//! The thread every VRRP port of `ha-lb run` runs on: one event loop for all of them (mio,
//! tokio's own poller, without a runtime around it), as keepalived's VRRP process is one
//! single-threaded event loop, which wakes at most once per [wake-up gap](wake_gap) while busy.
//!
//! Why a thread: on the node's multi-thread runtime, adverts sent and received woke worker
//! threads and handed tasks between them (wake-ups, work stealing, the kernel's task
//! switches), which cost more CPU than the adverts once hundreds of instances ran. On one
//! thread that does nothing else, a wake-up runs every due timer and reads every queued
//! advert of every port, and nothing competes with it: health checks, the balancer and the
//! admin endpoint stay on the main runtime (where the instances' notify commands also run:
//! the thread enters the main runtime's context).
//!
//! Why not a tokio runtime of its own (as before): its timer wheel woke the thread for nothing
//! about as often as the adverts did (a timer moved to an earlier time wakes the driver through
//! its event descriptor, one more system call and wake-up; one further away than 64 ms wakes it
//! once more to move it down a level). Measured with 20 instances, the Master's thread waited
//! 51 times a second for 20 rounds of adverts. Here the loop waits exactly until the earliest
//! deadline of its ports, or an advert, or a message.
//!
//! Why a gap: with hundreds of instances, adverts arrive and timers fall due every fraction
//! of a millisecond, and each arrival wakes the thread (epoll reports every new datagram), so
//! a Backup of 500 instances woke about 2,000 times a second, each wake-up costing more than
//! the advert it read. While busy (its last waits were shorter than the gap), the thread lets
//! the gap pass before it waits again, and then handles everything that came and fell due
//! meanwhile in one go. Adverts read late keep the time the kernel received them
//! (`SO_TIMESTAMPNS`), so a Backup's timers are not fooled; an advert due meanwhile leaves at
//! most one gap late and the next keeps its schedule (no drift). A thread that is not busy
//! does not wait: one wake-up per event.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::ports::{Port, PortMessage};
use crate::net::{RecvBatch, VrrpSocket};

/// The longest wake-up gap, for advert intervals of 100 ms and more: 5 % of the interval
/// there, as below. Each wake-up costs about as much as a few adverts (the pacing sleep,
/// epoll, the timers' bookkeeping), so at hundreds of instances fewer, fuller wake-ups are
/// most of what the Backup can still save.
pub const MAX_WAKE_GAP: Duration = Duration::from_millis(5);

/// The wake-up gap for routers advertising every `interval_cs` centiseconds at the fastest:
/// a twentieth of the interval, at most [`MAX_WAKE_GAP`] (0.5 ms at the shortest interval,
/// 10 ms): an advert never leaves later than 5 % of its interval because of it.
pub fn wake_gap(interval_cs: u16) -> Duration {
    (Duration::from_millis(10) * u32::from(interval_cs) / 20).min(MAX_WAKE_GAP)
}

/// The token of the loop's waker (ports have their own numbers, from 0).
const WAKE: Token = Token(usize::MAX);

/// The VRRP thread, started by the first port that needs it and stopped when the last
/// [`VrrpThread`] handle goes (the ports still on it are dropped with it).
#[derive(Debug, Clone, Default)]
pub struct VrrpThread {
    started: Arc<OnceLock<Running>>,
    gap: Arc<Gap>,
}

/// What wakes the VRRP thread: given to its ports' senders (a message for a port, or a
/// port's last sender gone, must wake the loop, which no channel does by itself).
#[derive(Debug, Clone)]
pub struct ThreadWaker(Arc<Waker>);

impl ThreadWaker {
    /// Wakes the loop (a failure to write its event descriptor leaves it to the next event).
    pub fn wake(&self) {
        let _ = self.0.wake();
    }
}

/// What the thread is told besides its ports' messages.
enum ThreadMessage {
    /// A new port, with its messages' receiver.
    Open(Box<Port<VrrpSocket>>, mpsc::UnboundedReceiver<PortMessage>),
    /// The last handle went.
    Stop,
}

#[derive(Debug)]
struct Running {
    tx: std_mpsc::Sender<ThreadMessage>,
    waker: ThreadWaker,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.tx.send(ThreadMessage::Stop);
        self.waker.wake();
    }
}

/// The gap, shared between the handles (which add and remove instances) and the loop.
#[derive(Debug, Default)]
struct Gap {
    /// The advert intervals (centiseconds) of the instances on the thread, with how many
    /// have each: the fastest sets the gap.
    intervals: Mutex<BTreeMap<u16, usize>>,
    /// The gap in nanoseconds (0 until an instance joins: no pacing).
    ns: AtomicU64,
}

impl Gap {
    fn get(&self) -> Duration {
        Duration::from_nanos(self.ns.load(Ordering::Relaxed))
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<u16, usize>)) {
        let mut intervals = self
            .intervals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut intervals);
        let gap = intervals
            .keys()
            .next()
            .map_or(Duration::ZERO, |&cs| wake_gap(cs));
        self.ns.store(
            u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// When the loop last waited and woke, and how many waits in a row were short: whether it
/// is busy, and so lets the gap pass before it waits again.
#[derive(Debug, Default)]
struct Pace {
    waited: Option<Instant>,
    woke: Option<Instant>,
    /// Waits in a row shorter than the gap.
    short: u32,
}

impl Pace {
    /// Before waiting at `now`: how long to let pass first. Busy is two short waits in a row,
    /// since one alone is as often the tail of a burst of adverts as a busy thread.
    fn hold(&self, gap: Duration, now: Instant) -> Option<Duration> {
        let woke = self.woke.filter(|_| self.short >= 2)?;
        let until = woke + gap;
        (until > now).then(|| until - now)
    }

    /// The loop waits from `now`.
    fn waiting(&mut self, now: Instant) {
        self.waited = Some(now);
    }

    /// The loop woke at `now`.
    fn woke(&mut self, gap: Duration, now: Instant) {
        let short = self
            .waited
            .is_some_and(|w| now.saturating_duration_since(w) < gap);
        self.short = if short {
            self.short.saturating_add(1)
        } else {
            0
        };
        self.woke = Some(now);
    }
}

impl VrrpThread {
    /// Puts `port` on the thread, starting the thread if this is the first port. The thread
    /// is made by the calling thread, so it is in the caller's network namespace; it enters
    /// the caller's tokio runtime, where the instances' commands run.
    ///
    /// # Errors
    ///
    /// When there is no tokio runtime to enter, or the poller or the thread cannot be made
    /// (out of descriptors, memory or threads).
    pub(super) fn open(
        &self,
        port: Port<VrrpSocket>,
        rx: mpsc::UnboundedReceiver<PortMessage>,
    ) -> io::Result<ThreadWaker> {
        let running = self.running()?;
        running
            .tx
            .send(ThreadMessage::Open(Box::new(port), rx))
            .map_err(|_| io::Error::other("the VRRP thread stopped"))?;
        running.waker.wake();
        Ok(running.waker.clone())
    }

    fn running(&self) -> io::Result<&Running> {
        if let Some(running) = self.started.get() {
            return Ok(running);
        }
        let runtime = Handle::try_current().map_err(io::Error::other)?;
        let poll = Poll::new()?;
        let waker = ThreadWaker(Arc::new(Waker::new(poll.registry(), WAKE)?));
        let (tx, rx) = std_mpsc::channel();
        let gap = self.gap.clone();
        std::thread::Builder::new()
            .name("ha-lb-vrrp".into())
            .spawn(move || {
                let _entered = runtime.enter();
                EventLoop {
                    poll,
                    rx,
                    gap,
                    ports: HashMap::new(),
                    next: 0,
                    pace: Pace::default(),
                    batch: RecvBatch::default(),
                }
                .run();
            })?;
        // Two first calls at once: the loser's thread stops as its `Running` drops here.
        let _ = self.started.set(Running { tx, waker });
        self.started
            .get()
            .ok_or_else(|| io::Error::other("the VRRP thread did not start"))
    }

    /// An instance advertising every `interval_cs` centiseconds joined: the gap follows the
    /// fastest instance.
    pub fn add_interval(&self, interval_cs: u16) {
        self.gap.update(|i| *i.entry(interval_cs).or_default() += 1);
    }

    /// An instance that [`add_interval`](Self::add_interval)ed left.
    pub fn remove_interval(&self, interval_cs: u16) {
        self.gap.update(|intervals| {
            if let Some(n) = intervals.get_mut(&interval_cs) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    intervals.remove(&interval_cs);
                }
            }
        });
    }

    /// The wake-up gap now (zero without instances): what the tests check.
    #[cfg(test)]
    pub fn gap(&self) -> Duration {
        self.gap.get()
    }
}

/// A port on the loop, with its messages and whether its socket was reported readable.
struct Attached {
    port: Port<VrrpSocket>,
    rx: mpsc::UnboundedReceiver<PortMessage>,
    readable: bool,
}

/// The thread's loop and what it owns.
struct EventLoop {
    poll: Poll,
    rx: std_mpsc::Receiver<ThreadMessage>,
    gap: Arc<Gap>,
    /// By token number.
    ports: HashMap<usize, Attached>,
    /// The next port's token number.
    next: usize,
    pace: Pace,
    /// Receive buffers, shared by the ports (one is read at a time).
    batch: RecvBatch,
}

impl EventLoop {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let gap = self.gap.get();
            let mut now = Instant::now();
            if let Some(hold) = self.pace.hold(gap, now) {
                std::thread::sleep(hold);
                now = Instant::now();
            }
            let timeout = self
                .ports
                .values()
                .filter_map(|a| a.port.deadline())
                .min()
                .map(|d| d.saturating_duration_since(now));
            self.pace.waiting(now);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {
                    for event in &events {
                        if let Some(attached) = self.ports.get_mut(&event.token().0) {
                            attached.readable = true;
                        }
                    }
                }
                // Also a process stopped and continued (SIGSTOP, SIGCONT) ends its wait so, with
                // no events (signal(7)): it waits again, at once, so that the adverts queued
                // meanwhile are reported, and read before the timers that fell due meanwhile.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(error = %e, "VRRP thread: waiting for events");
                    std::thread::sleep(Duration::from_millis(100));
                    for attached in self.ports.values_mut() {
                        attached.readable = true;
                    }
                }
            }
            self.pace.woke(gap, Instant::now());
            if !self.messages() {
                break;
            }
            let mut closed = Vec::new();
            for (&token, attached) in &mut self.ports {
                let readable = std::mem::take(&mut attached.readable);
                if attached
                    .port
                    .after_wake(readable, &mut self.batch, &mut attached.rx)
                {
                    closed.push(token);
                }
            }
            for token in closed {
                if let Some(attached) = self.ports.remove(&token) {
                    let fd = attached.port.socket().as_fd().as_raw_fd();
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                    attached.port.close();
                }
            }
        }
        tracing::debug!("VRRP thread stopped");
    }

    /// Takes the new ports; false when the thread is to stop.
    fn messages(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(ThreadMessage::Open(port, rx)) => self.attach(*port, rx),
                Ok(ThreadMessage::Stop) | Err(std_mpsc::TryRecvError::Disconnected) => {
                    return false
                }
                Err(std_mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn attach(&mut self, port: Port<VrrpSocket>, rx: mpsc::UnboundedReceiver<PortMessage>) {
        let token = self.next;
        self.next = self.next.wrapping_add(1) % WAKE.0;
        let fd = port.socket().as_fd().as_raw_fd();
        // Read only: adverts are sent without waiting (one that finds the send queue full is
        // reported, not queued), and write interest reports write space after every packet.
        match self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
        {
            Ok(()) => {
                tracing::debug!(port = %port.name(), "VRRP port opened");
                // Queued adverts (none yet, or some while it waited here) are read at once.
                self.ports.insert(
                    token,
                    Attached {
                        port,
                        rx,
                        readable: true,
                    },
                );
            }
            Err(e) => {
                // Its instances never start: their drivers are dropped with the port, which
                // removes what they hold; the error is the operator's to see.
                tracing::error!(port = %port.name(), error = %e, "VRRP port: cannot wait for its socket");
                port.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_gap_is_a_twentieth_of_the_fastest_interval_at_most_five_ms() {
        assert_eq!(wake_gap(1), Duration::from_micros(500));
        assert_eq!(wake_gap(2), Duration::from_millis(1));
        assert_eq!(wake_gap(4), Duration::from_millis(2));
        assert_eq!(wake_gap(10), Duration::from_millis(5));
        assert_eq!(wake_gap(100), MAX_WAKE_GAP);
        assert_eq!(wake_gap(u16::MAX), MAX_WAKE_GAP);
    }

    #[test]
    fn the_fastest_instance_sets_the_gap_until_it_leaves() {
        let t = VrrpThread::default();
        assert_eq!(t.gap(), Duration::ZERO);
        t.add_interval(100);
        assert_eq!(t.gap(), MAX_WAKE_GAP);
        t.add_interval(1);
        t.add_interval(1);
        assert_eq!(t.gap(), Duration::from_micros(500));
        t.remove_interval(1);
        assert_eq!(t.gap(), Duration::from_micros(500));
        t.remove_interval(1);
        assert_eq!(t.gap(), MAX_WAKE_GAP);
        t.remove_interval(100);
        assert_eq!(t.gap(), Duration::ZERO);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Busy (two waits in a row shorter than the gap), the loop lets the gap since it woke
    /// pass before it waits again; after one short wait it does not.
    #[test]
    fn a_busy_loop_waits_out_the_gap() {
        let gap = ms(5);
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert_eq!(pace.hold(gap, t0), None);
        pace.waiting(t0);
        pace.woke(gap, t0 + ms(1));
        assert_eq!(pace.hold(gap, t0 + ms(1)), None, "one short wait");
        pace.waiting(t0 + ms(1));
        pace.woke(gap, t0 + ms(2));
        assert_eq!(
            pace.hold(gap, t0 + ms(3)),
            Some(ms(4)),
            "two: until woke + gap"
        );
        assert_eq!(pace.hold(gap, t0 + ms(8)), None, "the gap already passed");
    }

    /// A wait as long as the gap ends the busy spell: the next wait starts at once.
    #[test]
    fn an_idle_loop_does_not_wait() {
        let gap = ms(5);
        let t0 = Instant::now();
        let mut pace = Pace::default();
        for i in 0..3 {
            pace.waiting(t0 + ms(i));
            pace.woke(gap, t0 + ms(i + 1));
        }
        assert!(pace.hold(gap, t0 + ms(3)).is_some());
        pace.waiting(t0 + ms(3));
        pace.woke(gap, t0 + ms(23));
        assert_eq!(pace.hold(gap, t0 + ms(23)), None);
        // No gap (no instance yet): never busy.
        let mut pace = Pace::default();
        for i in 0..3 {
            pace.waiting(t0 + ms(i));
            pace.woke(Duration::ZERO, t0 + ms(i));
        }
        assert_eq!(pace.hold(Duration::ZERO, t0 + ms(3)), None);
    }
}
