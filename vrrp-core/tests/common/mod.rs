//! Helpers shared by the router tests: addresses, configs, peers' adverts, output draining.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use vrrp_core::packet::{AddressList, Advertisement, Auth, ChecksumMode, IpContext, Version};
use vrrp_core::{Output, Received, Router, RouterConfig, State};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub const ME: &str = "192.0.2.10";
pub const VIP: &str = "192.0.2.100";
pub const GROUP: &str = "224.0.0.18";

/// A VRRPv3 IPv4 router at 192.0.2.10 for VRID 1, VIP 192.0.2.100, no second GARP burst (so
/// the only timers are the protocol's unless a test turns them on).
pub fn cfg(priority: u8) -> RouterConfig {
    let mut c = RouterConfig::new(1, Version::V3, ip(ME), vec![ip(VIP)]);
    c.priority = priority;
    c.announce.master_delay = None;
    c
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The bytes of an advert a peer at `src` would send to `dst`, for the router of `c`.
pub fn advert_from(
    c: &RouterConfig,
    src: &str,
    dst: &str,
    priority: u8,
    interval_cs: u16,
) -> Vec<u8> {
    advert_with(c, src, dst, priority, interval_cs, |_| {})
}

/// As [`advert_from`], with the advert changed by `f` before it is emitted.
pub fn advert_with(
    c: &RouterConfig,
    src: &str,
    dst: &str,
    priority: u8,
    interval_cs: u16,
    f: impl FnOnce(&mut Advertisement<'_>),
) -> Vec<u8> {
    let vips = AddressList::encode(c.family(), &c.virtual_addresses).unwrap();
    let mut adv = Advertisement {
        version: c.version,
        vrid: c.vrid,
        priority,
        interval_cs,
        auth: c.auth,
        addresses: vips.as_list(),
    };
    f(&mut adv);
    let ctx = IpContext {
        src: ip(src),
        dst: ip(dst),
        checksum: ChecksumMode::Rfc5798,
    };
    let mut buf = vec![0u8; adv.buffer_len()];
    let n = adv.emit(&mut buf, &ctx).unwrap();
    buf.truncate(n);
    buf
}

/// Delivers a peer's multicast advert with TTL 255.
pub fn hear(r: &mut Router, now: Instant, src: &str, priority: u8, interval_cs: u16) {
    let c = r.config().clone();
    let bytes = advert_from(&c, src, GROUP, priority, interval_cs);
    r.handle_packet(
        now,
        &Received {
            src: ip(src),
            dst: ip(GROUP),
            ttl: 255,
            bytes: &bytes,
        },
    )
    .unwrap();
}

pub fn drain(r: &mut Router) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// The priorities of the adverts among `outputs`.
pub fn sent(outputs: &[Output]) -> Vec<u8> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(t.priority),
            _ => None,
        })
        .collect()
}

/// The (from, to) of the state changes among `outputs`.
pub fn changes(outputs: &[Output]) -> Vec<(State, State)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// Decodes a transmitted advert, checking its checksum against its own addresses.
pub fn decode_sent(t: &vrrp_core::Transmit, checksum: ChecksumMode) -> (u8, u16, Auth) {
    let ctx = IpContext {
        src: t.src,
        dst: t.dst,
        checksum,
    };
    let adv = Advertisement::decode(&t.payload, &ctx).unwrap();
    (adv.priority, adv.interval_cs, adv.auth)
}

/// A started router, drained, in Backup.
pub fn backup(c: RouterConfig, t0: Instant) -> Router {
    let mut r = Router::new(c).unwrap();
    r.handle_startup(t0);
    drain(&mut r);
    assert_eq!(r.state(), State::Backup);
    r
}

/// A started router that took over after Master_Down_Interval, drained, in Master; returns the
/// time it became Master.
pub fn master(c: RouterConfig, t0: Instant) -> (Router, Instant) {
    let mut r = backup(c, t0);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    (r, t)
}
