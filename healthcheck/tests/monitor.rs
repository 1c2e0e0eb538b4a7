//! The monitor under tokio's paused clock: schedules, rise/fall, timeouts, passive input,
//! jitter and the lossless transition stream, all in virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use healthcheck::{Check, Failure, Monitor, MonitorConfig, Outcome, Source, State, Transition};
use tokio::time::{sleep, Instant};

/// A check whose outcomes are scripted (the last one repeats) and whose calls are recorded.
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Option<bool>>>>,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    /// `Some(true)` healthy, `Some(false)` refused, `None` hangs forever.
    fn new(script: impl IntoIterator<Item = Option<bool>>) -> Scripted {
        Scripted {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            calls: Arc::default(),
        }
    }

    fn healthy() -> Scripted {
        Scripted::new([Some(true)])
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Check for Scripted {
    async fn check(&self) -> Outcome {
        self.calls.lock().unwrap().push(Instant::now());
        let next = {
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                *script.front().unwrap()
            }
        };
        match next {
            Some(true) => Ok(()),
            Some(false) => Err(Failure::Refused),
            None => {
                sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        }
    }

    fn describe(&self) -> String {
        "scripted".into()
    }
}

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

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Transition>) -> Vec<Transition> {
    let mut out = Vec::new();
    while let Ok(t) = rx.try_recv() {
        out.push(t);
    }
    out
}

/// Timers fire on millisecond ticks, so allow a tick of rounding.
fn assert_near(actual: Duration, expected: Duration, what: &str) {
    let diff = actual.abs_diff(expected);
    assert!(
        diff <= Duration::from_millis(2),
        "{what}: {actual:?} != {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn schedule_follows_interval_fastinter_and_downinter() {
    let t = |b| Some(b);
    let check = Scripted::new(
        [t(true), t(true), t(false), t(false), t(false), t(false)]
            .into_iter()
            .chain([t(true), t(true), t(true)]),
    );
    let start = Instant::now();
    let monitor = Monitor::spawn_seeded("sched", check.clone(), &config(), 1).unwrap();
    let mut sub = monitor.subscribe();
    sleep(Duration::from_secs(30)).await;

    let calls = check.calls();
    assert!(calls.len() >= 10, "{} calls", calls.len());
    assert_near(calls[0] - start, Duration::ZERO, "first check at once");
    let ms = Duration::from_millis;
    // The gap after each outcome: settled up 2 s, pending 0.5 s, settled down 5 s.
    let expected = [2000, 2000, 500, 500, 5000, 5000, 500, 2000, 2000];
    for (i, want) in expected.iter().enumerate() {
        assert_near(
            calls[i + 1] - calls[i],
            ms(*want),
            &format!("gap after check {i}"),
        );
    }

    let got = drain(&mut sub.transitions);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].from, got[0].to, got[0].seq),
        (State::Up, State::Down, 1)
    );
    assert_eq!(got[0].reason.outcome, Err(Failure::Refused));
    assert_near(
        got[0].at - start.into_std(),
        ms(5000),
        "down at the 3rd failure",
    );
    assert_eq!(
        (got[1].from, got[1].to, got[1].seq),
        (State::Down, State::Up, 2)
    );
    assert_near(
        got[1].at - start.into_std(),
        ms(15500),
        "up at the 2nd success",
    );
}

#[tokio::test(start_paused = true)]
async fn transitions_are_lossless_and_ordered() {
    // rise = fall = 1 and a flapping target: every check is a transition.
    let flaps: Vec<Option<bool>> = (0..200).map(|i| Some(i % 2 == 1)).collect();
    let check = Scripted::new(flaps);
    let cfg = MonitorConfig {
        interval: Duration::from_secs(1),
        rise: 1,
        fall: 1,
        fastinter: None,
        downinter: None,
        ..config()
    };
    let monitor = Monitor::spawn_seeded("flappy", check, &cfg, 1).unwrap();
    let mut early = monitor.subscribe();
    sleep(Duration::from_millis(50_500)).await;
    let mut late = monitor.subscribe();
    let state_at_late = *late.state.borrow();
    sleep(Duration::from_millis(150_000)).await;

    // The early subscriber read nothing for 200 s and still gets all 200, in order.
    let all = drain(&mut early.transitions);
    assert_eq!(all.len(), 200);
    for (i, t) in all.iter().enumerate() {
        assert_eq!(t.seq, i as u64 + 1);
        let (from, to) = if i % 2 == 0 {
            (State::Up, State::Down)
        } else {
            (State::Down, State::Up)
        };
        assert_eq!((t.from, t.to), (from, to), "transition {i}");
    }
    assert!(all.windows(2).all(|w| w[0].at < w[1].at));

    // The late subscriber starts from the state it saw, with no gap.
    let later = drain(&mut late.transitions);
    assert_eq!(later.len(), 149);
    assert_eq!(later[0].from, state_at_late);
    assert_eq!(later[0].seq, 52);
    assert_eq!(later.last(), all.last());
    assert_eq!(*late.state.borrow(), all.last().unwrap().to);
    assert_eq!(monitor.state(), all.last().unwrap().to);
}

#[tokio::test(start_paused = true)]
async fn a_hung_check_times_out_and_counts_as_a_failure() {
    let check = Scripted::new([None]);
    let cfg = MonitorConfig {
        fall: 1,
        ..config()
    };
    let start = Instant::now();
    let monitor = Monitor::spawn_seeded("hung", check.clone(), &cfg, 1).unwrap();
    let mut sub = monitor.subscribe();
    let t = sub.transitions.recv().await.unwrap();
    assert_eq!(t.to, State::Down);
    assert_eq!(
        t.reason.outcome,
        Err(Failure::TimedOut(Duration::from_secs(1)))
    );
    assert_near(
        t.at - start.into_std(),
        Duration::from_secs(1),
        "after the timeout",
    );
    // The next check starts downinter after the timed-out one ended.
    sleep(Duration::from_secs(7)).await;
    let calls = check.calls();
    assert_eq!(calls.len(), 2);
    assert_near(
        calls[1] - calls[0],
        Duration::from_secs(6),
        "timeout + downinter",
    );
}

#[tokio::test(start_paused = true)]
async fn passive_reports_count_and_bring_checks_forward() {
    let check = Scripted::healthy();
    let cfg = MonitorConfig {
        interval: Duration::from_secs(10),
        fastinter: Some(Duration::from_secs(1)),
        downinter: None,
        ..config()
    };
    let start = Instant::now();
    let monitor = Monitor::spawn_seeded("passive", check.clone(), &cfg, 1).unwrap();
    let mut sub = monitor.subscribe();
    let reporter = monitor.reporter();

    sleep(Duration::from_millis(500)).await;
    let refused = || Err(Failure::Passive("connect refused".into()));
    reporter.report(refused());
    reporter.report(refused());
    assert_eq!(monitor.state(), State::Up, "below fall");
    sleep(Duration::from_secs(2)).await;
    // Pulled in from 10 s to 0.5 + 1 s; the healthy check reset the failure streak.
    let calls = check.calls();
    assert_eq!(calls.len(), 2);
    assert_near(
        calls[1] - start,
        Duration::from_millis(1500),
        "fastinter after passive",
    );
    assert_eq!(monitor.snapshot().failures, 0);

    // Three in a row from the data path: down at once, without waiting for a check.
    let from_task = reporter.clone();
    tokio::spawn(async move {
        for _ in 0..3 {
            from_task.report(Err(Failure::Passive("connect refused".into())));
        }
    })
    .await
    .unwrap();
    assert_eq!(monitor.state(), State::Down);
    let t = sub.transitions.recv().await.unwrap();
    assert_eq!(
        (t.to, t.reason.source, t.reason.streak),
        (State::Down, Source::Passive, 3)
    );
    assert_eq!(monitor.snapshot().passive, 5);

    // Active checks (healthy) bring it back after `rise`.
    let t = sub.transitions.recv().await.unwrap();
    assert_eq!((t.to, t.reason.source), (State::Up, Source::Active));
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_the_first_checks_of_many_targets() {
    let cfg = MonitorConfig {
        interval: Duration::from_secs(1),
        jitter: 0.5,
        ..config()
    };
    let start = Instant::now();
    let checks: Vec<Scripted> = (0..100).map(|_| Scripted::healthy()).collect();
    let monitors: Vec<Monitor> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| Monitor::spawn_seeded(format!("t{i}"), c.clone(), &cfg, i as u64).unwrap())
        .collect();
    sleep(Duration::from_secs(20)).await;

    let mut firsts: Vec<Duration> = checks.iter().map(|c| c.calls()[0] - start).collect();
    assert!(firsts.iter().all(|d| *d <= Duration::from_millis(502)));
    firsts.sort();
    firsts.dedup();
    assert!(
        firsts.len() >= 60,
        "only {} distinct start times",
        firsts.len()
    );
    assert!(firsts[0] < Duration::from_millis(100));
    assert!(*firsts.last().unwrap() > Duration::from_millis(400));
    for c in &checks {
        let calls = c.calls();
        // 20 s at 0.5-1.5 s per check.
        assert!((13..=41).contains(&calls.len()), "{} checks", calls.len());
        for w in calls.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap >= Duration::from_millis(499) && gap <= Duration::from_millis(1502));
        }
    }
    drop(monitors);
}

#[tokio::test(start_paused = true)]
async fn initial_state_is_published_before_any_check() {
    let cfg = MonitorConfig {
        initial: State::Down,
        jitter: 0.5,
        interval: Duration::from_secs(10),
        ..config()
    };
    let monitor = Monitor::spawn_seeded("init", Scripted::healthy(), &cfg, 3).unwrap();
    let sub = monitor.subscribe();
    assert_eq!(*sub.state.borrow(), State::Down);
    assert_eq!(monitor.snapshot().checks, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_monitor_stops_checks_and_ends_streams() {
    let check = Scripted::healthy();
    let monitor = Monitor::spawn_seeded("gone", check.clone(), &config(), 1).unwrap();
    let mut sub = monitor.subscribe();
    let reporter = monitor.reporter();
    sleep(Duration::from_secs(5)).await;
    let before = check.calls().len();
    assert_eq!(before, 3);
    drop(monitor);
    assert_eq!(sub.transitions.recv().await, None);
    // A reporter outliving the monitor is harmless.
    reporter.report(Err(Failure::Passive("late".into())));
    sleep(Duration::from_secs(60)).await;
    assert_eq!(check.calls().len(), before);
}

#[tokio::test(start_paused = true)]
async fn passive_successes_leave_the_schedule_alone() {
    let check = Scripted::healthy();
    let start = Instant::now();
    let monitor = Monitor::spawn_seeded("busy", check.clone(), &config(), 1).unwrap();
    let reporter = monitor.reporter();
    for _ in 0..10 {
        for _ in 0..1000 {
            reporter.report(Ok(()));
        }
        sleep(Duration::from_millis(500)).await;
    }
    // Checks at 0, 2, 4 s: a busy data path reporting successes changes nothing.
    let calls: Vec<Duration> = check.calls().iter().map(|c| *c - start).collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (i, at) in calls.iter().enumerate() {
        assert_near(*at, Duration::from_secs(2 * i as u64), "check time");
    }
    assert_eq!(monitor.snapshot().passive, 10_000);
    assert_eq!(monitor.state(), State::Up);
}
