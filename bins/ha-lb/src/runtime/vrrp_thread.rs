//! The thread every VRRP port of `ha-lb run` runs on: a current-thread tokio runtime of its
//! own, as keepalived's VRRP process is one single-threaded event loop, which wakes at most
//! once per [wake-up gap](wake_gap) while busy.
//!
//! Why a thread: on the node's multi-thread runtime, adverts sent and received woke worker
//! threads and handed tasks between them (wake-ups, work stealing, the kernel's task
//! switches), which cost more CPU than the adverts once hundreds of instances ran. On one
//! thread that does nothing else, a wake-up runs every due timer and reads every queued
//! advert of every port, and nothing competes with it: health checks, the balancer and the
//! admin endpoint stay on the main runtime.
//!
//! Why a gap: with hundreds of instances, adverts arrive and timers fall due every fraction
//! of a millisecond, and each arrival wakes the thread (epoll reports every new datagram), so
//! a Backup of 500 instances woke about 2,000 times a second, each wake-up costing more than
//! the advert it read. While busy (its last sleep was shorter than the gap), the thread lets
//! the gap pass before it looks again, and then handles everything that came and fell due
//! meanwhile in one go. Adverts read late keep the time the kernel received them
//! (`SO_TIMESTAMPNS`), so a Backup's timers are not fooled; an advert due meanwhile leaves at
//! most one gap late and the next keeps its schedule (no drift). A thread that is not busy
//! does not wait: one wake-up per event, as before.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The longest wake-up gap, for advert intervals of 100 ms and more: 5 % of the interval
/// there, as below. Each wake-up costs about as much as a few adverts (the pacing sleep, epoll,
/// the timers' bookkeeping), so at hundreds of instances fewer, fuller wake-ups are most of
/// what the Backup can still save (tokio's timers round up to 1 ms anyway).
pub const MAX_WAKE_GAP: Duration = Duration::from_millis(5);

/// The wake-up gap for routers advertising every `interval_cs` centiseconds at the fastest:
/// a twentieth of the interval, at most [`MAX_WAKE_GAP`] (0.5 ms at the shortest interval,
/// 10 ms): an advert never leaves later than 5 % of its interval because of it.
pub fn wake_gap(interval_cs: u16) -> Duration {
    (Duration::from_millis(10) * u32::from(interval_cs) / 20).min(MAX_WAKE_GAP)
}

/// The VRRP thread, started by the first port that needs it and stopped when the last
/// [`VrrpThread`] handle goes (its runtime drops whatever tasks are left).
#[derive(Debug, Clone, Default)]
pub struct VrrpThread {
    started: Arc<OnceLock<Running>>,
    pace: Arc<Pace>,
}

#[derive(Debug)]
struct Running {
    handle: Handle,
    /// Dropped with the last handle: the thread's `block_on` returns and its runtime goes.
    _stop: oneshot::Sender<()>,
}

/// What the thread's park hooks share: the gap, and when the thread last parked and woke.
#[derive(Debug, Default)]
struct Pace {
    /// The advert intervals (centiseconds) of the instances on the thread, with how many
    /// have each: the fastest sets the gap.
    intervals: Mutex<BTreeMap<u16, usize>>,
    /// The gap in nanoseconds (0 until an instance joins: no pacing).
    gap_ns: AtomicU64,
    /// The last sleeps.
    last: Mutex<Sleeps>,
    /// Times the thread parked (for tests).
    parks: AtomicU64,
    /// Times it first let the gap pass (for tests).
    paced: AtomicU64,
}

/// When the thread last parked and woke, and how many parks in a row were short.
#[derive(Debug, Default)]
struct Sleeps {
    parked: Option<Instant>,
    woke: Option<Instant>,
    /// Parks in a row shorter than the gap.
    short: u32,
}

impl Pace {
    fn gap(&self) -> Duration {
        Duration::from_nanos(self.gap_ns.load(Ordering::Relaxed))
    }

    /// Before the thread sleeps: if its last two sleeps were shorter than the gap (busy),
    /// it first lets the gap since it woke pass. Two, because a wake-up is often followed by
    /// a park that does not block (the driver woke a task, which left a wake-up pending):
    /// one short park alone does not mean busy.
    fn before_park(&self) {
        let gap = self.gap();
        let (short, woke) = {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            (last.short, last.woke)
        };
        if let Some(woke) = woke.filter(|_| short >= 2) {
            let until = woke + gap;
            let now = Instant::now();
            if until > now {
                self.paced.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(until - now);
            }
        }
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .parked = Some(Instant::now());
    }

    fn after_unpark(&self) {
        self.parks.fetch_add(1, Ordering::Relaxed);
        let gap = self.gap();
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let was_short = last
            .parked
            .is_some_and(|p| now.saturating_duration_since(p) < gap);
        last.short = if was_short {
            last.short.saturating_add(1)
        } else {
            0
        };
        last.woke = Some(now);
    }

    fn set_gap(&self, intervals: &BTreeMap<u16, usize>) {
        let gap = intervals
            .keys()
            .next()
            .map_or(Duration::ZERO, |&cs| wake_gap(cs));
        self.gap_ns.store(
            u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

impl VrrpThread {
    /// The runtime's handle, starting the thread if this is the first call. The thread is
    /// made by the calling thread, so it is in the caller's network namespace.
    ///
    /// # Errors
    ///
    /// When the runtime or the thread cannot be made (out of memory or threads).
    pub fn handle(&self) -> io::Result<Handle> {
        if let Some(r) = self.started.get() {
            return Ok(r.handle.clone());
        }
        let (park, unpark) = (self.pace.clone(), self.pace.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(move || park.before_park())
            .on_thread_unpark(move || unpark.after_unpark())
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ha-lb-vrrp".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        // Two first calls at once: the loser's thread stops as its sender drops here.
        let running = self.started.get_or_init(|| Running {
            handle,
            _stop: stop,
        });
        Ok(running.handle.clone())
    }

    /// An instance advertising every `interval_cs` centiseconds joined: the gap follows the
    /// fastest instance.
    pub fn add_interval(&self, interval_cs: u16) {
        let mut intervals = self
            .pace
            .intervals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *intervals.entry(interval_cs).or_default() += 1;
        self.pace.set_gap(&intervals);
    }

    /// An instance that [`add_interval`](Self::add_interval)ed left.
    pub fn remove_interval(&self, interval_cs: u16) {
        let mut intervals = self
            .pace
            .intervals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = intervals.get_mut(&interval_cs) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                intervals.remove(&interval_cs);
            }
        }
        self.pace.set_gap(&intervals);
    }

    /// The wake-up gap now (zero without instances): what the tests check.
    #[cfg(test)]
    pub fn gap(&self) -> Duration {
        self.pace.gap()
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

    /// Busy (timers due every 100 µs for 300 ms), the thread parks about once per gap (5 ms),
    /// where tokio's 1 ms timer alone would wake it about 300 times.
    #[test]
    fn a_busy_thread_wakes_once_per_gap() {
        let t = VrrpThread::default();
        t.add_interval(100);
        let handle = t.handle().unwrap();
        let busy = handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(100));
            let start = tokio::time::Instant::now();
            while start.elapsed() < Duration::from_millis(300) {
                tick.tick().await;
            }
        });
        let parks = t.pace.parks.load(Ordering::Relaxed);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(busy).unwrap();
        let parks = t.pace.parks.load(Ordering::Relaxed) - parks;
        let gap_ms = u64::try_from(MAX_WAKE_GAP.as_millis()).unwrap();
        assert!(parks <= 300 / gap_ms + 15, "{parks} parks in 300 ms");
        assert!(t.pace.paced.load(Ordering::Relaxed) > 0);
    }

    /// Not busy (one timer every 20 ms), the thread sleeps at once: one wake-up per timer,
    /// none for the gap.
    #[test]
    fn an_idle_thread_does_not_wait() {
        let t = VrrpThread::default();
        t.add_interval(100);
        let handle = t.handle().unwrap();
        let slow = handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for _ in 0..10 {
                tick.tick().await;
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(slow).unwrap();
        // A thread that waited the gap before every sleep would have done so about 10
        // times; the first wake-ups (the thread starting, the task spawned from another
        // thread, a loaded machine) may look busy.
        let paced = t.pace.paced.load(Ordering::Relaxed);
        assert!(
            paced <= 4,
            "waited the gap {paced} times for 9 timers 20 ms apart"
        );
    }
}
