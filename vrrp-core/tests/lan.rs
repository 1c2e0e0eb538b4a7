//! The simulated LAN in fixed scenarios, with the timing bounds of the issue: a crash hands over
//! within Master_Down_Interval plus latency, a graceful shutdown within Skew_Time plus latency,
//! a healed partition returns to one master within Master_Down_Interval plus one advert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::time::Duration;

use sim::{router_config, Lan};
use vrrp_core::packet::Version;
use vrrp_core::{Reason, State, Track, TrackId};

const LAT: Duration = Duration::from_millis(5);

fn three(version: Version, prios: [u8; 3], preempt: bool) -> Lan {
    let mut lan = Lan::new(1, LAT);
    for (i, p) in prios.into_iter().enumerate() {
        let mut c = router_config(
            1,
            version,
            &format!("192.0.2.{}", i + 1),
            "192.0.2.100",
            p,
            100,
        );
        c.preempt = preempt;
        lan.add_node(&format!("r{}", i + 1), vec![c]);
    }
    lan
}

fn settle(lan: &mut Lan) {
    lan.run_for(Duration::from_secs(12));
}

#[test]
fn highest_priority_is_elected_and_a_crash_hands_over_within_master_down_interval() {
    for version in [Version::V2, Version::V3] {
        let mut lan = three(version, [50, 200, 100], true);
        lan.start_all();
        settle(&mut lan);
        assert_eq!(lan.assert_converged(1, true), vec![1]);
        // Crash r2 just after one of its adverts went out.
        let t_crash = lan.elapsed();
        let bound = (0..3)
            .filter(|&i| i != 1)
            .map(|i| lan.router(i, 1).master_down_interval())
            .max()
            .unwrap()
            + LAT;
        lan.crash(1);
        settle(&mut lan);
        let took = lan.first_master_since(1, t_crash).unwrap().clone();
        assert_eq!(took.node, 2, "{}", lan.log());
        assert_eq!(took.reason, Reason::MasterNoResponse);
        assert!(
            took.at - t_crash <= bound,
            "{:?} > {bound:?}",
            took.at - t_crash
        );
        // And not much sooner: it waited for the master to be silent for 3 intervals.
        assert!(took.at - t_crash >= Duration::from_secs(2));
        assert_eq!(lan.assert_converged(1, true), vec![2]);
    }
}

#[test]
fn graceful_shutdown_hands_over_within_skew_time() {
    let mut lan = three(Version::V3, [50, 200, 100], true);
    lan.start_all();
    settle(&mut lan);
    let t = lan.elapsed();
    let bound = lan.router(2, 1).skew_time() + LAT;
    lan.shutdown(1);
    lan.run_for(Duration::from_secs(5));
    let took = lan.first_master_since(1, t).unwrap().clone();
    assert_eq!(took.node, 2);
    assert!(took.at - t <= bound, "{:?} > {bound:?}", took.at - t);
    assert_eq!(lan.assert_converged(1, true), vec![2]);
    // Start it again: it preempts back.
    lan.start(1);
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, true), vec![1]);
}

#[test]
fn a_partition_makes_one_master_per_side_and_healing_one_again() {
    let mut lan = three(Version::V3, [50, 200, 100], true);
    lan.start_all();
    settle(&mut lan);
    lan.partition(&[0, 1, 0]);
    settle(&mut lan);
    let mut m = lan.assert_converged(1, true);
    m.sort();
    assert_eq!(m, vec![1, 2]);
    let t = lan.elapsed();
    let bound = lan.router(0, 1).master_down_interval() + Duration::from_secs(1) + LAT;
    lan.heal();
    lan.run_for(bound);
    assert_eq!(lan.assert_converged(1, true), vec![1], "{}", lan.log());
    let stepped = lan
        .changes
        .iter()
        .find(|c| c.at >= t && c.from == State::Master)
        .unwrap();
    assert_eq!(
        (stepped.node, stepped.reason),
        (2, Reason::HigherPriorityAdvert)
    );
}

#[test]
fn nopreempt_keeps_the_current_master() {
    let mut lan = three(Version::V3, [50, 200, 100], false);
    lan.start(2);
    lan.start(0);
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, false), vec![2]);
    lan.start(1);
    lan.run_for(Duration::from_secs(60));
    assert_eq!(lan.assert_converged(1, false), vec![2]);
    assert_eq!(lan.state(1, 1), State::Backup);
}

#[test]
fn preempt_lets_a_returning_higher_router_take_over() {
    let mut lan = three(Version::V3, [50, 200, 100], true);
    lan.start(2);
    lan.start(0);
    settle(&mut lan);
    let t = lan.elapsed();
    lan.start(1);
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, true), vec![1]);
    let c = lan.first_master_since(1, t).unwrap();
    assert_eq!((c.node, c.reason), (1, Reason::Preempted));
}

#[test]
fn equal_priorities_started_together_elect_the_highest_address() {
    let mut lan = three(Version::V3, [100, 100, 100], true);
    lan.start_all();
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, true), vec![2]);
    lan.assert_best_elected(1);
}

#[test]
fn lowering_the_master_priority_moves_mastership() {
    let mut lan = three(Version::V3, [50, 200, 100], true);
    lan.start_all();
    settle(&mut lan);
    lan.set_priority(1, 1, 60);
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, true), vec![2]);
    lan.set_priority(0, 1, 254);
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, true), vec![0]);
}

#[test]
fn weight_zero_fault_sends_priority_zero_and_hands_over_fast() {
    let mut lan = Lan::new(3, LAT);
    for (i, p) in [200u8, 100].into_iter().enumerate() {
        let mut c = router_config(
            1,
            Version::V3,
            &format!("192.0.2.{}", i + 1),
            "192.0.2.100",
            p,
            100,
        );
        c.tracks = vec![Track::new(TrackId(7), 0)];
        lan.add_node(&format!("r{}", i + 1), vec![c]);
    }
    lan.start_all();
    settle(&mut lan);
    let t = lan.elapsed();
    let bound = lan.router(1, 1).skew_time() + LAT;
    lan.set_tracked(0, TrackId(7), false);
    lan.run_for(Duration::from_secs(3));
    assert_eq!(lan.state(0, 1), State::Fault);
    let c = lan.first_master_since(1, t).unwrap();
    assert_eq!(c.node, 1);
    assert!(c.at - t <= bound);
    lan.set_tracked(0, TrackId(7), true);
    settle(&mut lan);
    assert_eq!(lan.assert_converged(1, true), vec![0]);
    // The interface going down cannot send priority 0: a full Master_Down_Interval.
    let t = lan.elapsed();
    let bound = lan.router(1, 1).master_down_interval() + LAT;
    lan.set_interface(0, false);
    settle(&mut lan);
    let c = lan.first_master_since(1, t).unwrap();
    assert!(c.at - t > lan.router(1, 1).skew_time() + LAT && c.at - t <= bound);
}

#[test]
fn loss_and_jitter_then_convergence() {
    for seed in 0..8 {
        // 20 ms adverts, 2-32 ms latency, 30% loss: masters come and go, then settle.
        let mut lan = Lan::new(seed, Duration::from_millis(2));
        for (i, p) in [50u8, 200, 100].into_iter().enumerate() {
            let c = router_config(
                1,
                Version::V3,
                &format!("192.0.2.{}", i + 1),
                "192.0.2.100",
                p,
                20,
            );
            lan.add_node(&format!("r{}", i + 1), vec![c]);
        }
        lan.jitter = Duration::from_millis(30);
        lan.loss_per_mille = 300;
        lan.start_all();
        lan.run_for(Duration::from_secs(30));
        lan.loss_per_mille = 0;
        lan.jitter = Duration::ZERO;
        lan.run_for(Duration::from_secs(3));
        assert_eq!(lan.assert_converged(1, true), vec![1], "seed {seed}");
        // The loss did make the backups take over now and then.
        assert!(lan.changes.iter().filter(|c| c.to == State::Master).count() > 1);
    }
}
