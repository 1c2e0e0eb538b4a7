//! End to end (issue #12): clients reach the Master after VRRP is cut between the two nodes and
//! heals, ten times in a row.
//!
//! Topology (`Lan` of support/netns.rs): lb1 192.0.2.1 (priority 200, Master), lb2 192.0.2.2
//! (priority 100), backends b1..b3 192.0.2.3..5 (port 8080), client 192.0.2.6 probing the VIP
//! 192.0.2.100:80 every 5 ms; VRRPv3, 100 ms adverts. The cut is bridge port isolation between
//! lb1's and lb2's ports (a switch that stops forwarding between them: VRRP both ways, and the
//! rest between the two nodes), while the client still reaches both: lb2 becomes Master and its
//! gratuitous ARP takes the client. At the heal lb2 steps down; the client must be answered
//! again within two advert intervals + 50 ms, and exactly one node holds the VIP.
//!
//! The tests run one at a time (a lock), so their timings do not compete for the CPU.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::client::{longest_gap, Client};
use crate::netns::{self, serial, wait_until};
use crate::topo::{kill, worker_pid, Topo, ADMIN, CLIENT, LB1, LB2, VIP};

const ADVERT: Duration = Duration::from_millis(100);
/// The bound on the outage after a heal: two advert intervals + 50 ms.
const HEAL_BOUND: Duration = Duration::from_millis(2 * 100 + 50);
/// How long VRRP stays cut: lb2 is Master for over a second (the 1.5 s).
const CUT_FOR: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 10;

/// One node's file: VI_1 on eth0 with the VIP, a listener on VIP:80 over the three backends.
/// `extra` goes into the instance's table.
fn node_toml(priority: u32, extra: &str) -> String {
    let mut t = format!(
        "[admin]\nlisten = \"{ADMIN}\"\n\n\
         [instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nversion = 3\n\
         advert_interval_ms = {}\nvips = [\"{VIP}/24\"]\n{extra}\n\
         [listeners.VI_1]\nlisten = \"{VIP}:80\"\npool = \"web\"\n\n\
         [checks.tcp]\nkind = \"tcp\"\ninterval_ms = 100\nrise = 2\nfall = 2\n\n\
         [pools.web]\nconnect_timeout_ms = 200\n",
        ADVERT.as_millis()
    );
    for b in 3..=5 {
        t +=
            &format!("\n[[pools.web.backends]]\naddress = \"192.0.2.{b}:8080\"\ncheck = \"tcp\"\n");
    }
    t
}

/// The MAC of node `i`'s eth0 (support/netns.rs's fixed scheme).
fn node_mac(i: usize) -> String {
    format!("02:00:00:00:{:02x}:01", i + 1)
}

/// Ten rounds: VRRP cut for 1.5 s (both Master, lb2's gratuitous ARP takes the client), then
/// healed; after each heal the client's longest gap without an answer stays within two advert
/// intervals + 50 ms, lb1 alone holds the VIP and the client's ARP entry is lb1's MAC.
fn cut_and_heal(tag: &str, extra: &str, vmac: bool) {
    let _serial = serial();
    let Some(topo) = Topo::new(tag) else { return };
    let c1 = topo.write("lb1.toml", &node_toml(200, extra));
    let c2 = topo.write("lb2.toml", &node_toml(100, extra));
    let _lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    let _lb2 = topo.start(LB2, "lb2", &c2);
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(15));
    let client = Client::start(topo.ns(CLIENT), &format!("{VIP}:80"));
    assert!(
        client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        topo.dump()
    );
    let mut gaps = Vec::new();
    let mut stale = 0;
    for round in 0..ROUNDS {
        // Start each cut at another phase of the adverts.
        thread::sleep(Duration::from_millis(37 * round as u64 % 100));
        let cut_at = Instant::now();
        topo.isolate(true);
        topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(3));
        thread::sleep(CUT_FOR.saturating_sub(cut_at.elapsed()));
        assert_eq!(
            topo.state(LB1, "VI_1").as_deref(),
            Some("Master"),
            "{}",
            topo.dump()
        );
        if vmac {
            // Both nodes hold the VIP behind the same MAC: the client's entry never moves.
            assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));
        } else if topo.client_neigh() == Some(node_mac(LB2)) {
            stale += 1;
        }
        let healed = Instant::now();
        topo.isolate(false);
        topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(2));
        assert!(
            client.wait_successes(Instant::now(), 20, Duration::from_secs(5)),
            "round {round}: the client is not answered again\n{}",
            topo.dump()
        );
        thread::sleep(Duration::from_millis(300));
        let gap = longest_gap(&client.samples(), healed, Instant::now());
        gaps.push(gap.as_millis());
        assert!(
            gap <= HEAL_BOUND,
            "round {round}: outage {} ms after the heal (bound {} ms); gaps so far {gaps:?}\n{}",
            gap.as_millis(),
            HEAL_BOUND.as_millis(),
            topo.dump()
        );
        assert!(
            topo.holds(LB1, VIP) && !topo.holds(LB2, VIP),
            "round {round}: VIP on both or none"
        );
        assert_eq!(topo.state(LB1, "VI_1").as_deref(), Some("Master"));
        let want = if vmac { VMAC.to_owned() } else { node_mac(LB1) };
        assert_eq!(
            topo.client_neigh(),
            Some(want),
            "round {round}: the client's ARP entry"
        );
    }
    if vmac {
        eprintln!("{tag}: outage after each heal (ms): {gaps:?}; the client's ARP entry was the virtual MAC throughout");
    } else {
        eprintln!("{tag}: outage after each heal (ms): {gaps:?}; client at lb2 before {stale}/{ROUNDS} heals");
        // The cut took the client to lb2 (else the heals proved nothing).
        assert!(stale > 0, "lb2's announcements never reached the client");
    }
}

#[test]
fn clients_reach_the_master_after_each_of_ten_heals() {
    cut_and_heal("heal", "", false);
}

/// The same with a virtual MAC: the client's ARP entry never changes; the switch must learn
/// the winner's port again after the heal (from its adverts and announcements).
#[test]
fn clients_reach_the_master_after_each_of_ten_heals_with_vmac() {
    cut_and_heal("healv", "use_vmac = true\n", true);
}

/// The virtual router MAC of VRID 51 (RFC 5798 §7.3).
const VMAC: &str = "00:00:5e:00:01:33";

/// The macvlan interfaces of node `i`: (name, MAC).
fn macvlans(topo: &Topo, i: usize) -> Vec<(String, String)> {
    let out = topo
        .ns(i)
        .ip(&["-o", "-d", "link", "show", "type", "macvlan"]);
    out.lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?.split('@').next()?.to_owned();
            let mut words = l.split_whitespace();
            words.find(|w| *w == "link/ether")?;
            Some((name, words.next()?.to_owned()))
        })
        .collect()
}

/// `use_vmac`: the VIP lives on a macvlan `vrrp.51` with MAC 00:00:5E:00:01:33 on each node.
/// Failover by SIGKILL of lb1's worker (its supervisor releases the VIP and the macvlan), back
/// by preemption once the worker restarts, then by SIGKILL of the whole lb1 (its macvlan is
/// left behind, and removed when lb1 starts again): the client's ARP entry is the virtual MAC
/// throughout, each node has at most its one macvlan, and none is left after a stop.
#[test]
fn vmac_failover_keeps_the_clients_arp_entry() {
    let _serial = serial();
    let Some(topo) = Topo::new("vmac") else {
        return;
    };
    let c1 = topo.write("lb1.toml", &node_toml(200, "use_vmac = true\n"));
    let c2 = topo.write("lb2.toml", &node_toml(100, "use_vmac = true\n"));
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    let mut lb2 = topo.start(LB2, "lb2", &c2);
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(15));
    let ours = vec![("vrrp.51".to_owned(), VMAC.to_owned())];
    assert_eq!(macvlans(&topo, LB1), ours);
    assert_eq!(
        macvlans(&topo, LB2),
        ours,
        "a Backup keeps its VMAC interface up, empty"
    );
    // The VIP is on the macvlan, not on eth0.
    let on_vmac = |i: usize| {
        topo.ns(i)
            .ip(&["-o", "addr", "show", "dev", "vrrp.51"])
            .contains(&format!(" {VIP}/"))
    };
    let on_eth0 = |i: usize| {
        topo.ns(i)
            .ip(&["-o", "addr", "show", "dev", "eth0"])
            .contains(&format!(" {VIP}/"))
    };
    assert!(on_vmac(LB1) && !on_eth0(LB1) && !topo.holds(LB2, VIP));
    let client = Client::start(topo.ns(CLIENT), &format!("{VIP}:80"));
    assert!(
        client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        topo.dump()
    );
    assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));

    // (1) lb1's worker is killed: its supervisor sends priority 0, lb2 takes over after its
    // Skew_Time (61 ms); the worker comes back and preempts.
    let worker = worker_pid(lb1.pid()).expect("lb1 has a worker");
    let t = Instant::now();
    kill(worker, Signal::SIGKILL);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(5));
    topo.assert_served_again(
        &client,
        t,
        "vmac: worker SIGKILL",
        Duration::from_millis(61 + 250),
    );
    assert_eq!(
        topo.client_neigh().as_deref(),
        Some(VMAC),
        "the client's ARP entry moved"
    );
    assert!(on_vmac(LB2));
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    assert_eq!(
        macvlans(&topo, LB1),
        ours,
        "one VMAC interface after the restart"
    );
    let t = Instant::now();
    thread::sleep(Duration::from_millis(500));
    topo.assert_served_again(
        &client,
        t,
        "vmac: preempted back",
        Duration::from_millis(250),
    );
    assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));

    // (2) The whole of lb1 is killed (supervisor, and its worker with it): lb2 takes over
    // after Master_Down_Interval (361 ms); lb1's macvlan stays behind, without a process.
    let worker = worker_pid(lb1.pid()).expect("lb1 has a worker");
    let t = Instant::now();
    lb1.signal(Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{worker}/stat")).map_or(true, |s| s.contains(") Z "))
    }));
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(5));
    topo.assert_served_again(
        &client,
        t,
        "vmac: node SIGKILL",
        Duration::from_millis(361 + 300),
    );
    assert_eq!(
        topo.client_neigh().as_deref(),
        Some(VMAC),
        "the client's ARP entry moved"
    );
    assert!(lb1.has_exited());
    assert_eq!(
        macvlans(&topo, LB1),
        ours,
        "the crash leaves the macvlan behind"
    );
    // lb1 starts again: the stale macvlan (and its VIP) go, a fresh one is made; it preempts.
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    assert_eq!(macvlans(&topo, LB1), ours);
    assert!(
        topo.log("lb1")
            .contains("removed a VMAC interface left by an earlier run"),
        "{}",
        topo.dump()
    );
    let t = Instant::now();
    thread::sleep(Duration::from_millis(500));
    topo.assert_served_again(
        &client,
        t,
        "vmac: back after the crash",
        Duration::from_millis(250),
    );
    assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));

    // (3) Stopped, no node keeps a macvlan.
    assert!(lb1.stop() && lb2.stop(), "{}", topo.dump());
    assert_eq!(macvlans(&topo, LB1), vec![], "{}", topo.dump());
    assert_eq!(macvlans(&topo, LB2), vec![]);
    assert!(!topo.holds(LB1, VIP) && !topo.holds(LB2, VIP));
}

/// The IPv6 VIP of the interactions test, and its virtual MAC (VRID 52).
const VIP6: &str = "2001:db8::100";
const VMAC6: &str = "00:00:5e:00:02:34";

/// `use_vmac` with the settings it interacts with, on each node: VI_1 (IPv4, VRID 51, unicast
/// adverts, the listener) and VI_6 (IPv6, VRID 52, multicast, `accept_mode = false`), one sync
/// group. The Backup hears both (no want of Master), each VMAC interface has its MAC and VI_6's
/// the parent's link-local address, the client's ARP and ND entries are the virtual MACs, and
/// the IPv6 VIP answers neighbour discovery but drops traffic (Accept_Mode). Then lb1's worker
/// is killed: the group moves to lb2 together and both entries stay as they were.
#[test]
fn vmac_with_unicast_ipv6_no_accept_and_a_sync_group() {
    let _serial = serial();
    if !netns::tool_available(
        "vmac_with_unicast_ipv6_no_accept_and_a_sync_group",
        "nft",
        "nftables",
    ) {
        return;
    }
    let Some(topo) = Topo::new("vmix") else {
        return;
    };
    let toml = |priority: u32, me: u32, peer: u32| {
        let mut t = format!(
            "[admin]\nlisten = \"{ADMIN}\"\n\n\
             [instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
             advert_interval_ms = 100\nvips = [\"{VIP}/24\"]\nuse_vmac = true\n\
             unicast_src = \"192.0.2.{me}\"\nunicast_peers = [\"192.0.2.{peer}\"]\n\n\
             [instances.VI_6]\ninterface = \"eth0\"\nvrid = 52\npriority = {priority}\n\
             advert_interval_ms = 100\nvips = [\"{VIP6}/64\"]\nuse_vmac = true\naccept_mode = false\n\n\
             [sync_groups.G]\ninstances = [\"VI_1\", \"VI_6\"]\n\n\
             [listeners.VI_1]\nlisten = \"{VIP}:80\"\npool = \"web\"\n\n\
             [pools.web]\nconnect_timeout_ms = 200\n"
        );
        for b in 3..=5 {
            t += &format!("\n[[pools.web.backends]]\naddress = \"192.0.2.{b}:8080\"\n");
        }
        t
    };
    let c1 = topo.write("lb1.toml", &toml(200, 1, 2));
    let c2 = topo.write("lb2.toml", &toml(100, 2, 1));
    let lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    let _lb2 = topo.start(LB2, "lb2", &c2);
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(15));
    let instance = |i: usize, name: &str| {
        topo.status(i)
            .and_then(|s| s.instances.into_iter().find(|x| x.name == name))
    };
    // lb2 hears lb1 on both: neither member wants Master (a deaf one would, held by the group).
    thread::sleep(Duration::from_secs(1));
    for name in ["VI_1", "VI_6"] {
        let s = instance(LB2, name).unwrap();
        assert_eq!(
            (s.state.as_str(), s.wants_master),
            ("Backup", false),
            "{name}\n{}",
            topo.dump()
        );
        assert_eq!(instance(LB1, name).unwrap().state, "Master", "{name}");
    }
    let mut want = vec![
        ("vrrp.51".to_owned(), VMAC.to_owned()),
        ("vrrp6.52".to_owned(), VMAC6.to_owned()),
    ];
    want.sort();
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(macvlans(&topo, LB1)), want);
    assert_eq!(sorted(macvlans(&topo, LB2)), want);
    // VI_6's VMAC interface carries lb1's link-local address (the advert source), nothing of
    // its own.
    let ll = |i: usize, dev: &str| {
        topo.ns(i)
            .ip(&["-o", "-6", "addr", "show", "dev", dev, "scope", "link"])
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .map(str::to_owned)
    };
    assert_eq!(ll(LB1, "vrrp6.52"), ll(LB1, "eth0"));
    assert!(ll(LB1, "eth0").is_some());

    let client = Client::start(topo.ns(CLIENT), &format!("{VIP}:80"));
    assert!(
        client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        topo.dump()
    );
    // A TCP connection to the IPv6 VIP (port 22: nothing listens, so an answer would be a
    // reset): true when anything answered.
    let connect6 = || {
        topo.ns(CLIENT).run(|| {
            let to: SocketAddr = format!("[{VIP6}]:22").parse().unwrap();
            match TcpStream::connect_timeout(&to, Duration::from_millis(500)) {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            }
        })
    };
    let neigh6 = || {
        // Neighbour discovery is answered (Accept_Mode drops the connection itself).
        let _ = connect6();
        let out = topo
            .ns(CLIENT)
            .ip(&["-6", "neigh", "show", VIP6, "dev", "eth0"]);
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr");
        words.next().map(str::to_owned)
    };

    assert_eq!(neigh6().as_deref(), Some(VMAC6), "{}", topo.dump());
    assert!(
        !connect6(),
        "accept_mode = false: the IPv6 VIP must not answer"
    );
    assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));

    // lb1's worker dies: both members move to lb2 (priority 0 from the supervisor).
    let worker = worker_pid(lb1.pid()).expect("lb1 has a worker");
    let t = Instant::now();
    kill(worker, Signal::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || {
            ["VI_1", "VI_6"]
                .iter()
                .all(|n| instance(LB2, n).is_some_and(|s| s.state == "Master"))
        }),
        "{}",
        topo.dump()
    );
    topo.assert_served_again(
        &client,
        t,
        "vmac + unicast: worker SIGKILL",
        Duration::from_millis(61 + 250),
    );
    assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));
    assert_eq!(neigh6().as_deref(), Some(VMAC6));
    let holds6 = |i: usize| {
        topo.ns(i)
            .ip(&["-o", "-6", "addr", "show", "dev", "vrrp6.52"])
            .contains(&format!(" {VIP6}/"))
    };
    assert!(
        topo.log("lb2")
            .contains("VIP added instance=VI_6 vip=2001:db8::100/64"),
        "{}",
        topo.dump()
    );
    // lb1's worker is back and takes the group again (preempt): the VIPs on its VMAC
    // interfaces, none on lb2's, the client's entries unchanged.
    assert!(
        wait_until(Duration::from_secs(10), || {
            ["VI_1", "VI_6"].iter().all(|n| {
                instance(LB1, n).is_some_and(|s| s.state == "Master")
                    && instance(LB2, n).is_some_and(|s| s.state == "Backup")
            })
        }),
        "{}",
        topo.dump()
    );
    assert!(
        wait_until(Duration::from_secs(2), || holds6(LB1) && !holds6(LB2)),
        "{}\n{}",
        topo.ns(LB2).ip(&["-o", "-6", "addr", "show"]),
        topo.dump()
    );
    assert_eq!(topo.client_neigh().as_deref(), Some(VMAC));
    assert_eq!(neigh6().as_deref(), Some(VMAC6));
}
