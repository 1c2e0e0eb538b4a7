//! A monitor per target: runs its check on schedule under tokio and publishes state changes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::check::{run_with_timeout, Check};
use crate::config::MonitorConfig;
use crate::error::ConfigError;
use crate::failure::Outcome;
use crate::state::{State, Transition};
use crate::tracker::{Snapshot, Tracker};

/// What a subscriber receives: the current state and every transition from now on.
#[derive(Debug)]
pub struct Subscription {
    /// The current state; `changed()` wakes on every state change (intermediate values may be
    /// skipped by a slow reader, as with any `watch`).
    pub state: watch::Receiver<State>,
    /// Every transition after the subscription, in order, none lost (unbounded: transitions
    /// are rare, at most one per check). Ends when the [`Monitor`] is dropped.
    pub transitions: mpsc::UnboundedReceiver<Transition>,
}

struct Inner {
    tracker: Tracker,
    subscribers: Vec<mpsc::UnboundedSender<Transition>>,
}

struct Shared {
    name: String,
    inner: Mutex<Inner>,
    state: watch::Sender<State>,
    /// Wakes the task when a passive report may have moved the next check earlier.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the tracker half-updated in a way that
        // matters more than stopping health checks would, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes queued transitions; called with the lock held so that the order in which
    /// outcomes were recorded is the order subscribers see.
    fn publish(&self, inner: &mut Inner) {
        while let Some(t) = inner.tracker.poll_transition() {
            tracing::info!(
                target: "healthcheck",
                name = %self.name,
                from = %t.from,
                to = %t.to,
                seq = t.seq,
                "{}: {}", self.name, t
            );
            self.state.send_replace(t.to);
            inner.subscribers.retain(|s| s.send(t.clone()).is_ok());
        }
    }

    fn report(&self, outcome: Outcome) {
        let mut inner = self.lock();
        let due = inner.tracker.poll_timeout();
        inner.tracker.handle_passive(now(), outcome);
        // Wake the task only when its next check moved earlier: a busy data path reporting
        // every connection must not cost a wake-up each.
        let earlier = inner.tracker.poll_timeout() < due;
        self.publish(&mut inner);
        drop(inner);
        if earlier {
            self.wake.notify_one();
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Health of one target: runs a [`Check`] on the schedule of a [`MonitorConfig`] in a tokio
/// task, and publishes the state (a `watch`) and every transition (a lossless stream).
///
/// Dropping the monitor stops its task and ends the transition streams.
pub struct Monitor {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("name", &self.shared.name)
            .field("state", &*self.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Starts monitoring with `check` on the current tokio runtime; `name` appears in logs.
    ///
    /// Fails if `config` does not validate. Must be called from within a tokio runtime.
    pub fn spawn<C: Check>(
        name: impl Into<String>,
        check: C,
        config: &MonitorConfig,
    ) -> Result<Monitor, ConfigError> {
        Monitor::start(
            &Handle::current(),
            name.into(),
            check,
            config,
            fastrand::u64(..),
        )
    }

    /// Starts monitoring on the runtime of `handle`, e.g. a current-thread runtime on a thread
    /// of its own: many monitors cost least there (see BENCHMARKS.md), and they stay off the
    /// data path's workers.
    pub fn spawn_on<C: Check>(
        handle: &Handle,
        name: impl Into<String>,
        check: C,
        config: &MonitorConfig,
    ) -> Result<Monitor, ConfigError> {
        Monitor::start(handle, name.into(), check, config, fastrand::u64(..))
    }

    /// Like [`Monitor::spawn`] with a fixed seed for the jitter, for reproducible tests.
    pub fn spawn_seeded<C: Check>(
        name: impl Into<String>,
        check: C,
        config: &MonitorConfig,
        seed: u64,
    ) -> Result<Monitor, ConfigError> {
        Monitor::start(&Handle::current(), name.into(), check, config, seed)
    }

    fn start<C: Check>(
        handle: &Handle,
        name: String,
        check: C,
        config: &MonitorConfig,
        seed: u64,
    ) -> Result<Monitor, ConfigError> {
        let tracker = Tracker::new(config, now(), seed)?;
        let (state, _) = watch::channel(tracker.state());
        let shared = Arc::new(Shared {
            name,
            inner: Mutex::new(Inner {
                tracker,
                subscribers: Vec::new(),
            }),
            state,
            wake: Notify::new(),
        });
        let task = handle.spawn(run(shared.clone(), check, config.timeout));
        Ok(Monitor { shared, task })
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.shared.state.borrow()
    }

    /// Counters and the last outcome.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().tracker.snapshot()
    }

    /// The current state and every later transition. The state and the stream are taken
    /// together, so the first transition received starts from the state seen.
    pub fn subscribe(&self) -> Subscription {
        let mut inner = self.shared.lock();
        let (tx, transitions) = mpsc::unbounded_channel();
        inner.subscribers.push(tx);
        Subscription {
            state: self.shared.state.subscribe(),
            transitions,
        }
    }

    /// Records an outcome seen by the data path (e.g. `Err(Failure::Passive("connect
    /// refused".into()))`); it counts toward rise/fall like a check.
    pub fn report_passive(&self, outcome: Outcome) {
        self.shared.report(outcome);
    }

    /// A cheap, cloneable handle for the data path to report passive outcomes.
    pub fn reporter(&self) -> PassiveReporter {
        PassiveReporter {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
        // Reporters may keep the shared state alive; end the streams now.
        self.shared.lock().subscribers.clear();
    }
}

/// Reports passive outcomes to a [`Monitor`]; clone one into each connection handler.
#[derive(Clone)]
pub struct PassiveReporter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PassiveReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassiveReporter")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl PassiveReporter {
    /// See [`Monitor::report_passive`].
    pub fn report(&self, outcome: Outcome) {
        self.shared.report(outcome);
    }
}

async fn run<C: Check>(shared: Arc<Shared>, check: C, timeout: Duration) {
    loop {
        let due = shared.lock().tracker.poll_timeout();
        let Some(due) = due else {
            // Only while a check runs, which is not the case here; wait to be woken anyway.
            shared.wake.notified().await;
            continue;
        };
        tokio::select! {
            () = tokio::time::sleep_until(Instant::from_std(due)) => {}
            () = shared.wake.notified() => continue,
        }
        if !shared.lock().tracker.poll_check(now()) {
            continue;
        }
        let outcome = run_with_timeout(&check, timeout).await;
        if let Err(failure) = &outcome {
            tracing::debug!(target: "healthcheck", name = %shared.name, %failure, "check failed");
        }
        let mut inner = shared.lock();
        inner.tracker.handle_check_result(now(), outcome);
        shared.publish(&mut inner);
    }
}
