//! The address owner always preempts (RFC 5798 §6.1, §6.4.2), whatever Preempt_Mode says:
//! `preempt = false` is ignored at priority 255, as keepalived resets `nopreempt` there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;
use vrrp_core::{Reason, Router, State};

const PEER: &str = "192.0.2.20";

#[test]
fn an_owner_without_preempt_takes_over_from_a_lower_master() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.preempt = false;
    let mut r = backup(c, t0);
    hear(&mut r, t0 + ms(100), PEER, 150, 100);
    // Becomes the address owner at run time while a priority 150 master runs.
    r.set_base_priority(t0 + ms(200), 255).unwrap();
    assert_eq!(r.state(), State::Backup);
    let heard = t0 + ms(1100);
    hear(&mut r, heard, PEER, 150, 100);
    // The lower master's advert no longer resets Master_Down_Timer: the owner preempts.
    let deadline = r.poll_timeout().unwrap();
    assert!(deadline < heard + r.master_down_interval(), "{deadline:?}");
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Master);
    assert!(drain(&mut r).iter().any(|o| matches!(
        o,
        vrrp_core::Output::StateChanged {
            to: State::Master,
            reason: Reason::Preempted,
            ..
        }
    )));
}

#[test]
fn a_held_owner_without_preempt_keeps_wanting_master_over_a_lower_master() {
    // A sync group holds its address owner in Backup; a lower-priority master must not end
    // its want (the group would otherwise never move to the owner).
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.preempt = false;
    let mut r = Router::new(c).unwrap();
    r.set_master_hold(t0, true);
    r.handle_startup(t0);
    drain(&mut r);
    assert_eq!(r.state(), State::Backup);
    assert!(r.wants_master());
    hear(&mut r, t0 + ms(100), PEER, 150, 100);
    assert!(r.wants_master());
    r.set_master_hold(t0 + ms(200), false);
    assert_eq!(r.state(), State::Master);
}

#[test]
fn a_non_owner_without_preempt_still_keeps_a_lower_master() {
    let t0 = Instant::now();
    let mut c = cfg(254);
    c.preempt = false;
    let mut r = backup(c, t0);
    let now = t0 + ms(100);
    hear(&mut r, now, PEER, 150, 100);
    assert_eq!(r.poll_timeout(), Some(now + r.master_down_interval()));
    assert_eq!(r.master_address(), Some(ip(PEER)));
}
