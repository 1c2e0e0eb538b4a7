//! The seed article's two keepalived set-ups, by name, on TEST-NET addresses: VRRPv2, VRID 101
//! (and 102), advert_int 1, PASS auth "123456", unicast peers, priorities 100 / 50, and the
//! check_nginx track with weight -20.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::time::Duration;

use sim::Lan;
use vrrp_core::packet::{Auth, Version};
use vrrp_core::{Reason, RouterConfig, State, Track, TrackId};

const LB1: &str = "192.0.2.158";
const LB2: &str = "192.0.2.159";
const VIP1: &str = "192.0.2.200";
const VIP2: &str = "192.0.2.201";
const CHECK_NGINX: TrackId = TrackId(1);

/// One `vrrp_instance` of the article's keepalived.conf.
fn instance(vrid: u8, me: &str, peer: &str, vip: &str, priority: u8) -> RouterConfig {
    let mut c = RouterConfig::new(
        vrid,
        Version::V2,
        me.parse().unwrap(),
        vec![vip.parse().unwrap()],
    );
    c.priority = priority;
    c.advert_interval_cs = 100;
    c.auth = Auth::simple(b"123456").unwrap();
    c.unicast_peers = vec![peer.parse().unwrap()];
    c.tracks = vec![Track::new(CHECK_NGINX, -20)];
    c
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn active_standby() {
    let mut lan = Lan::new(101, Duration::from_millis(1));
    let lb1 = lan.add_node("lb1", vec![instance(101, LB1, LB2, VIP1, 100)]);
    let lb2 = lan.add_node("lb2", vec![instance(101, LB2, LB1, VIP1, 50)]);
    lan.start_all();
    lan.run_for(secs(10));
    assert_eq!(lan.assert_converged(101, true), vec![lb1]);
    assert_eq!(lan.state(lb2, 101), State::Backup);

    // nginx dies on lb1: check_nginx fails, 100 - 20 = 80 is still above 50: lb1 stays.
    lan.set_tracked(lb1, CHECK_NGINX, false);
    lan.run_for(secs(10));
    assert_eq!(lan.router(lb1, 101).effective_priority(), 80);
    assert_eq!(lan.assert_converged(101, true), vec![lb1]);

    // nginx_check.sh then stops keepalived: a graceful shutdown, priority 0, lb2 takes over
    // within its Skew_Time ((256 - 50) / 256 s) plus latency.
    let t = lan.elapsed();
    let bound = lan.router(lb2, 101).skew_time() + Duration::from_millis(1);
    lan.shutdown(lb1);
    lan.run_for(secs(10));
    let c = lan.first_master_since(101, t).unwrap();
    assert_eq!((c.node, c.reason), (lb2, Reason::MasterNoResponse));
    assert!(c.at - t <= bound);
    assert_eq!(lan.router(lb2, 101).stats().rcvd_pri_zero_packets, 1);

    // nginx and keepalived come back on lb1: it preempts.
    lan.set_tracked(lb1, CHECK_NGINX, true);
    lan.start(lb1);
    lan.run_for(secs(10));
    assert_eq!(lan.assert_converged(101, true), vec![lb1]);
    // Throughout, the unicast PASS adverts were all accepted.
    for node in [lb1, lb2] {
        let s = lan.router(node, 101).stats();
        assert_eq!(
            s.auth_failures + s.unknown_peer_errors + s.adv_interval_errors,
            0
        );
        assert!(s.rcvd_advertisements > 0);
    }
}

#[test]
fn active_active() {
    let mut lan = Lan::new(102, Duration::from_millis(1));
    let lb1 = lan.add_node(
        "lb1",
        vec![
            instance(101, LB1, LB2, VIP1, 100),
            instance(102, LB1, LB2, VIP2, 50),
        ],
    );
    let lb2 = lan.add_node(
        "lb2",
        vec![
            instance(101, LB2, LB1, VIP1, 50),
            instance(102, LB2, LB1, VIP2, 100),
        ],
    );
    lan.start_all();
    lan.run_for(secs(10));
    assert_eq!(lan.assert_converged(101, true), vec![lb1]);
    assert_eq!(lan.assert_converged(102, true), vec![lb2]);

    // lb1 crashes: lb2 holds both addresses within Master_Down_Interval (3 s + skew).
    let t = lan.elapsed();
    lan.crash(lb1);
    lan.run_for(secs(10));
    let c = lan.first_master_since(101, t).unwrap();
    assert_eq!(c.node, lb2);
    assert!(c.at - t <= secs(3) + lan.router(lb2, 101).skew_time() + Duration::from_millis(1));
    assert_eq!(lan.masters(101), vec![lb2]);
    assert_eq!(lan.masters(102), vec![lb2]);

    // lb1 boots again: the split comes back.
    lan.restart(lb1);
    lan.run_for(secs(10));
    assert_eq!(lan.assert_converged(101, true), vec![lb1]);
    assert_eq!(lan.assert_converged(102, true), vec![lb2]);
}
