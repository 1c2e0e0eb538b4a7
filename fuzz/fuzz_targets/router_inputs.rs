//! An arbitrary sequence of inputs against a Router: it never panics, its deadline is never
//! before the latest time it was given, and its outputs agree with its state (only a Master
//! advertises a non-zero priority, holds and announces the addresses; priority 0 only when
//! leaving Master; state changes chain; every advert decodes; only a held Backup wants Master,
//! and a router let go while wanting becomes Master at once).
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vrrp_core::packet::{AddressList, Advertisement, Auth, ChecksumMode, IpContext, Version};
use vrrp_core::{Output, Reason, Received, Router, RouterConfig, State, Track, TrackId};

#[derive(Debug, Arbitrary)]
struct Setup {
    v2: bool,
    priority: u8,
    interval: u16,
    preempt: bool,
    preempt_delay_ms: u16,
    unicast: bool,
    answer_lower: bool,
    garp_delay_ms: Option<u16>,
    garp_refresh_ms: Option<u16>,
    weights: Vec<i8>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Advance(u16),
    Backwards(u16),
    Timeout,
    Startup,
    Shutdown,
    Track(u8, bool),
    Priority(u8),
    Interface(bool),
    Hold(bool),
    StepDown,
    Advert {
        from: u8,
        priority: u8,
        interval: u16,
        other_vrid: bool,
        other_vips: bool,
        ttl: u8,
        multicast: bool,
        flip: Option<(u8, u8)>,
    },
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    setup: Setup,
    ops: Vec<Op>,
}

const ME: [u8; 4] = [192, 0, 2, 10];

fn peer(i: u8) -> IpAddr {
    // 0..=3: configured peers (.1..=.3 and ourselves), others: strangers.
    IpAddr::from([
        192,
        0,
        2,
        [1, 2, 3, 10][usize::from(i % 4)] + if i >= 4 { 100 } else { 0 },
    ])
}

fn config(s: &Setup) -> Option<RouterConfig> {
    let version = if s.v2 { Version::V2 } else { Version::V3 };
    let mut c = RouterConfig::new(
        5,
        version,
        IpAddr::from(ME),
        vec![IpAddr::from([192, 0, 2, 100])],
    );
    c.priority = s.priority;
    c.advert_interval_cs = if s.v2 {
        (s.interval % 4 + 1) * 100
    } else {
        s.interval % 300
    };
    c.preempt = s.preempt;
    c.preempt_delay = Duration::from_millis(u64::from(s.preempt_delay_ms % 5000));
    if s.unicast {
        c.unicast_peers = (0..3).map(peer).collect();
    }
    if s.v2 {
        c.auth = Auth::simple(b"123456").ok()?;
    }
    c.answer_lower_priority = s.answer_lower;
    c.announce.master_delay = s
        .garp_delay_ms
        .map(|ms| Duration::from_millis(u64::from(ms)));
    c.announce.refresh = s
        .garp_refresh_ms
        .map(|ms| Duration::from_millis(u64::from(ms) + 1));
    c.tracks = s
        .weights
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, &w)| Track::new(TrackId(i as u32), i16::from(w)))
        .collect();
    Some(c)
}

enum OpKind {
    /// Moves the test's clock only.
    Clock,
    /// Gives the router an input at `now`.
    Input,
}

struct Checker {
    shadow: State,
    reason: Option<Reason>,
    wants: bool,
    holding: bool,
    /// The latest `now` the router was given.
    latest: Option<Instant>,
}

impl Checker {
    fn drain(&mut self, r: &mut Router, c: &RouterConfig) {
        while let Some(out) = r.poll_output() {
            match out {
                Output::StateChanged { from, to, reason } => {
                    assert_eq!(from, self.shadow);
                    assert_ne!(from, to);
                    self.shadow = to;
                    self.reason = Some(reason);
                }
                Output::WantsMaster(w) => {
                    assert_ne!(w, self.wants);
                    assert!(!w || (self.shadow == State::Backup && r.is_master_held()));
                    self.wants = w;
                }
                Output::AddAddresses(a) => {
                    assert_eq!(self.shadow, State::Master);
                    assert!(!self.holding);
                    assert_eq!(a, c.virtual_addresses);
                    self.holding = true;
                }
                Output::RemoveAddresses(_) => {
                    assert_ne!(self.shadow, State::Master);
                    assert!(self.holding);
                    self.holding = false;
                }
                Output::Announce { .. } => assert_eq!(self.shadow, State::Master),
                Output::Transmit(t) => {
                    if t.priority == 0 {
                        let stepped = self.shadow == State::Backup
                            && self.reason == Some(Reason::SteppedDown);
                        assert!(matches!(self.shadow, State::Initialize | State::Fault) || stepped);
                    } else {
                        assert_eq!(self.shadow, State::Master);
                    }
                    assert_eq!(t.ttl, 255);
                    assert_eq!(t.src, c.primary_address);
                    let ctx = IpContext {
                        src: t.src,
                        dst: t.dst,
                        checksum: c.checksum,
                    };
                    let adv = Advertisement::decode(&t.payload, &ctx).expect("our adverts decode");
                    assert_eq!((adv.vrid, adv.priority), (c.vrid, t.priority));
                }
                other => panic!("an output this target does not know: {other:?}"),
            }
        }
        assert_eq!(r.state(), self.shadow);
        assert_eq!(r.wants_master(), self.wants);
        assert_eq!(self.holding, self.shadow == State::Master);
        if let (Some(t), Some(latest)) = (r.poll_timeout(), self.latest) {
            assert!(
                t > latest,
                "deadline {t:?} not after the latest now {latest:?}"
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let Some(c) = config(&input.setup) else {
        return;
    };
    let Ok(mut r) = Router::new(c.clone()) else {
        assert!(c.validate().is_err());
        return;
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut ck = Checker {
        shadow: State::Initialize,
        reason: None,
        wants: false,
        holding: false,
        latest: None,
    };
    let vips = AddressList::encode(c.family(), &c.virtual_addresses).expect("validated");
    let other = AddressList::encode_v4(&["192.0.2.99".parse().expect("literal")]);
    for op in input.ops.into_iter().take(256) {
        let op_kind = match op {
            Op::Advance(_) | Op::Backwards(_) => OpKind::Clock,
            _ => OpKind::Input,
        };
        match op {
            Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
            Op::Backwards(ms) => {
                now = now
                    .checked_sub(Duration::from_millis(u64::from(ms)))
                    .unwrap_or(now)
            }
            Op::Timeout => {
                if let Some(t) = r.poll_timeout() {
                    now = now.max(t);
                }
                r.handle_timeout(now);
            }
            Op::Startup => r.handle_startup(now),
            Op::Shutdown => r.handle_shutdown(now),
            Op::Track(id, up) => {
                let known = usize::from(id) < c.tracks.len();
                assert_eq!(
                    r.set_tracked(now, TrackId(u32::from(id)), up).is_ok(),
                    known
                );
            }
            Op::Priority(p) => assert_eq!(r.set_base_priority(now, p).is_ok(), p != 0),
            Op::Interface(up) => r.set_interface_up(now, up),
            Op::Hold(hold) => {
                // Timers due at `now` run first: judge the release on the state after them.
                r.handle_timeout(now);
                ck.drain(&mut r, &c);
                let wanted = r.wants_master();
                r.set_master_hold(now, hold);
                assert_eq!(r.is_master_held(), hold);
                if !hold && wanted {
                    assert_eq!(r.state(), State::Master);
                }
            }
            Op::StepDown => {
                r.handle_timeout(now);
                ck.drain(&mut r, &c);
                let was = r.state();
                r.handle_step_down(now);
                if was == State::Master {
                    assert_eq!(r.state(), State::Backup);
                    assert!(!r.wants_master());
                } else {
                    assert_eq!(r.state(), was);
                }
            }
            Op::Advert {
                from,
                priority,
                interval,
                other_vrid,
                other_vips,
                ttl,
                multicast,
                flip,
            } => {
                let src = peer(from);
                let dst = if multicast {
                    c.family().multicast_group()
                } else {
                    c.primary_address
                };
                let adv = Advertisement {
                    version: c.version,
                    vrid: if other_vrid { 6 } else { c.vrid },
                    priority,
                    interval_cs: if c.version == Version::V2 {
                        interval % 3 * 100
                    } else {
                        interval % 0x1000
                    },
                    auth: c.auth,
                    addresses: if other_vips {
                        other.as_list()
                    } else {
                        vips.as_list()
                    },
                };
                let ctx = IpContext {
                    src,
                    dst,
                    checksum: ChecksumMode::Rfc5798,
                };
                let mut buf = vec![0u8; adv.buffer_len()];
                // An advert the codec refuses to write goes out as the zeroes it holds.
                if let Ok(n) = adv.emit(&mut buf, &ctx) {
                    buf.truncate(n);
                }
                if let Some((i, x)) = flip {
                    let i = usize::from(i) % buf.len();
                    buf[i] ^= x;
                }
                let _ = r.handle_packet(
                    now,
                    &Received {
                        src,
                        dst,
                        ttl,
                        bytes: &buf,
                    },
                );
            }
            Op::Raw { from, bytes } => {
                let src = peer(from);
                let dst = c.family().multicast_group();
                let _ = r.handle_packet(
                    now,
                    &Received {
                        src,
                        dst,
                        ttl: 255,
                        bytes: &bytes,
                    },
                );
            }
        }
        // Only inputs that reached the router move its clock.
        if !matches!(op_kind, OpKind::Clock) {
            ck.latest = ck.latest.max(Some(now));
        }
        ck.drain(&mut r, &c);
    }
});
