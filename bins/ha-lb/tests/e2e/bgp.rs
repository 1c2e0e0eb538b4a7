//! End to end: anycast VIPs announced over BGP by BIRD 2, active-active behind an ECMP router.
//!
//! Topology (TEST-NET addresses only, every namespace made here and torn down on drop):
//! - backend LAN 192.0.2.0/24 (a bridge): lb1 `eth0` .1, lb2 `eth0` .2, backends b1..b3 .3..=.5
//!   (port 8080; each answers `bN via <address of the lb that connected>`);
//! - uplink LAN 198.51.100.0/25 (another bridge, the "switch"): router .1, lb1 .2, lb2 .3;
//! - client link 198.51.100.128/30: router .129, client .130 (default route via the router).
//!
//! Each lb node runs `ha-lb run` with `[anycast.web]` (VIP 203.0.113.10 on `ha-lb0`, tracking
//! its pool) and BIRD (examples/bird-anycast.conf: `protocol direct` on ha-lb0 exported to BGP
//! by a filter, BFD on the uplink) or FRR (`redistribute connected` through a route map, as in
//! examples/frr-anycast.conf). The router runs BIRD with both lbs as eBGP peers, BFD, and `merge paths` into the
//! kernel: one route with two next hops; the L4 multipath hash spreads the client's
//! connections over both nodes. The client starts a request every 5 ms.
//!
//! Outage is measured as: from the failure until the first request after which every request
//! was answered. The tests run one at a time ([`netns::serial`]).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::backend::{Answer, Backend};
use crate::client::{failures_started, last_started, ms, outage, per_balancer, request, Client};
use crate::netns::{self, serial, tool_available, veth, wait_until, ChildGuard, Netns};
use crate::topo::{halb_run, worker_pid};

const VIP: &str = "203.0.113.10";
const TARGET: &str = "203.0.113.10:80";
/// The lbs' addresses on the uplink LAN, and on the backend LAN (what backends see).
const LB_UPLINK: [&str; 2] = ["198.51.100.2", "198.51.100.3"];
const LB_BACKEND: [&str; 2] = ["192.0.2.1", "192.0.2.2"];
const BACKENDS: [&str; 3] = ["192.0.2.3", "192.0.2.4", "192.0.2.5"];
/// The backends' check: every 100 ms, down after 2 failures.
const CHECK_INTERVAL_MS: u64 = 100;
const FALL: u64 = 2;
/// BFD: 50 ms intervals, down after 3 missed.
const BFD_MS: u64 = 50;
const FRR_ZEBRA: &str = "/usr/lib/frr/zebra";

/// BIRD on the router: examples/bird-router.conf itself (both lbs as eBGP peers with BFD,
/// their routes merged into one ECMP kernel route), with this test's interface, two nodes and
/// faster timers.
fn router_bird() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bird-router.conf");
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in [
        ("log syslog all;", "log stderr all;".to_owned()),
        ("scan time 10;", "scan time 1;".to_owned()),
        ("interface \"eth0\"", "interface \"up0\"".to_owned()),
        ("100 ms", format!("{BFD_MS} ms")),
        (
            "hold time 9;",
            "debug { states, events };\n    hold time 3;\n    connect delay time 1;\n    \
             connect retry time 1;\n    error wait time 1, 2;"
                .to_owned(),
        ),
        (
            "protocol bgp lb3 from anycast_node { neighbor 198.51.100.4 as 65001; }",
            String::new(),
        ),
    ] {
        assert!(
            text.contains(from),
            "examples/bird-router.conf has no {from:?}"
        );
        text = text.replace(from, &to);
    }
    assert!(text.contains(LB_UPLINK[0]) && text.contains(LB_UPLINK[1]));
    text
}

/// BIRD on an lb node: examples/bird-anycast.conf itself (the routes of ha-lb0 exported to
/// the router through its filter, nothing imported), with this test's addresses, interface
/// and faster timers.
fn lb_bird(i: usize) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bird-anycast.conf");
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in [
        ("log syslog all;", "log stderr all;".to_owned()),
        ("198.51.100.2", LB_UPLINK[i].to_owned()),
        ("scan time 10;", "scan time 1;".to_owned()),
        ("interface \"eth0\"", "interface \"up0\"".to_owned()),
        ("100 ms", format!("{BFD_MS} ms")),
        (
            "hold time 9;",
            "hold time 3;\n    connect delay time 1;\n    connect retry time 1;\n    \
             error wait time 1, 2;"
                .to_owned(),
        ),
    ] {
        assert!(
            text.contains(from),
            "examples/bird-anycast.conf has no {from:?}"
        );
        text = text.replace(from, &to);
    }
    text
}

/// The routing daemon on the lb nodes (the router always runs BIRD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaker {
    Bird,
    Frr,
}

/// FRR on an lb node: examples/frr-anycast.conf split into one file per daemon (its `bfd`
/// block for bfdd, the rest for bgpd: `redistribute connected` through the route map that
/// keeps the /32s of ha-lb0 only), with this test's addresses and faster timers.
fn lb_frr(i: usize) -> [(&'static str, String); 3] {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/frr-anycast.conf");
    let mut text = std::fs::read_to_string(path).unwrap();
    let name = format!("lb{}", i + 1);
    for (from, to) in [
        ("log syslog informational\n", String::new()),
        ("hostname lb1", format!("hostname {name}")),
        ("198.51.100.2", LB_UPLINK[i].to_owned()),
        ("receive-interval 100", format!("receive-interval {BFD_MS}")),
        (
            "transmit-interval 100",
            format!("transmit-interval {BFD_MS}"),
        ),
        (
            " neighbor 198.51.100.1 bfd profile fast\n",
            " neighbor 198.51.100.1 bfd profile fast\n neighbor 198.51.100.1 timers 1 3\n \
             neighbor 198.51.100.1 timers connect 1\n"
                .to_owned(),
        ),
        // What bgpd learns from zebra (interfaces, redistributed routes) and what it sends:
        // a route that never reaches the router is then explained by bgpd's own log.
        (
            "router bgp 65001\n",
            "debug bgp zebra\ndebug bgp updates out\n!\nrouter bgp 65001\n".to_owned(),
        ),
    ] {
        assert!(
            text.contains(from),
            "examples/frr-anycast.conf has no {from:?}"
        );
        text = text.replace(from, &to);
    }
    // The `bfd` block: from its line to the `exit` at the start of a line that closes it.
    let begin = text.find("\nbfd\n").expect("a bfd block") + 1;
    let close = begin + text[begin..].find("\nexit\n").expect("its exit") + "\nexit\n".len();
    let bfd = format!("hostname {name}\n{}", &text[begin..close]);
    let bgp = format!("{}{}", &text[..begin], &text[close..]);
    [
        ("zebra", format!("hostname {name}\n")),
        ("bfdd", bfd),
        ("bgpd", bgp),
    ]
}

/// ha-lb on an lb node: the listener on the anycast VIP, the three backends, checked.
fn lb_config(withdraw_wait_ms: u64) -> String {
    format!(
        r#"
[anycast.web]
vips = ["{VIP}"]
track_pools = ["backends"]
withdraw_wait_ms = {withdraw_wait_ms}

[listeners.web]
listen = "{TARGET}"
pool = "backends"

[pools.backends]
backends = [
    {{ address = "192.0.2.3:8080", check = "tcp" }},
    {{ address = "192.0.2.4:8080", check = "tcp" }},
    {{ address = "192.0.2.5:8080", check = "tcp" }},
]

[checks.tcp]
kind = "tcp"
interval_ms = {CHECK_INTERVAL_MS}
timeout_ms = 100
rise = 1
fall = {FALL}
"#
    )
}

/// Everything, torn down on drop: processes by PID, then the namespaces.
struct Topo {
    dir: PathBuf,
    speaker: Speaker,
    /// ha-lb on lb1, lb2 (`None` once killed on purpose).
    halb: [Option<ChildGuard>; 2],
    /// The routing daemons of lb1, lb2 and the router.
    speakers: Vec<Vec<ChildGuard>>,
    /// The directories FRR's daemons make in /var/tmp/frr (removed at a clean exit only).
    frr_tmp: Vec<PathBuf>,
    _backends: Vec<Backend>,
    client: Netns,
    router: Netns,
    lbs: [Netns; 2],
    _backend_ns: Vec<Netns>,
    /// The switches (bridges), dropped last.
    _backend_lan: Netns,
    uplink: Netns,
}

impl Topo {
    fn new(tag: &str, speaker: Speaker, withdraw_wait_ms: u64) -> Option<Self> {
        if !Netns::available(tag) || !tool_available(tag, "bird", "bird2") {
            return None;
        }
        if speaker == Speaker::Frr && !tool_available(tag, FRR_ZEBRA, "frr") {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("halb-e2e-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let backend_lan = Netns::new(&format!("{tag}-bsw")).unwrap();
        let uplink = Netns::new(&format!("{tag}-usw")).unwrap();
        for sw in [&backend_lan, &uplink] {
            sw.ip(&["link", "add", "br0", "type", "bridge"]);
            sw.ip(&["link", "set", "br0", "up"]);
        }
        let lbs = [
            Netns::new(&format!("{tag}-lb1")).unwrap(),
            Netns::new(&format!("{tag}-lb2")).unwrap(),
        ];
        let router = Netns::new(&format!("{tag}-r")).unwrap();
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        let mut backend_ns = Vec::new();
        // Backend LAN: lb1, lb2, b1..b3.
        for i in 0..5u8 {
            let ns = if i < 2 {
                &lbs[usize::from(i)]
            } else {
                backend_ns.push(Netns::new(&format!("{tag}-b{}", i - 1)).unwrap());
                backend_ns.last().unwrap()
            };
            let port = format!("b{i}");
            veth(ns, "eth0", &backend_lan, &port, 10 + i);
            backend_lan.ip(&["link", "set", &port, "master", "br0"]);
            ns.ip(&[
                "addr",
                "add",
                &format!("192.0.2.{}/24", i + 1),
                "dev",
                "eth0",
            ]);
        }
        // Uplink LAN: router, lb1, lb2.
        for (i, ns) in [&router, &lbs[0], &lbs[1]].into_iter().enumerate() {
            let port = format!("u{i}");
            veth(ns, "up0", &uplink, &port, 20 + u8::try_from(i).unwrap());
            uplink.ip(&["link", "set", &port, "master", "br0"]);
            ns.ip(&[
                "addr",
                "add",
                &format!("198.51.100.{}/25", i + 1),
                "dev",
                "up0",
            ]);
        }
        for lb in &lbs {
            lb.ip(&["route", "add", "default", "via", "198.51.100.1"]);
        }
        // Client link.
        veth(&router, "cl0", &client, "eth0", 30);
        router.ip(&["addr", "add", "198.51.100.129/30", "dev", "cl0"]);
        client.ip(&["addr", "add", "198.51.100.130/30", "dev", "eth0"]);
        client.ip(&["route", "add", "default", "via", "198.51.100.129"]);
        router.sysctl("net.ipv4.ip_forward", "1");
        // Spread flows by ports too (L4 hash), not only by addresses: one client, many flows.
        router.sysctl("net.ipv4.fib_multipath_hash_policy", "1");
        let backends = backend_ns
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                Backend::serve(
                    Some(ns),
                    "0.0.0.0:8080",
                    &format!("b{}", i + 1),
                    Answer::NameAndPeer,
                )
            })
            .collect();
        let mut topo = Topo {
            dir,
            speaker,
            halb: [None, None],
            speakers: Vec::new(),
            frr_tmp: Vec::new(),
            _backends: backends,
            client,
            router,
            lbs,
            _backend_ns: backend_ns,
            _backend_lan: backend_lan,
            uplink,
        };
        let router_conf = topo.write("router.conf", &router_bird());
        let r = topo.bird(&topo.router, "router", &router_conf);
        let mut speakers = Vec::new();
        for i in 0..2 {
            speakers.push(match speaker {
                Speaker::Bird => {
                    let conf = topo.write(&format!("lb{}.conf", i + 1), &lb_bird(i));
                    vec![topo.bird(&topo.lbs[i], &format!("bird-lb{}", i + 1), &conf)]
                }
                Speaker::Frr => {
                    let daemons = topo.frr(i);
                    for (d, name) in daemons.iter().zip(["zebra", "bfdd", "bgpd"]) {
                        topo.frr_tmp
                            .push(PathBuf::from(format!("/var/tmp/frr/{name}.{}", d.pid())));
                    }
                    daemons
                }
            });
        }
        speakers.push(vec![r]);
        topo.speakers = speakers;
        let config = topo.write("ha-lb.toml", &lb_config(withdraw_wait_ms));
        topo.halb = [
            Some(topo.halb_start(0, &config)),
            Some(topo.halb_start(1, &config)),
        ];
        Some(topo)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// BIRD in the foreground, its control socket in the test's directory, log to `NAME.log`.
    fn bird(&self, ns: &Netns, name: &str, config: &Path) -> ChildGuard {
        let log = File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let mut cmd = ns.command("bird");
        cmd.arg("-f")
            .arg("-c")
            .arg(config)
            .arg("-s")
            .arg(self.dir.join(format!("{name}.ctl")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        ChildGuard::spawn(&mut cmd, Duration::from_secs(5))
    }

    /// FRR's zebra, bfdd and bgpd on lb `i`, in the foreground, their sockets, pid files and
    /// logs in the test's directory `frr-lbN/` (owned by the `frr` user they run as: FRR
    /// refuses to run as a user outside its `frrvty` group).
    fn frr(&self, i: usize) -> Vec<ChildGuard> {
        let dir = self.dir.join(format!("frr-lb{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        let zserv = dir.join("zserv.api");
        let mut daemons = Vec::new();
        for (daemon, conf) in lb_frr(i) {
            let path = dir.join(format!("{daemon}.conf"));
            std::fs::write(&path, conf).unwrap();
            let log = File::create(dir.join(format!("{daemon}.log"))).unwrap();
            let status = std::process::Command::new("chown")
                .args(["-R", "frr:frr"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown frr {}", dir.display());
            let mut cmd = self.lbs[i].command(&format!("/usr/lib/frr/{daemon}"));
            cmd.arg("-f")
                .arg(&path)
                .arg("-i")
                .arg(dir.join(format!("{daemon}.pid")))
                .arg("-z")
                .arg(&zserv)
                .arg("--vty_socket")
                .arg(&dir)
                .args(["-u", "frr", "-g", "frr", "--log", "stdout"]);
            if daemon == "bfdd" {
                cmd.arg("--bfdctl").arg(dir.join("bfdd.sock"));
            }
            cmd.stdin(Stdio::null()).stdout(log).stderr(Stdio::null());
            daemons.push(ChildGuard::spawn(&mut cmd, Duration::from_secs(5)));
            if daemon == "zebra" {
                // The others connect to zebra's socket.
                assert!(
                    wait_until(Duration::from_secs(10), || zserv.exists()),
                    "zebra did not start"
                );
            }
        }
        daemons
    }

    fn halb_start(&self, i: usize, config: &Path) -> ChildGuard {
        let log = File::create(self.dir.join(format!("lb{}.log", i + 1))).unwrap();
        let mut cmd = halb_run(&self.lbs[i], config, Duration::from_secs(1));
        ChildGuard::spawn(cmd.stderr(log), Duration::from_secs(10))
    }

    /// The router's next hops for the VIP (empty: no route).
    fn next_hops(&self) -> Vec<String> {
        let out = self.router.ip(&["-4", "route", "show", VIP]);
        let words: Vec<&str> = out.split_whitespace().collect();
        words
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_owned())
            .collect()
    }

    fn wait_next_hops(&self, want: &[&str], timeout: Duration) -> bool {
        wait_until(timeout, || {
            let mut hops = self.next_hops();
            hops.sort();
            hops == want
        })
    }

    /// Whether lb `i` holds the VIP on ha-lb0.
    fn holds_vip(&self, i: usize) -> bool {
        let out = std::process::Command::new("ip")
            .args([
                "-n",
                self.lbs[i].name(),
                "-o",
                "addr",
                "show",
                "dev",
                "ha-lb0",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/32"))
    }

    /// Waits until both nodes announce the VIP and the router has both next hops.
    fn wait_ecmp(&self) {
        assert!(
            self.wait_next_hops(&LB_UPLINK, Duration::from_secs(20)),
            "no ECMP route to {VIP} via both lbs: {:?}\n{}",
            self.next_hops(),
            self.dump()
        );
    }

    /// A client that got 50 answers.
    fn served_client(&self) -> Client {
        let client = Client::start(&self.client, TARGET);
        assert!(
            client.wait_successes(Instant::now(), 50, Duration::from_secs(10)),
            "{}",
            self.dump()
        );
        client
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn dump(&self) -> String {
        [
            "lb1",
            "lb2",
            "bird-lb1",
            "bird-lb2",
            "frr-lb1/bgpd",
            "frr-lb1/bfdd",
            "frr-lb2/bgpd",
            "router",
        ]
        .iter()
        .map(|n| format!("===== {n}.log =====\n{}", self.log(n)))
        .chain([self.state()])
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// What each node holds and announces and what the router learnt, now: last in a dump,
    /// so that the end of a failure's output (what a CI log keeps) says where a route stopped.
    fn state(&self) -> String {
        let birdc = |ctl: &str, args: &[&str]| {
            let out = std::process::Command::new("birdc")
                .arg("-s")
                .arg(self.dir.join(format!("{ctl}.ctl")))
                .args(args)
                .output();
            out.map_or_else(
                |e| format!("birdc: {e}"),
                |o| String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        };
        let mut text = format!(
            "===== state (logs in {}) =====\nrouter next hops for {VIP}: {:?}\n",
            self.dir.display(),
            self.next_hops()
        );
        text += &birdc("router", &["show", "route", "all", "for", VIP]);
        for i in 0..2 {
            // Every address, filtered here: `ip` fails (and would panic) without ha-lb0.
            let all = self.lbs[i].ip(&["-o", "addr", "show"]);
            let held: Vec<&str> = all
                .lines()
                .filter(|l| l.contains(" ha-lb0 "))
                .filter_map(|l| l.split_whitespace().nth(3))
                .collect();
            text += &format!("--- lb{}: ha-lb0 holds {held:?}\n", i + 1);
            text += &match self.speaker {
                Speaker::Bird => birdc(&format!("bird-lb{}", i + 1), &["show", "route", "all"]),
                Speaker::Frr => {
                    let out = std::process::Command::new("vtysh")
                        .arg("--vty_socket")
                        .arg(self.dir.join(format!("frr-lb{}", i + 1)))
                        .args([
                            "-c",
                            "show interface brief",
                            "-c",
                            "show bgp ipv4 unicast",
                            "-c",
                            "show bgp ipv4 unicast neighbors 198.51.100.1 advertised-routes",
                        ])
                        .output();
                    out.map_or_else(
                        |e| format!("vtysh: {e}"),
                        |o| String::from_utf8_lossy(&o.stdout).into_owned(),
                    )
                }
            };
        }
        text
    }

    /// The worker a supervisor runs (its only child).
    fn worker(&self, i: usize) -> i32 {
        let supervisor = self.halb[i].as_ref().unwrap().pid();
        worker_pid(supervisor).unwrap_or_else(|| panic!("no worker under {supervisor}"))
    }

    /// Asserts that both nodes served a fair share of what the client sent in `[from, to]`.
    fn assert_spread(&self, client: &Client, from: Instant, to: Instant) {
        let counts = per_balancer(&client.samples(), from, to);
        let total: usize = counts.values().sum();
        eprintln!("flows per node: {counts:?} of {total}");
        for lb in LB_BACKEND {
            let n = counts.get(lb).copied().unwrap_or(0);
            assert!(
                n * 5 >= total,
                "lb {lb} served {n} of {total}: flows are not spread over both nodes ({counts:?})\n{}",
                self.dump()
            );
        }
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        // Daemons first, by PID (ChildGuard); the namespaces then go with what is left.
        self.halb = [None, None];
        self.speakers.clear();
        for dir in &self.frr_tmp {
            let _ = std::fs::remove_dir_all(dir);
        }
        // A failed test's logs stay (their directory is named in its dump).
        if std::env::var_os("HALB_E2E_KEEP_LOGS").is_none() && !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sets up, waits for ECMP, runs a client that must reach both nodes, and returns it.
fn setup(tag: &str, speaker: Speaker, withdraw_wait_ms: u64) -> Option<(Topo, Client)> {
    let topo = Topo::new(tag, speaker, withdraw_wait_ms)?;
    topo.wait_ecmp();
    let client = topo.served_client();
    let from = Instant::now();
    thread::sleep(Duration::from_millis(500));
    topo.assert_spread(&client, from, Instant::now());
    assert_eq!(
        failures_started(&client.samples(), from, Instant::now()),
        0,
        "{}",
        topo.dump()
    );
    Some((topo, client))
}

fn backends_lost(speaker: Speaker, tag: &str) {
    let _serial = serial();
    let Some((topo, mut client)) = setup(tag, speaker, 1000) else {
        return;
    };
    // lb1 loses its backends (unreachable from it: connects fail at once): its checks fail
    // after FALL intervals, its VIP goes, BIRD withdraws, the router keeps only lb2.
    let failed = Instant::now();
    for b in BACKENDS {
        topo.lbs[0].ip(&["route", "add", "prohibit", b]);
    }
    assert!(
        topo.wait_next_hops(&[LB_UPLINK[1]], Duration::from_secs(5)),
        "lb1's route not withdrawn: {:?}\n{}",
        topo.next_hops(),
        topo.dump()
    );
    let withdrawn = failed.elapsed();
    assert!(!topo.holds_vip(0));
    assert!(client.wait_successes(Instant::now(), 50, Duration::from_secs(5)));
    // Every request finished, also those that hung until their timeout.
    let samples = client.stop();
    let end = last_started(&samples);
    let out = outage(&samples, failed, end);
    let bound = Duration::from_millis(CHECK_INTERVAL_MS * FALL + 300);
    eprintln!(
        "backends failed: route withdrawn after {} ms, clients all served again after {} ms \
         (bound {} ms: fall time + 300 ms), {} failed requests",
        ms(withdrawn),
        ms(out),
        ms(bound),
        failures_started(&samples, failed, end)
    );
    assert!(out < bound, "outage {} ms\n{}", ms(out), topo.dump());
    // Everything after the withdrawal went to lb2.
    let after = per_balancer(&samples, failed + out, end);
    assert!(
        !after.contains_key(LB_BACKEND[0]),
        "lb1 still served: {after:?}"
    );
    // The backends come back: lb1 announces again and serves its share.
    for b in BACKENDS {
        topo.lbs[0].ip(&["route", "del", "prohibit", b]);
    }
    topo.wait_ecmp();
    let client = topo.served_client();
    let back = Instant::now();
    thread::sleep(Duration::from_millis(500));
    topo.assert_spread(&client, back, Instant::now());
}

fn worker_killed(speaker: Speaker, tag: &str) {
    let _serial = serial();
    let Some((topo, mut client)) = setup(tag, speaker, 1000) else {
        return;
    };
    let worker = topo.worker(0);
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker), Signal::SIGKILL).unwrap();
    assert!(
        topo.wait_next_hops(&[LB_UPLINK[1]], Duration::from_secs(5)),
        "lb1's route not withdrawn: {:?}\n{}",
        topo.next_hops(),
        topo.dump()
    );
    let withdrawn = killed.elapsed();
    assert!(client.wait_successes(Instant::now(), 50, Duration::from_secs(5)));
    // Every request finished, also those that hung until their timeout.
    let samples = client.stop();
    let end = last_started(&samples);
    let out = outage(&samples, killed, end);
    eprintln!(
        "worker SIGKILL: route withdrawn after {} ms, clients all served again after {} ms, \
         {} failed requests",
        ms(withdrawn),
        ms(out),
        failures_started(&samples, killed, end)
    );
    // No check has to fail: the supervisor removes the VIP as soon as the worker is gone.
    // Without it, the route would stay until the restarted worker's checks passed again.
    assert!(
        withdrawn < Duration::from_millis(300),
        "withdrawn after {} ms\n{}",
        ms(withdrawn),
        topo.dump()
    );
    // The clients' outage adds the daemon's own withdrawal (BIRD 3-6 ms, FRR 60-125 ms) and
    // the re-announcement by the restarted worker.
    assert!(
        out < Duration::from_millis(500),
        "outage {} ms\n{}",
        ms(out),
        topo.dump()
    );
    assert!(topo.log("lb1").contains("released for the dead worker"));
    // The restarted worker announces again once its checks pass.
    topo.wait_ecmp();
}

fn node_dead(speaker: Speaker, tag: &str) {
    let _serial = serial();
    let Some((mut topo, mut client)) = setup(tag, speaker, 1000) else {
        return;
    };
    // lb1 dies whole: off the network at once (its switch port goes, the router's own port
    // stays up, so only BFD can tell), then its processes are killed.
    let died = Instant::now();
    topo.uplink.ip(&["link", "del", "u1"]);
    if let Some(h) = topo.halb[0].take() {
        h.signal(Signal::SIGKILL);
    }
    for daemon in std::mem::take(&mut topo.speakers[0]) {
        daemon.signal(Signal::SIGKILL);
    }
    assert!(
        topo.wait_next_hops(&[LB_UPLINK[1]], Duration::from_secs(5)),
        "lb1's route not withdrawn: {:?}\n{}",
        topo.next_hops(),
        topo.dump()
    );
    let withdrawn = died.elapsed();
    assert!(client.wait_successes(Instant::now(), 50, Duration::from_secs(5)));
    // Every request finished, also those that hung until their timeout.
    let samples = client.stop();
    let end = last_started(&samples);
    let out = outage(&samples, died, end);
    eprintln!(
        "whole node dead: BFD withdrew its route after {} ms (BFD {} ms x 3), clients all \
         served again after {} ms, {} failed requests",
        ms(withdrawn),
        BFD_MS,
        ms(out),
        failures_started(&samples, died, end)
    );
    // The router learnt it from BFD, not from the BGP hold timer (3 s) nor a link event.
    let birdc = std::process::Command::new("birdc")
        .arg("-s")
        .arg(topo.dir.join("router.ctl"))
        .args(["show", "protocols", "lb1"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&birdc.stdout).into_owned();
    eprintln!("{shown}");
    assert!(
        shown.contains("BFD session down"),
        "{shown}\n{}",
        topo.log("router")
    );
    assert!(
        out < Duration::from_secs(1),
        "outage {} ms\n{}",
        ms(out),
        topo.dump()
    );
}

fn graceful_stop(speaker: Speaker, tag: &str) {
    let _serial = serial();
    let Some((mut topo, mut client)) = setup(tag, speaker, 500) else {
        return;
    };
    let stopping = Instant::now();
    let mut lb1 = topo.halb[0].take().unwrap();
    lb1.signal(Signal::SIGTERM);
    assert!(
        topo.wait_next_hops(&[LB_UPLINK[1]], Duration::from_secs(5)),
        "lb1's route not withdrawn: {:?}\n{}",
        topo.next_hops(),
        topo.dump()
    );
    let withdrawn = stopping.elapsed();
    // Withdrawn, yet still serving what the router sent before it knew: the VIP stays local
    // (a local route) and the listener accepts until withdraw_wait_ms. A connection that reaches lb1
    // now (here: made on lb1 itself) is served by lb1, not routed away.
    let straggler = topo.lbs[0].run(|| request(TARGET.parse().unwrap()));
    assert!(
        straggler
            .as_deref()
            .is_some_and(|a| a.ends_with(&format!("via {}", LB_BACKEND[0]))),
        "after the withdrawal lb1 no longer serves on the VIP: {straggler:?}\n{}",
        topo.dump()
    );
    assert!(
        wait_until(Duration::from_secs(5), || lb1.has_exited()),
        "lb1 did not stop"
    );
    let exited = stopping.elapsed();
    assert!(client.wait_successes(Instant::now(), 50, Duration::from_secs(5)));
    // Every request finished, also those that hung until their timeout.
    let samples = client.stop();
    let end = last_started(&samples);
    let failed = failures_started(&samples, stopping, end);
    // A connection whose first packets reached lb1 and whose next ones come after the router
    // dropped lb1's next hop is re-hashed to lb2, which resets it: that is ECMP, for anycast
    // and for any router, and only a request straddling the route change itself is exposed.
    // Every request that started after the route change was seen must be answered.
    let seen = stopping + withdrawn;
    let straddling = failures_started(&samples, stopping, seen);
    let after = failures_started(&samples, seen, end);
    eprintln!(
        "graceful stop: route withdrawn after {} ms, ha-lb exited after {} ms, {failed} failed \
         requests ({straddling} in flight while the router changed its route, {after} after)",
        ms(withdrawn),
        ms(exited)
    );
    assert!(
        withdrawn < Duration::from_millis(300),
        "withdrawn after {} ms",
        ms(withdrawn)
    );
    // The listener closed withdraw_wait_ms (500) after the withdrawal, not before.
    assert!(
        exited >= Duration::from_millis(500),
        "exited after {} ms",
        ms(exited)
    );
    assert_eq!(after, 0, "{}", topo.dump());
    assert!(straddling <= 2, "{straddling} failed\n{}", topo.dump());
    assert!(!topo.holds_vip(0));
    // Its local route went too.
    let local = topo.lbs[0].ip(&["route", "show", "table", "local"]);
    assert!(!local.contains(VIP), "{local}");
}

#[test]
fn bird_both_nodes_serve_and_a_node_without_backends_is_withdrawn() {
    backends_lost(Speaker::Bird, "bgpfail");
}

#[test]
fn frr_both_nodes_serve_and_a_node_without_backends_is_withdrawn() {
    backends_lost(Speaker::Frr, "frrfail");
}

#[test]
fn bird_killed_worker_is_withdrawn_at_once_by_the_supervisor() {
    worker_killed(Speaker::Bird, "bgpkill");
}

#[test]
fn frr_killed_worker_is_withdrawn_at_once_by_the_supervisor() {
    worker_killed(Speaker::Frr, "frrkill");
}

#[test]
fn bird_dead_node_is_detected_by_bfd() {
    node_dead(Speaker::Bird, "bgpbfd");
}

#[test]
fn frr_dead_node_is_detected_by_bfd() {
    node_dead(Speaker::Frr, "frrbfd");
}

#[test]
fn bird_graceful_stop_withdraws_before_closing_no_request_fails() {
    graceful_stop(Speaker::Bird, "bgpstop");
}

#[test]
fn frr_graceful_stop_withdraws_before_closing_no_request_fails() {
    graceful_stop(Speaker::Frr, "frrstop");
}

/// One namespace, no routing daemon: what ha-lb does to the anycast interface itself.
struct Single {
    ns: Netns,
    dir: PathBuf,
    backend: Option<Backend>,
}

impl Single {
    fn new(tag: &str) -> Option<Self> {
        if !Netns::available(tag) {
            return None;
        }
        let ns = Netns::new(tag).unwrap();
        // An uplink to track: one end of a veth pair whose other end stays here too.
        ns.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
        ns.ip(&["link", "set", "up1", "up"]);
        ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "up0"]);
        ns.ip(&["link", "set", "up0", "up"]);
        let backend = Backend::serve(Some(&ns), "0.0.0.0:8080", "b1", Answer::NameAndPeer);
        let dir = std::env::temp_dir().join(format!("halb-e2e-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Single {
            ns,
            dir,
            backend: Some(backend),
        })
    }

    fn config(&self, groups: &str) -> PathBuf {
        let text = format!(
            "{groups}\n[admin]\nlisten = \"127.0.0.1:9555\"\ncontrol = true\n[listeners.web]\nlisten = \"{TARGET}\"\npool = \"p\"\n\
             [pools.p]\nbackends = [{{ address = \"192.0.2.1:8080\", check = \"tcp\" }}]\n\
             [checks.tcp]\nkind = \"tcp\"\naddress = \"192.0.2.1:8080\"\ninterval_ms = 100\n\
             rise = 1\nfall = 1\n"
        );
        let path = self.dir.join("ha-lb.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start(&self, config: &Path) -> ChildGuard {
        let log = File::create(self.dir.join("ha-lb.log")).unwrap();
        let mut cmd = self.ns.command(&netns::halb_binary());
        cmd.args(["run", "--config"])
            .arg(config)
            .args(["--drain-timeout-ms", "200"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        ChildGuard::spawn(&mut cmd, Duration::from_secs(10))
    }

    /// `ha-lb ctl --config FILE ARGS` in the namespace: (success, stdout + stderr).
    fn ctl(&self, args: &[&str]) -> (bool, String) {
        let out = self
            .ns
            .command(&netns::halb_binary())
            .arg("ctl")
            .arg("--config")
            .arg(self.dir.join("ha-lb.toml"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The anycast addresses on ha-lb0, sorted.
    fn held(&self) -> Vec<String> {
        let out = std::process::Command::new("ip")
            .args([
                "-n",
                self.ns.name(),
                "-o",
                "-4",
                "addr",
                "show",
                "dev",
                "ha-lb0",
            ])
            .output()
            .unwrap();
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with("203.0.113."))
            .map(|w| w.trim_end_matches("/32").to_owned())
            .collect();
        v.sort();
        v
    }

    fn expect_held(&self, want: &[&str], what: &str) {
        assert!(
            wait_until(Duration::from_secs(5), || self.held() == want),
            "{what}: ha-lb0 holds {:?}, want {want:?}\n{}",
            self.held(),
            std::fs::read_to_string(self.dir.join("ha-lb.log")).unwrap_or_default()
        );
    }

    /// ha-lb's local routes (`proto 112`), both families.
    fn local_routes(&self) -> String {
        self.ns
            .ip(&["route", "show", "table", "local", "proto", "112"])
            + &self
                .ns
                .ip(&["-6", "route", "show", "table", "local", "proto", "112"])
    }

    fn holds_v6(&self, vip: &str) -> bool {
        self.ns
            .ip(&["-o", "-6", "addr", "show", "dev", "ha-lb0"])
            .contains(&format!(" {vip}/128"))
    }
}

impl Drop for Single {
    fn drop(&mut self) {
        // A failed test's logs stay (their directory is named in its dump).
        if std::env::var_os("HALB_E2E_KEEP_LOGS").is_none() && !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn anycast_tracks_start_clean_up_reload_and_stop() {
    let _serial = serial();
    let Some(mut t) = Single::new("anyc") else {
        return;
    };
    // What a run killed with its supervisor left: a VIP on ha-lb0 and a stop's local route.
    t.ns.ip(&["link", "add", "ha-lb0", "type", "ifb"]);
    t.ns.ip(&["link", "set", "ha-lb0", "up"]);
    t.ns.ip(&["addr", "add", "203.0.113.11/32", "dev", "ha-lb0"]);
    t.ns.ip(&[
        "route",
        "append",
        "local",
        "203.0.113.11/32",
        "dev",
        "lo",
        "table",
        "local",
        "proto",
        "112",
    ]);
    // Group a tracks the pool and the uplink, which is down at start: nothing announced, and
    // the leftovers go.
    t.ns.ip(&["link", "set", "up1", "down"]);
    let config = t.config(
        "[anycast.a]\nvips = [\"203.0.113.10\", \"203.0.113.11\"]\ntrack_pools = [\"p\"]\n\
         track_interfaces = [\"up0\"]\n\
         [anycast.b]\nvips = [\"203.0.113.20\"]\ntrack_checks = [\"tcp\"]\n",
    );
    let mut halb = t.start(&config);
    t.expect_held(&["203.0.113.20"], "uplink down at start");
    // `/status` (and `ha-lb status`) says which group is withdrawn and why.
    let status =
        t.ns.run(|| ha_lb::status::fetch("127.0.0.1:9555".parse().unwrap()).ok())
            .expect("status");
    let a = status.anycast.iter().find(|g| g.name == "a").unwrap();
    assert!(!a.announced && a.reason == "interface up0 is down", "{a:?}");
    assert!(status.anycast.iter().any(|g| g.name == "b" && g.announced));
    assert!(t.local_routes().is_empty(), "{}", t.local_routes());
    // The uplink comes: a is announced; its listener serves on the VIP.
    t.ns.ip(&["link", "set", "up1", "up"]);
    t.expect_held(
        &["203.0.113.10", "203.0.113.11", "203.0.113.20"],
        "uplink up",
    );
    let answer = t.ns.run(|| request(TARGET.parse().unwrap()));
    assert!(answer.is_some_and(|a| a.starts_with("b1")));
    // Someone deletes ha-lb0: ha-lb makes it again and puts the VIPs back, once routing
    // daemons had the time to learn the new link (FRR's zebra drops an address that comes
    // before it has seen its link): both groups on it wait.
    let deleted = Instant::now();
    t.ns.ip(&["link", "del", "ha-lb0"]);
    assert!(wait_until(Duration::from_secs(5), || !t.held().is_empty()));
    let first = deleted.elapsed();
    t.expect_held(
        &["203.0.113.10", "203.0.113.11", "203.0.113.20"],
        "ha-lb0 deleted",
    );
    assert!(
        first >= ha_lb::testing::NEW_LINK_SETTLE,
        "a VIP came back {} ms after ha-lb0 was made again",
        ms(first)
    );
    eprintln!(
        "ha-lb0 deleted: made again, first VIP back after {} ms",
        ms(first)
    );
    // Maintenance of a (ha-lb ctl): its routes go, its VIPs stay local (what the router still
    // sends is served), b is untouched; off: announced again.
    let (ok, out) = t.ctl(&["anycast", "a", "maintenance", "on"]);
    assert!(ok && out.contains("anycast a: maintenance on"), "{out}");
    t.expect_held(&["203.0.113.20"], "a in maintenance");
    assert!(
        t.local_routes().contains("203.0.113.10"),
        "{}",
        t.local_routes()
    );
    let answer = t.ns.run(|| request(TARGET.parse().unwrap()));
    assert!(answer.is_some_and(|a| a.starts_with("b1")));
    let status =
        t.ns.run(|| ha_lb::status::fetch("127.0.0.1:9555".parse().unwrap()).ok())
            .expect("status");
    let a = status.anycast.iter().find(|g| g.name == "a").unwrap();
    assert!(
        !a.announced && a.reason == "maintenance (ha-lb ctl)",
        "{a:?}"
    );
    let (ok, out) = t.ctl(&["anycast", "nope", "maintenance", "on"]);
    assert!(!ok && out.contains("no anycast group \"nope\""), "{out}");
    let (ok, out) = t.ctl(&["anycast", "a", "maintenance", "off"]);
    assert!(ok, "{out}");
    t.expect_held(
        &["203.0.113.10", "203.0.113.11", "203.0.113.20"],
        "a out of maintenance",
    );
    assert!(t.local_routes().is_empty(), "{}", t.local_routes());
    // The backend stops (its port refuses, the check fails): both groups withdraw.
    t.backend = None;
    t.expect_held(&[], "backend down");
    t.backend = Some(Backend::start(&t.ns, "b1"));
    t.expect_held(
        &["203.0.113.10", "203.0.113.11", "203.0.113.20"],
        "backend back",
    );
    // Reload: a loses .11 and gains .12, b stays as it is (and keeps its VIP: the new group
    // on its interface must not take it for a leftover), c comes on the same interface.
    t.config(
        "[anycast.a]\nvips = [\"203.0.113.10\", \"203.0.113.12\"]\ntrack_pools = [\"p\"]\n\
         [anycast.b]\nvips = [\"203.0.113.20\"]\ntrack_checks = [\"tcp\"]\n\
         [anycast.c]\nvips = [\"203.0.113.30\", \"2001:db8::30\"]\ntrack_pools = [\"p\"]\n",
    );
    halb.signal(Signal::SIGHUP);
    t.expect_held(
        &[
            "203.0.113.10",
            "203.0.113.12",
            "203.0.113.20",
            "203.0.113.30",
        ],
        "reload",
    );
    // Then b goes, and a0 comes on an interface that is taken (not a dummy): a0 cannot
    // start, the others (c sorts after it) stay managed.
    t.ns.ip(&[
        "link", "add", "bad0", "type", "veth", "peer", "name", "bad1",
    ]);
    t.config(
        "[anycast.a]\nvips = [\"203.0.113.10\", \"203.0.113.12\"]\ntrack_pools = [\"p\"]\n\
         [anycast.a0]\nvips = [\"203.0.113.40\"]\ninterface = \"bad0\"\ntrack_pools = [\"p\"]\n\
         [anycast.c]\nvips = [\"203.0.113.30\", \"2001:db8::30\"]\ntrack_pools = [\"p\"]\n",
    );
    halb.signal(Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(t.dir.join("ha-lb.log"))
            .unwrap_or_default()
            .contains("bad0 exists and is neither a dummy nor an ifb interface")
    }));
    t.expect_held(
        &["203.0.113.10", "203.0.113.12", "203.0.113.30"],
        "b removed, a0 refused",
    );
    assert!(t.holds_v6("2001:db8::30"));
    // Graceful stop: the addresses go at once (the routes are withdrawn), the VIPs stay local
    // through local routes while the listener keeps accepting (withdraw_wait_ms, 1 s), then
    // everything goes.
    halb.signal(Signal::SIGTERM);
    t.expect_held(&[], "stopping");
    assert!(!t.holds_v6("2001:db8::30"));
    let routes = t.local_routes();
    assert!(
        routes.contains("203.0.113.10") && routes.contains("2001:db8::30"),
        "{routes}"
    );
    let answer = t.ns.run(|| request(TARGET.parse().unwrap()));
    assert!(answer.is_some_and(|a| a.starts_with("b1")));
    assert!(
        wait_until(Duration::from_secs(10), || halb.has_exited()),
        "ha-lb did not stop"
    );
    t.expect_held(&[], "stopped");
    assert!(t.local_routes().is_empty(), "{}", t.local_routes());
}

#[test]
fn anycast_refuses_an_interface_that_is_not_a_dummy() {
    let _serial = serial();
    let Some(t) = Single::new("anybad") else {
        return;
    };
    t.ns.ip(&[
        "link", "add", "ha-lb0", "type", "veth", "peer", "name", "other",
    ]);
    let config = t.config("[anycast.a]\nvips = [\"203.0.113.10\"]\ntrack_pools = [\"p\"]\n");
    let mut halb = t.start(&config);
    assert!(
        wait_until(Duration::from_secs(10), || halb.has_exited()),
        "ha-lb kept running"
    );
    let log = std::fs::read_to_string(t.dir.join("ha-lb.log")).unwrap();
    assert!(
        log.contains("ha-lb0 exists and is neither a dummy nor an ifb interface"),
        "{log}"
    );
    // Left as it was.
    assert!(t
        .ns
        .ip(&["-o", "link", "show", "ha-lb0"])
        .contains("ha-lb0@other"));
}

/// The routing daemon examples in examples/ are what BIRD and FRR accept (their own checks:
/// `bird -p`, `vtysh -C`), and ha-lb's side validates (config_examples covers every .toml).
#[test]
fn examples_bird_and_frr_configs_are_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let test = "examples_bird_and_frr_configs_are_valid";
    if tool_available(test, "bird", "bird2") {
        for file in ["bird-anycast.conf", "bird-router.conf"] {
            let out = std::process::Command::new("bird")
                .arg("-p")
                .arg("-c")
                .arg(examples.join(file))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if tool_available(test, "vtysh", "frr") {
        let out = std::process::Command::new("vtysh")
            .arg("-C")
            .arg("-f")
            .arg(examples.join("frr-anycast.conf"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "frr-anycast.conf: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(examples.join("anycast-bgp.toml")).unwrap();
    assert!(text.contains("[anycast.api]"));
}
