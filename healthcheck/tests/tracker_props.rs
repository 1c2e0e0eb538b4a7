//! Properties of the sans-IO tracker over random outcome sequences, active and passive mixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use healthcheck::{Failure, MonitorConfig, Source, State, Tracker};
use proptest::prelude::*;

fn config(rise: u32, fall: u32, initial: State, jitter: f64) -> MonitorConfig {
    MonitorConfig {
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        rise,
        fall,
        initial,
        fastinter: Some(Duration::from_millis(500)),
        downinter: Some(Duration::from_secs(5)),
        jitter,
    }
}

fn initial() -> impl Strategy<Value = State> {
    prop_oneof![Just(State::Up), Just(State::Down), Just(State::Unknown)]
}

proptest! {
    /// Every transition is reported once, in order, chained from the state before it, and only
    /// when the streak that justifies it is complete; the state never contradicts a finished
    /// streak.
    #[test]
    fn transitions_follow_the_streaks(
        rise in 1u32..5,
        fall in 1u32..5,
        start in initial(),
        steps in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..200),
        seed in any::<u64>(),
    ) {
        let t0 = Instant::now();
        let mut t = Tracker::new(&config(rise, fall, start, 0.2), t0, seed).unwrap();
        let mut now = t0;
        let mut state = start;
        let mut seq = 0;
        let mut history: Vec<bool> = Vec::new();
        for (ok, passive) in steps {
            now += Duration::from_millis(100);
            let outcome = if ok { Ok(()) } else { Err(Failure::Refused) };
            if passive {
                t.handle_passive(now, outcome);
            } else {
                // An active result only arrives for a check that was started.
                let due = t.poll_timeout().unwrap();
                now = now.max(due);
                prop_assert!(t.poll_check(now));
                t.handle_check_result(now, outcome);
            }
            history.push(ok);
            let mut changed = 0;
            while let Some(tr) = t.poll_transition() {
                changed += 1;
                seq += 1;
                prop_assert_eq!(tr.seq, seq);
                prop_assert_eq!(tr.from, state);
                prop_assert_ne!(tr.from, tr.to);
                prop_assert_eq!(tr.at, now);
                prop_assert_eq!(tr.reason.source, if passive { Source::Passive } else { Source::Active });
                let need = match (tr.from, tr.to) {
                    (State::Unknown, _) => 1,
                    (_, State::Up) => rise,
                    _ => fall,
                } as usize;
                prop_assert_eq!(tr.reason.streak as usize, need);
                let tail = &history[history.len() - need..];
                prop_assert!(tail.iter().all(|o| *o == (tr.to == State::Up)));
                state = tr.to;
            }
            prop_assert!(changed <= 1);
            prop_assert_eq!(t.state(), state);
            // Invariant: a completed streak has been acted on.
            let s = t.snapshot();
            match state {
                State::Up => prop_assert!(s.failures < fall),
                State::Down => prop_assert!(s.successes < rise),
                State::Unknown => prop_assert!(history.is_empty()),
            }
        }
    }

    /// Each delay is the one for the state, within the jitter, and a passive report only ever
    /// brings the next check forward.
    #[test]
    fn delays_match_the_state(
        steps in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..100),
        jitter in 0.0f64..=0.5,
        seed in any::<u64>(),
    ) {
        let t0 = Instant::now();
        let mut t = Tracker::new(&config(2, 3, State::Up, jitter), t0, seed).unwrap();
        let first = t.poll_timeout().unwrap() - t0;
        prop_assert!(first <= Duration::from_secs(2).mul_f64(jitter) + Duration::from_nanos(1));
        let mut now = t0;
        for (ok, passive) in steps {
            let outcome = if ok { Ok(()) } else { Err(Failure::Refused) };
            let before = t.poll_timeout().unwrap();
            if passive {
                now += Duration::from_millis(10);
                t.handle_passive(now, outcome);
                prop_assert!(t.poll_timeout().unwrap() <= before);
                continue;
            }
            now = now.max(before);
            prop_assert!(t.poll_check(now));
            t.handle_check_result(now, outcome);
            let s = t.snapshot();
            let base = match t.state() {
                State::Up if s.failures > 0 => Duration::from_millis(500),
                State::Down if s.successes > 0 => Duration::from_millis(500),
                State::Down => Duration::from_secs(5),
                _ => Duration::from_secs(2),
            };
            let gap = t.poll_timeout().unwrap() - now;
            let slack = Duration::from_micros(1);
            prop_assert!(gap + slack >= base.mul_f64(1.0 - jitter), "{:?} < {:?}", gap, base);
            prop_assert!(gap <= base.mul_f64(1.0 + jitter) + slack, "{:?} > {:?}", gap, base);
        }
    }
}
