//! Clients reach the Master after a partition heals (issue #12), in simulated time.
//!
//! While VRRP is cut, both nodes are Master and both announce the addresses: the neighbours'
//! ARP / ND caches (recorded by the simulator: an announcement points them at its sender) end up
//! at whichever announced last, often the node that loses when the cut heals. Whatever the
//! order of events at the heal, the surviving Master must re-announce after the loser's last
//! announcement: the loser sends one advert at its own priority as it steps down, and a Master
//! re-announces on any advert from another Master (lower or equal priority, or priority 0),
//! with a burst owed at the end of the rate-limit window rather than none.
//!
//! The sweeps below move the cut and the heal across every phase of both nodes' advert timers
//! (and of the loser's delayed and refresh announcements), with and without latency and
//! jitter, for VRRPv2 and v3, IPv4 and IPv6, a cut of VRRP only (announcements still pass) and
//! a real partition with the clients on either side; after every heal exactly one node is
//! Master and the caches point at it within two advert intervals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::IpAddr;
use std::time::Duration;

use sim::{router_config, Lan};
use vrrp_core::packet::Version;
use vrrp_core::{RouterConfig, State};

/// How VRRP is cut between the nodes.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Adverts are dropped both ways (a firewall change, `nft drop` of protocol 112); the
    /// clients still get every announcement.
    Vrrp,
    /// The LAN is split; the clients are on the side of this node (0 or 1).
    Partition { clients_with: usize },
}

#[derive(Debug, Clone)]
struct Case {
    version: Version,
    ipv6: bool,
    /// Priorities of lb1 (address ::1 / .1) and lb2 (::2 / .2).
    prios: [u8; 2],
    interval_cs: u16,
    latency: Duration,
    jitter: Duration,
    /// The second burst after becoming Master.
    master_delay: Option<Duration>,
    /// `master_refresh` of the loser, and of the winner if `refresh_both`.
    refresh: Option<Duration>,
    refresh_both: bool,
    /// `answer_lower_priority` (on in ha-lb): with it, the loser hears the winner one round
    /// trip after the winner heard it; without it, up to an advert interval later.
    answer_lower: bool,
    cut: Cut,
    preempt: bool,
}

impl Case {
    fn new(version: Version, ipv6: bool, prios: [u8; 2], cut: Cut) -> Self {
        Case {
            version,
            ipv6,
            prios,
            interval_cs: if version == Version::V2 { 100 } else { 10 },
            latency: Duration::from_micros(200),
            jitter: Duration::ZERO,
            master_delay: None,
            refresh: None,
            refresh_both: false,
            answer_lower: true,
            cut,
            preempt: true,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval_cs) * 10)
    }

    fn vip(&self) -> IpAddr {
        if self.ipv6 {
            "2001:db8::100"
        } else {
            "192.0.2.100"
        }
        .parse()
        .unwrap()
    }

    fn config(&self, node: usize) -> RouterConfig {
        let addr = if self.ipv6 {
            format!("fe80::{}", node + 1)
        } else {
            format!("192.0.2.{}", node + 1)
        };
        let mut c = router_config(
            1,
            self.version,
            &addr,
            &self.vip().to_string(),
            self.prios[node],
            self.interval_cs,
        );
        c.preempt = self.preempt;
        c.answer_lower_priority = self.answer_lower;
        c.announce.master_delay = self.master_delay;
        if node != self.winner() || self.refresh_both {
            c.announce.refresh = self.refresh;
        }
        c.announce.lower_prio_delay = None;
        c
    }

    /// The node that must be Master once the cut heals: the higher priority, then the
    /// higher address.
    fn winner(&self) -> usize {
        if self.prios[0] > self.prios[1] {
            0
        } else {
            1
        }
    }

    fn lan(&self, seed: u64) -> Lan {
        let mut lan = Lan::new(seed, self.latency);
        lan.jitter = self.jitter;
        lan.add_node("lb1", vec![self.config(0)]);
        lan.add_node("lb2", vec![self.config(1)]);
        lan
    }

    fn cut(&self, lan: &mut Lan, cut: bool) {
        match (self.cut, cut) {
            (Cut::Vrrp, c) => lan.cut_link(1, c),
            // Node i on side i, the clients on their node's side; healing puts everyone
            // on side 0.
            (Cut::Partition { clients_with }, true) => {
                lan.partition(&[0, 1]);
                lan.neighbour_side = u8::try_from(clients_with).unwrap();
            }
            (Cut::Partition { .. }, false) => {
                lan.heal();
                lan.neighbour_side = 0;
            }
        }
    }
}

/// What a sweep saw.
#[derive(Debug, Default)]
struct Seen {
    rounds: u32,
    /// Rounds where, as the cut healed, the clients were at the node that loses.
    stale_at_heal: u32,
    /// The slowest recovery: heal to the announcement that brought the clients back.
    slowest: Duration,
}

/// Runs `rounds` cuts and heals on one LAN: cut `i` starts at a phase of `i * cut_step`
/// (modulo the interval) past an advert of the winner, and lasts `base + i * heal_step`
/// (modulo the interval), so the heal falls on every phase of both nodes' timers. After each
/// heal: within two advert intervals (plus the network's delays) one Master, the winner, and
/// the clients' caches at it; still so a few intervals later.
fn sweep(
    case: &Case,
    rounds: u32,
    base: Duration,
    cut_step: Duration,
    heal_step: Duration,
) -> Seen {
    let interval = case.interval();
    let mut lan = case.lan(7);
    lan.start(case.winner());
    lan.run_for(Duration::from_millis(50));
    lan.start(1 - case.winner());
    lan.run_for(Duration::from_secs(8) + interval * 4);
    assert_eq!(lan.assert_neighbours_reach_master(1), case.winner());
    let vip = case.vip();
    let bound = 2 * interval + 2 * (case.latency + case.jitter);
    let mut seen = Seen::default();
    for i in 0..rounds {
        let phase = nanos_mod(cut_step * i, interval);
        lan.run_for(phase);
        case.cut(&mut lan, true);
        lan.run_for(base + nanos_mod(heal_step * i, interval));
        let masters = lan.masters(1);
        assert_eq!(masters.len(), 2, "both Master while cut\n{}", lan.log());
        let loser = 1 - case.winner();
        if lan.neighbour_cache(vip) == Some(loser) {
            seen.stale_at_heal += 1;
        }
        let healed_at = lan.elapsed();
        case.cut(&mut lan, false);
        lan.run_for(bound);
        assert_eq!(
            lan.assert_neighbours_reach_master(1),
            case.winner(),
            "round {i} of {case:?}"
        );
        let moved = lan.neighbour_cache_moved_at(vip).unwrap();
        if moved > healed_at {
            seen.slowest = seen.slowest.max(moved - healed_at);
        }
        // And it stays so: nothing the loser does later takes the clients back.
        lan.run_for(interval * 3 + Duration::from_millis(1));
        assert_eq!(lan.assert_neighbours_reach_master(1), case.winner());
        assert_eq!(lan.state(loser, 1), State::Backup);
        seen.rounds += 1;
    }
    seen
}

fn nanos_mod(d: Duration, m: Duration) -> Duration {
    Duration::from_nanos(u64::try_from(d.as_nanos() % m.as_nanos()).unwrap())
}

/// Cut + heal across a 13 x 11 grid of phases, for one case; the cut lasts 1.5 s (VRRPv3,
/// 100 ms adverts: the loser is Master for over a second) or 5 s (VRRPv2, 1 s adverts).
fn grid(case: &Case) -> Seen {
    let interval = case.interval();
    let base = if case.version == Version::V2 {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(1500)
    };
    let seen = sweep(case, 143, base, interval / 13, interval / 11);
    // Clients that only ever see the winner are never stale; the others must have been, or
    // the sweep proved nothing.
    let trivial =
        matches!(case.cut, Cut::Partition { clients_with } if clients_with == case.winner());
    assert!(
        trivial || seen.stale_at_heal > 0,
        "the sweep never had stale clients: {case:?} {seen:?}"
    );
    seen
}

fn all_cuts() -> [Cut; 3] {
    [
        Cut::Vrrp,
        Cut::Partition { clients_with: 0 },
        Cut::Partition { clients_with: 1 },
    ]
}

#[test]
fn clients_reach_the_master_after_every_heal_vrrpv3_ipv4() {
    for cut in all_cuts() {
        for prios in [[100, 200], [200, 100], [100, 100]] {
            let case = Case::new(Version::V3, false, prios, cut);
            let seen = grid(&case);
            // The winner knows at the latest one advert of its own plus a round trip after
            // the heal; the burst owed by the rate limit comes at most one interval later.
            assert!(seen.slowest <= 2 * case.interval(), "{case:?} {seen:?}");
        }
    }
}

#[test]
fn clients_reach_the_master_after_every_heal_vrrpv3_ipv6() {
    for cut in all_cuts() {
        grid(&Case::new(Version::V3, true, [100, 200], cut));
    }
}

#[test]
fn clients_reach_the_master_after_every_heal_vrrpv2() {
    for cut in all_cuts() {
        grid(&Case::new(Version::V2, false, [100, 200], cut));
    }
}

#[test]
fn clients_reach_the_master_with_latency_and_jitter() {
    for (latency, jitter) in [(5, 0), (1, 3), (20, 15)] {
        let mut case = Case::new(Version::V3, false, [100, 200], Cut::Vrrp);
        case.latency = Duration::from_millis(latency);
        case.jitter = Duration::from_millis(jitter);
        grid(&case);
    }
}

/// The loser's own later announcements (its second burst, its refresh) land anywhere around
/// the heal, also between the winner's burst for the loser's first advert and the loser's
/// step-down: the winner's last burst must still come after them (the burst owed at the end
/// of the rate-limit window). The loser becomes Master 361 ms into the cut, so a second
/// burst 1150..1320 ms later falls 1.51..1.68 s into it, around the heal.
#[test]
fn clients_reach_the_master_whatever_the_losers_delayed_and_refresh_bursts() {
    for (delay_ms, refresh_ms, both) in [
        (1150, 0, false),
        (1250, 0, false),
        (1280, 0, false),
        (1320, 0, false),
        (0, 30, false),
        (0, 70, false),
        (1260, 45, false),
        (0, 30, true),
        (0, 7, false),
    ] {
        for (answer_lower, latency_ms) in [(true, 0), (false, 0), (true, 10)] {
            let mut case = Case::new(Version::V3, false, [100, 200], Cut::Vrrp);
            let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
            case.master_delay = ms(delay_ms);
            case.refresh = ms(refresh_ms);
            case.refresh_both = both;
            case.answer_lower = answer_lower;
            if latency_ms > 0 {
                case.latency = ms(latency_ms).unwrap();
            }
            grid(&case);
        }
    }
}

/// nopreempt changes nothing: two Masters resolve by priority (RFC 5798 §6.4.3).
#[test]
fn clients_reach_the_master_without_preemption() {
    let mut case = Case::new(Version::V3, false, [100, 200], Cut::Vrrp);
    case.preempt = false;
    grid(&case);
}

/// Three nodes, the middle one Master of the cut-off side: when it heals, the best takes the
/// clients back and the third stays Backup.
#[test]
fn three_nodes_partition_and_heal() {
    for clients_side in [0u8, 1] {
        let mut lan = Lan::new(3, Duration::from_micros(300));
        for (i, p) in [200u8, 150, 100].into_iter().enumerate() {
            let c = router_config(
                1,
                Version::V3,
                &format!("192.0.2.{}", i + 1),
                "192.0.2.100",
                p,
                10,
            );
            lan.add_node(&format!("r{}", i + 1), vec![c]);
        }
        lan.start_all();
        lan.run_for(Duration::from_secs(2));
        assert_eq!(lan.assert_neighbours_reach_master(1), 0);
        for i in 0..40u32 {
            lan.run_for(Duration::from_millis(u64::from(i * 7 % 100)));
            lan.neighbour_side = clients_side;
            lan.partition(&[0, 1, 1]);
            lan.run_for(Duration::from_millis(1500 + u64::from(i * 3 % 100)));
            lan.heal();
            lan.neighbour_side = 0;
            lan.run_for(Duration::from_millis(201));
            assert_eq!(lan.assert_neighbours_reach_master(1), 0, "round {i}");
            assert_eq!(lan.state(2, 1), State::Backup);
        }
    }
}

/// Sync groups: lb1 loses one member's election at the heal and its group steps the other
/// member down with priority 0, often before that member's own advert reached lb2: lb2,
/// Master of that VRID too, re-announces on the priority 0.
#[test]
fn sync_group_members_stepped_down_at_a_heal_are_reannounced() {
    for i in 0..100u32 {
        let mut lan = Lan::new(u64::from(i), Duration::from_micros(300));
        for (n, p) in [(0usize, 100u8), (1, 200)] {
            let a = format!("192.0.2.{}", n + 1);
            let mut c1 = router_config(1, Version::V3, &a, "192.0.2.101", p, 10);
            let mut c2 = router_config(2, Version::V3, &a, "192.0.2.102", p, 10);
            c1.announce.lower_prio_delay = None;
            c2.announce.lower_prio_delay = None;
            lan.add_node(&format!("lb{}", n + 1), vec![c1, c2]);
            lan.sync_group(n, &[1, 2]);
        }
        lan.start(1);
        lan.run_for(Duration::from_secs(1));
        lan.start(0);
        lan.run_for(Duration::from_secs(5));
        assert_eq!(lan.assert_neighbours_reach_master(1), 1);
        assert_eq!(lan.assert_neighbours_reach_master(2), 1);
        lan.run_for(Duration::from_millis(u64::from(i * 13 % 100)));
        lan.cut_link(1, true);
        lan.cut_link(2, true);
        lan.run_for(Duration::from_millis(1500 + u64::from(i * 7 % 100)));
        assert_eq!(lan.masters(2).len(), 2);
        lan.cut_link(1, false);
        lan.cut_link(2, false);
        lan.run_for(Duration::from_millis(201));
        for vrid in [1, 2] {
            assert_eq!(lan.assert_neighbours_reach_master(vrid), 1, "round {i}");
        }
    }
}
