//! The extensions around RFC 5798 §6.4: preempt_delay, tracking, Fault, announcements, receive
//! validation and its counters, unicast, configuration errors, the sans-IO contract.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use vrrp_core::packet::{Auth, ChecksumMode, Version};
use vrrp_core::timers::{centis, master_down_interval};
use vrrp_core::{
    ConfigError, Demux, DemuxError, DropReason, FaultCause, Output, ProtoErrReason, Reason,
    Received, Router, RouterConfig, State, Track, TrackId,
};

fn rx<'a>(src: &str, dst: &str, ttl: u8, bytes: &'a [u8]) -> Received<'a> {
    Received {
        src: ip(src),
        dst: ip(dst),
        ttl,
        bytes,
    }
}

// ---- preempt_delay ----

#[test]
fn preempt_delay_keeps_a_lower_master_until_it_ends() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.preempt_delay = Duration::from_secs(10);
    let mut r = backup(c, t0);
    let first = t0 + ms(1000);
    for k in 0..12u64 {
        let now = first + ms(1000 * k);
        if now >= first + Duration::from_secs(10) {
            break;
        }
        hear(&mut r, now, "192.0.2.20", 50, 100);
        assert_eq!(r.state(), State::Backup, "at {k} s");
    }
    assert_eq!(r.poll_timeout(), Some(first + Duration::from_secs(10)));
    r.handle_timeout(first + Duration::from_secs(10));
    let out = drain(&mut r);
    assert!(out.contains(&Output::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Preempted
    }));
}

#[test]
fn preempt_delay_is_cancelled_by_a_better_master() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.preempt_delay = Duration::from_secs(5);
    let mut r = backup(c, t0);
    hear(&mut r, t0 + ms(100), "192.0.2.20", 50, 100);
    hear(&mut r, t0 + ms(200), "192.0.2.30", 150, 100);
    for k in 1..=10u64 {
        hear(&mut r, t0 + ms(200 + 1000 * k), "192.0.2.30", 150, 100);
    }
    assert_eq!(r.state(), State::Backup);
}

// ---- tracking ----

fn tracked(priority: u8, tracks: &[(u32, i16, bool)]) -> RouterConfig {
    let mut c = cfg(priority);
    c.tracks = tracks
        .iter()
        .map(|&(id, weight, up)| Track::new(TrackId(id), weight).starting(up))
        .collect();
    c
}

#[test]
fn tracking_weights_move_priority_and_master_tells_at_once() {
    let t0 = Instant::now();
    // The seed's check_nginx: weight -20.
    let (mut r, t) = master(tracked(100, &[(1, -20, true), (2, 10, false)]), t0);
    assert_eq!(r.effective_priority(), 100);
    let t1 = t + ms(10);
    r.set_tracked(t1, TrackId(1), false).unwrap();
    assert_eq!(r.effective_priority(), 80);
    assert_eq!(sent(&drain(&mut r)), vec![80]);
    assert_eq!(r.poll_timeout(), Some(t1 + centis(100)));
    r.set_tracked(t1, TrackId(2), true).unwrap();
    assert_eq!(r.effective_priority(), 90);
    // No change, no advert.
    r.set_tracked(t1, TrackId(2), true).unwrap();
    assert_eq!(sent(&drain(&mut r)), vec![90]);
    assert_eq!(
        r.set_tracked(t1, TrackId(9), true),
        Err(ConfigError::UnknownTrack(TrackId(9)))
    );
    assert_eq!(r.is_tracked_up(TrackId(1)), Some(false));
}

#[test]
fn a_lowered_master_is_preempted_by_a_backup() {
    let t0 = Instant::now();
    let mut b = backup(cfg(90), t0);
    // The master at 100 is accepted...
    hear(&mut b, t0 + ms(100), "192.0.2.20", 100, 100);
    let timer = t0 + ms(100) + b.master_down_interval();
    // ...then its check fails (100 - 20 = 80): its adverts no longer reset the Backup's timer.
    hear(&mut b, t0 + ms(1100), "192.0.2.20", 80, 100);
    hear(&mut b, t0 + ms(2100), "192.0.2.20", 80, 100);
    hear(&mut b, t0 + ms(3100), "192.0.2.20", 80, 100);
    assert_eq!(b.poll_timeout(), Some(timer));
    b.handle_timeout(timer);
    let out = drain(&mut b);
    assert!(out.contains(&Output::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Preempted
    }));
}

#[test]
fn weight_zero_track_down_is_fault_and_master_sends_priority_zero() {
    let t0 = Instant::now();
    let (mut r, t) = master(tracked(100, &[(1, 0, true)]), t0);
    r.set_tracked(t + ms(1), TrackId(1), false).unwrap();
    let out = drain(&mut r);
    assert_eq!(
        out[0],
        Output::StateChanged {
            from: State::Master,
            to: State::Fault,
            reason: Reason::Fault(FaultCause::TrackDown(TrackId(1)))
        }
    );
    assert_eq!(sent(&out), vec![0]);
    assert!(out.contains(&Output::RemoveAddresses(vec![ip(VIP)])));
    assert_eq!(r.poll_timeout(), None);
    // In Fault it listens to nothing.
    let c = r.config().clone();
    let bytes = advert_from(&c, "192.0.2.20", GROUP, 50, 100);
    assert_eq!(
        r.handle_packet(t + ms(2), &rx("192.0.2.20", GROUP, 255, &bytes)),
        Err(DropReason::NotListening(State::Fault))
    );
    // Back up: Backup, with a fresh Master_Down_Timer.
    let t2 = t + ms(500);
    r.set_tracked(t2, TrackId(1), true).unwrap();
    let out = drain(&mut r);
    assert_eq!(
        out,
        vec![Output::StateChanged {
            from: State::Fault,
            to: State::Backup,
            reason: Reason::FaultCleared
        }]
    );
    assert_eq!(r.poll_timeout(), Some(t2 + r.master_down_interval()));
}

#[test]
fn interface_down_is_fault_without_sending() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    r.set_interface_up(t + ms(1), false);
    let out = drain(&mut r);
    assert_eq!(changes(&out), vec![(State::Master, State::Fault)]);
    assert!(
        sent(&out).is_empty(),
        "nothing can be sent on a down interface"
    );
    assert!(out.contains(&Output::RemoveAddresses(vec![ip(VIP)])));
    r.set_interface_up(t + ms(2), true);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn startup_with_a_fault_goes_to_fault_and_owner_leaves_it_as_master() {
    let t0 = Instant::now();
    let mut r = Router::new(tracked(255, &[(1, 0, false)])).unwrap();
    r.handle_startup(t0);
    assert_eq!(
        drain(&mut r),
        vec![Output::StateChanged {
            from: State::Initialize,
            to: State::Fault,
            reason: Reason::Fault(FaultCause::TrackDown(TrackId(1)))
        }]
    );
    r.set_tracked(t0 + ms(5), TrackId(1), true).unwrap();
    assert_eq!(r.state(), State::Master);
    let mut r = Router::new(cfg(100)).unwrap();
    r.set_interface_up(t0, false);
    r.handle_startup(t0);
    assert_eq!(r.state(), State::Fault);
    r.handle_shutdown(t0 + ms(1));
    assert_eq!(r.state(), State::Initialize);
    assert!(sent(&drain(&mut r)).is_empty());
}

#[test]
fn base_priority_changes_at_run_time() {
    let t0 = Instant::now();
    let mut r = backup(cfg(50), t0);
    assert_eq!(r.set_base_priority(t0, 0), Err(ConfigError::PriorityZero));
    r.set_base_priority(t0 + ms(1), 200).unwrap();
    assert_eq!(r.effective_priority(), 200);
    assert_eq!(r.base_priority(), 200);
    // The next reset uses the new priority's Master_Down_Interval.
    hear(&mut r, t0 + ms(10), "192.0.2.20", 220, 100);
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + ms(10) + master_down_interval(Version::V3, 200, 100))
    );
}

// ---- announcements ----

#[test]
fn announcements_burst_then_delay_then_refresh() {
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.announce.master_repeat = 5;
    c.announce.master_delay = Some(Duration::from_secs(5));
    c.announce.refresh = Some(Duration::from_secs(60));
    c.announce.refresh_repeat = 2;
    let mut r = Router::new(c).unwrap();
    r.handle_startup(t0);
    let announces = |out: &[Output]| -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Output::Announce { repeat, .. } => Some(*repeat),
                _ => None,
            })
            .collect()
    };
    assert_eq!(announces(&drain(&mut r)), vec![5]);
    let mut seen = Vec::new();
    let end = t0 + Duration::from_secs(130);
    while let Some(t) = r.poll_timeout().filter(|t| *t <= end) {
        r.handle_timeout(t);
        for a in announces(&drain(&mut r)) {
            seen.push(((t - t0).as_secs(), a));
        }
    }
    assert_eq!(seen, vec![(5, 5), (60, 2), (120, 2)]);
}

#[test]
fn lower_priority_heard_by_master_reannounces_once_per_interval_then_again_later() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.announce.lower_prio_repeat = 3;
    c.announce.lower_prio_delay = Some(Duration::from_secs(2));
    let (mut r, t) = master(c, t0);
    let announces = |out: &[Output]| -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Output::Announce { repeat, .. } => Some(*repeat),
                _ => None,
            })
            .collect()
    };
    // A router that briefly thought it was master (and may have taken the neighbours' caches)
    // advertises its lower priority: announce at once.
    hear(&mut r, t + ms(10), "192.0.2.20", 90, 100);
    assert_eq!(announces(&drain(&mut r)), vec![3]);
    // Within the same advert interval, no second burst for every advert it sends...
    hear(&mut r, t + ms(500), "192.0.2.20", 90, 100);
    hear(&mut r, t + ms(700), "192.0.2.20", 90, 100);
    assert_eq!(announces(&drain(&mut r)), Vec::<u32>::new());
    // ...but one at the end of the interval: the other may have announced since our burst,
    // and the last word must be ours. Then the delayed second burst, lower_prio_delay after
    // the last one, and nothing more.
    let mut seen = Vec::new();
    let end = t + Duration::from_secs(6);
    while let Some(at) = r.poll_timeout().filter(|at| *at <= end) {
        r.handle_timeout(at);
        let a = announces(&drain(&mut r));
        if !a.is_empty() {
            seen.push((at - t, a));
        }
    }
    assert_eq!(seen, vec![(ms(1010), vec![3]), (ms(3010), vec![3])]);
    // An advert an interval or more after the last burst: a burst at once.
    hear(&mut r, t + ms(6000), "192.0.2.20", 90, 100);
    assert_eq!(announces(&drain(&mut r)), vec![3]);
    assert_eq!(r.stats().lower_prio_announcements, 3);
    assert_eq!(r.state(), State::Master);
}

/// A Master that hears a better Master (a partition healed) sends one advert at its own
/// priority before it leaves Master, so that the winner learns another Master held the
/// addresses and re-announces them (issue #12): the winner may never have heard this one.
#[test]
fn master_stepping_down_for_a_better_master_advertises_its_own_priority_first() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    hear(&mut r, t + ms(10), "192.0.2.20", 200, 100);
    let out = drain(&mut r);
    let sent: Vec<u8> = out
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(x) => Some(x.priority),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![100]);
    let pos = |f: &dyn Fn(&Output) -> bool| out.iter().position(f).unwrap();
    let advert = pos(&|o| matches!(o, Output::Transmit(_)));
    let change = pos(&|o| {
        matches!(
            o,
            Output::StateChanged {
                to: State::Backup,
                ..
            }
        )
    });
    let removed = pos(&|o| matches!(o, Output::RemoveAddresses(_)));
    assert!(advert < change && change < removed, "{out:?}");
    assert_eq!(r.stats().heal_adverts, 1);
    // As a Backup it stays silent.
    hear(&mut r, t + ms(1010), "192.0.2.20", 200, 100);
    assert!(drain(&mut r)
        .iter()
        .all(|o| !matches!(o, Output::Transmit(_))));
}

/// Only another Master sends priority 0 (leaving, or stepped down by its sync group): it held
/// the addresses, so a Master that hears it re-announces them.
#[test]
fn master_hearing_priority_zero_reannounces() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    hear(&mut r, t + ms(10), "192.0.2.20", 0, 100);
    let out = drain(&mut r);
    assert!(
        out.iter().any(|o| matches!(o, Output::Announce { .. })),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Transmit(x) if x.priority == 100)));
    assert_eq!(r.stats().lower_prio_announcements, 1);
}

// ---- receive validation ----

#[test]
fn validation_drops_are_counted() {
    let t0 = Instant::now();
    let mut r = backup(cfg(100), t0);
    let c = r.config().clone();
    let good = advert_from(&c, "192.0.2.20", GROUP, 150, 100);
    let now = t0 + ms(1);
    let check =
        |r: &mut Router, bytes: &[u8], src: &str, ttl: u8, want: fn(&DropReason) -> bool| {
            let e = r
                .handle_packet(now, &rx(src, GROUP, ttl, bytes))
                .unwrap_err();
            assert!(want(&e), "{e:?}");
        };
    check(&mut r, &good, "192.0.2.20", 254, |e| {
        matches!(e, DropReason::BadTtl(254))
    });
    assert_eq!(r.stats().ip_ttl_errors, 1);
    assert_eq!(r.stats().proto_err_reason, ProtoErrReason::IpTtlError);
    let mut bad = good.clone();
    bad[6] ^= 0xff;
    check(&mut r, &bad, "192.0.2.20", 255, |e| {
        matches!(e, DropReason::Malformed(_))
    });
    assert_eq!(r.stats().checksum_errors, 1);
    check(&mut r, &good[..7], "192.0.2.20", 255, |e| {
        matches!(e, DropReason::Malformed(_))
    });
    assert_eq!(r.stats().packet_length_errors, 1);
    let other_vrid = advert_with(&c, "192.0.2.20", GROUP, 150, 100, |a| a.vrid = 2);
    check(&mut r, &other_vrid, "192.0.2.20", 255, |e| {
        matches!(e, DropReason::WrongVrid(2))
    });
    assert_eq!(r.stats().vrid_errors, 1);
    let mut v2c = c.clone();
    v2c.version = Version::V2;
    let v2 = advert_from(&v2c, "192.0.2.20", GROUP, 150, 100);
    check(&mut r, &v2, "192.0.2.20", 255, |e| {
        matches!(e, DropReason::WrongVersion(2))
    });
    assert_eq!(r.stats().version_errors, 1);
    let mut bad_type = good.clone();
    bad_type[0] = 0x32;
    let ctx = vrrp_core::packet::IpContext {
        src: ip("192.0.2.20"),
        dst: ip(GROUP),
        checksum: ChecksumMode::Rfc5798,
    };
    vrrp_core::packet::Packet::new_unchecked(&mut bad_type[..], vrrp_core::packet::Family::Ipv4)
        .fill_checksum(&ctx)
        .unwrap();
    check(&mut r, &bad_type, "192.0.2.20", 255, |e| {
        matches!(e, DropReason::Malformed(_))
    });
    assert_eq!(r.stats().rcvd_invalid_type_packets, 1);
    let zero_int = advert_from(&c, "192.0.2.20", GROUP, 150, 0);
    check(&mut r, &zero_int, "192.0.2.20", 255, |e| {
        matches!(e, DropReason::BadInterval(0))
    });
    assert_eq!(r.stats().adv_interval_errors, 1);
    let own = advert_from(&c, ME, GROUP, 150, 100);
    check(&mut r, &own, ME, 255, |e| {
        matches!(e, DropReason::OwnPacket)
    });
    assert_eq!(r.stats().own_packets, 1);
    let v6 = advert_from(
        &RouterConfig::new(1, Version::V3, ip("fe80::1"), vec![ip("2001:db8::1")]),
        "fe80::2",
        "ff02::12",
        150,
        100,
    );
    let e = r
        .handle_packet(now, &rx("fe80::2", "ff02::12", 255, &v6))
        .unwrap_err();
    assert_eq!(e, DropReason::WrongFamily);
    // Nothing of that reset the timer or counted as received.
    assert_eq!(r.stats().rcvd_advertisements, 0);
    assert_eq!(r.poll_timeout(), Some(t0 + r.master_down_interval()));
    // An address list that differs is counted, and used (keepalived logs it and carries on).
    let other_vips = advert_with(&c, "192.0.2.20", GROUP, 150, 100, |_| {});
    let mut c2 = c.clone();
    c2.virtual_addresses = vec![ip("192.0.2.101")];
    let mismatch = advert_from(&c2, "192.0.2.20", GROUP, 150, 100);
    assert_ne!(other_vips, mismatch);
    r.handle_packet(now, &rx("192.0.2.20", GROUP, 255, &mismatch))
        .unwrap();
    assert_eq!(r.stats().address_list_errors, 1);
    assert_eq!(r.stats().rcvd_advertisements, 1);
    assert_eq!(r.poll_timeout(), Some(now + r.master_down_interval()));
}

fn v2_unicast(priority: u8, me: &str, peer: &str) -> RouterConfig {
    let mut c = RouterConfig::new(101, Version::V2, ip(me), vec![ip("192.0.2.200")]);
    c.priority = priority;
    c.auth = Auth::simple(b"123456").unwrap();
    c.unicast_peers = vec![ip(peer)];
    c.announce.master_delay = None;
    c
}

#[test]
fn v2_auth_interval_and_unicast_peers_are_checked() {
    let t0 = Instant::now();
    let c = v2_unicast(50, "192.0.2.2", "192.0.2.1");
    let mut r = backup(c.clone(), t0);
    let now = t0 + ms(1);
    let send = |r: &mut Router, bytes: &[u8], src: &str| {
        r.handle_packet(now, &rx(src, "192.0.2.2", 255, bytes))
    };
    // Unicast: the TTL is checked as for multicast (RFC 5798 §7.1), and the peer is.
    let good = advert_from(&c, "192.0.2.1", "192.0.2.2", 100, 100);
    assert_eq!(
        r.handle_packet(now, &rx("192.0.2.1", "192.0.2.2", 64, &good)),
        Err(DropReason::BadTtl(64))
    );
    assert_eq!(r.stats().ip_ttl_errors, 1);
    assert_eq!(send(&mut r, &good, "192.0.2.1"), Ok(()));
    let stranger = advert_from(&c, "192.0.2.9", "192.0.2.2", 100, 100);
    assert_eq!(
        send(&mut r, &stranger, "192.0.2.9"),
        Err(DropReason::UnknownPeer(ip("192.0.2.9")))
    );
    assert_eq!(r.stats().unknown_peer_errors, 1);
    let wrong_pw = advert_with(&c, "192.0.2.1", "192.0.2.2", 100, 100, |a| {
        a.auth = Auth::simple(b"654321").unwrap()
    });
    assert_eq!(
        send(&mut r, &wrong_pw, "192.0.2.1"),
        Err(DropReason::AuthFailure)
    );
    assert_eq!(r.stats().auth_failures, 1);
    let no_auth = advert_with(&c, "192.0.2.1", "192.0.2.2", 100, 100, |a| {
        a.auth = Auth::None
    });
    assert_eq!(
        send(&mut r, &no_auth, "192.0.2.1"),
        Err(DropReason::AuthTypeMismatch(0))
    );
    assert_eq!(r.stats().auth_type_mismatch, 1);
    let slow = advert_from(&c, "192.0.2.1", "192.0.2.2", 100, 300);
    assert_eq!(
        send(&mut r, &slow, "192.0.2.1"),
        Err(DropReason::BadInterval(300))
    );
    assert_eq!(r.stats().adv_interval_errors, 1);
    assert_eq!(r.stats().rcvd_advertisements, 1);
}

#[test]
fn unicast_master_sends_to_each_peer() {
    let t0 = Instant::now();
    let mut c = v2_unicast(100, "192.0.2.1", "192.0.2.2");
    c.unicast_peers.push(ip("192.0.2.3"));
    let mut r = Router::new(c).unwrap();
    r.handle_startup(t0);
    r.handle_timeout(r.poll_timeout().unwrap());
    let out = drain(&mut r);
    let dsts: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some((t.dst, decode_sent(t, ChecksumMode::Rfc5798))),
            _ => None,
        })
        .collect();
    let pw = Auth::simple(b"123456").unwrap();
    assert_eq!(
        dsts,
        vec![
            (ip("192.0.2.2"), (100, 100, pw)),
            (ip("192.0.2.3"), (100, 100, pw))
        ]
    );
    assert_eq!(r.stats().sent_advertisements, 2);
}

#[test]
fn v3_checksum_without_pseudo_header_is_used_both_ways() {
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.checksum = ChecksumMode::V3WithoutPseudoHeader;
    let mut r = Router::new(c.clone()).unwrap();
    r.handle_startup(t0);
    let out = drain(&mut r);
    let Some(Output::Transmit(t)) = out.iter().find(|o| matches!(o, Output::Transmit(_))) else {
        panic!()
    };
    assert_eq!(decode_sent(t, ChecksumMode::V3WithoutPseudoHeader).0, 255);
    let peer = advert_with(&c, "192.0.2.20", GROUP, 0, 100, |_| {});
    // Emitted with the RFC checksum: this router must reject it.
    assert!(matches!(
        r.handle_packet(t0 + ms(1), &rx("192.0.2.20", GROUP, 255, &peer)),
        Err(DropReason::Malformed(_))
    ));
}

// ---- the sans-IO contract ----

#[test]
fn spurious_timeouts_and_time_going_backwards_are_harmless() {
    let t0 = Instant::now() + Duration::from_secs(10);
    let mut r = backup(cfg(100), t0);
    let deadline = r.poll_timeout().unwrap();
    for k in 0..10u64 {
        r.handle_timeout(t0 + ms(100 * k));
    }
    r.handle_timeout(t0 - Duration::from_secs(5));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(deadline));
    // A late driver: a packet arriving after the deadline first runs the timer.
    let late = deadline + ms(50);
    hear(&mut r, late, "192.0.2.20", 50, 100);
    let out = drain(&mut r);
    assert_eq!(changes(&out), vec![(State::Backup, State::Master)]);
    // ...and the Master answered the lower-priority advert.
    assert_eq!(sent(&out), vec![100, 100]);
    assert!(r.poll_timeout().unwrap() > late);
}

// ---- configuration ----

#[test]
fn configuration_errors_are_typed() {
    let base = cfg(100);
    let err = |f: fn(&mut RouterConfig)| {
        let mut c = base.clone();
        f(&mut c);
        Router::new(c).unwrap_err()
    };
    assert_eq!(err(|c| c.vrid = 0), ConfigError::VridZero);
    assert_eq!(err(|c| c.priority = 0), ConfigError::PriorityZero);
    assert!(matches!(
        err(|c| c.advert_interval_cs = 0),
        ConfigError::IntervalOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.advert_interval_cs = 4096),
        ConfigError::IntervalOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| {
            c.version = Version::V2;
            c.advert_interval_cs = 150
        }),
        ConfigError::IntervalOutOfRange { .. }
    ));
    assert_eq!(
        err(|c| {
            c.version = Version::V2;
            c.primary_address = ip("fe80::1");
            c.virtual_addresses = vec![ip("2001:db8::1")];
        }),
        ConfigError::V2RequiresIpv4
    );
    assert_eq!(
        err(|c| c.auth = Auth::simple(b"x").unwrap()),
        ConfigError::AuthRequiresV2
    );
    assert_eq!(
        err(|c| c.virtual_addresses.clear()),
        ConfigError::NoVirtualAddresses
    );
    assert!(matches!(
        err(|c| c.virtual_addresses.push(ip("2001:db8::1"))),
        ConfigError::FamilyMismatch { .. }
    ));
    assert_eq!(
        err(|c| c.unicast_peers = vec![ip(ME)]),
        ConfigError::PeerIsSelf(ip(ME))
    );
    assert_eq!(
        err(|c| { c.tracks = vec![Track::new(TrackId(1), 1), Track::new(TrackId(1), 2),] }),
        ConfigError::DuplicateTrack(TrackId(1))
    );
    assert!(matches!(
        err(|c| c.tracks = vec![Track::new(TrackId(1), 254)]),
        ConfigError::WeightOutOfRange { .. }
    ));
    assert!(!ConfigError::PriorityZero.to_string().is_empty());
}

// ---- demux ----

#[test]
fn demux_routes_by_vrid_and_family() {
    let t0 = Instant::now();
    let mut d = Demux::new();
    let a = d.add(Router::new(cfg(100)).unwrap()).unwrap();
    let mut c2 = cfg(100);
    c2.vrid = 2;
    let b = d.add(Router::new(c2.clone()).unwrap()).unwrap();
    let mut c6 = RouterConfig::new(1, Version::V3, ip("fe80::10"), vec![ip("2001:db8::1")]);
    c6.announce.master_delay = None;
    let v6 = d.add(Router::new(c6.clone()).unwrap()).unwrap();
    assert!(matches!(
        d.add(Router::new(cfg(50)).unwrap()),
        Err(ConfigError::DuplicateRouter { vrid: 1, .. })
    ));
    d.handle_startup(t0);
    // Outputs come round robin, one router after the other.
    let from: Vec<_> = std::iter::from_fn(|| d.poll_output())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(from, vec![a, b, v6]);
    let earliest = d.routers().filter_map(|(_, r)| r.poll_timeout()).min();
    assert_eq!(d.poll_timeout(), earliest);
    assert!(earliest.is_some());
    let p2 = advert_from(&c2, "192.0.2.20", GROUP, 200, 100);
    assert_eq!(
        d.handle_packet(t0 + ms(1), &rx("192.0.2.20", GROUP, 255, &p2)),
        Ok(b)
    );
    let p6 = advert_from(&c6, "fe80::20", "ff02::12", 200, 100);
    assert_eq!(
        d.handle_packet(t0 + ms(1), &rx("fe80::20", "ff02::12", 255, &p6)),
        Ok(v6)
    );
    assert_eq!(d.get(b).unwrap().stats().rcvd_advertisements, 1);
    assert_eq!(d.get(a).unwrap().stats().rcvd_advertisements, 0);
    let p9 = advert_with(&c2, "192.0.2.20", GROUP, 200, 100, |a| a.vrid = 9);
    assert!(matches!(
        d.handle_packet(t0 + ms(1), &rx("192.0.2.20", GROUP, 255, &p9)),
        Err(DemuxError::NoRouter { vrid: 9, .. })
    ));
    assert_eq!(
        d.handle_packet(t0, &rx("192.0.2.20", GROUP, 255, &[0x31])),
        Err(DemuxError::Truncated)
    );
    assert_eq!(d.stats().vrid_errors, 1);
    assert_eq!(d.stats().packet_length_errors, 1);
    // Router a hears nothing and takes over; b and v6 follow their masters.
    let deadline = d.poll_timeout().unwrap();
    d.handle_timeout(deadline);
    let outs: Vec<_> = std::iter::from_fn(|| d.poll_output()).collect();
    assert!(outs.iter().all(|(id, _)| *id == a));
    assert_eq!(d.get(a).unwrap().state(), State::Master);
    assert_eq!(d.get(b).unwrap().state(), State::Backup);
    d.get_mut(b)
        .unwrap()
        .set_base_priority(deadline, 60)
        .unwrap();
    d.handle_shutdown(deadline + ms(1));
    assert!(d.routers().all(|(_, r)| r.state() == State::Initialize));
}
