//! The address list of a received advert (RFC 3768 §7.1, RFC 5798 §5.2.5 and §7.1), in
//! simulated time: a VRRPv2 advert with other addresses is dropped unless the address owner
//! sent it; a VRRPv3 one is counted and used; a VRRPv3 advert with no address is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;
use vrrp_core::packet::Version;
use vrrp_core::{DropReason, Received, Router, RouterConfig, State};

const VIP2: &str = "192.0.2.101";
const PEER: &str = "192.0.2.20";

/// A router of `version` at ME for VRID 1 with VIP and VIP2.
fn two_vips(version: Version, priority: u8) -> RouterConfig {
    let mut c = cfg(priority);
    c.version = version;
    c.virtual_addresses = vec![ip(VIP), ip(VIP2)];
    c
}

/// The advert a peer of `c` sends, listing `vips` instead of `c`'s addresses.
fn listing(c: &RouterConfig, vips: &[&str], priority: u8) -> Vec<u8> {
    let mut other = c.clone();
    other.virtual_addresses = vips.iter().map(|v| ip(v)).collect();
    advert_from(&other, PEER, GROUP, priority, c.advert_interval_cs)
}

fn deliver(r: &mut Router, now: Instant, bytes: &[u8]) -> Result<(), DropReason> {
    r.handle_packet(
        now,
        &Received {
            src: ip(PEER),
            dst: ip(GROUP),
            ttl: 255,
            bytes,
        },
    )
}

#[test]
fn v2_backup_drops_other_addresses_from_a_non_owner() {
    let t0 = Instant::now();
    let c = two_vips(Version::V2, 100);
    let mut r = backup(c.clone(), t0);
    let deadline = r.poll_timeout().unwrap();
    // A higher priority that lists one VIP of two, and one that lists another address.
    for vips in [&[VIP][..], &[VIP, "192.0.2.102"][..]] {
        let bytes = listing(&c, vips, 200);
        let e = deliver(&mut r, t0 + ms(500), &bytes).unwrap_err();
        assert_eq!(e, DropReason::AddressListMismatch);
    }
    assert_eq!(r.stats().address_list_errors, 2);
    assert_eq!(r.stats().rcvd_advertisements, 0);
    // Not a master to this router: Master_Down_Timer was not reset, and it takes over.
    assert_eq!(r.poll_timeout(), Some(deadline));
    assert_eq!(r.master_address(), None);
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Master);
}

#[test]
fn v2_master_is_not_stepped_down_by_other_addresses() {
    let t0 = Instant::now();
    let c = two_vips(Version::V2, 100);
    let (mut r, t) = master(c.clone(), t0);
    let bytes = listing(&c, &[VIP], 254);
    assert_eq!(
        deliver(&mut r, t + ms(10), &bytes),
        Err(DropReason::AddressListMismatch)
    );
    assert_eq!(r.state(), State::Master);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn v2_owner_advert_with_other_addresses_is_counted_and_used() {
    let t0 = Instant::now();
    let c = two_vips(Version::V2, 100);
    let mut r = backup(c.clone(), t0);
    let now = t0 + ms(500);
    deliver(&mut r, now, &listing(&c, &[VIP], 255)).unwrap();
    assert_eq!(r.stats().address_list_errors, 1);
    assert_eq!(r.stats().rcvd_advertisements, 1);
    assert_eq!(r.master_address(), Some(ip(PEER)));
    assert_eq!(r.poll_timeout(), Some(now + r.master_down_interval()));
}

#[test]
fn the_same_addresses_in_another_order_are_no_mismatch() {
    let t0 = Instant::now();
    for version in [Version::V2, Version::V3] {
        let c = two_vips(version, 100);
        let mut r = backup(c.clone(), t0);
        deliver(&mut r, t0 + ms(500), &listing(&c, &[VIP2, VIP], 200)).unwrap();
        assert_eq!(r.stats().address_list_errors, 0, "{version}");
        assert_eq!(r.master_address(), Some(ip(PEER)), "{version}");
    }
}

#[test]
fn v3_other_addresses_are_counted_and_used() {
    let t0 = Instant::now();
    let c = two_vips(Version::V3, 100);
    let mut r = backup(c.clone(), t0);
    let now = t0 + ms(500);
    deliver(&mut r, now, &listing(&c, &[VIP], 200)).unwrap();
    assert_eq!(r.stats().address_list_errors, 1);
    assert_eq!(r.stats().rcvd_advertisements, 1);
    assert_eq!(r.poll_timeout(), Some(now + r.master_down_interval()));
}

#[test]
fn v3_advert_without_addresses_is_dropped_and_counted() {
    let t0 = Instant::now();
    let c = two_vips(Version::V3, 100);
    let mut r = backup(c.clone(), t0);
    let deadline = r.poll_timeout().unwrap();
    // Not even the owner's: the count is at least 1 (RFC 5798 §5.2.5, erratum 3222).
    for priority in [200, 255] {
        let e = deliver(&mut r, t0 + ms(500), &listing(&c, &[], priority)).unwrap_err();
        assert_eq!(e, DropReason::NoAddresses);
    }
    assert_eq!(r.stats().address_list_errors, 2);
    assert_eq!(r.stats().rcvd_advertisements, 0);
    assert_eq!(r.poll_timeout(), Some(deadline));
    // A Master is not stepped down by one either.
    r.handle_timeout(deadline);
    drain(&mut r);
    let e = deliver(&mut r, deadline + ms(10), &listing(&c, &[], 255)).unwrap_err();
    assert_eq!(e, DropReason::NoAddresses);
    assert_eq!(r.state(), State::Master);
}
