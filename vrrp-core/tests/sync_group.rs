//! The sync group inputs: `set_master_hold` (a held Backup only wants Master) and
//! `handle_step_down` (a Master steps down with a priority-0 advert first), one test per rule;
//! `SyncGroup`'s decisions under random reports; then two nodes running a two-member group each
//! on the simulated LAN, run by `SyncGroup` as ha-lb runs it, and random LANs of such nodes
//! under random faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::time::{Duration, Instant};

use proptest::prelude::*;

use common::*;
use sim::{router_config, Lan};
use vrrp_core::packet::Version;
use vrrp_core::timers::centis;
use vrrp_core::{
    Decision, FaultCause, Leave, Output, Reason, Router, State, StateReport, SyncGroup,
    PRIORITY_OWNER,
};

/// A started, held router whose Master_Down_Timer ran out: it wants Master. Returns when.
fn wanting(priority: u8, t0: Instant) -> (Router, Instant) {
    let mut r = Router::new(cfg(priority)).unwrap();
    r.set_master_hold(t0, true);
    r.handle_startup(t0);
    drain(&mut r);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    assert_eq!(drain(&mut r), vec![Output::WantsMaster(true)]);
    (r, t)
}

// ---- the hold ----

#[test]
fn held_backup_only_wants_master_when_master_down_runs_out() {
    let t0 = Instant::now();
    let (r, t) = wanting(100, t0);
    assert_eq!(t - t0, r.master_down_interval());
    assert_eq!(r.state(), State::Backup);
    assert!(r.wants_master() && r.is_master_held());
    // No deadline left behind: a driver does not wake up over and over.
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.stats().master_transitions, 0);
}

#[test]
fn held_backup_that_is_not_due_wants_nothing() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(100)).unwrap();
    r.set_master_hold(t0, true);
    r.handle_startup(t0);
    drain(&mut r);
    r.set_master_hold(t0 + ms(100), false);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.poll_timeout(), Some(t0 + r.master_down_interval()));
}

#[test]
fn an_advert_ends_the_want_and_restarts_master_down() {
    let t0 = Instant::now();
    let (mut r, t) = wanting(100, t0);
    let heard = t + ms(50);
    hear(&mut r, heard, "192.0.2.20", 200, 100);
    assert_eq!(drain(&mut r), vec![Output::WantsMaster(false)]);
    assert!(!r.wants_master());
    assert_eq!(r.poll_timeout(), Some(heard + r.master_down_interval()));
    // Still held: silence again means wanting again, not Master.
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(drain(&mut r), vec![Output::WantsMaster(true)]);
}

#[test]
fn priority_zero_does_not_end_the_want() {
    let t0 = Instant::now();
    let (mut r, t) = wanting(100, t0);
    hear(&mut r, t + ms(10), "192.0.2.20", 0, 100);
    assert!(drain(&mut r).is_empty());
    assert!(r.wants_master());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn release_while_wanting_makes_master_at_once() {
    let t0 = Instant::now();
    let (mut r, t) = wanting(100, t0);
    let released = t + ms(700);
    r.set_master_hold(released, false);
    let out = drain(&mut r);
    assert_eq!(out[0], Output::WantsMaster(false));
    assert_eq!(
        out[1],
        Output::StateChanged {
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterNoResponse
        }
    );
    assert_eq!(out[2], Output::AddAddresses(vec![ip(VIP)]));
    assert_eq!(sent(&out), vec![100]);
    assert!(out.iter().any(|o| matches!(o, Output::Announce { .. })));
    assert_eq!(r.poll_timeout(), Some(released + centis(100)));
    assert_eq!(r.stats().master_transitions, 1);
}

#[test]
fn hold_does_not_touch_a_master() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    let deadline = r.poll_timeout();
    r.set_master_hold(t + ms(1), true);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.state(), State::Master);
    assert_eq!(r.poll_timeout(), deadline);
}

#[test]
fn held_owner_starts_in_backup_wanting_master() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(PRIORITY_OWNER)).unwrap();
    r.set_master_hold(t0, true);
    r.handle_startup(t0);
    let out = drain(&mut r);
    assert_eq!(changes(&out), vec![(State::Initialize, State::Backup)]);
    assert!(out.contains(&Output::WantsMaster(true)));
    assert!(sent(&out).is_empty());
    assert_eq!(r.poll_timeout(), None);
    r.set_master_hold(t0 + ms(5), false);
    let out = drain(&mut r);
    assert!(out.contains(&Output::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::AddressOwner
    }));
    assert_eq!(sent(&out), vec![255]);
}

#[test]
fn held_preemption_wants_master_and_keeps_wanting_while_the_lower_master_talks() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(200)).unwrap();
    r.set_master_hold(t0, true);
    r.handle_startup(t0);
    drain(&mut r);
    // A lower-priority master: ignored (preempt), so the timer runs out.
    let mut now = t0;
    for _ in 0..5 {
        now += ms(1000);
        hear(&mut r, now, "192.0.2.20", 100, 100);
    }
    assert!(r.wants_master());
    let out = drain(&mut r);
    assert_eq!(out, vec![Output::WantsMaster(true)]);
    assert_eq!(r.poll_timeout(), None);
    r.set_master_hold(now + ms(1), false);
    assert!(drain(&mut r).contains(&Output::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Preempted
    }));
}

#[test]
fn held_preempt_delay_runs_out_once() {
    let t0 = Instant::now();
    let mut c = cfg(200);
    c.preempt_delay = Duration::from_secs(2);
    let mut r = Router::new(c).unwrap();
    r.set_master_hold(t0, true);
    r.handle_startup(t0);
    drain(&mut r);
    let mut wants = 0;
    for k in 1..=10u64 {
        let now = t0 + ms(1000 * k);
        hear(&mut r, now, "192.0.2.20", 100, 100);
        wants += drain(&mut r)
            .iter()
            .filter(|o| **o == Output::WantsMaster(true))
            .count();
        // Only the lower master's Master_Down_Timer could be left, and it is not re-armed.
        assert!(r.poll_timeout().is_none_or(|d| d > now));
    }
    assert_eq!(wants, 1);
    assert!(r.wants_master());
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn leaving_backup_ends_the_want() {
    let t0 = Instant::now();
    let (mut r, t) = wanting(100, t0);
    r.set_interface_up(t + ms(1), false);
    let out = drain(&mut r);
    assert_eq!(out[0], Output::WantsMaster(false));
    assert_eq!(changes(&out), vec![(State::Backup, State::Fault)]);
    // Back from Fault, still held: Backup, and wanting again only after Master_Down_Interval.
    r.set_interface_up(t + ms(2), true);
    assert_eq!(changes(&drain(&mut r)), vec![(State::Fault, State::Backup)]);
    assert!(!r.wants_master());
    assert_eq!(r.poll_timeout(), Some(t + ms(2) + r.master_down_interval()));
}

// ---- the step down ----

#[test]
fn step_down_sends_priority_zero_removes_the_addresses_and_waits() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    let at = t + ms(300);
    r.handle_step_down(at);
    let out = drain(&mut r);
    assert_eq!(
        out[0],
        Output::StateChanged {
            from: State::Master,
            to: State::Backup,
            reason: Reason::SteppedDown
        }
    );
    assert_eq!(sent(&out), vec![0]);
    assert_eq!(out.last(), Some(&Output::RemoveAddresses(vec![ip(VIP)])));
    // Master_Down_Interval, and a back-off under one advert interval.
    let back = r.poll_timeout().unwrap();
    assert!(back >= at + r.master_down_interval(), "{:?}", back - at);
    assert!(back < at + r.master_down_interval() + centis(100));
    assert_eq!(r.master_address(), None);
    assert_eq!(r.stats().step_downs, 1);
    assert_eq!(r.stats().sent_pri_zero_packets, 1);
    // Nobody took over: Master again.
    r.handle_timeout(back);
    assert_eq!(r.state(), State::Master);
}

#[test]
fn step_down_then_a_peer_that_takes_over_is_followed() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    r.handle_step_down(t);
    drain(&mut r);
    // The peer heard priority 0 and took over after its Skew_Time.
    let heard = t + ms(300);
    hear(&mut r, heard, "192.0.2.20", 100, 100);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.master_address(), Some(ip("192.0.2.20")));
    assert_eq!(r.poll_timeout(), Some(heard + r.master_down_interval()));
}

#[test]
fn step_down_of_a_held_master_leads_to_wanting() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    r.set_master_hold(t, true);
    r.handle_step_down(t);
    drain(&mut r);
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(drain(&mut r), vec![Output::WantsMaster(true)]);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn step_down_outside_master_does_nothing() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(100)).unwrap();
    r.handle_step_down(t0);
    assert!(drain(&mut r).is_empty());
    r.handle_startup(t0);
    drain(&mut r);
    let deadline = r.poll_timeout();
    r.handle_step_down(t0 + ms(10));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), deadline);
    r.set_interface_up(t0 + ms(20), false);
    drain(&mut r);
    r.handle_step_down(t0 + ms(30));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.state(), State::Fault);
    assert_eq!(r.stats().step_downs, 0);
}

// ---- the rule, under random reports ----

#[derive(Debug, Clone)]
enum Input {
    Start(u8),
    Leave(u8, Leave),
    Changed(u8, State, State, Reason, bool, bool),
    Wants(u8, bool),
}

fn input(n: u8) -> impl Strategy<Value = Input> {
    let state = prop_oneof![
        Just(State::Initialize),
        Just(State::Backup),
        Just(State::Master),
        Just(State::Fault)
    ];
    let reason = prop_oneof![
        Just(Reason::Startup),
        Just(Reason::MasterNoResponse),
        Just(Reason::HigherPriorityAdvert),
        Just(Reason::SteppedDown),
        Just(Reason::Fault(FaultCause::InterfaceDown)),
        Just(Reason::Shutdown),
    ];
    let leave = prop_oneof![
        Just(Leave::Restart),
        Just(Leave::Reload),
        Just(Leave::Fault)
    ];
    prop_oneof![
        (0..n).prop_map(Input::Start),
        (0..n, leave).prop_map(|(m, l)| Input::Leave(m, l)),
        (
            0..n,
            state.clone(),
            state,
            reason,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(m, f, t, r, w, o)| Input::Changed(m, f, t, r, w, o)),
        (0..n, any::<bool>()).prop_map(|(m, w)| Input::Wants(m, w)),
    ]
}

/// After every input and its decisions: each running member is held exactly while another
/// member is neither Master nor wants Master (or does not run); only running members are told
/// anything; only running Masters are stepped down, never because of a step-down.
/// The reports are random, not only those a router makes: the rule holds on any input.
fn run_rule(n: u8, inputs: &[Input]) {
    let mut g = SyncGroup::new(0..n);
    for i in inputs {
        // A step-down, as a router makes it: Master to Backup.
        let stepped = matches!(
            i,
            Input::Changed(_, _, State::Backup, Reason::SteppedDown, _, _)
        );
        match *i {
            Input::Start(m) => g.handle_start(&m),
            Input::Leave(m, l) => g.handle_leave(&m, l),
            Input::Changed(m, from, to, reason, wants_master, own_fault) => g.handle_state_changed(
                &m,
                StateReport {
                    from,
                    to,
                    reason,
                    wants_master,
                    own_fault,
                },
            ),
            Input::Wants(m, w) => g.handle_wants_master(&m, w),
        }
        let decisions: Vec<_> = std::iter::from_fn(|| g.poll_decision()).collect();
        for d in &decisions {
            let m = g.member(d.member()).unwrap();
            assert!(m.running, "{d:?} after {i:?}");
            if let Decision::StepDown { .. } = d {
                assert_eq!(m.state, Some(State::Master), "{d:?} after {i:?}");
                assert!(!stepped, "{d:?} after {i:?}");
            }
        }
        let agrees = |k: u8| {
            let m = g.member(&k).unwrap();
            m.running && (m.state == Some(State::Master) || m.wants_master)
        };
        for k in 0..n {
            let m = g.member(&k).unwrap();
            if m.running {
                let blocked = (0..n).any(|o| o != k && !agrees(o));
                assert_eq!(m.held, blocked, "member {k} after {i:?}: {g:?}");
            }
        }
    }
}

proptest! {
    #[test]
    fn sync_group_decisions_follow_the_rule(
        (n, inputs) in (1..=3u8).prop_flat_map(|n| (Just(n), proptest::collection::vec(input(n), 0..40)))
    ) {
        run_rule(n, &inputs);
    }
}

// ---- two nodes, a group of two on each ----

const LAT: Duration = Duration::from_millis(5);
const VRIDS: [u8; 2] = [1, 2];
const A: usize = 0;
const B: usize = 1;

/// Nodes A (192.0.2.1) and B (192.0.2.2), each with VRIDs 1 and 2 in one sync group, 1 s
/// adverts, preempt on.
fn pair(a: [u8; 2], b: [u8; 2]) -> Lan {
    let mut lan = Lan::new(7, LAT);
    for (name, addr, prios) in [("A", "192.0.2.1", a), ("B", "192.0.2.2", b)] {
        let configs = VRIDS
            .iter()
            .zip(prios)
            .map(|(&v, p)| router_config(v, Version::V3, addr, &format!("192.0.2.10{v}"), p, 100))
            .collect();
        let n = lan.add_node(name, configs);
        lan.sync_group(n, &VRIDS);
    }
    lan
}

fn masters_of(lan: &Lan, node: usize) -> Vec<u8> {
    VRIDS
        .iter()
        .copied()
        .filter(|&v| lan.state(node, v) == State::Master)
        .collect()
}

/// The longest time since `since` that a node was Master of one member and not the other.
fn longest_split(lan: &Lan, since: Duration) -> Duration {
    let mut longest = Duration::ZERO;
    for node in [A, B] {
        let mut master = [false; 2];
        let mut split_from: Option<Duration> = None;
        for c in lan.changes.iter().filter(|c| c.node == node) {
            let i = VRIDS.iter().position(|v| *v == c.vrid).unwrap();
            master[i] = c.to == State::Master;
            let split = master[0] != master[1];
            match (split, split_from) {
                (true, None) => split_from = Some(c.at),
                (false, Some(from)) => {
                    if c.at >= since {
                        longest = longest.max(c.at - from.max(since));
                    }
                    split_from = None;
                }
                _ => {}
            }
        }
        if let Some(from) = split_from {
            longest = longest.max(lan.elapsed() - from.max(since));
        }
    }
    longest
}

fn settle(lan: &mut Lan) {
    lan.run_for(Duration::from_secs(10));
}

#[test]
fn lan_group_elects_one_node_for_both() {
    let mut lan = pair([200, 200], [100, 100]);
    lan.start_all();
    settle(&mut lan);
    assert_eq!(masters_of(&lan, A), vec![1, 2], "{}", lan.log());
    assert_eq!(masters_of(&lan, B), Vec::<u8>::new());
    assert_eq!(longest_split(&lan, Duration::ZERO), Duration::ZERO);
}

#[test]
fn lan_group_with_one_link_cut_does_not_split() {
    let mut lan = pair([200, 200], [100, 100]);
    lan.start_all();
    settle(&mut lan);
    let t = lan.elapsed();
    lan.cut_link(2, true);
    settle(&mut lan);
    // B's VRID 2 hears no master and wants it, but its VRID 1 hears A: B stays Backup.
    assert!(lan.wants_master(B, 2), "{}", lan.log());
    assert!(!lan.wants_master(B, 1));
    assert_eq!(masters_of(&lan, A), vec![1, 2], "{}", lan.log());
    assert_eq!(masters_of(&lan, B), Vec::<u8>::new(), "{}", lan.log());
    assert!(lan
        .changes
        .iter()
        .all(|c| c.at < t || c.node != B || c.to != State::Master));
    // No busy loop while it wants: the node's next deadline is not in the past.
    lan.cut_link(2, false);
    settle(&mut lan);
    assert!(!lan.wants_master(B, 2), "{}", lan.log());
    assert_eq!(masters_of(&lan, A), vec![1, 2]);
    assert_eq!(longest_split(&lan, Duration::ZERO), Duration::ZERO);
}

#[test]
fn lan_group_moves_together_when_one_member_loses_its_election() {
    let mut lan = pair([200, 200], [100, 100]);
    lan.start_all();
    settle(&mut lan);
    // VRID 2's link is cut, then A's VRID 1 drops below B's: B wants both, takes both, and
    // A's VRID 1 loses its election on its own; A's VRID 2 steps down with it.
    lan.cut_link(2, true);
    settle(&mut lan);
    let t = lan.elapsed();
    lan.set_priority(A, 1, 50);
    settle(&mut lan);
    assert_eq!(masters_of(&lan, B), vec![1, 2], "{}", lan.log());
    assert_eq!(masters_of(&lan, A), Vec::<u8>::new(), "{}", lan.log());
    let stepped = lan
        .changes
        .iter()
        .find(|c| c.at >= t && c.reason == Reason::SteppedDown)
        .expect("a step down");
    assert_eq!((stepped.node, stepped.vrid), (A, 2), "{}", lan.log());
    // A node held one member without the other only while the news crossed the LAN.
    let split = longest_split(&lan, t);
    assert!(split <= 2 * LAT, "split {split:?}\n{}", lan.log());

    // The link comes back: A's VRID 2 would preempt B's but is held, as A's VRID 1 is Backup.
    lan.cut_link(2, false);
    settle(&mut lan);
    assert_eq!(masters_of(&lan, B), vec![1, 2], "{}", lan.log());
    assert!(lan.wants_master(A, 2) && !lan.wants_master(A, 1));

    // A's VRID 1 is better again: A wants both and takes both back.
    let t = lan.elapsed();
    lan.set_priority(A, 1, 200);
    settle(&mut lan);
    assert_eq!(masters_of(&lan, A), vec![1, 2], "{}", lan.log());
    assert_eq!(masters_of(&lan, B), Vec::<u8>::new(), "{}", lan.log());
    let split = longest_split(&lan, t);
    assert!(split <= 2 * LAT, "split {split:?}\n{}", lan.log());
}

#[test]
fn lan_group_after_a_partition_heals_on_one_node() {
    for (a, b) in [([200, 200], [100, 100]), ([100, 100], [100, 100])] {
        let mut lan = pair(a, b);
        lan.start_all();
        settle(&mut lan);
        let winner = masters_of(&lan, A).len() == 2;
        lan.partition(&[0, 1]);
        settle(&mut lan);
        // Each side alone: each node is Master of both.
        assert_eq!(masters_of(&lan, A), vec![1, 2], "{}", lan.log());
        assert_eq!(masters_of(&lan, B), vec![1, 2], "{}", lan.log());
        let t = lan.elapsed();
        lan.heal();
        settle(&mut lan);
        let (m, other) = if winner { (A, B) } else { (B, A) };
        assert_eq!(masters_of(&lan, m), vec![1, 2], "{}", lan.log());
        assert_eq!(masters_of(&lan, other), Vec::<u8>::new(), "{}", lan.log());
        // Within Master_Down_Interval after the heal, each node holds both or none.
        let split = longest_split(&lan, t);
        let mdi = lan.router(A, 1).master_down_interval();
        assert!(split <= mdi, "split {split:?}\n{}", lan.log());
    }
}

#[test]
fn lan_group_never_splits_under_loss() {
    let mut lan = pair([150, 150], [100, 100]);
    lan.loss_per_mille = 150;
    lan.jitter = Duration::from_millis(20);
    lan.start_all();
    lan.run_for(Duration::from_secs(120));
    lan.loss_per_mille = 0;
    settle(&mut lan);
    let (a, b) = (masters_of(&lan, A), masters_of(&lan, B));
    assert!(
        (a == vec![1, 2] && b.is_empty()) || (b == vec![1, 2] && a.is_empty()),
        "A {a:?} B {b:?}\n{}",
        lan.log()
    );
    // Lost adverts make Backups want Master now and then; a node held one member without the
    // other at most while the news crossed the LAN, or until a master it could not hear was
    // heard again.
    let split = longest_split(&lan, Duration::ZERO);
    let mdi = lan.router(A, 1).master_down_interval();
    assert!(split <= mdi, "split {split:?}\n{}", lan.log());
}

#[test]
fn lan_group_with_crossed_priorities_settles_on_one_node() {
    // A is better for VRID 1, B for VRID 2: after both took both (started together, or a
    // partition healed), each loses one member and steps the other down. The step-downs'
    // back-offs differ, so one node comes back first and keeps both.
    for seed in 0..10 {
        let mut lan = pair([200, 100], [100, 200]);
        lan.jitter = Duration::from_millis(seed);
        lan.start_all();
        lan.run_for(Duration::from_secs(20));
        let settled = |lan: &Lan| {
            let (a, b) = (masters_of(lan, A), masters_of(lan, B));
            (a == vec![1, 2] && b.is_empty()) || (b == vec![1, 2] && a.is_empty())
        };
        assert!(settled(&lan), "seed {seed}\n{}", lan.log());
        lan.partition(&[0, 1]);
        settle(&mut lan);
        let t = lan.elapsed();
        lan.heal();
        lan.run_for(Duration::from_secs(20));
        assert!(settled(&lan), "seed {seed}\n{}", lan.log());
        // And it stays: nothing changes any more.
        let last = lan.changes.last().map(|c| c.at).unwrap();
        assert!(
            last < lan.elapsed() - Duration::from_secs(10),
            "seed {seed}\n{}",
            lan.log()
        );
        let rounds = lan
            .changes
            .iter()
            .filter(|c| c.at >= t && c.reason == Reason::SteppedDown)
            .count();
        assert!(
            rounds <= 4,
            "seed {seed}: {rounds} step-downs\n{}",
            lan.log()
        );
    }
}

// ---- random LANs of groups ----

#[derive(Debug, Clone)]
enum Fault {
    Crash(usize),
    Restart(usize),
    Shutdown(usize),
    Start(usize),
    Partition(u8),
    Heal,
    Priority(usize, u8, u8),
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
        (0..n, 1..=2u8, 1..=255u8).prop_map(|(i, v, p)| Fault::Priority(i, v, p)),
        (0..n, any::<bool>()).prop_map(|(i, u)| Fault::Interface(i, u)),
        Just(Fault::Lossy),
    ]
}

#[derive(Debug, Clone)]
struct Groups {
    /// Per node, the priorities of VRIDs 1 and 2.
    priorities: Vec<[u8; 2]>,
    interval_cs: u16,
    latency_ms: u64,
    seed: u64,
    faults: Vec<Fault>,
}

fn groups() -> impl Strategy<Value = Groups> {
    (2..=3usize).prop_flat_map(|n| {
        (
            proptest::collection::vec([1..=255u8, 1..=255u8], n),
            prop_oneof![Just(20u16), Just(100)],
            0..=20u64,
            any::<u64>(),
            proptest::collection::vec(fault(n), 1..=6),
        )
            .prop_map(
                |(priorities, interval_cs, latency_ms, seed, faults)| Groups {
                    priorities,
                    interval_cs,
                    latency_ms,
                    seed,
                    faults,
                },
            )
    })
}

/// After every fault and a settling time, each connected side has one Master per VRID, and it
/// is the same node for both: the group never stays split.
fn run_groups(g: &Groups) {
    let mut lan = Lan::new(g.seed, Duration::from_millis(g.latency_ms));
    for (i, prios) in g.priorities.iter().enumerate() {
        let addr = format!("192.0.2.{}", i + 1);
        let configs = VRIDS
            .iter()
            .zip(prios)
            .map(|(&v, &p)| {
                router_config(
                    v,
                    Version::V3,
                    &addr,
                    &format!("192.0.2.10{v}"),
                    p,
                    g.interval_cs,
                )
            })
            .collect();
        let node = lan.add_node(&format!("n{}", i + 1), configs);
        lan.sync_group(node, &VRIDS);
    }
    let n = g.priorities.len();
    let interval = centis(g.interval_cs);
    // Several elections' worth: crossed priorities may take a few step-down rounds.
    let settle = (interval * 4) * 8 + Duration::from_millis(20 * g.latency_ms + 100);
    let check = |lan: &Lan, what: &str| {
        let one = lan.assert_converged(1, false);
        let two = lan.assert_converged(2, false);
        assert_eq!(one, two, "{what}: the group is split\n{}", lan.log());
    };
    let mut crashed = vec![false; n];
    lan.start_all();
    lan.run_for(settle);
    check(&lan, "start");
    for f in &g.faults {
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
                let sides: Vec<u8> = (0..n).map(|i| (mask >> i) & 1).collect();
                lan.partition(&sides);
            }
            Fault::Heal => lan.heal(),
            Fault::Priority(i, v, p) => lan.set_priority(i, v, p),
            Fault::Interface(i, up) => lan.set_interface(i, up),
            Fault::Lossy => {
                lan.loss_per_mille = 300;
                lan.jitter = interval / 2;
                lan.run_for(settle);
                lan.loss_per_mille = 0;
                lan.jitter = Duration::ZERO;
            }
            _ => {}
        }
        lan.run_for(settle);
        check(&lan, &format!("{f:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_lans_of_groups_never_stay_split(g in groups()) {
        run_groups(&g);
    }
}
