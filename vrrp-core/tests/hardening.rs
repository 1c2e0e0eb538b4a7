//! Protocol holes closed after a reading against RFC 5798 / RFC 3768 and keepalived: adverts
//! that crossed a router or went to the wrong destination, a driver that stalled, and a
//! Backup's priority changing while its Master_Down_Timer runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::time::{Duration, Instant};

use common::*;
use vrrp_core::packet::Version;
use vrrp_core::{DropReason, Output, Reason, Received, State, Track, TrackId};

fn rx<'a>(src: &str, dst: &str, ttl: u8, bytes: &'a [u8]) -> Received<'a> {
    Received {
        src: ip(src),
        dst: ip(dst),
        ttl,
        bytes,
    }
}

/// An attacker off the LAN reaches a multicast Master only through its unicast address, with a
/// TTL below 255: neither that nor a TTL-255 advert to its address moves it.
#[test]
fn forged_adverts_to_a_multicast_master_are_dropped_and_counted() {
    let t0 = Instant::now();
    let (mut r, t) = master(cfg(100), t0);
    let c = r.config().clone();
    let now = t + ms(10);
    // Priority 254, valid checksum, sent to the Master's own address with TTL 64.
    let to_me = advert_from(&c, "198.51.100.7", ME, 254, 100);
    assert_eq!(
        r.handle_packet(now, &rx("198.51.100.7", ME, 64, &to_me)),
        Err(DropReason::BadTtl(64))
    );
    // The same to the group with TTL 64.
    let to_group = advert_from(&c, "198.51.100.7", GROUP, 254, 100);
    assert_eq!(
        r.handle_packet(now, &rx("198.51.100.7", GROUP, 64, &to_group)),
        Err(DropReason::BadTtl(64))
    );
    assert_eq!(r.stats().ip_ttl_errors, 2);
    // TTL 255 but to the unicast address: a multicast router expects the group.
    assert_eq!(
        r.handle_packet(now, &rx("192.0.2.20", ME, 255, &to_me)),
        Err(DropReason::ExpectedMulticast(ip(ME)))
    );
    assert_eq!(r.stats().destination_errors, 1);
    assert_eq!(r.state(), State::Master);
    assert!(changes(&drain(&mut r)).is_empty());
    assert_eq!(r.stats().rcvd_advertisements, 0);
}

#[test]
fn a_unicast_router_drops_adverts_to_the_group() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.unicast_peers = vec![ip("192.0.2.20")];
    let mut r = backup(c.clone(), t0);
    let bytes = advert_from(&c, "192.0.2.20", GROUP, 200, 100);
    assert_eq!(
        r.handle_packet(t0 + ms(1), &rx("192.0.2.20", GROUP, 255, &bytes)),
        Err(DropReason::ExpectedUnicast(ip(GROUP)))
    );
    assert_eq!(r.stats().destination_errors, 1);
    let bytes = advert_from(&c, "192.0.2.20", ME, 200, 100);
    assert_eq!(
        r.handle_packet(t0 + ms(2), &rx("192.0.2.20", ME, 64, &bytes)),
        Err(DropReason::BadTtl(64))
    );
    assert_eq!(
        r.handle_packet(t0 + ms(2), &rx("192.0.2.20", ME, 255, &bytes)),
        Ok(())
    );
}

/// A unicast router told to accept a peer's lower hop limit (keepalived 2.2.7 over IPv6 sends
/// 64) accepts down to it, and no lower.
#[test]
fn unicast_min_ttl_accepts_a_peer_that_sends_less() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.unicast_peers = vec![ip("192.0.2.20")];
    c.unicast_min_ttl = 64;
    let mut r = backup(c.clone(), t0);
    let bytes = advert_from(&c, "192.0.2.20", ME, 200, 100);
    assert_eq!(
        r.handle_packet(t0 + ms(1), &rx("192.0.2.20", ME, 63, &bytes)),
        Err(DropReason::BadTtl(63))
    );
    assert_eq!(
        r.handle_packet(t0 + ms(2), &rx("192.0.2.20", ME, 64, &bytes)),
        Ok(())
    );
    // It does not apply to multicast.
    let mut m = backup(cfg(100), t0);
    let mut mc = cfg(100);
    mc.unicast_min_ttl = 64;
    let group = advert_from(&mc, "192.0.2.20", GROUP, 200, 100);
    let mut m2 = backup(mc, t0);
    for r in [&mut m, &mut m2] {
        assert_eq!(
            r.handle_packet(t0 + ms(1), &rx("192.0.2.20", GROUP, 64, &group)),
            Err(DropReason::BadTtl(64))
        );
    }
}

/// A Master whose driver stalled for 200 advert intervals sends one advert when it runs again,
/// not 200 back to back, and keeps its period from then on.
#[test]
fn a_stalled_master_sends_one_advert_not_a_burst() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.advert_interval_cs = 1;
    let (mut r, t) = master(c, t0);
    let due = r.poll_timeout().unwrap();
    assert_eq!(due, t + ms(10));
    let resumed = t + Duration::from_secs(2);
    r.handle_timeout(resumed);
    assert_eq!(sent(&drain(&mut r)), vec![100]);
    assert_eq!(r.poll_timeout(), Some(resumed + ms(10)));
    // A wake-up a little late stays on the schedule (no drift).
    r.handle_timeout(resumed + ms(13));
    assert_eq!(sent(&drain(&mut r)), vec![100]);
    assert_eq!(r.poll_timeout(), Some(resumed + ms(20)));
}

/// The driver hands each advert with the time the kernel received it: a Backup that reads the
/// Master's queued adverts after a stall, stamped with their arrival, never takes over.
#[test]
fn queued_adverts_stamped_with_their_arrival_keep_a_backup_in_backup() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.advert_interval_cs = 1;
    let mut r = backup(c.clone(), t0);
    hear(&mut r, t0 + ms(10), "192.0.2.20", 200, 1);
    let mdi = r.master_down_interval();
    // Stalled for 10 intervals, far past Master_Down_Interval; the Master's adverts queued.
    for i in 2..=11 {
        hear(&mut r, t0 + ms(10 * i), "192.0.2.20", 200, 1);
    }
    let resumed = t0 + ms(110) + ms(5);
    r.handle_timeout(resumed);
    assert_eq!(r.state(), State::Backup);
    assert!(changes(&drain(&mut r)).is_empty());
    assert_eq!(r.poll_timeout(), Some(t0 + ms(110) + mdi));
}

/// Three routers: the second-best is lowered by a tracked object just before the Master
/// crashes. Its running Master_Down_Timer follows its new Skew_Time, so the VIP moves once, to
/// the best remaining router.
#[test]
fn a_lowered_backup_does_not_win_with_its_old_skew() {
    for version in [Version::V3, Version::V2] {
        let mut lan = sim::Lan::new(3, Duration::from_millis(1));
        let prios = [200u8, 150, 100];
        for (i, p) in prios.into_iter().enumerate() {
            let mut c = sim::router_config(
                1,
                version,
                &format!("192.0.2.{}", i + 1),
                "192.0.2.100",
                p,
                100,
            );
            if i == 1 {
                c.tracks = vec![Track::new(TrackId(1), -100)];
            }
            lan.add_node(&format!("r{}", i + 1), vec![c]);
        }
        lan.start_all();
        lan.run_for(Duration::from_secs(12));
        assert_eq!(lan.assert_converged(1, true), vec![0]);
        // Just after r1's advert reached the others, r2 is lowered to 50, then r1 crashes.
        lan.run_for(Duration::from_millis(500));
        lan.set_tracked(1, TrackId(1), false);
        assert_eq!(lan.router(1, 1).effective_priority(), 50);
        let t_crash = lan.elapsed();
        lan.crash(0);
        lan.run_for(Duration::from_secs(15));
        let moves: Vec<_> = lan
            .changes
            .iter()
            .filter(|ch| ch.at >= t_crash && ch.to == State::Master)
            .collect();
        assert_eq!(moves.len(), 1, "{version:?}: {}", lan.log());
        assert_eq!(moves[0].node, 2, "{version:?}: {}", lan.log());
        assert_eq!(moves[0].reason, Reason::MasterNoResponse);
        assert_eq!(lan.assert_converged(1, true), vec![2]);
    }
}

/// A raised Backup's deadline comes earlier, but never before now.
#[test]
fn a_raised_backup_expires_sooner_and_never_in_the_past() {
    let t0 = Instant::now();
    let mut r = backup(cfg(50), t0);
    hear(&mut r, t0, "192.0.2.20", 200, 100);
    let before = r.poll_timeout().unwrap();
    let now = t0 + ms(100);
    r.set_base_priority(now, 250).unwrap();
    let after = r.poll_timeout().unwrap();
    // Skew_Time at 50 is 206/256 s, at 250 6/256 s: 200/256 s sooner.
    assert_eq!(
        before - after,
        Duration::from_nanos(200 * 1_000_000_000 / 256)
    );
    // Raised again right before expiry: the deadline moves before now, so it runs out at once
    // (no deadline is left at or before the latest time given).
    let late = after - ms(1);
    r.set_base_priority(late, 254).unwrap();
    assert_eq!(r.state(), State::Master);
    assert!(r.poll_timeout().is_some_and(|t| t > late));
    let outputs = drain(&mut r);
    assert!(outputs.iter().any(|o| matches!(o, Output::AddAddresses(_))));
}
