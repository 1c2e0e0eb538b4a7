//! `ha-lb run` and the real keepalived (Debian's 2.2.7) in one virtual router, in network
//! namespaces on a bridge: node 0 = 192.0.2.1 / 2001:db8::1, node 1 = 192.0.2.2 /
//! 2001:db8::2, VIP 192.0.2.200 or 2001:db8::200. For VRRPv2 with PASS, VRRPv3 over IPv4 and
//! VRRPv3 over IPv6, multicast and unicast, each test checks that
//!
//! - the election by priority agrees both ways (keepalived master + ha-lb backup, and the
//!   reverse);
//! - a graceful stop hands over with priority 0 both ways: the backup takes over well within
//!   Master_Down_Interval (3.6 s at 1 s adverts), i.e. it heard the priority 0;
//! - preemption works both ways (a returning higher priority takes the VIP back);
//! - the address tie-break agrees: two masters of equal priority (a partition healed) leave
//!   the higher address master, whichever implementation runs there;
//! - after every convergence exactly one node holds the VIP (`ip addr` in each namespace) and
//!   keeps it.
//!
//! And a node migrated with `ha-lb import-keepalived` from the seed's keepalived.conf (adapted
//! to TEST-NET addresses and `eth0`) joins the virtual router of a keepalived node running the
//! other original file, both ways; and in the seed's active-active pair each side holds its own
//! VIP and takes the other's when the other stops.
//!
//! Needs `keepalived` at test time (Debian package keepalived); without it, or without network
//! namespaces, the tests skip with a reason, except under `CI=true` where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::netns;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netns::{wait_until_every, ChildGuard, Lan, Netns};

use crate::keepalived;

const HALB: &str = env!("CARGO_BIN_EXE_ha-lb");
/// Convergence from a cold start: Master_Down_Interval (3.6 s) plus generous slack.
const CONVERGE: Duration = Duration::from_secs(20);
/// A priority-0 handover happens after Skew_Time (at most 1 s); Master_Down_Interval is
/// 3 s + Skew_Time. Anything under this bound heard the priority 0.
const PRIORITY_ZERO_BOUND: Duration = Duration::from_millis(2800);
/// How long the VIP's holder must stay the same to count as converged.
const STABLE: Duration = Duration::from_secs(2);
/// How often the VIP's holders are looked at (`ip addr` in each namespace): enough for bounds
/// in seconds, and light enough for these tests to run alongside each other.
const POLL: Duration = Duration::from_millis(50);

/// Waits until `cond` holds, looking every [`POLL`].
fn wait(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(POLL, timeout, cond)
}

/// One kind of virtual router.
#[derive(Debug, Clone, Copy)]
struct Kind {
    version: u8,
    ipv6: bool,
    unicast: bool,
    /// keepalived's `old_unicast_checksum` (VRRPv3 IPv4 unicast), on both sides.
    old_checksum: bool,
}

impl Kind {
    fn addr(&self, node: usize) -> String {
        if self.ipv6 {
            format!("2001:db8::{}", node + 1)
        } else {
            format!("192.0.2.{}", node + 1)
        }
    }

    fn vip(&self) -> &'static str {
        if self.ipv6 {
            "2001:db8::200"
        } else {
            "192.0.2.200"
        }
    }

    fn vip_cidr(&self) -> &'static str {
        if self.ipv6 {
            "2001:db8::200/64"
        } else {
            "192.0.2.200/24"
        }
    }

    /// keepalived.conf for node `node` at `priority`.
    fn keepalived_conf(&self, node: usize, priority: u8) -> String {
        let unicast = if self.unicast {
            format!(
                "    unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}\n",
                self.addr(node),
                self.addr(1 - node)
            )
        } else {
            String::new()
        };
        let auth = if self.version == 2 {
            "    authentication {\n        auth_type PASS\n        auth_pass 123456\n    }\n"
        } else if self.old_checksum {
            "    old_unicast_checksum\n"
        } else {
            ""
        };
        format!(
            "global_defs {{\n    router_id ka{node}\n}}\n\
             vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id 51\n    version {v}\n    priority {priority}\n    advert_int 1\n\
             {unicast}{auth}    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n",
            v = self.version,
            vip = self.vip_cidr(),
        )
    }

    /// ha-lb TOML for node `node` at `priority`: VRRP only.
    fn halb_conf(&self, node: usize, priority: u8) -> String {
        let unicast = if self.unicast {
            // keepalived 2.2.7 sends IPv6 unicast adverts with hop limit 64 (docs/interop.md).
            let min_ttl = if self.ipv6 {
                "unicast_min_ttl = 64\n"
            } else {
                ""
            };
            format!(
                "unicast_src = \"{}\"\nunicast_peers = [\"{}\"]\n{min_ttl}",
                self.addr(node),
                self.addr(1 - node)
            )
        } else {
            String::new()
        };
        let password = if self.version == 2 {
            "password = \"123456\"\n"
        } else if self.old_checksum {
            "old_unicast_checksum = true\n"
        } else {
            ""
        };
        format!(
            "[global]\nrouter_id = \"halb{node}\"\n\n[instances.VI_1]\ninterface = \"eth0\"\n\
             vrid = 51\nversion = {v}\npriority = {priority}\nadvert_interval_ms = 1000\n\
             {unicast}{password}vips = [\"{vip}\"]\n",
            v = self.version,
            vip = self.vip_cidr(),
        )
    }
}

/// Which implementation runs on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Keepalived,
    HaLb,
}

/// A running node: its process, stopped by PID on drop.
struct Running {
    process: ChildGuard,
    what: Impl,
    log: PathBuf,
}

/// The test's namespaces and its directory of configs and logs.
struct World {
    lan: Lan,
    dir: PathBuf,
    tag: String,
    starts: usize,
}

impl World {
    fn new(tag: &str) -> Self {
        let lan = Lan::new(tag, 2, true);
        let dir = std::env::temp_dir().join(format!("halb-interop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        World {
            lan,
            dir,
            tag: tag.to_owned(),
            starts: 0,
        }
    }

    fn ns(&self, node: usize) -> &Netns {
        &self.lan.nodes[node]
    }

    /// Starts keepalived with `conf` on `node`.
    fn keepalived(&mut self, node: usize, conf: &str) -> Running {
        self.starts += 1;
        let base = self.dir.join(format!("ka{node}-{}", self.starts));
        std::fs::create_dir_all(&base).unwrap();
        let file = base.join("keepalived.conf");
        std::fs::write(&file, conf).unwrap();
        let log = base.join("keepalived.log");
        let process = keepalived::start(
            self.ns(node),
            &file,
            &base,
            std::fs::File::create(&log).unwrap(),
        );
        Running {
            process,
            what: Impl::Keepalived,
            log,
        }
    }

    /// Starts `ha-lb run` with the TOML `conf` on `node`.
    fn halb(&mut self, node: usize, conf: &str) -> Running {
        self.starts += 1;
        let file = self.dir.join(format!("halb{node}-{}.toml", self.starts));
        std::fs::write(&file, conf).unwrap();
        self.halb_file(node, &file)
    }

    fn halb_file(&mut self, node: usize, file: &Path) -> Running {
        self.starts += 1;
        let log = self.dir.join(format!("halb{node}-{}.log", self.starts));
        let process = ChildGuard::spawn(
            self.ns(node)
                .command(HALB)
                .args(["run", "--config"])
                .arg(file)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
            Duration::from_secs(10),
        );
        Running {
            process,
            what: Impl::HaLb,
            log,
        }
    }

    /// Starts `what` on `node` for `kind` at `priority`.
    fn start(&mut self, what: Impl, kind: Kind, node: usize, priority: u8) -> Running {
        match what {
            Impl::Keepalived => self.keepalived(node, &kind.keepalived_conf(node, priority)),
            Impl::HaLb => self.halb(node, &kind.halb_conf(node, priority)),
        }
    }

    /// The nodes holding `vip` now.
    fn holders(&self, vip: &str) -> Vec<usize> {
        (0..self.lan.nodes.len())
            .filter(|&n| {
                self.ns(n)
                    .ip(&["-o", "addr", "show", "dev", "eth0"])
                    .split_whitespace()
                    .any(|w| w.split('/').next() == Some(vip))
            })
            .collect()
    }

    fn logs(&self, nodes: &[&Running]) -> String {
        nodes
            .iter()
            .map(|r| {
                let text = std::fs::read_to_string(&r.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!(
                    "--- {:?} {}:\n{}\n",
                    r.what,
                    r.log.display(),
                    tail.join("\n")
                )
            })
            .collect()
    }

    /// Waits until exactly `want` holds `vip`, then checks that it keeps holding it alone for
    /// [`STABLE`]. Returns the time it took to get there. Panics with the logs otherwise.
    fn converge(
        &self,
        vip: &str,
        want: usize,
        within: Duration,
        step: &str,
        nodes: &[&Running],
    ) -> Duration {
        let start = Instant::now();
        let reached = wait(within, || self.holders(vip) == [want]);
        let took = start.elapsed();
        assert!(
            reached,
            "{} {step}: VIP on {:?}, wanted only node {want}\n{}",
            self.tag,
            self.holders(vip),
            self.logs(nodes)
        );
        let until = Instant::now() + STABLE;
        while Instant::now() < until {
            let h = self.holders(vip);
            assert_eq!(
                h,
                [want],
                "{} {step}: the VIP moved after convergence\n{}",
                self.tag,
                self.logs(nodes)
            );
            std::thread::sleep(POLL);
        }
        took
    }

    /// Cuts node 1 off the bridge without touching its link (no carrier loss: no Fault).
    fn partition(&self) {
        self.lan.switch.ip(&["link", "set", "p1", "nomaster"]);
    }

    fn heal(&self) {
        self.lan.switch.ip(&["link", "set", "p1", "master", "br0"]);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Stops `node` gracefully and returns how long until `other` alone held the VIP.
fn graceful_handover(
    w: &World,
    kind: Kind,
    mut node: Running,
    other: usize,
    step: &str,
    peer: &Running,
) -> Duration {
    let start = Instant::now();
    assert!(
        node.process.stop(),
        "{} {step}: {:?} did not stop on SIGTERM",
        w.tag,
        node.what
    );
    let stopping = start.elapsed();
    let took = stopping + w.converge(kind.vip(), other, CONVERGE, step, &[peer]);
    assert!(
        took < PRIORITY_ZERO_BOUND,
        "{} {step}: took over after {took:?}: the priority 0 was not heard (Master_Down_Interval)\n{}",
        w.tag,
        w.logs(&[peer, &node])
    );
    eprintln!("{} {step}: VIP moved in {took:?}", w.tag);
    took
}

fn elections(tag: &str, kind: Kind) {
    if !Netns::available(tag) || !netns::tool_available(tag, "keepalived", "keepalived") {
        return;
    }
    let mut w = World::new(tag);
    let vip = kind.vip();
    // keepalived (150) on node 0, ha-lb (100) on node 1: keepalived is master.
    let ka = w.start(Impl::Keepalived, kind, 0, 150);
    let hl = w.start(Impl::HaLb, kind, 1, 100);
    w.converge(vip, 0, CONVERGE, "keepalived 150 vs ha-lb 100", &[&ka, &hl]);
    // keepalived stops: priority 0, ha-lb takes over within Skew_Time.
    graceful_handover(&w, kind, ka, 1, "keepalived stops (priority 0)", &hl);
    // keepalived returns with 150 and preempts ha-lb.
    let ka = w.start(Impl::Keepalived, kind, 0, 150);
    w.converge(
        vip,
        0,
        CONVERGE,
        "keepalived 150 preempts ha-lb 100",
        &[&ka, &hl],
    );
    // ha-lb returns with 200 and preempts keepalived: ha-lb master, keepalived backup.
    drop(hl);
    let hl = w.start(Impl::HaLb, kind, 1, 200);
    w.converge(
        vip,
        1,
        CONVERGE,
        "ha-lb 200 preempts keepalived 150",
        &[&ka, &hl],
    );
    // ha-lb stops: priority 0, keepalived takes over within Skew_Time.
    graceful_handover(&w, kind, hl, 0, "ha-lb stops (priority 0)", &ka);
    drop(ka);
    assert!(
        wait(Duration::from_secs(10), || w.holders(vip).is_empty()),
        "{tag}: a stopped node left the VIP behind: {:?}",
        w.holders(vip)
    );
    // Address tie-break, both ways: equal priorities, both master while partitioned; on
    // healing the higher address (node 1, whichever implementation runs there) stays master.
    for (on0, on1) in [
        (Impl::Keepalived, Impl::HaLb),
        (Impl::HaLb, Impl::Keepalived),
    ] {
        let step = format!("tie-break {on0:?} at node 0 vs {on1:?} at node 1");
        w.partition();
        let a = w.start(on0, kind, 0, 100);
        let b = w.start(on1, kind, 1, 100);
        let both = wait(CONVERGE, || w.holders(vip) == [0, 1]);
        assert!(
            both,
            "{tag} {step}: partitioned, both should be master: {:?}\n{}",
            w.holders(vip),
            w.logs(&[&a, &b])
        );
        w.heal();
        w.converge(vip, 1, CONVERGE, &step, &[&a, &b]);
        drop(a);
        drop(b);
        assert!(
            wait(Duration::from_secs(10), || w.holders(vip).is_empty()),
            "{tag} {step}: a stopped node left the VIP behind"
        );
    }
}

#[test]
fn keepalived_v2_pass_multicast() {
    let _shared = crate::netns::shared();
    elections(
        "ikv2m",
        Kind {
            version: 2,
            ipv6: false,
            unicast: false,
            old_checksum: false,
        },
    );
}

#[test]
fn keepalived_v2_pass_unicast() {
    let _shared = crate::netns::shared();
    elections(
        "ikv2u",
        Kind {
            version: 2,
            ipv6: false,
            unicast: true,
            old_checksum: false,
        },
    );
}

#[test]
fn keepalived_v3_ipv4_multicast() {
    let _shared = crate::netns::shared();
    elections(
        "ikv34m",
        Kind {
            version: 3,
            ipv6: false,
            unicast: false,
            old_checksum: false,
        },
    );
}

#[test]
fn keepalived_v3_ipv4_unicast() {
    let _shared = crate::netns::shared();
    elections(
        "ikv34u",
        Kind {
            version: 3,
            ipv6: false,
            unicast: true,
            old_checksum: false,
        },
    );
}

#[test]
fn keepalived_v3_ipv4_unicast_old_unicast_checksum() {
    let _shared = crate::netns::shared();
    // keepalived's `old_unicast_checksum` and ha-lb's: the pseudo-header names 224.0.0.18.
    elections(
        "ikv34o",
        Kind {
            version: 3,
            ipv6: false,
            unicast: true,
            old_checksum: true,
        },
    );
}

#[test]
fn keepalived_v3_ipv6_multicast() {
    let _shared = crate::netns::shared();
    elections(
        "ikv36m",
        Kind {
            version: 3,
            ipv6: true,
            unicast: false,
            old_checksum: false,
        },
    );
}

#[test]
fn keepalived_v3_ipv6_unicast() {
    let _shared = crate::netns::shared();
    elections(
        "ikv36u",
        Kind {
            version: 3,
            ipv6: true,
            unicast: true,
            old_checksum: false,
        },
    );
}

/// The seed's keepalived.conf for `lb` (1 or 2) of `pair` (`active-standby` or
/// `active-active`), adapted to the namespaces: `eth0`, TEST-NET addresses (lb1 = node 0,
/// lb2 = node 1), and a check script of our own that succeeds (the seed's runs `killall
/// keepalived`, which must never run here).
fn seed_conf(dir: &Path, lb: u8, pair: &str) -> PathBuf {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/keepalived/lb{lb}-{pair}.conf"));
    let text = std::fs::read_to_string(&seed).unwrap();
    let script = dir.join("nginx_check.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let adapted = text
        .replace("ens33", "eth0")
        .replace("192.168.19.158", "192.0.2.1")
        .replace("192.168.19.159", "192.0.2.2")
        .replace("192.168.19.200", "192.0.2.200")
        .replace("192.168.19.201", "192.0.2.201")
        .replace("/etc/keepalived/nginx_check.sh", &script.to_string_lossy());
    assert!(!adapted.contains("192.168.") && !adapted.contains("/etc/keepalived"));
    let out = dir.join(format!("lb{lb}-{pair}.conf"));
    std::fs::write(&out, adapted).unwrap();
    out
}

/// `ha-lb import-keepalived FILE --output TOML`, then `ha-lb check-config TOML`.
fn import(conf: &Path) -> PathBuf {
    let toml = conf.with_extension("toml");
    let out = Command::new(HALB)
        .arg("import-keepalived")
        .arg(conf)
        .arg("--output")
        .arg(&toml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import-keepalived {}: {}",
        conf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(HALB)
        .arg("check-config")
        .arg(&toml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-config of the import: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    toml
}

#[test]
fn a_node_migrated_with_import_keepalived_joins_the_seeds_keepalived() {
    let _shared = crate::netns::shared();
    let tag = "ikseed";
    if !Netns::available(tag) || !netns::tool_available(tag, "keepalived", "keepalived") {
        return;
    }
    let mut w = World::new(tag);
    let vip = "192.0.2.200";
    let lb1 = seed_conf(&w.dir, 1, "active-standby");
    let lb2 = seed_conf(&w.dir, 2, "active-standby");
    let lb1_toml = import(&lb1);
    let lb2_toml = import(&lb2);

    // keepalived runs lb1's file (priority 100), ha-lb runs the import of lb2's (50).
    let ka = w.keepalived(0, &std::fs::read_to_string(&lb1).unwrap());
    let hl = w.halb_file(1, &lb2_toml);
    w.converge(
        vip,
        0,
        CONVERGE,
        "keepalived lb1 master, migrated lb2 backup",
        &[&ka, &hl],
    );
    graceful_handover(
        &w,
        Kind {
            version: 2,
            ipv6: false,
            unicast: true,
            old_checksum: false,
        },
        ka,
        1,
        "keepalived lb1 stops",
        &hl,
    );
    let ka = w.keepalived(0, &std::fs::read_to_string(&lb1).unwrap());
    w.converge(
        vip,
        0,
        CONVERGE,
        "keepalived lb1 returns and preempts",
        &[&ka, &hl],
    );
    drop(ka);
    drop(hl);
    assert!(wait(Duration::from_secs(10), || w.holders(vip).is_empty()));

    // The other way: ha-lb runs the import of lb1's file (100), keepalived lb2's (50).
    let hl = w.halb_file(0, &lb1_toml);
    let ka = w.keepalived(1, &std::fs::read_to_string(&lb2).unwrap());
    w.converge(
        vip,
        0,
        CONVERGE,
        "migrated lb1 master, keepalived lb2 backup",
        &[&ka, &hl],
    );
    graceful_handover(
        &w,
        Kind {
            version: 2,
            ipv6: false,
            unicast: true,
            old_checksum: false,
        },
        hl,
        1,
        "migrated lb1 stops",
        &ka,
    );
    let hl = w.halb_file(0, &lb1_toml);
    w.converge(
        vip,
        0,
        CONVERGE,
        "migrated lb1 returns and preempts",
        &[&ka, &hl],
    );
}

/// The seed's active-active pair (two VIPs, crossed priorities): keepalived runs lb1's file
/// (VI_1 100, VI_2 50), ha-lb the import of lb2's (VI_1 50, VI_2 100). Each holds its own VIP;
/// keepalived stops: ha-lb takes .200 through the priority 0 and keeps .201; keepalived
/// returns: it takes .200 back and .201 stays; ha-lb stops: keepalived takes .201 the same way.
#[test]
fn a_migrated_active_active_node_shares_the_seeds_vips_with_keepalived() {
    let _shared = crate::netns::shared();
    let tag = "ikaa";
    if !Netns::available(tag) || !netns::tool_available(tag, "keepalived", "keepalived") {
        return;
    }
    let mut w = World::new(tag);
    let (vip1, vip2) = ("192.0.2.200", "192.0.2.201");
    let lb1 = seed_conf(&w.dir, 1, "active-active");
    let lb2_toml = import(&seed_conf(&w.dir, 2, "active-active"));
    let seed_kind = Kind {
        version: 2,
        ipv6: false,
        unicast: true,
        old_checksum: false,
    };

    let ka = w.keepalived(0, &std::fs::read_to_string(&lb1).unwrap());
    let hl = w.halb_file(1, &lb2_toml);
    w.converge(vip1, 0, CONVERGE, "keepalived holds VI_1", &[&ka, &hl]);
    w.converge(vip2, 1, CONVERGE, "migrated lb2 holds VI_2", &[&ka, &hl]);

    // graceful_handover waits for VI_1's VIP (the Kind's): .200.
    graceful_handover(&w, seed_kind, ka, 1, "keepalived lb1 stops", &hl);
    assert_eq!(w.holders(vip2), [1], "VI_2 moved when keepalived stopped");

    let ka = w.keepalived(0, &std::fs::read_to_string(&lb1).unwrap());
    w.converge(
        vip1,
        0,
        CONVERGE,
        "keepalived returns and preempts VI_1",
        &[&ka, &hl],
    );
    assert_eq!(w.holders(vip2), [1], "VI_2 moved when keepalived returned");

    let start = Instant::now();
    let mut hl = hl;
    assert!(hl.process.stop(), "{tag}: ha-lb did not stop on SIGTERM");
    let took = start.elapsed() + w.converge(vip2, 0, CONVERGE, "migrated lb2 stops", &[&ka]);
    assert!(
        took < PRIORITY_ZERO_BOUND,
        "{tag}: keepalived took VI_2 after {took:?}: the priority 0 was not heard\n{}",
        w.logs(&[&ka])
    );
    assert_eq!(w.holders(vip1), [0]);
    eprintln!("{tag}: VI_2 moved to keepalived in {took:?}");
}
