//! Wireshark's VRRP dissector judges ha-lb's adverts: a real vrrp-core `Router` is driven to
//! Master and shut down (simulated time), every `Transmit` it outputs goes through
//! `net::VrrpSocket` in a namespace, the peer namespace captures with tcpdump, and tshark
//! decodes the capture. Each advert must be in it, undamaged (no malformed packet, no
//! warning), with the fields the router was configured with and checksum status Good: VRRPv2
//! with PASS, VRRPv3 over IPv4 with the RFC checksum and with the v2-style one (Wireshark's
//! `vrrp.v3_checksum_as_in_v2` preference), VRRPv3 over IPv6; multicast and unicast.
//!
//! Needs `tcpdump` and `tshark` at test time (Debian packages tcpdump, tshark). Without them,
//! or without network namespaces, the tests skip with a reason, except under `CI=true` where
//! they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::netns;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ha_lb::net::{Addresses, Interface, VrrpSocket, VrrpSocketConfig};
use netns::{wait_until, ChildGuard, Lan, Netns};
use vrrp_core::packet::{Auth, ChecksumMode, Version};
use vrrp_core::{Output, Router, RouterConfig, State};

fn available(test: &str) -> bool {
    Netns::available(test)
        && netns::tool_available(test, "tcpdump", "tcpdump")
        && netns::tool_available(test, "tshark", "tshark")
}

/// One virtual router whose adverts are judged.
struct Case {
    vrid: u8,
    version: Version,
    ipv6: bool,
    unicast: bool,
    checksum: ChecksumMode,
    auth: Auth,
    vips: &'static [&'static str],
    interval_cs: u16,
    /// tshark's checksum status for every advert: 1 Good, 0 Bad.
    good: bool,
    /// Decode with Wireshark's `vrrp.v3_checksum_as_in_v2` preference.
    as_in_v2_pref: bool,
}

/// What was put on the wire for one advert.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    src: IpAddr,
    dst: IpAddr,
    vrid: u8,
    priority: u8,
}

/// Node 0's address for the case: the unicast address, or (IPv6 multicast) its link-local
/// address as the kernel chose it.
fn source(ns: &Netns, c: &Case) -> IpAddr {
    if c.unicast || !c.ipv6 {
        if c.ipv6 {
            "2001:db8::1".parse().unwrap()
        } else {
            "192.0.2.1".parse().unwrap()
        }
    } else {
        ns.run(|| {
            let interface = Interface::by_name("eth0").unwrap();
            Addresses::new()
                .unwrap()
                .vrrp_source(interface.index(), true)
                .unwrap()
                .unwrap()
        })
    }
}

fn open(ns: &Netns, src: IpAddr, join_group: bool) -> VrrpSocket {
    ns.run(move || {
        let interface = Interface::by_name("eth0").unwrap();
        VrrpSocket::open(
            &interface,
            &VrrpSocketConfig {
                source: src,
                join_group,
            },
        )
        .unwrap()
    })
}

/// Drives a router for `c` to Master (startup, Master_Down_Interval, `adverts` periodic
/// adverts) and shuts it down, in simulated time; sends every `Transmit` through `sock`.
fn drive(c: &Case, sock: &VrrpSocket, adverts: usize) -> Vec<Sent> {
    let src = sock.source();
    let peer: IpAddr = if c.ipv6 {
        "2001:db8::2".parse().unwrap()
    } else {
        "192.0.2.2".parse().unwrap()
    };
    let mut config = RouterConfig::new(
        c.vrid,
        c.version,
        src,
        c.vips.iter().map(|v| v.parse().unwrap()).collect(),
    );
    config.priority = 150;
    config.advert_interval_cs = c.interval_cs;
    config.auth = c.auth;
    config.checksum = c.checksum;
    if c.unicast {
        config.unicast_peers = vec![peer];
    }
    let mut router = Router::new(config).unwrap();
    let mut sent = Vec::new();
    let flush = |router: &mut Router, sent: &mut Vec<Sent>| {
        while let Some(out) = router.poll_output() {
            if let Output::Transmit(t) = out {
                assert_eq!(t.src, src);
                assert_eq!(t.ttl, 255);
                sock.send_to(&t.payload, t.dst)
                    .unwrap_or_else(|e| panic!("VRID {}: send to {}: {e}", c.vrid, t.dst));
                sent.push(Sent {
                    src: t.src,
                    dst: t.dst,
                    vrid: c.vrid,
                    priority: t.priority,
                });
            }
        }
    };
    let t0 = Instant::now();
    router.handle_startup(t0);
    flush(&mut router, &mut sent);
    let mut now = t0;
    while sent.len() < adverts {
        now = router
            .poll_timeout()
            .expect("a running router has a deadline");
        router.handle_timeout(now);
        flush(&mut router, &mut sent);
    }
    assert_eq!(router.state(), State::Master, "VRID {}", c.vrid);
    router.handle_shutdown(now + Duration::from_millis(1));
    flush(&mut router, &mut sent);
    assert_eq!(sent.last().map(|s| s.priority), Some(0), "VRID {}", c.vrid);
    sent
}

/// tcpdump in a namespace writing VRRP packets to a pcap file; stopped by PID.
struct Capture {
    process: ChildGuard,
    file: PathBuf,
}

impl Capture {
    fn start(ns: &Netns, dir: &Path) -> Self {
        let file = dir.join("vrrp.pcap");
        let log = dir.join("tcpdump.log");
        let process = ChildGuard::spawn(
            ns.command("tcpdump")
                .args(["-i", "eth0", "-n", "-U", "-w"])
                .arg(&file)
                .args(["ip proto 112 or ip6 proto 112"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
            Duration::from_secs(5),
        );
        // tcpdump says "listening on eth0" once the capture is open.
        let ready = wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&log).is_ok_and(|s| s.contains("listening on"))
        });
        assert!(
            ready,
            "tcpdump did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Capture { process, file }
    }
}

/// One row of tshark's decode.
#[derive(Debug)]
struct Decoded {
    src: IpAddr,
    dst: IpAddr,
    version: u8,
    vrid: u8,
    priority: u8,
    /// v2 whole seconds or v3 centiseconds.
    interval: u16,
    checksum_status: String,
    addresses: Vec<IpAddr>,
    auth_string: String,
    malformed: String,
    expert_severities: Vec<u32>,
}

const FIELDS: &[&str] = &[
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "vrrp.version",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.adver_int",
    "vrrp.short_adver_int",
    "vrrp.checksum.status",
    "vrrp.ip_addr",
    "vrrp.ipv6_addr",
    "vrrp.auth_string",
    "_ws.malformed",
    "_ws.expert.severity",
];

/// The non-empty items of an aggregated tshark field.
fn list(s: &str) -> Vec<&str> {
    s.split(',').filter(|x| !x.is_empty()).collect()
}

fn tshark(file: &Path, as_in_v2: bool) -> Vec<Decoded> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-n", "-Y", "vrrp"]);
    if as_in_v2 {
        cmd.args(["-o", "vrrp.v3_checksum_as_in_v2:TRUE"]);
    }
    cmd.args(["-T", "fields", "-E", "separator=;", "-E", "aggregator=,"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let num = |s: &str| -> u16 { s.parse().unwrap_or_else(|_| panic!("{s:?} in {text}")) };
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(';').collect();
            assert_eq!(f.len(), FIELDS.len(), "{line}");
            let pick =
                |a: &str, b: &str| -> IpAddr { if a.is_empty() { b } else { a }.parse().unwrap() };
            Decoded {
                src: pick(f[0], f[1]),
                dst: pick(f[2], f[3]),
                version: u8::try_from(num(f[4])).unwrap(),
                vrid: u8::try_from(num(f[5])).unwrap(),
                priority: u8::try_from(num(f[6])).unwrap(),
                interval: num(if f[7].is_empty() { f[8] } else { f[7] }),
                checksum_status: f[9].to_owned(),
                addresses: list(f[10])
                    .into_iter()
                    .chain(list(f[11]))
                    .map(|a| a.parse().unwrap())
                    .collect(),
                auth_string: f[12].to_owned(),
                malformed: f[13].to_owned(),
                expert_severities: list(f[14])
                    .into_iter()
                    .map(|s| s.parse().unwrap())
                    .collect(),
            }
        })
        .collect()
}

/// Wireshark's PI_WARN: a bad checksum is reported at this severity; malformed at PI_ERROR.
const PI_WARN: u32 = 0x0060_0000;

fn judge(test: &str, cases: &[Case]) {
    let lan = Lan::new(test, 2, true);
    let (ours, peer) = (&lan.nodes[0], &lan.nodes[1]);
    let dir = std::env::temp_dir().join(format!("halb-tshark-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut capture = Capture::start(peer, &dir);
    let mut sent = Vec::new();
    for c in cases {
        let src = source(ours, c);
        let sock = open(ours, src, !c.unicast);
        sent.push(drive(c, &sock, 4));
    }
    let total: usize = sent.iter().map(Vec::len).sum();
    // Everything sent crosses the bridge at once; give the capture a generous while to write it.
    let complete = wait_until(Duration::from_secs(20), || {
        tshark(&capture.file, false).len() >= total
    });
    capture.process.stop();
    assert!(complete, "{test}: the capture misses adverts");
    let plain = tshark(&capture.file, false);
    let as_in_v2 = tshark(&capture.file, true);
    assert_eq!(plain.len(), total, "{test}: {plain:#?}");
    for (c, sent) in cases.iter().zip(&sent) {
        let rows = if c.as_in_v2_pref { &as_in_v2 } else { &plain };
        let mine: Vec<&Decoded> = rows.iter().filter(|d| d.vrid == c.vrid).collect();
        let seen: Vec<Sent> = mine
            .iter()
            .map(|d| Sent {
                src: d.src,
                dst: d.dst,
                vrid: d.vrid,
                priority: d.priority,
            })
            .collect();
        assert_eq!(
            &seen, sent,
            "{test} VRID {}: tshark saw other adverts",
            c.vrid
        );
        let vips: Vec<IpAddr> = c.vips.iter().map(|v| v.parse().unwrap()).collect();
        let interval = match c.version {
            Version::V2 => c.interval_cs / 100,
            Version::V3 => c.interval_cs,
        };
        let auth = match c.auth {
            Auth::None => String::new(),
            Auth::Simple(_) => "123456".to_owned(),
        };
        for d in mine {
            let what = format!("{test} VRID {}: {d:?}", c.vrid);
            assert_eq!(d.version, c.version.number(), "{what}");
            assert_eq!(d.interval, interval, "{what}");
            assert_eq!(d.addresses, vips, "{what}");
            assert_eq!(d.auth_string, auth, "{what}");
            assert!(d.malformed.is_empty(), "malformed: {what}");
            let expected = if c.good { "1" } else { "0" };
            assert_eq!(d.checksum_status, expected, "checksum status: {what}");
            if c.good {
                assert!(
                    d.expert_severities.iter().all(|s| *s < PI_WARN),
                    "warnings: {what}"
                );
            }
        }
    }
    // The v2-style checksum is really another one: without the preference it is Bad.
    for c in cases.iter().filter(|c| c.as_in_v2_pref) {
        assert!(
            plain
                .iter()
                .filter(|d| d.vrid == c.vrid)
                .all(|d| d.checksum_status == "0"),
            "{test} VRID {}: a v2-style checksum passed Wireshark's RFC check",
            c.vrid
        );
    }
    drop(lan);
    let _ = std::fs::remove_dir_all(&dir);
}

const PASS: &[u8] = b"123456";

#[test]
fn tshark_accepts_vrrpv2_with_pass() {
    let _shared = crate::netns::shared();
    let test = "tsv2";
    if !available(test) {
        return;
    }
    let base = |vrid, unicast| Case {
        vrid,
        version: Version::V2,
        ipv6: false,
        unicast,
        checksum: ChecksumMode::Rfc5798,
        auth: Auth::simple(PASS).unwrap(),
        vips: &["192.0.2.200"],
        interval_cs: 100,
        good: true,
        as_in_v2_pref: false,
    };
    judge(test, &[base(101, false), base(102, true)]);
}

#[test]
fn tshark_accepts_vrrpv3_ipv4_in_both_checksum_modes() {
    let _shared = crate::netns::shared();
    let test = "tsv3v4";
    if !available(test) {
        return;
    }
    let base = |vrid, unicast, checksum, good, as_in_v2_pref| Case {
        vrid,
        version: Version::V3,
        ipv6: false,
        unicast,
        checksum,
        auth: Auth::None,
        vips: &["192.0.2.200", "192.0.2.201"],
        interval_cs: 5,
        good,
        as_in_v2_pref,
    };
    let rfc = ChecksumMode::Rfc5798;
    let v2 = ChecksumMode::V3WithoutPseudoHeader;
    let old = ChecksumMode::V3MulticastPseudoHeader;
    judge(
        test,
        &[
            base(11, false, rfc, true, false),
            base(12, true, rfc, true, false),
            base(13, false, v2, true, true),
            base(14, true, v2, true, true),
            // keepalived's old_unicast_checksum: the RFC checksum for multicast; for unicast the
            // same Bad status Wireshark gives keepalived's own such adverts
            // (vrrp-core/tests/data/keepalived-adverts.txt).
            base(15, false, old, true, false),
            base(16, true, old, false, false),
        ],
    );
}

#[test]
fn tshark_accepts_vrrpv3_ipv6() {
    let _shared = crate::netns::shared();
    let test = "tsv3v6";
    if !available(test) {
        return;
    }
    let base = |vrid, unicast| Case {
        vrid,
        version: Version::V3,
        ipv6: true,
        unicast,
        checksum: ChecksumMode::Rfc5798,
        auth: Auth::None,
        vips: &["2001:db8::200", "2001:db8::201"],
        interval_cs: 5,
        good: true,
        as_in_v2_pref: false,
    };
    judge(test, &[base(21, false), base(22, true)]);
}
