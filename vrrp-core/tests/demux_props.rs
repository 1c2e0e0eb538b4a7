//! The demultiplexer's bookkeeping (a deadline heap and a queue of routers with outputs) agrees
//! with a plain scan of its routers after any sequence of adds, removes, packets, timeouts and
//! direct inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use vrrp_core::{Demux, Output, Received, Router, RouterId, State};

#[derive(Debug, Clone)]
enum Op {
    /// Add a router for this VRID (1..=8) at this priority, and start it.
    Add(u8, u8),
    /// Remove the router of this VRID, if there.
    Remove(u8),
    /// A peer's advert for this VRID at this priority (0 = it stops).
    Advert(u8, u8),
    /// Time passes: this many milliseconds, then due timers run.
    Wait(u16),
    /// A base priority change through `get_mut`.
    Priority(u8, u8),
    /// A step down through `get_mut`.
    StepDown(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..=8, 1u8..=254).prop_map(|(v, p)| Op::Add(v, p)),
        (1u8..=8).prop_map(Op::Remove),
        (1u8..=8, 0u8..=254).prop_map(|(v, p)| Op::Advert(v, p)),
        (0u16..=5000).prop_map(Op::Wait),
        (1u8..=8, 1u8..=254).prop_map(|(v, p)| Op::Priority(v, p)),
        (1u8..=8).prop_map(Op::StepDown),
    ]
}

fn id(d: &Demux, vrid: u8) -> Option<RouterId> {
    d.lookup(vrid, vrrp_core::packet::Family::Ipv4)
}

fn check(d: &mut Demux) {
    let earliest = d.routers().filter_map(|(_, r)| r.poll_timeout()).min();
    assert_eq!(d.poll_timeout(), earliest);
    let mut outputs = 0;
    while let Some((id, _)) = d.poll_output() {
        assert!(d.get(id).is_some(), "an output of a removed router");
        outputs += 1;
        assert!(outputs < 10_000);
    }
    assert!(d.routers().all(|(_, r)| !r.has_output()));
    assert_eq!(d.routers().count(), d.len());
}

proptest! {
    #[test]
    fn demux_bookkeeping_agrees_with_a_scan(ops in proptest::collection::vec(op(), 1..80)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut d = Demux::new();
        for op in ops {
            match op {
                Op::Add(vrid, priority) => {
                    if id(&d, vrid).is_none() {
                        let mut c = cfg(priority);
                        c.vrid = vrid;
                        let added = d.add(Router::new(c).unwrap()).unwrap();
                        d.get_mut(added).unwrap().handle_startup(now);
                    } else {
                        let c = cfg(priority);
                        let mut c2 = c.clone();
                        c2.vrid = vrid;
                        prop_assert!(d.add(Router::new(c2).unwrap()).is_err());
                    }
                }
                Op::Remove(vrid) => {
                    if let Some(i) = id(&d, vrid) {
                        let r = d.remove(i).unwrap();
                        prop_assert_eq!(r.vrid(), vrid);
                        prop_assert!(id(&d, vrid).is_none());
                    }
                }
                Op::Advert(vrid, priority) => {
                    if let Some(i) = id(&d, vrid) {
                        let c = d.get(i).unwrap().config().clone();
                        let bytes = advert_from(&c, "192.0.2.20", GROUP, priority, 100);
                        let rx = Received { src: ip("192.0.2.20"), dst: ip(GROUP), ttl: 255, bytes: &bytes };
                        let _ = d.handle_packet(now, &rx);
                    }
                }
                Op::Wait(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    d.handle_timeout(now);
                    prop_assert!(d.poll_timeout().is_none_or(|t| t > now), "a due timer survived");
                }
                Op::Priority(vrid, p) => {
                    if let Some(i) = id(&d, vrid) {
                        d.get_mut(i).unwrap().set_base_priority(now, p).unwrap();
                    }
                }
                Op::StepDown(vrid) => {
                    if let Some(i) = id(&d, vrid) {
                        d.get_mut(i).unwrap().handle_step_down(now);
                    }
                }
            }
            check(&mut d);
        }
    }
}

/// A removed router's outputs and timers go with it; its VRID can be added again.
#[test]
fn remove_takes_the_router_its_outputs_and_its_timers() {
    let t0 = Instant::now();
    let mut d = Demux::new();
    let mut c = cfg(100);
    c.vrid = 7;
    let a = d.add(Router::new(c.clone()).unwrap()).unwrap();
    let mut c2 = cfg(100);
    c2.vrid = 8;
    let b = d.add(Router::new(c2).unwrap()).unwrap();
    d.handle_startup(t0);
    // Both started in Backup with a Master_Down_Timer and a StateChanged output each.
    let mut removed = d.remove(a).unwrap();
    assert_eq!(removed.state(), State::Backup);
    assert!(matches!(
        removed.poll_output(),
        Some(Output::StateChanged { .. })
    ));
    let outputs: Vec<_> = std::iter::from_fn(|| d.poll_output()).collect();
    assert!(outputs.iter().all(|(id, _)| *id == b));
    assert_eq!(d.poll_timeout(), d.get(b).unwrap().poll_timeout());
    // The VRID is free again; the new router may take the old position.
    let again = d.add(Router::new(c).unwrap()).unwrap();
    assert_eq!(d.lookup(7, vrrp_core::packet::Family::Ipv4), Some(again));
    assert_eq!(d.len(), 2);
}
