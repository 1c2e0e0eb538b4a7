//! The sans-IO core of a monitor: rise/fall counting and check scheduling, with time passed in.
//!
//! No clock, no sockets, no runtime: [`Tracker`] is driven with `handle_*` calls that carry
//! `now`, tells when the next check is due with [`Tracker::poll_timeout`], and queues
//! transitions for [`Tracker::poll_transition`]. [`Monitor`](crate::Monitor) drives it with tokio;
//! tests drive it with made-up instants.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::MonitorConfig;
use crate::error::ConfigError;
use crate::failure::Outcome;
use crate::state::{Reason, Source, State, Transition};
use fastrand::Rng;

/// A point-in-time view of a tracker, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The current state.
    pub state: State,
    /// Successes in a row so far.
    pub successes: u32,
    /// Failures in a row so far.
    pub failures: u32,
    /// The last outcome recorded, active or passive.
    pub last: Option<Outcome>,
    /// How many active checks have completed.
    pub checks: u64,
    /// How many passive outcomes have been reported.
    pub passive: u64,
}

/// Rise/fall state machine and check scheduler of one target.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: MonitorConfig,
    state: State,
    successes: u32,
    failures: u32,
    /// When the next check is due; `None` while one runs.
    next_due: Option<Instant>,
    rng: Rng,
    seq: u64,
    transitions: VecDeque<Transition>,
    last: Option<Outcome>,
    checks: u64,
    passive: u64,
}

impl Tracker {
    /// A tracker in `config.initial` state whose first check is due within
    /// `jitter`×`interval` of `now`; `seed` drives the jitter.
    pub fn new(config: &MonitorConfig, now: Instant, seed: u64) -> Result<Tracker, ConfigError> {
        config.validate()?;
        let mut rng = Rng::with_seed(seed);
        let first = config.interval.mul_f64(config.jitter * rng.f64());
        Ok(Tracker {
            config: config.clone(),
            state: config.initial,
            successes: 0,
            failures: 0,
            next_due: Some(now + first),
            rng,
            seq: 0,
            transitions: VecDeque::new(),
            last: None,
            checks: 0,
            passive: 0,
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration in force.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// When the next check is due, or `None` while a check is running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_due
    }

    /// Whether a check should start now; if so the tracker counts it as running until
    /// [`Tracker::handle_check_result`].
    pub fn poll_check(&mut self, now: Instant) -> bool {
        match self.next_due {
            Some(due) if now >= due => {
                self.next_due = None;
                true
            }
            _ => false,
        }
    }

    /// Records the outcome of the running check and schedules the next one.
    pub fn handle_check_result(&mut self, now: Instant, outcome: Outcome) {
        self.checks += 1;
        self.record(now, outcome, Source::Active);
        let delay = self.next_delay();
        self.next_due = Some(now + delay);
    }

    /// Records an outcome observed by the data path; it counts like a check. If it makes a
    /// transition pending, the next check is brought forward to the faster interval.
    pub fn handle_passive(&mut self, now: Instant, outcome: Outcome) {
        self.passive += 1;
        self.record(now, outcome, Source::Passive);
        if let Some(due) = self.next_due {
            let delay = self.next_delay();
            self.next_due = Some(due.min(now + delay));
        }
    }

    /// The next queued transition, oldest first.
    pub fn poll_transition(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    /// A view of the counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            successes: self.successes,
            failures: self.failures,
            last: self.last.clone(),
            checks: self.checks,
            passive: self.passive,
        }
    }

    fn record(&mut self, now: Instant, outcome: Outcome, source: Source) {
        let ok = outcome.is_ok();
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let (to, streak) = match (self.state, ok) {
            (State::Unknown, true) => (State::Up, self.successes),
            (State::Unknown, false) => (State::Down, self.failures),
            (State::Down, true) if self.successes >= self.config.rise => {
                (State::Up, self.successes)
            }
            (State::Up, false) if self.failures >= self.config.fall => (State::Down, self.failures),
            _ => (self.state, 0),
        };
        if to != self.state {
            self.seq += 1;
            self.transitions.push_back(Transition {
                seq: self.seq,
                at: now,
                from: self.state,
                to,
                reason: Reason {
                    source,
                    outcome: outcome.clone(),
                    streak,
                },
            });
            self.state = to;
        }
        self.last = Some(outcome);
    }

    /// Whether results of the other kind have started a streak that may change the state.
    fn transition_pending(&self) -> bool {
        match self.state {
            State::Up => self.failures > 0,
            State::Down => self.successes > 0,
            State::Unknown => true,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = if self.transition_pending() {
            self.config.fastinter()
        } else if self.state == State::Down {
            self.config.downinter()
        } else {
            self.config.interval
        };
        let spread = self.config.jitter * (2.0 * self.rng.f64() - 1.0);
        base.mul_f64(1.0 + spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;

    fn config() -> MonitorConfig {
        MonitorConfig {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            initial: State::Up,
            fastinter: Some(Duration::from_millis(500)),
            downinter: Some(Duration::from_secs(5)),
            jitter: 0.0,
        }
    }

    fn fail() -> Outcome {
        Err(Failure::Refused)
    }

    /// Runs one check at its due time with `outcome`; returns the time it ran.
    fn step(t: &mut Tracker, outcome: Outcome) -> Instant {
        let due = t.poll_timeout().unwrap();
        assert!(!t.poll_check(due - Duration::from_millis(1)), "not due yet");
        assert!(t.poll_check(due));
        assert_eq!(t.poll_timeout(), None, "no second check while one runs");
        t.handle_check_result(due, outcome);
        due
    }

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let start = Instant::now();
        let mut t = Tracker::new(&config(), start, 1).unwrap();
        assert_eq!(t.state(), State::Up);
        step(&mut t, fail());
        step(&mut t, fail());
        assert_eq!(t.state(), State::Up);
        assert!(t.poll_transition().is_none());
        step(&mut t, fail());
        assert_eq!(t.state(), State::Down);
        let tr = t.poll_transition().unwrap();
        assert_eq!((tr.seq, tr.from, tr.to), (1, State::Up, State::Down));
        assert_eq!(tr.reason.streak, 3);
        assert_eq!(tr.reason.outcome, fail());
        step(&mut t, Ok(()));
        assert_eq!(t.state(), State::Down);
        step(&mut t, Ok(()));
        assert_eq!(t.state(), State::Up);
        let tr = t.poll_transition().unwrap();
        assert_eq!((tr.seq, tr.from, tr.to), (2, State::Down, State::Up));
        assert!(t.poll_transition().is_none());
    }

    #[test]
    fn a_success_breaks_a_failure_streak() {
        let mut t = Tracker::new(&config(), Instant::now(), 1).unwrap();
        for _ in 0..10 {
            step(&mut t, fail());
            step(&mut t, fail());
            step(&mut t, Ok(()));
        }
        assert_eq!(t.state(), State::Up);
        assert!(t.poll_transition().is_none());
    }

    #[test]
    fn intervals_follow_fastinter_and_downinter() {
        let mut t = Tracker::new(&config(), Instant::now(), 1).unwrap();
        let gap = |t: &mut Tracker, outcome| {
            let at = step(t, outcome);
            t.poll_timeout().unwrap() - at
        };
        assert_eq!(gap(&mut t, Ok(())), Duration::from_secs(2), "settled up");
        assert_eq!(
            gap(&mut t, fail()),
            Duration::from_millis(500),
            "going down"
        );
        assert_eq!(
            gap(&mut t, fail()),
            Duration::from_millis(500),
            "going down"
        );
        assert_eq!(gap(&mut t, fail()), Duration::from_secs(5), "settled down");
        assert_eq!(gap(&mut t, fail()), Duration::from_secs(5), "settled down");
        assert_eq!(gap(&mut t, Ok(())), Duration::from_millis(500), "going up");
        assert_eq!(gap(&mut t, Ok(())), Duration::from_secs(2), "settled up");
    }

    #[test]
    fn unknown_is_settled_by_the_first_result() {
        let mut cfg = config();
        cfg.initial = State::Unknown;
        let mut t = Tracker::new(&cfg, Instant::now(), 1).unwrap();
        step(&mut t, fail());
        let tr = t.poll_transition().unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.reason.streak),
            (State::Unknown, State::Down, 1)
        );

        let mut t = Tracker::new(&cfg, Instant::now(), 1).unwrap();
        step(&mut t, Ok(()));
        assert_eq!(t.poll_transition().unwrap().to, State::Up);
    }

    #[test]
    fn initial_down_needs_rise_successes() {
        let mut cfg = config();
        cfg.initial = State::Down;
        let mut t = Tracker::new(&cfg, Instant::now(), 1).unwrap();
        step(&mut t, Ok(()));
        assert_eq!(t.state(), State::Down);
        step(&mut t, Ok(()));
        assert_eq!(t.state(), State::Up);
    }

    #[test]
    fn passive_failures_count_and_pull_the_next_check_forward() {
        let start = Instant::now();
        let mut t = Tracker::new(&config(), start, 1).unwrap();
        let ran = step(&mut t, Ok(()));
        assert_eq!(t.poll_timeout(), Some(ran + Duration::from_secs(2)));
        let now = ran + Duration::from_millis(100);
        t.handle_passive(now, Err(Failure::Passive("connect refused".into())));
        assert_eq!(t.poll_timeout(), Some(now + Duration::from_millis(500)));
        t.handle_passive(now, Err(Failure::Passive("connect refused".into())));
        t.handle_passive(now, Err(Failure::Passive("connect refused".into())));
        let tr = t.poll_transition().unwrap();
        assert_eq!((tr.to, tr.reason.source), (State::Down, Source::Passive));
        assert_eq!(t.snapshot().passive, 3);
    }

    #[test]
    fn passive_result_during_a_check_keeps_the_check_running() {
        let mut t = Tracker::new(&config(), Instant::now(), 1).unwrap();
        let due = t.poll_timeout().unwrap();
        assert!(t.poll_check(due));
        t.handle_passive(due, fail());
        assert_eq!(t.poll_timeout(), None);
        t.handle_check_result(due, fail());
        assert_eq!(t.snapshot().failures, 2);
    }

    #[test]
    fn jitter_spreads_delays_within_bounds() {
        let mut cfg = config();
        cfg.jitter = 0.2;
        let start = Instant::now();
        let mut firsts = Vec::new();
        for seed in 0..200 {
            let t = Tracker::new(&cfg, start, seed).unwrap();
            let first = t.poll_timeout().unwrap() - start;
            assert!(first <= Duration::from_millis(400), "{first:?}");
            firsts.push(first);
        }
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() > 150, "first checks spread out");
        // Both halves of the window are used.
        assert!(firsts.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(firsts.iter().any(|d| *d > Duration::from_millis(300)));

        let mut t = Tracker::new(&cfg, start, 42).unwrap();
        let mut gaps = Vec::new();
        for _ in 0..200 {
            let at = step(&mut t, Ok(()));
            gaps.push(t.poll_timeout().unwrap() - at);
        }
        assert!(gaps
            .iter()
            .all(|g| *g >= Duration::from_millis(1600) && *g <= Duration::from_millis(2400)));
        assert!(gaps.iter().any(|g| *g < Duration::from_millis(1800)));
        assert!(gaps.iter().any(|g| *g > Duration::from_millis(2200)));
    }

    #[test]
    fn zero_jitter_is_exact() {
        let start = Instant::now();
        let t = Tracker::new(&config(), start, 9).unwrap();
        assert_eq!(t.poll_timeout(), Some(start));
    }

    #[test]
    fn bad_config_is_rejected() {
        let mut cfg = config();
        cfg.rise = 0;
        assert!(matches!(
            Tracker::new(&cfg, Instant::now(), 0),
            Err(ConfigError::ZeroThreshold { field: "rise" })
        ));
        let mut cfg = config();
        cfg.interval = Duration::ZERO;
        assert!(matches!(
            Tracker::new(&cfg, Instant::now(), 0),
            Err(ConfigError::ZeroDuration { field: "interval" })
        ));
        let mut cfg = config();
        cfg.jitter = 0.9;
        assert!(Tracker::new(&cfg, Instant::now(), 0).is_err());
    }
}
