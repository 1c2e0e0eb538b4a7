//! One test per branch of RFC 5798 §6.4.1 (Initialize), §6.4.2 (Backup) and §6.4.3 (Master),
//! in simulated time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;
use vrrp_core::packet::Version;
use vrrp_core::timers::{centis, master_down_interval, skew_time};
use vrrp_core::{NewMasterReason, Output, Reason, Router, State};

// ---- §6.4.1 Initialize ----

#[test]
fn startup_non_owner_becomes_backup_with_master_down_timer() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(100)).unwrap();
    assert_eq!(r.state(), State::Initialize);
    assert_eq!(r.poll_timeout(), None);
    r.handle_startup(t0);
    let out = drain(&mut r);
    assert_eq!(
        out,
        vec![Output::StateChanged {
            from: State::Initialize,
            to: State::Backup,
            reason: Reason::Startup
        }]
    );
    // Master_Adver_Interval = Advertisement_Interval; Master_Down_Timer = Master_Down_Interval.
    assert_eq!(r.master_adver_interval_cs(), 100);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + master_down_interval(Version::V3, 100, 100))
    );
}

#[test]
fn startup_owner_becomes_master_advertises_and_announces() {
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.announce.master_repeat = 3;
    let mut r = Router::new(c).unwrap();
    r.handle_startup(t0);
    let out = drain(&mut r);
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(
        out[0],
        Output::StateChanged {
            from: State::Initialize,
            to: State::Master,
            reason: Reason::AddressOwner
        }
    );
    assert_eq!(out[1], Output::AddAddresses(vec![ip(VIP)]));
    let Output::Transmit(t) = &out[2] else {
        panic!("{:?}", out[2])
    };
    assert_eq!((t.src, t.dst, t.ttl), (ip(ME), ip(GROUP), 255));
    assert_eq!(
        decode_sent(t, Default::default()),
        (255, 100, vrrp_core::packet::Auth::None)
    );
    assert_eq!(
        out[3],
        Output::Announce {
            addresses: vec![ip(VIP)],
            repeat: 3
        }
    );
    // Adver_Timer = Advertisement_Interval.
    assert_eq!(r.poll_timeout(), Some(t0 + centis(100)));
    assert_eq!(r.stats().master_transitions, 1);
    assert_eq!(r.stats().new_master_reason, NewMasterReason::Priority);
    assert!(r.accept_mode(), "the owner always accepts");
}

#[test]
fn startup_twice_is_ignored() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    let deadline = r.poll_timeout();
    r.handle_startup(t0 + ms(500));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), deadline);
}

// ---- §6.4.2 Backup ----

#[test]
fn backup_shutdown_goes_to_initialize_silently() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    r.handle_shutdown(t0 + ms(10));
    let out = drain(&mut r);
    assert_eq!(changes(&out), vec![(State::Backup, State::Initialize)]);
    assert!(sent(&out).is_empty());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn backup_master_down_timer_makes_master() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    let deadline = r.poll_timeout().unwrap();
    // One nanosecond early: nothing.
    r.handle_timeout(deadline - ms(0) - std::time::Duration::from_nanos(1));
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(deadline);
    let out = drain(&mut r);
    assert_eq!(
        out[0],
        Output::StateChanged {
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterNoResponse
        }
    );
    assert_eq!(out[1], Output::AddAddresses(vec![ip(VIP)]));
    assert_eq!(sent(&out), vec![100]);
    assert!(out.iter().any(|o| matches!(o, Output::Announce { .. })));
    assert_eq!(r.poll_timeout(), Some(deadline + centis(100)));
    assert_eq!(
        r.stats().new_master_reason,
        NewMasterReason::MasterNoResponse
    );
    assert_eq!(r.master_address(), Some(ip(ME)));
}

#[test]
fn backup_priority_zero_sets_master_down_to_skew_time() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    let t1 = t0 + ms(700);
    hear(&mut r, t1, "192.0.2.20", 0, 100);
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + skew_time(Version::V3, 100, 100))
    );
    assert_eq!(r.stats().rcvd_pri_zero_packets, 1);
    r.handle_timeout(t1 + skew_time(Version::V3, 100, 100));
    assert_eq!(r.state(), State::Master);
}

#[test]
fn backup_higher_priority_resets_timer_and_learns_interval() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    let t1 = t0 + ms(2000);
    // The master advertises every 50 cs; a VRRPv3 Backup adopts it.
    hear(&mut r, t1, "192.0.2.20", 200, 50);
    assert_eq!(r.master_adver_interval_cs(), 50);
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + master_down_interval(Version::V3, 100, 50))
    );
    assert_eq!(r.master_address(), Some(ip("192.0.2.20")));
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.stats().rcvd_advertisements, 1);
}

#[test]
fn backup_equal_priority_is_accepted() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    // A lower address at equal priority still resets the timer: only Masters tie-break.
    hear(&mut r, t0 + ms(3000), "192.0.2.1", 100, 100);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + ms(3000) + master_down_interval(Version::V3, 100, 100))
    );
}

#[test]
fn backup_with_preempt_discards_lower_priority_and_preempts() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    let deadline = r.poll_timeout().unwrap();
    hear(&mut r, t0 + ms(1000), "192.0.2.20", 50, 40);
    // Discarded: the timer is not reset and the interval not learned.
    assert_eq!(r.poll_timeout(), Some(deadline));
    assert_eq!(r.master_adver_interval_cs(), 100);
    r.handle_timeout(deadline);
    let out = drain(&mut r);
    assert!(out.contains(&Output::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Preempted
    }));
    assert_eq!(r.stats().new_master_reason, NewMasterReason::Preempted);
}

#[test]
fn backup_without_preempt_keeps_lower_priority_master() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.preempt = false;
    let mut r = backup(c, t0);
    for k in 1..=10u64 {
        hear(&mut r, t0 + ms(1000 * k), "192.0.2.20", 50, 100);
        r.handle_timeout(t0 + ms(1000 * k + 999));
    }
    assert_eq!(r.state(), State::Backup);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn v2_backup_uses_its_own_interval() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.version = Version::V2;
    c.advert_interval_cs = 200;
    let mut r = backup(c, t0);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + master_down_interval(Version::V2, 100, 200))
    );
    hear(&mut r, t0 + ms(100), "192.0.2.20", 150, 200);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + ms(100) + std::time::Duration::from_secs(6) + skew_time(Version::V2, 100, 0))
    );
}

// ---- §6.4.3 Master ----

#[test]
fn master_shutdown_sends_priority_zero_and_removes_addresses() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    r.handle_shutdown(t + ms(10));
    let out = drain(&mut r);
    assert_eq!(changes(&out), vec![(State::Master, State::Initialize)]);
    assert_eq!(sent(&out), vec![0]);
    assert!(out.contains(&Output::RemoveAddresses(vec![ip(VIP)])));
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.stats().sent_pri_zero_packets, 1);
    // Shut down, it hears nothing.
    let c = r.config().clone();
    let bytes = advert_from(&c, "192.0.2.20", GROUP, 50, 100);
    let rx = vrrp_core::Received {
        src: ip("192.0.2.20"),
        dst: ip(GROUP),
        ttl: 255,
        bytes: &bytes,
    };
    assert!(r.handle_packet(t + ms(20), &rx).is_err());
}

#[test]
fn master_adver_timer_sends_and_rearms() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    for k in 1..=5u32 {
        let due = t + centis(100) * k;
        assert_eq!(r.poll_timeout(), Some(due));
        r.handle_timeout(due);
        assert_eq!(sent(&drain(&mut r)), vec![100]);
    }
}

#[test]
fn master_priority_zero_received_advertises_at_once() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    let t1 = t + ms(300);
    hear(&mut r, t1, "192.0.2.20", 0, 100);
    assert_eq!(sent(&drain(&mut r)), vec![100]);
    assert_eq!(r.poll_timeout(), Some(t1 + centis(100)));
    assert_eq!(r.state(), State::Master);
}

#[test]
fn master_higher_priority_steps_down() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    let t1 = t + ms(300);
    hear(&mut r, t1, "192.0.2.5", 101, 70);
    let out = drain(&mut r);
    // First one advert at its own priority (never 0): the winner learns that another Master
    // held the addresses and announces them again (see tests/heal.rs).
    assert_eq!(
        sent(&out),
        vec![100],
        "one advert at its own priority, no priority 0"
    );
    assert!(matches!(&out[0], Output::Transmit(t) if t.priority == 100));
    assert_eq!(
        out[1],
        Output::StateChanged {
            from: State::Master,
            to: State::Backup,
            reason: Reason::HigherPriorityAdvert
        }
    );
    assert_eq!(out[2], Output::RemoveAddresses(vec![ip(VIP)]));
    assert_eq!(r.master_adver_interval_cs(), 70);
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + master_down_interval(Version::V3, 100, 70))
    );
}

#[test]
fn master_equal_priority_higher_address_steps_down() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    // 192.0.2.200 > 192.0.2.10 as unsigned integers (and as strings it would be smaller).
    hear(&mut r, t + ms(1), "192.0.2.200", 100, 100);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn master_equal_priority_lower_address_stays_and_answers() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    hear(&mut r, t + ms(1), "192.0.2.9", 100, 100);
    assert_eq!(r.state(), State::Master);
    assert_eq!(sent(&drain(&mut r)), vec![100]);
}

#[test]
fn master_lower_priority_is_answered_at_once() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    let t1 = t + ms(250);
    hear(&mut r, t1, "192.0.2.20", 99, 100);
    assert_eq!(sent(&drain(&mut r)), vec![100]);
    assert_eq!(r.poll_timeout(), Some(t1 + centis(100)));
}

#[test]
fn master_lower_priority_is_discarded_when_answering_is_off() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    // RFC 5798 to the letter: no answer, and no re-announcement either.
    c.answer_lower_priority = false;
    c.announce.lower_prio_repeat = 0;
    let (mut r, t) = master(c, t0);
    let next = r.poll_timeout();
    hear(&mut r, t + ms(250), "192.0.2.20", 99, 100);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), next);
}

#[test]
fn ipv6_router_ties_on_link_local_addresses() {
    let t0 = Instant::now();
    let mut c =
        vrrp_core::RouterConfig::new(7, Version::V3, ip("fe80::10"), vec![ip("2001:db8::100")]);
    c.announce.master_delay = None;
    let (mut r, t) = master(c.clone(), t0);
    let bytes = advert_from(&c, "fe80::11", "ff02::12", 100, 100);
    let rx = vrrp_core::Received {
        src: ip("fe80::11"),
        dst: ip("ff02::12"),
        ttl: 255,
        bytes: &bytes,
    };
    r.handle_packet(t + ms(5), &rx).unwrap();
    assert_eq!(r.state(), State::Backup);
    let out = drain(&mut r);
    assert!(out.contains(&Output::RemoveAddresses(vec![ip("2001:db8::100")])));
}
