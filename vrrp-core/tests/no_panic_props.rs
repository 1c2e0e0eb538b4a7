//! A library caller cannot make a Router panic: any [`RouterConfig`] is either refused by
//! [`Router::new`] with a typed error, or runs any sequence of inputs (startup, timeouts,
//! adverts and arbitrary bytes, tracking, priority, interface, hold, step-down, shutdown) at
//! any times, forwards or backwards, without panicking; and its deadline is never before the
//! latest time it was given.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vrrp_core::packet::{AddressList, Advertisement, Auth, ChecksumMode, IpContext, Version};
use vrrp_core::{
    AnnounceConfig, ConfigError, Received, Router, RouterConfig, Track, TrackId, MAX_DELAY,
};

/// Addresses of both families: the router's, its peers', strangers', the groups.
const ADDRS: [&str; 8] = [
    "192.0.2.10",
    "192.0.2.20",
    "192.0.2.100",
    "224.0.0.18",
    "fe80::10",
    "fe80::20",
    "2001:db8::100",
    "ff02::12",
];

fn addr() -> impl Strategy<Value = IpAddr> {
    (0..ADDRS.len()).prop_map(|i| ADDRS[i].parse().unwrap())
}

/// Mostly an address of `v6`'s family (so that most configs are valid), sometimes any.
fn addr_of(v6: bool) -> impl Strategy<Value = IpAddr> {
    let base: usize = if v6 { 4 } else { 0 };
    prop_oneof![
        8 => (base..base + 4).prop_map(|i| ADDRS[i].parse::<IpAddr>().unwrap()),
        1 => addr(),
    ]
}

/// Mostly in range, sometimes anything: most configs are valid, and invalid ones are refused.
fn mostly<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    any: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = T> {
    prop_oneof![8 => valid, 1 => any]
}

/// Short, at the bound, just past it, `Duration::MAX`, and anything (mostly short, so that
/// most configs are valid).
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        40 => (0u64..10_000).prop_map(Duration::from_millis),
        2 => Just(MAX_DELAY),
        1 => Just(MAX_DELAY + Duration::from_nanos(1)),
        1 => Just(Duration::MAX),
        1 => (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

fn announce() -> impl Strategy<Value = AnnounceConfig> {
    (
        any::<u32>(),
        proptest::option::of(duration()),
        proptest::option::of(duration()),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(duration()),
    )
        .prop_map(|(mr, md, r, rr, lr, ld)| {
            let mut a = AnnounceConfig::default();
            a.master_repeat = mr;
            a.master_delay = md;
            a.refresh = r;
            a.refresh_repeat = rr;
            a.lower_prio_repeat = lr;
            a.lower_prio_delay = ld;
            a
        })
}

fn tracks() -> impl Strategy<Value = Vec<Track>> {
    let weight = mostly(-253i16..=253, any::<i16>());
    // Mostly distinct ids (their index), sometimes a duplicate.
    let id = mostly(Just(None), (0u32..4).prop_map(Some));
    proptest::collection::vec((id, weight, any::<bool>()), 0..4).prop_map(|ts| {
        ts.into_iter()
            .zip(0u32..)
            .map(|((id, weight, up), i)| Track::new(TrackId(id.unwrap_or(i)), weight).starting(up))
            .collect()
    })
}

/// Any `RouterConfig`, mostly valid ones (VRRPv2 mostly IPv4 with whole seconds, addresses
/// mostly of one family), so that both the refusals and the running router are exercised.
fn config() -> impl Strategy<Value = RouterConfig> {
    // VRRPv2 is IPv4 only: rarely asked for with IPv6.
    any::<bool>()
        .prop_flat_map(|v6| {
            (
                Just(v6),
                proptest::bool::weighted(if v6 { 0.1 } else { 0.5 }),
            )
        })
        .prop_flat_map(|(v6, v2)| {
            let interval = if v2 {
                mostly((1u16..=255).prop_map(|s| s * 100), any::<u16>()).boxed()
            } else {
                mostly(1u16..=4095, any::<u16>()).boxed()
            };
            (
                (Just(v2), any::<u8>(), any::<u8>(), interval, addr_of(v6)),
                mostly(
                    proptest::collection::vec(addr_of(v6), 1..4),
                    Just(Vec::new()),
                ),
                (any::<bool>(), duration(), any::<bool>(), any::<bool>()),
                proptest::collection::vec(addr_of(v6), 0..3),
                (0..3usize, any::<bool>(), announce(), tracks()),
            )
        })
        .prop_map(
            |(
                (v2, vrid, priority, interval, primary),
                vips,
                (preempt, preempt_delay, accept_mode, password),
                peers,
                (checksum, answer_lower, announce, tracks),
            )| {
                let version = if v2 { Version::V2 } else { Version::V3 };
                let mut c = RouterConfig::new(vrid, version, primary, vips);
                c.priority = priority;
                c.advert_interval_cs = interval;
                c.preempt = preempt;
                c.preempt_delay = preempt_delay;
                c.accept_mode = accept_mode;
                if password && v2 {
                    c.auth = Auth::simple(b"secret").unwrap();
                }
                c.unicast_peers = peers.into_iter().filter(|p| *p != primary).collect();
                c.checksum = [
                    ChecksumMode::Rfc5798,
                    ChecksumMode::V3WithoutPseudoHeader,
                    ChecksumMode::V3MulticastPseudoHeader,
                ][checksum];
                c.answer_lower_priority = answer_lower;
                c.announce = announce;
                c.tracks = tracks;
                c
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    /// Moves the clock forwards (or backwards) by this many milliseconds: up to a day.
    Advance(u32),
    Backwards(u32),
    Timeout,
    Startup,
    Shutdown,
    Track(u32, bool),
    Priority(u8),
    Interface(bool),
    Hold(bool),
    StepDown,
    /// A well-formed advert of the router's VRID and version (unless changed), so it goes
    /// deep into the state machine.
    Advert {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        priority: u8,
        interval_cs: u16,
        other_vrid: bool,
        no_addresses: bool,
    },
    Raw {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..86_400_000).prop_map(Op::Advance),
        1 => (0u32..10_000).prop_map(Op::Backwards),
        4 => Just(Op::Timeout),
        2 => Just(Op::Startup),
        1 => Just(Op::Shutdown),
        1 => (0u32..5, any::<bool>()).prop_map(|(i, up)| Op::Track(i, up)),
        1 => any::<u8>().prop_map(Op::Priority),
        1 => any::<bool>().prop_map(Op::Interface),
        1 => any::<bool>().prop_map(Op::Hold),
        1 => Just(Op::StepDown),
        6 => (
            addr(),
            addr(),
            prop_oneof![Just(255u8), any::<u8>()],
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(src, dst, ttl, priority, interval_cs, other_vrid, no_addresses)| {
                Op::Advert {
                    src,
                    dst,
                    ttl,
                    priority,
                    interval_cs,
                    other_vrid,
                    no_addresses,
                }
            }),
        2 => (addr(), addr(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(src, dst, ttl, bytes)| Op::Raw { src, dst, ttl, bytes }),
    ]
}

/// The bytes of an [`Op::Advert`] for `r`'s router, checksummed as it checks them; `None` for
/// another op or when they cannot be emitted (mixed families).
fn advert_bytes(r: &Router, op: &Op) -> Option<Vec<u8>> {
    let Op::Advert {
        src,
        dst,
        priority,
        interval_cs,
        other_vrid,
        no_addresses,
        ..
    } = *op
    else {
        return None;
    };
    let c = r.config();
    let vips = AddressList::encode(c.family(), &c.virtual_addresses).ok()?;
    let advert = Advertisement {
        version: c.version,
        vrid: if other_vrid {
            c.vrid.wrapping_add(1)
        } else {
            c.vrid
        },
        priority,
        interval_cs: match c.version {
            Version::V3 => interval_cs & 0x0fff,
            Version::V2 => (interval_cs % 256) * 100,
        },
        auth: c.auth,
        addresses: if no_addresses {
            AddressList::empty(c.family())
        } else {
            vips.as_list()
        },
    };
    let ctx = IpContext {
        src,
        dst,
        checksum: c.checksum,
    };
    let mut buf = vec![0u8; advert.buffer_len()];
    let n = advert.emit(&mut buf, &ctx).ok()?;
    buf.truncate(n);
    Some(buf)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_config_and_inputs_never_panic(config in config(), ops in proptest::collection::vec(op(), 0..64)) {
        let Ok(mut r) = Router::new(config) else {
            return Ok(());
        };
        let t0 = Instant::now();
        let mut offset = Duration::ZERO;
        let mut latest = t0;
        for op in &ops {
            let now = t0 + offset;
            // Only the clock moves on these, and an advert that cannot be emitted is not sent;
            // every other input gives the router `now`.
            let bytes = advert_bytes(&r, op);
            let silent = matches!(op, Op::Advance(_) | Op::Backwards(_) | Op::Timeout)
                || matches!(op, Op::Advert { .. } if bytes.is_none());
            if !silent {
                latest = latest.max(now);
            }
            match op {
                Op::Advance(ms) => offset += Duration::from_millis(u64::from(*ms)),
                Op::Backwards(ms) => {
                    offset = offset.saturating_sub(Duration::from_millis(u64::from(*ms)));
                }
                Op::Timeout => {
                    if let Some(at) = r.poll_timeout() {
                        r.handle_timeout(at);
                        latest = latest.max(at);
                        offset = offset.max(at - t0);
                    }
                }
                Op::Startup => r.handle_startup(now),
                Op::Shutdown => r.handle_shutdown(now),
                Op::Track(id, up) => {
                    let _ = r.set_tracked(now, TrackId(*id), *up);
                }
                Op::Priority(p) => {
                    let _ = r.set_base_priority(now, *p);
                }
                Op::Interface(up) => r.set_interface_up(now, *up),
                Op::Hold(hold) => r.set_master_hold(now, *hold),
                Op::StepDown => r.handle_step_down(now),
                Op::Advert { src, dst, ttl, .. } => {
                    if let Some(bytes) = &bytes {
                        let rx = Received { src: *src, dst: *dst, ttl: *ttl, bytes };
                        let _ = r.handle_packet(now, &rx);
                    }
                }
                Op::Raw { src, dst, ttl, bytes } => {
                    let rx = Received { src: *src, dst: *dst, ttl: *ttl, bytes };
                    let _ = r.handle_packet(now, &rx);
                }
            }
            while r.poll_output().is_some() {}
            if let Some(at) = r.poll_timeout() {
                prop_assert!(at >= latest, "deadline {:?} before the latest now", latest - at);
            }
        }
    }
}

/// Sets one of the delays of a config.
type SetDelay = fn(&mut RouterConfig, Duration);

#[test]
fn every_delay_is_bounded_by_max_delay() {
    let base = || {
        RouterConfig::new(
            1,
            Version::V3,
            "192.0.2.10".parse().unwrap(),
            vec!["192.0.2.100".parse().unwrap()],
        )
    };
    let too_long = MAX_DELAY + Duration::from_millis(1);
    let cases: [(&str, SetDelay); 4] = [
        ("preempt_delay", |c, d| c.preempt_delay = d),
        ("announce.master_delay", |c, d| {
            c.announce.master_delay = Some(d)
        }),
        ("announce.refresh", |c, d| c.announce.refresh = Some(d)),
        ("announce.lower_prio_delay", |c, d| {
            c.announce.lower_prio_delay = Some(d);
        }),
    ];
    for (what, set) in cases {
        let mut c = base();
        set(&mut c, MAX_DELAY);
        assert_eq!(c.validate(), Ok(()), "{what} at the bound");
        set(&mut c, too_long);
        assert_eq!(
            c.validate(),
            Err(ConfigError::DelayTooLong {
                what,
                delay: too_long
            })
        );
        assert!(Router::new(c).is_err());
    }
}

#[test]
fn the_config_strategy_mostly_makes_valid_configs() {
    // Else the property above would test little but refusals.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = config();
    let mut refused = std::collections::BTreeMap::<String, usize>::new();
    let mut valid = 0;
    for _ in 0..1000 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        match c.validate() {
            Ok(()) => valid += 1,
            Err(e) => {
                let kind = format!("{e:?}");
                let kind = kind.split([' ', '(']).next().unwrap_or("").to_string();
                *refused.entry(kind).or_default() += 1;
            }
        }
    }
    assert!(
        valid >= 300,
        "only {valid} of 1000 configs are valid: {refused:?}"
    );
}
