//! The measuring client of the failover tests: a request to a target every 5 ms from a
//! namespace, each on a thread of its own on a fixed timetable (a request caught in flight
//! when a VIP or route moves hangs until its timeout, and must neither delay the next probe nor
//! hide the answers the others get meanwhile), and what the samples tell: the longest gap
//! between answers, failures, which backends or balancers answered.
//!
//! Included by `tests/e2e/main.rs` with `#[path]`, as `netns.rs` is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test module uses a part

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use crate::netns::{wait_until, Netns};

/// How often the client starts a request.
pub const PROBE_EVERY: Duration = Duration::from_millis(5);

/// One request as the client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was started.
    pub started: Instant,
    /// When it was answered or failed.
    pub at: Instant,
    /// The backend's answer (trimmed), `None` if it failed.
    pub answer: Option<String>,
}

impl Sample {
    /// Whether it was answered.
    pub fn ok(&self) -> bool {
        self.answer.is_some()
    }

    /// The balancer that served it (its backend-LAN address), for backends started with
    /// [`crate::backend::Answer::NameAndPeer`].
    pub fn via(&self) -> Option<&str> {
        self.answer.as_deref()?.split(" via ").nth(1)
    }
}

/// One request: connect within 100 ms, read the whole answer within 500 ms. An answer counts
/// only if it is a backend's (the test backends are named `b...`).
pub fn request(target: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_millis(100)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let text = text.trim().to_owned();
    text.starts_with('b').then_some(text)
}

/// A client starting a request to `target` every [`PROBE_EVERY`], until dropped or stopped.
pub struct Client {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    scheduler: Option<JoinHandle<()>>,
}

impl Client {
    /// Starts probing `target` (`ip:port`) from `ns`.
    pub fn start(ns: &Netns, target: &str) -> Self {
        let target: SocketAddr = target.parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), samples.clone());
        let netns = Arc::new(File::open(format!("/run/netns/{}", ns.name())).unwrap());
        let scheduler = thread::spawn(move || {
            let mut probes: Vec<JoinHandle<()>> = Vec::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let (netns, out) = (netns.clone(), out.clone());
                probes.push(thread::spawn(move || {
                    setns(&*netns, CloneFlags::CLONE_NEWNET).unwrap();
                    let started = Instant::now();
                    let answer = request(target);
                    let at = Instant::now();
                    out.lock().unwrap().push(Sample {
                        started,
                        at,
                        answer,
                    });
                }));
                probes.retain(|p| !p.is_finished());
                next += PROBE_EVERY;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            for p in probes {
                let _ = p.join();
            }
        });
        Client {
            stop,
            samples,
            scheduler: Some(scheduler),
        }
    }

    /// The samples so far, in the order the answers came.
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples = self.samples.lock().unwrap().clone();
        samples.sort_by_key(|s| s.at);
        samples
    }

    /// Stops probing, waits for the requests in flight (also those that hang until their
    /// timeout) and returns every sample, in the order the answers came.
    pub fn stop(&mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.scheduler.take() {
            let _ = t.join();
        }
        self.samples()
    }

    /// Waits until `n` requests started at or after `since` were answered.
    pub fn wait_successes(&self, since: Instant, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.samples()
                .iter()
                .filter(|s| s.started >= since && s.ok())
                .count()
                >= n
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The longest time without a successful answer within `[from, to]` (by answer time).
pub fn longest_gap(samples: &[Sample], from: Instant, to: Instant) -> Duration {
    let mut last = from;
    let mut gap = Duration::ZERO;
    for s in samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to && s.ok())
    {
        gap = gap.max(s.at - last);
        last = s.at;
    }
    gap.max(to.saturating_duration_since(last))
}

/// The distinct answers (backend names) that came at or after `from`.
pub fn answers(samples: &[Sample], from: Instant) -> BTreeSet<String> {
    samples
        .iter()
        .filter(|s| s.at >= from)
        .filter_map(|s| s.answer.clone())
        .collect()
}

/// Failed requests that ended within `[from, to]`.
pub fn failures(samples: &[Sample], from: Instant, to: Instant) -> usize {
    samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to && !s.ok())
        .count()
}

/// Failed requests among those started within `[from, to]`.
pub fn failures_started(samples: &[Sample], from: Instant, to: Instant) -> usize {
    samples
        .iter()
        .filter(|s| s.started >= from && s.started <= to && !s.ok())
        .count()
}

/// Answers per balancer ([`Sample::via`]) among the requests started within `[from, to]`.
pub fn per_balancer(samples: &[Sample], from: Instant, to: Instant) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.started >= from && s.started <= to)
    {
        if let Some(via) = s.via() {
            *out.entry(via.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

/// From `from` until the first request started after the last failed one (started within
/// `[from, to]`): how long clients were not all served. Zero when nothing failed.
pub fn outage(samples: &[Sample], from: Instant, to: Instant) -> Duration {
    samples
        .iter()
        .filter(|s| s.started >= from && s.started <= to && !s.ok())
        .map(|s| s.started)
        .max()
        .and_then(|last| {
            samples
                .iter()
                .map(|s| s.started)
                .filter(|&t| t > last)
                .min()
                .map(|next| next - from)
        })
        .unwrap_or(Duration::ZERO)
}

/// The start of the last request in `samples` (the end of a window over all of them).
pub fn last_started(samples: &[Sample]) -> Instant {
    samples.iter().map(|s| s.started).max().unwrap()
}

/// Milliseconds, for messages.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}
