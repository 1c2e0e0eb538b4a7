//! Property tests of the simulated LAN: random topologies, priorities, versions, intervals,
//! latencies and fault schedules. After each fault and a settling time, every connected side
//! has exactly one Master, of the highest priority when preempting; crashes, graceful shutdowns
//! and healed partitions hand over within their bounds. Every step's outputs are checked by the
//! harness (see `sim`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::time::Duration;

use proptest::prelude::*;
use sim::{router_config, Lan};
use vrrp_core::packet::Version;
use vrrp_core::{State, Track, TrackId};

const VRID: u8 = 42;
const SOFT: TrackId = TrackId(1);
const HARD: TrackId = TrackId(2);

#[derive(Debug, Clone)]
enum Fault {
    Crash(usize),
    Restart(usize),
    Shutdown(usize),
    Start(usize),
    Partition(u8),
    Heal,
    Priority(usize, u8),
    Soft(usize, bool),
    Hard(usize, bool),
    Interface(usize, bool),
    Lossy,
}

fn fault(n: usize) -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0..n).prop_map(Fault::Crash),
        (0..n).prop_map(Fault::Restart),
        (0..n).prop_map(Fault::Shutdown),
        (0..n).prop_map(Fault::Start),
        any::<u8>().prop_map(Fault::Partition),
        Just(Fault::Heal),
        (0..n, 1..=255u8).prop_map(|(i, p)| Fault::Priority(i, p)),
        (0..n, any::<bool>()).prop_map(|(i, u)| Fault::Soft(i, u)),
        (0..n, any::<bool>()).prop_map(|(i, u)| Fault::Hard(i, u)),
        (0..n, any::<bool>()).prop_map(|(i, u)| Fault::Interface(i, u)),
        Just(Fault::Lossy),
    ]
}

#[derive(Debug, Clone)]
struct Topology {
    v2: bool,
    /// IPv6 (VRRPv3 only): link-local primaries, a 2001:db8:: VIP.
    v6: bool,
    interval_cs: u16,
    priorities: Vec<u8>,
    preempt: bool,
    unicast: bool,
    latency_ms: u64,
    seed: u64,
    faults: Vec<Fault>,
}

fn topology() -> impl Strategy<Value = Topology> {
    (2..=5usize, any::<bool>())
        .prop_flat_map(|(n, v2)| {
            let interval = if v2 {
                prop_oneof![Just(100u16), Just(200)].boxed()
            } else {
                prop_oneof![Just(20u16), Just(55), Just(100), Just(137)].boxed()
            };
            (
                (Just(v2), any::<bool>().prop_map(move |v6| v6 && !v2)),
                interval,
                proptest::collection::vec(1..=255u8, n),
                any::<bool>(),
                any::<bool>(),
                0..=20u64,
                any::<u64>(),
                proptest::collection::vec(fault(n), 1..=8),
            )
        })
        .prop_map(
            |((v2, v6), interval_cs, priorities, preempt, unicast, latency_ms, seed, faults)| {
                Topology {
                    v2,
                    v6,
                    interval_cs,
                    priorities,
                    preempt,
                    unicast,
                    latency_ms,
                    seed,
                    faults,
                }
            },
        )
}

fn build(t: &Topology) -> Lan {
    let mut lan = Lan::new(t.seed, Duration::from_millis(t.latency_ms));
    let version = if t.v2 { Version::V2 } else { Version::V3 };
    let n = t.priorities.len();
    let (addr, vip): (fn(usize) -> String, _) = if t.v6 {
        (|i| format!("fe80::{}", i + 1), "2001:db8::100")
    } else {
        (|i| format!("192.0.2.{}", i + 1), "192.0.2.100")
    };
    for (i, &p) in t.priorities.iter().enumerate() {
        let mut c = router_config(VRID, version, &addr(i), vip, p, t.interval_cs);
        c.preempt = t.preempt;
        if t.unicast {
            c.unicast_peers = (0..n)
                .filter(|&j| j != i)
                .map(|j| addr(j).parse().unwrap())
                .collect();
        }
        c.tracks = vec![Track::new(SOFT, -60), Track::new(HARD, 0)];
        lan.add_node(&format!("r{}", i + 1), vec![c]);
    }
    lan
}

/// Long enough for any election: a Backup's full Master_Down_Interval at the lowest priority,
/// then a preemption's, plus adverts and latency both ways.
fn settle_time(t: &Topology) -> Duration {
    let interval = Duration::from_millis(u64::from(t.interval_cs) * 10);
    let mdi = interval * 3
        + if t.v2 {
            Duration::from_secs(1)
        } else {
            interval
        };
    mdi * 2 + interval * 2 + Duration::from_millis(4 * t.latency_ms + 10)
}

/// The side of `node` (if it is eligible) and whether it has a converged master in it.
fn side_of(lan: &Lan, node: usize) -> Option<Vec<usize>> {
    lan.components(VRID).into_iter().find(|s| s.contains(&node))
}

fn run(t: &Topology) {
    let mut lan = build(t);
    let settle = settle_time(t);
    let lat = Duration::from_millis(t.latency_ms);
    let interval = Duration::from_millis(u64::from(t.interval_cs) * 10);
    let n = lan.len();
    let mut crashed = vec![false; n];
    let mut groups = vec![0u8; n];
    lan.start_all();
    lan.run_for(settle);
    // All started at once: the highest priority wins, ties to the highest address, with or
    // without preemption (Masters always tie-break).
    lan.assert_best_elected(VRID);
    for f in &t.faults {
        let start = lan.elapsed();
        // Without preemption, nothing but the loss of a master (or meeting another master:
        // healing, an owner coming up, loss) changes who is master.
        let masters_before = lan.masters(VRID);
        let may_change_master = match *f {
            Fault::Crash(i)
            | Fault::Shutdown(i)
            | Fault::Hard(i, false)
            | Fault::Interface(i, false) => masters_before.contains(&i),
            Fault::Start(i)
            | Fault::Restart(i)
            | Fault::Hard(i, true)
            | Fault::Interface(i, true) => lan.base_priority(i, VRID) == 255,
            Fault::Partition(_) | Fault::Heal | Fault::Lossy => true,
            // The address owner always preempts, `preempt = false` or not (RFC 5798 §6.4.2).
            Fault::Priority(_, 255) => true,
            Fault::Priority(..) | Fault::Soft(..) => false,
        };
        // The bound within which the fault must give a new master, if it must.
        let mut handover: Option<(Vec<usize>, Duration)> = None;
        match *f {
            Fault::Crash(i) | Fault::Shutdown(i)
                if !crashed[i] && lan.state(i, VRID) == State::Master =>
            {
                let others: Vec<usize> = side_of(&lan, i)
                    .unwrap()
                    .into_iter()
                    .filter(|&j| j != i)
                    .collect();
                if !others.is_empty() {
                    let graceful = matches!(f, Fault::Shutdown(_));
                    let bound = others
                        .iter()
                        .map(|&j| {
                            let r = lan.router(j, VRID);
                            if graceful {
                                r.skew_time()
                            } else {
                                r.master_down_interval()
                            }
                        })
                        .max()
                        .unwrap()
                        + lat;
                    handover = Some((others, bound));
                }
            }
            _ => {}
        }
        match *f {
            Fault::Crash(i) if !crashed[i] => {
                crashed[i] = true;
                lan.crash(i);
            }
            Fault::Restart(i) if crashed[i] => {
                crashed[i] = false;
                lan.restart(i);
            }
            Fault::Shutdown(i) if !crashed[i] => lan.shutdown(i),
            Fault::Start(i) if !crashed[i] => lan.start(i),
            Fault::Partition(mask) => {
                groups = (0..n).map(|i| (mask >> i) & 1).collect();
                lan.partition(&groups);
            }
            Fault::Heal => {
                let split = groups.iter().any(|&g| g != groups[0]);
                lan.heal();
                groups = vec![0; n];
                if split {
                    // Two masters meet: one advert (plus latency) settles it.
                    lan.run_for(interval + lat + lat);
                    lan.assert_converged(VRID, t.preempt);
                }
            }
            Fault::Priority(i, p) => lan.set_priority(i, VRID, p),
            Fault::Soft(i, up) => lan.set_tracked(i, SOFT, up),
            Fault::Hard(i, up) => lan.set_tracked(i, HARD, up),
            Fault::Interface(i, up) => lan.set_interface(i, up),
            Fault::Lossy => {
                lan.loss_per_mille = 400;
                lan.jitter = interval / 2;
                lan.run_for(settle);
                lan.loss_per_mille = 0;
                lan.jitter = Duration::ZERO;
            }
            _ => {}
        }
        lan.run_for(settle);
        if let Some((others, bound)) = handover {
            let c = lan.first_master_since(VRID, start);
            let ok = c.is_some_and(|c| others.contains(&c.node) && c.at - start <= bound);
            assert!(
                ok,
                "{f:?}: no handover within {bound:?}: {c:?}\n{}",
                lan.log()
            );
        }
        lan.assert_converged(VRID, t.preempt);
        if !t.preempt && !may_change_master {
            // (A side that had no master may have gained one.)
            let after = lan.masters(VRID);
            assert!(
                masters_before.iter().all(|m| after.contains(m)),
                "{f:?} changed the master without preemption: {masters_before:?} -> {after:?}\n{}",
                lan.log()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_lans_converge_and_hand_over_in_time(t in topology()) {
        run(&t);
    }
}
