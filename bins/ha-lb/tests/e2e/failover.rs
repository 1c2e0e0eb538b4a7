//! End to end: two `ha-lb run` nodes, three backends and a client, each in its own network
//! namespace on one bridge (TEST-NET addresses), the client requesting through the VIP every
//! few milliseconds. Each test asserts on the longest gap between successful answers: the
//! outage the client saw.
//!
//! Topology (`Lan` of support/netns.rs): node 0 = lb1 192.0.2.1, node 1 = lb2 192.0.2.2,
//! nodes 2..=4 = backends b1..b3 192.0.2.3..5 (port 8080), node 5 = client 192.0.2.6.
//! VIP 192.0.2.100 (and .101 for active-active, 2001:db8::100 for IPv6), listener port 80.
//!
//! The tests run one at a time (a lock), so their timings do not compete for the CPU.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;

use crate::backend::{Answer, Backend};
use crate::client::{answers, failures, longest_gap, ms, request, Client};
use crate::netns::{self, serial, wait_until, ChildGuard, Netns};
use crate::topo::{admin_get, exited, kill, worker_pid, Node, Topo, ADMIN, CLIENT, LB1, LB2, VIP};

const VIP_B: &str = "192.0.2.101";
const VIP6: &str = "2001:db8::100";

/// What a bound on an outage allows beyond Skew_Time (a priority-0 handover, graceful or by the
/// supervisor of a killed worker): the issue asks for 100 ms (GARP/NA, the client's next probe);
/// another 100 ms is room for a loaded 2-core machine. With 100 ms adverts, Skew_Time + this
/// stays below Master_Down_Interval (361 ms), so a missing priority-0 advert (a dead supervisor)
/// fails the test. Measured: 20-30 ms above Skew_Time.
const HANDOVER_MARGIN: Duration = Duration::from_millis(200);

/// What a bound allows beyond Master_Down_Interval (a node that sent nothing): the same, plus
/// the failure's own detection (carrier loss, a health check's fall of 2 at 100 ms).
const CLIENT_MARGIN: Duration = Duration::from_millis(300);

/// The bound when lb2 waits its Master_Down_Interval at 100 ms adverts (361 ms: a node that
/// sent nothing, a link that went away) plus [`CLIENT_MARGIN`].
const MDI_BOUND: Duration = Duration::from_millis(361).saturating_add(CLIENT_MARGIN);

/// The bound with 1 s adverts: lb2's Skew_Time (609 ms) plus the margin (measured 613-630 ms),
/// far below the Master_Down_Interval of 3.6 s that a missing priority-0 advert would cost.
const SLOW_BOUND: Duration = Duration::from_millis(609 + 200);

/// (1) + (2) active-standby with 1 s adverts (Master_Down_Interval 3.6 s, Skew_Time of lb2
/// 0.61 s): traffic reaches all three backends; SIGKILL of lb1's worker: lb2 serves within
/// Skew_Time + margin (the supervisor's priority-0 advert, far below Master_Down_Interval);
/// lb1's restarted worker preempts back; SIGTERM of lb1: lb2 serves within Skew_Time + margin.
#[test]
fn active_standby_worker_crash_preempt_and_graceful_stop() {
    let _serial = serial();
    let Some(topo) = Topo::new("as") else { return };
    let notify_log = topo.dir.join("notify.log");
    let mut n1 = Node::active_standby(150, 1000);
    n1.notify = Some(notify_log.display().to_string());
    let c1 = topo.write("lb1.toml", &n1.toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 1000).toml());
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    let _lb2 = topo.start(LB2, "lb2", &c2);
    let logs = || topo.dump();
    assert!(
        topo.wait_state(LB1, "VI_1", "Master", Duration::from_secs(15)),
        "lb1 never became Master\n{}",
        logs()
    );
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    assert!(topo.has_address(LB1, VIP) && !topo.has_address(LB2, VIP));

    let mut client = Client::start(topo.ns(CLIENT), "192.0.2.100:80");
    let t0 = Instant::now();
    assert!(
        client.wait_successes(t0, 30, Duration::from_secs(10)),
        "{}",
        logs()
    );
    let seen = answers(&client.samples(), t0);
    assert_eq!(
        seen,
        ["b1", "b2", "b3"].map(String::from).into(),
        "round robin over the three backends"
    );

    // The admin endpoint: /metrics in the Prometheus format, and `ha-lb status`.
    let (_, metrics) = admin_get(topo.ns(LB1), "/metrics").expect("/metrics");
    for line in [
        "ha_lb_vrrp_state{instance=\"VI_1\",state=\"Master\"} 1",
        "ha_lb_vrrp_priority{instance=\"VI_1\"} 150",
        "ha_lb_vrrp_master_transitions_total{instance=\"VI_1\"} 1",
        "ha_lb_backend_up{pool=\"web\",backend=\"192.0.2.3:8080\"} 1",
        "ha_lb_check_up{check=\"tcp\",target=\"192.0.2.5:8080\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line} in\n{metrics}");
    }
    assert!(
        metrics.contains("ha_lb_listener_accepted_total{"),
        "{metrics}"
    );
    let table = topo
        .ns(LB2)
        .command(&netns::halb_binary())
        .args(["status", "--admin", ADMIN])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("VI_1") && l.contains("Backup") && l.contains("100/100")),
        "{table}"
    );

    // SIGKILL of the worker: the supervisor releases the VIP with priority 0 at once.
    let worker = worker_pid(lb1.pid()).expect("lb1 has a worker");
    let t_kill = Instant::now();
    kill(worker, Signal::SIGKILL);
    assert!(
        topo.wait_state(LB2, "VI_1", "Master", Duration::from_secs(10)),
        "lb2 never took over\n{}",
        logs()
    );
    assert!(client.wait_successes(Instant::now(), 20, Duration::from_secs(10)));
    let t_after = Instant::now();
    let crash_gap = longest_gap(&client.samples(), t_kill, t_after);
    eprintln!("worker SIGKILL: longest gap {} ms", ms(crash_gap));
    // Skew_Time of lb2 is 609 ms; Master_Down_Interval is 3.6 s.
    assert!(
        crash_gap < SLOW_BOUND,
        "outage after the worker crash: {} ms\n{}",
        ms(crash_gap),
        logs()
    );

    // The worker is restarted, starts in Backup, and preempts lb2 (priority 150 > 100).
    assert!(
        topo.wait_state(LB1, "VI_1", "Master", Duration::from_secs(15)),
        "lb1 did not preempt back\n{}",
        logs()
    );
    assert!(topo.wait_state(LB2, "VI_1", "Backup", Duration::from_secs(5)));
    assert!(client.wait_successes(Instant::now(), 20, Duration::from_secs(10)));
    assert!(topo.has_address(LB1, VIP) && !topo.has_address(LB2, VIP));

    // Graceful stop: priority 0, VIP removed, exit 0.
    let t_stop = Instant::now();
    lb1.signal(Signal::SIGTERM);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    assert!(client.wait_successes(Instant::now(), 20, Duration::from_secs(10)));
    let samples = client.stop();
    let stop_gap = longest_gap(&samples, t_stop, Instant::now());
    eprintln!("graceful stop: longest gap {} ms", ms(stop_gap));
    assert!(
        stop_gap < SLOW_BOUND,
        "outage after SIGTERM: {} ms\n{}",
        ms(stop_gap),
        logs()
    );
    assert!(
        wait_until(Duration::from_secs(10), || lb1.has_exited()),
        "lb1 did not exit"
    );
    assert!(!topo.has_address(LB1, VIP), "lb1 left the VIP behind");
    let log = topo.log("lb1");
    assert!(
        log.contains("worker stopped") && log.contains("exit status: 0"),
        "lb1 did not stop cleanly\n{log}"
    );
    // Notify commands ran in order: master, (crash: none), backup, master, stop.
    let notified = std::fs::read_to_string(&notify_log).unwrap_or_default();
    let words: Vec<&str> = notified.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"BACKUP"), "{notified}");
    assert_eq!(words.last(), Some(&"STOP"), "{notified}");
    assert!(
        words.windows(2).any(|w| w == ["BACKUP", "MASTER"]),
        "{notified}"
    );
}

/// (1) without preemption: SIGKILL of the whole lb1 (supervisor and worker): lb2 serves within
/// Master_Down_Interval + margin; lb1 comes back (its stale VIP removed) and stays Backup.
#[test]
fn whole_process_crash_without_preempt() {
    let _serial = serial();
    let Some(topo) = Topo::new("np") else { return };
    let mut n1 = Node::active_standby(150, 100);
    n1.preempt = false;
    let c1 = topo.write("lb1.toml", &n1.toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    // Without preemption the first to start wins: lb1 starts first.
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    let logs = || topo.dump();
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    let _lb2 = topo.start(LB2, "lb2", &c2);
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    let client = topo.served_client("192.0.2.100:80");

    let worker = worker_pid(lb1.pid()).expect("lb1 has a worker");
    let t_kill = Instant::now();
    lb1.signal(Signal::SIGKILL);
    // The worker dies with its supervisor (parent-death signal).
    assert!(wait_until(Duration::from_secs(5), || exited(worker)));
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    // Master_Down_Interval of lb2: 3 x 100 ms + Skew_Time 61 ms.
    topo.assert_served_again(&client, t_kill, "whole process SIGKILL", MDI_BOUND);
    assert!(lb1.has_exited());

    // lb1 returns: the VIP its dead worker left is removed, and it does not preempt.
    let _lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Backup", Duration::from_secs(10));
    assert!(!topo.has_address(LB1, VIP), "stale VIP still on lb1");
    let t_back = Instant::now();
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        topo.state(LB1, "VI_1").as_deref(),
        Some("Backup"),
        "{}",
        logs()
    );
    assert_eq!(
        topo.state(LB2, "VI_1").as_deref(),
        Some("Master"),
        "{}",
        logs()
    );
    let gap = longest_gap(&client.samples(), t_back, Instant::now());
    assert!(
        gap < Duration::from_millis(300),
        "lb1's return cost {} ms",
        ms(gap)
    );
}

/// (4) lb1 loses all its backends (blackhole routes): its pool is down, its priority drops by
/// 60 below lb2's, the VIP moves; the backends return: it moves back.
#[test]
fn master_losing_its_backends_hands_over() {
    let _serial = serial();
    let Some(topo) = Topo::new("bk") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    let client = topo.served_client("192.0.2.100:80");

    let t_loss = Instant::now();
    for b in ["192.0.2.3", "192.0.2.4", "192.0.2.5"] {
        topo.ns(LB1)
            .ip(&["route", "add", "blackhole", &format!("{b}/32")]);
    }
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB1, "VI_1", "Backup", Duration::from_secs(5));
    let st = topo.status(LB1).unwrap();
    assert_eq!(
        st.instances[0].priority, 90,
        "150 - 60 while the pool is down"
    );
    // Detection (2 failed checks 100 ms apart), then lb2's Master_Down_Interval (361 ms).
    topo.assert_served_again(
        &client,
        t_loss,
        "backends lost",
        Duration::from_millis(2500),
    );

    let t_back = Instant::now();
    for b in ["192.0.2.3", "192.0.2.4", "192.0.2.5"] {
        topo.ns(LB1)
            .ip(&["route", "del", "blackhole", &format!("{b}/32")]);
    }
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    topo.assert_served_again(&client, t_back, "backends back", MDI_BOUND);
}

/// (8) SIGHUP with a new backend list: no VRRP transition, no failed request, the removed
/// backend gets no more traffic; then a broken file: logged, the old configuration runs on.
#[test]
fn reload_changes_backends_without_transition_or_failure() {
    let _serial = serial();
    let Some(topo) = Topo::new("hup") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    let (lb1, _lb2) = topo.start_pair(&c1, &c2);
    let logs = || topo.dump();
    let client = Client::start(topo.ns(CLIENT), "192.0.2.100:80");
    let t0 = Instant::now();
    assert!(
        client.wait_successes(t0, 30, Duration::from_secs(10)),
        "{}",
        logs()
    );
    let transitions = |i| {
        topo.status(i).unwrap().instances[0]
            .counters
            .master_transitions
    };
    let (tr1, tr2) = (transitions(LB1), transitions(LB2));

    let mut n1 = Node::active_standby(150, 100);
    n1.backends.pop();
    topo.write("lb1.toml", &n1.toml());
    let t_hup = Instant::now();
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || topo
            .log("lb1")
            .contains("reload done")),
        "{}",
        logs()
    );
    let t_done = Instant::now();
    assert!(client.wait_successes(t_done, 40, Duration::from_secs(10)));
    let t_end = Instant::now();
    let samples = client.samples();
    assert_eq!(
        failures(&samples, t_hup, t_end),
        0,
        "failed requests during the reload"
    );
    let after = answers(&samples, t_done + Duration::from_millis(100));
    assert_eq!(after, ["b1", "b2"].map(String::from).into());
    assert_eq!(
        (transitions(LB1), transitions(LB2)),
        (tr1, tr2),
        "a VRRP transition"
    );
    assert_eq!(topo.state(LB1, "VI_1").as_deref(), Some("Master"));

    // A broken file: rejected with its error, the old configuration keeps serving.
    topo.write("lb1.toml", "[instances.VI_1]\nvrid = \"x\"\n");
    let t_bad = Instant::now();
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || topo
            .log("lb1")
            .contains("reload rejected")),
        "{}",
        logs()
    );
    assert!(client.wait_successes(Instant::now(), 20, Duration::from_secs(10)));
    let samples = client.samples();
    assert_eq!(failures(&samples, t_bad, Instant::now()), 0);
    assert_eq!(topo.state(LB1, "VI_1").as_deref(), Some("Master"));
}

/// (3) active-active: VI_1 (VIP .100) prefers lb1, VI_2 (VIP .101) prefers lb2. SIGKILL of
/// lb1's worker moves only VIP .100; VIP .101 never blinks.
#[test]
fn active_active_moves_only_the_failed_nodes_vip() {
    let _serial = serial();
    let Some(topo) = Topo::new("aa") else { return };
    let node = |p1, p2| {
        let mut n = Node::active_standby(0, 100);
        n.instances = vec![("VI_1", 51, VIP, Some(p1)), ("VI_2", 52, VIP_B, Some(p2))];
        n.toml()
    };
    let c1 = topo.write("lb1.toml", &node(150, 100));
    let c2 = topo.write("lb2.toml", &node(100, 150));
    let lb1 = topo.start(LB1, "lb1", &c1);
    let _lb2 = topo.start(LB2, "lb2", &c2);
    let logs = || topo.dump();
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB2, "VI_2", "Master", Duration::from_secs(15));
    topo.expect_state(LB1, "VI_2", "Backup", Duration::from_secs(5));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    let a = Client::start(topo.ns(CLIENT), "192.0.2.100:80");
    let b = Client::start(topo.ns(CLIENT), "192.0.2.101:80");
    let t0 = Instant::now();
    assert!(
        a.wait_successes(t0, 20, Duration::from_secs(10)),
        "{}",
        logs()
    );
    assert!(
        b.wait_successes(t0, 20, Duration::from_secs(10)),
        "{}",
        logs()
    );

    let t_kill = Instant::now();
    kill(worker_pid(lb1.pid()).expect("worker"), Signal::SIGKILL);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    assert!(
        a.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        logs()
    );
    // The failover itself (a request in flight when the VIP later moves back can hang until
    // the client's read timeout: that is the preemption's, not measured here).
    let gap_a = longest_gap(&a.samples(), t_kill, Instant::now());
    // The restarted worker takes VI_1 back (preempt) and leaves VI_2 alone.
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB1, "VI_2", "Backup", Duration::from_secs(5));
    assert!(
        a.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        logs()
    );
    let t_end = Instant::now();
    let gap_b = longest_gap(&b.samples(), t_kill, t_end);
    eprintln!(
        "active-active: VIP .100 gap {} ms, VIP .101 gap {} ms",
        ms(gap_a),
        ms(gap_b)
    );
    // Skew_Time of lb2 (61 ms) plus margin for the moved VIP; the other one never blinks
    // (the client starts a request every 5 ms; measured 7-20 ms, 100 ms for a loaded machine).
    assert!(
        gap_a < HANDOVER_MARGIN + Duration::from_millis(61),
        "VIP .100 outage {} ms\n{}",
        ms(gap_a),
        logs()
    );
    assert!(
        gap_b < Duration::from_millis(100),
        "VIP .101 blinked {} ms\n{}",
        ms(gap_b),
        logs()
    );
    assert_eq!(topo.state(LB2, "VI_2").as_deref(), Some("Master"));
}

/// (5) link down on the master: Fault, VIP removed, lb2 takes over within
/// Master_Down_Interval + margin; link up: lb1 leaves Fault and preempts back.
#[test]
fn master_link_down_then_up() {
    let _serial = serial();
    let Some(topo) = Topo::new("ld") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    let client = topo.served_client("192.0.2.100:80");

    let t_down = Instant::now();
    topo.ns(LB1).ip(&["link", "set", "eth0", "down"]);
    topo.expect_state(LB1, "VI_1", "Fault", Duration::from_secs(5));
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    topo.assert_served_again(&client, t_down, "link down", MDI_BOUND);
    assert!(!topo.has_address(LB1, VIP), "lb1 kept the VIP in Fault");

    let t_up = Instant::now();
    topo.ns(LB1).ip(&["link", "set", "eth0", "up"]);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    topo.assert_served_again(&client, t_up, "link up", MDI_BOUND);
}

/// (6) partition between the two nodes (unicast adverts; the bridge isolates their two ports
/// from each other): both become Master; heal: exactly one Master, and the loser removed the
/// VIP.
#[test]
fn partition_then_heal_leaves_one_master() {
    let _serial = serial();
    let Some(topo) = Topo::new("pt") else { return };
    let mut n1 = Node::active_standby(150, 100);
    n1.unicast = Some(("192.0.2.1", "192.0.2.2"));
    let mut n2 = Node::active_standby(100, 100);
    n2.unicast = Some(("192.0.2.2", "192.0.2.1"));
    let c1 = topo.write("lb1.toml", &n1.toml());
    let c2 = topo.write("lb2.toml", &n2.toml());
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    let logs = || topo.dump();

    // Bridge port isolation: the two nodes' ports stop talking to each other (and only that).
    topo.isolate(true);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    assert_eq!(topo.state(LB1, "VI_1").as_deref(), Some("Master"));
    assert!(topo.has_address(LB1, VIP) && topo.has_address(LB2, VIP));

    topo.isolate(false);
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(10));
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        topo.state(LB1, "VI_1").as_deref(),
        Some("Master"),
        "{}",
        logs()
    );
    assert_eq!(
        topo.state(LB2, "VI_1").as_deref(),
        Some("Backup"),
        "{}",
        logs()
    );
    assert!(topo.has_address(LB1, VIP), "the winner lost the VIP");
    assert!(!topo.has_address(LB2, VIP), "the loser kept the VIP");
    // And the client is served through the winner.
    topo.served_client("192.0.2.100:80");
}

/// (7) an IPv6 VIP fails over (unsolicited NA with Override moves the client's neighbour
/// entry).
#[test]
fn ipv6_vip_fails_over() {
    let _serial = serial();
    let Some(topo) = Topo::new("v6") else { return };
    let node = |p| {
        let mut n = Node::active_standby(p, 100);
        n.instances = vec![("VI_6", 61, VIP6, None)];
        n.toml()
    };
    let c1 = topo.write("lb1.toml", &node(150));
    let c2 = topo.write("lb2.toml", &node(100));
    let lb1 = topo.start(LB1, "lb1", &c1);
    let _lb2 = topo.start(LB2, "lb2", &c2);
    let logs = || topo.dump();
    topo.expect_state(LB1, "VI_6", "Master", Duration::from_secs(15));
    topo.expect_state(LB2, "VI_6", "Backup", Duration::from_secs(5));
    assert!(topo.has_address(LB1, VIP6));
    let client = Client::start(topo.ns(CLIENT), "[2001:db8::100]:80");
    assert!(
        client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        logs()
    );

    // The new Master's unsolicited NAs, as the client receives them.
    let capture = netns::tool_available("ipv6_vip_fails_over", "tshark", "tshark")
        .then(|| NaCapture::start(topo.ns(CLIENT), &topo.dir));
    let t_kill = Instant::now();
    kill(worker_pid(lb1.pid()).expect("worker"), Signal::SIGKILL);
    topo.expect_state(LB2, "VI_6", "Master", Duration::from_secs(10));
    topo.assert_served_again(
        &client,
        t_kill,
        "IPv6 worker SIGKILL",
        HANDOVER_MARGIN + Duration::from_millis(61),
    );
    assert!(!topo.has_address(LB1, VIP6), "the dead worker's VIP stayed");
    if let Some(capture) = capture {
        // RFC 5798 §6.4.2: the NAs of a virtual router carry the Router flag (and Override).
        let nas = capture.decode();
        let for_vip: Vec<_> = nas.iter().filter(|(target, ..)| target == VIP6).collect();
        assert!(!for_vip.is_empty(), "no NA for {VIP6}: {nas:?}");
        for (_, router, over) in for_vip {
            assert_eq!((router.as_str(), over.as_str()), ("1", "1"), "{nas:?}");
        }
    }
}

/// tcpdump in a namespace writing Neighbor Advertisements to a pcap file, decoded by tshark.
struct NaCapture {
    process: ChildGuard,
    file: PathBuf,
}

impl NaCapture {
    fn start(ns: &Netns, dir: &std::path::Path) -> Self {
        let file = dir.join("na.pcap");
        let log = dir.join("tcpdump.log");
        let process = ChildGuard::spawn(
            ns.command("tcpdump")
                // Immediate mode: a capture of a second is not left in a kernel block.
                .args(["-i", "eth0", "-n", "-U", "--immediate-mode", "-w"])
                .arg(&file)
                .arg("icmp6 and ip6[40] == 136")
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap()),
            Duration::from_secs(5),
        );
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::fs::read_to_string(&log).is_ok_and(|s| s.contains("listening on"))
            }),
            "tcpdump did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        NaCapture { process, file }
    }

    /// Stops the capture; each NA as (target, R flag, O flag), flags "1" or "0".
    fn decode(mut self) -> Vec<(String, String, String)> {
        // Packets already written stay in the file (-U writes each as it comes).
        thread::sleep(Duration::from_millis(300));
        self.process.stop();
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&self.file)
            .args([
                "-n",
                "-Y",
                "icmpv6.type == 136",
                "-T",
                "fields",
                "-E",
                "separator=;",
            ])
            .args(["-e", "icmpv6.nd.na.target_address"])
            .args(["-e", "icmpv6.nd.na.flag.r", "-e", "icmpv6.nd.na.flag.o"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(';').collect();
                let flag = |s: &str| if s == "True" || s == "1" { "1" } else { "0" }.to_owned();
                (f[0].to_owned(), flag(f[1]), flag(f[2]))
            })
            .collect()
    }
}

/// A forged advert: VRRPv3, VRID 51, priority 254, valid checksum, from `src` to `dst`.
fn forged_advert(src: &str, dst: &str) -> Vec<u8> {
    use vrrp_core::packet::{
        AddressList, Advertisement, Auth, ChecksumMode, Family, IpContext, Version,
    };
    let vips = AddressList::encode(Family::Ipv4, &[VIP.parse().unwrap()]).unwrap();
    let adv = Advertisement {
        version: Version::V3,
        vrid: 51,
        priority: 254,
        interval_cs: 100,
        auth: Auth::None,
        addresses: vips.as_list(),
    };
    let ctx = IpContext {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        checksum: ChecksumMode::Rfc5798,
    };
    let mut buf = vec![0u8; adv.buffer_len()];
    let n = adv.emit(&mut buf, &ctx).unwrap();
    buf.truncate(n);
    buf
}

/// Issue #10 (1): a host sends forged priority-254 adverts with TTL 64 to the Master's own
/// address and to 224.0.0.18, and TTL-255 ones to the Master's address (a multicast instance
/// expects the group): for 1.5 s, every 10 ms. The VIP never moves, and the Master's and the
/// Backup's TTL and destination counters rise.
#[test]
fn forged_adverts_never_move_the_vip() {
    let _serial = serial();
    let Some(topo) = Topo::new("fa") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    let counters = |i| {
        topo.status(i)
            .and_then(|s| s.instances.into_iter().find(|x| x.name == "VI_1"))
            .map(|x| x.counters)
            .expect("status")
    };
    let before = counters(LB1);
    // lb2 may have been Master for a moment at startup (both start together): count from now.
    let lb2_before = counters(LB2).master_transitions;
    let attack = topo.ns(CLIENT).spawn(|| {
        use socket2::{Domain, Protocol, Socket, Type};
        let me = "192.0.2.6";
        let raw = |ttl: u32| {
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            s.set_ttl_v4(ttl).unwrap();
            s.set_multicast_ttl_v4(ttl).unwrap();
            s.set_multicast_if_v4(&me.parse().unwrap()).unwrap();
            s
        };
        let (s64, s255) = (raw(64), raw(255));
        let to =
            |a: &str| socket2::SockAddr::from(std::net::SocketAddr::new(a.parse().unwrap(), 0));
        let end = Instant::now() + Duration::from_millis(1500);
        let mut sent = 0;
        while Instant::now() < end {
            s64.send_to(&forged_advert(me, "192.0.2.1"), &to("192.0.2.1"))
                .unwrap();
            s64.send_to(&forged_advert(me, "224.0.0.18"), &to("224.0.0.18"))
                .unwrap();
            s255.send_to(&forged_advert(me, "192.0.2.1"), &to("192.0.2.1"))
                .unwrap();
            sent += 1;
            thread::sleep(Duration::from_millis(10));
        }
        sent
    });
    let mut checks = 0;
    while !attack.is_finished() {
        assert_eq!(
            topo.state(LB1, "VI_1").as_deref(),
            Some("Master"),
            "{}",
            topo.dump()
        );
        assert!(topo.has_address(LB1, VIP), "{}", topo.dump());
        assert!(!topo.has_address(LB2, VIP), "{}", topo.dump());
        checks += 1;
        thread::sleep(Duration::from_millis(20));
    }
    let sent = attack.join().unwrap();
    assert!(sent > 50 && checks >= 5, "sent {sent}, checked {checks}");
    // Counters reach the status within a second of the last advert that moved them.
    thread::sleep(Duration::from_millis(1200));
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(1));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(1));
    let after = counters(LB1);
    eprintln!(
        "forged adverts: {sent} rounds; lb1 ip_ttl_errors {} -> {}, destination_errors {} -> {}",
        before.ip_ttl_errors,
        after.ip_ttl_errors,
        before.destination_errors,
        after.destination_errors
    );
    // Each round sends lb1 two TTL-64 adverts (unicast and group) and one TTL-255 unicast one.
    assert!(
        after.ip_ttl_errors - before.ip_ttl_errors >= 2 * sent - 10,
        "{after:?}"
    );
    assert!(
        after.destination_errors - before.destination_errors >= sent - 10,
        "{after:?}"
    );
    assert_eq!(after.master_transitions, before.master_transitions);
    assert!(counters(LB2).ip_ttl_errors >= sent - 10);
    assert_eq!(counters(LB2).master_transitions, lb2_before);
}

/// Issue #10 (2): the Backup's worker is stopped (SIGSTOP) for 10 advert intervals while the
/// Master keeps advertising, then continued: it reads the queued adverts, each at the time it
/// arrived, before its expired Master_Down_Timer, so it never takes over (no transition, no
/// VIP on the Backup, the Master undisturbed).
#[test]
fn stalled_backup_worker_does_not_take_over() {
    let _serial = serial();
    let Some(topo) = Topo::new("st") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 50).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 50).toml());
    let (lb1, lb2) = topo.start_pair(&c1, &c2);
    let transitions = |i| {
        topo.status(i)
            .and_then(|s| s.instances.into_iter().find(|x| x.name == "VI_1"))
            .map(|x| x.counters.master_transitions)
            .expect("status")
    };
    // Settled: lb2 has heard lb1 for a while. (Started together, both may have been Master
    // for a moment at start: only what happens from here counts.)
    thread::sleep(Duration::from_millis(500));
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(1));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(1));
    let lb1_before = transitions(LB1);
    let lb2_before = transitions(LB2);
    let masters_before = topo.log("lb2").matches("to=Master").count();
    let worker = worker_pid(lb2.pid()).expect("worker");
    for round in 0..3 {
        kill(worker, Signal::SIGSTOP);
        thread::sleep(Duration::from_millis(500));
        kill(worker, Signal::SIGCONT);
        thread::sleep(Duration::from_millis(500));
        assert_eq!(
            topo.state(LB2, "VI_1").as_deref(),
            Some("Backup"),
            "round {round}\n{}",
            topo.dump()
        );
    }
    assert_eq!(transitions(LB2), lb2_before, "{}", topo.dump());
    assert!(!topo.has_address(LB2, VIP));
    assert_eq!(
        topo.log("lb2").matches("to=Master").count(),
        masters_before,
        "{}",
        topo.dump()
    );
    assert_eq!(transitions(LB1), lb1_before);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(1));
    drop(lb1);
}

/// The driver adds no drift to advert timing: every advert of a 100 ms Master, timed by a
/// listener on the LAN, arrives on the schedule the first one set (a driver that re-armed
/// from "now" after each wake-up would add its latency to every interval). Timed by the
/// listener's kernel as each advert arrives (`SO_TIMESTAMPNS`, taken while the sender's
/// packet crosses the bridge), not when the listening thread got round to reading it: a stall
/// of the test process is not the sender's lateness.
#[test]
fn advert_timing_has_no_drift() {
    let _serial = serial();
    let Some(topo) = Topo::new("dr") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let _lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    const N: usize = 60;
    let arrivals = topo.ns(CLIENT).run(|| {
        use ha_lb::net::{Interface, VrrpSocket, VrrpSocketConfig};
        let iface = Interface::by_name("eth0").unwrap();
        let socket = VrrpSocket::open(
            &iface,
            &VrrpSocketConfig {
                source: "192.0.2.6".parse().unwrap(),
                join_group: true,
            },
        )
        .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut at = Vec::new();
        while at.len() < N {
            let rx = socket.recv(&mut buf).unwrap();
            if rx.src == "192.0.2.1".parse::<std::net::IpAddr>().unwrap() {
                at.push(rx.at.expect("a kernel arrival time"));
            }
        }
        at
    });
    let since =
        |later: SystemTime, earlier: SystemTime| later.duration_since(earlier).unwrap_or_default();
    let intervals: Vec<f64> = arrivals
        .windows(2)
        .map(|w| since(w[1], w[0]).as_secs_f64() * 1000.0)
        .collect();
    let mean = since(arrivals[N - 1], arrivals[0]).as_secs_f64() * 1000.0 / (N - 1) as f64;
    // Every advert against the schedule the first one sets (k * 100 ms later): a driver that
    // re-armed from its wake-up time falls behind it by its latency at each advert (measured
    // 1.3 ms here, 77 ms after 60 adverts); one that keeps the schedule only shows each
    // advert's own wake-up and delivery jitter, which does not add up.
    let offsets: Vec<f64> = arrivals
        .iter()
        .enumerate()
        .map(|(k, at)| since(*at, arrivals[0]).as_secs_f64() * 1000.0 - 100.0 * k as f64)
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort_by(f64::total_cmp);
    // Relative to the median offset, so that a late first advert does not shift them all.
    let median = sorted[sorted.len() / 2];
    let worst = offsets
        .iter()
        .map(|o| (o - median).abs())
        .fold(0.0, f64::max);
    let max_interval = intervals.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "advert timing: mean interval {mean:.3} ms, longest {max_interval:.1} ms, \
         worst advert {worst:.1} ms off the schedule over {N} adverts"
    );
    assert!(
        worst < 20.0,
        "an advert was {worst:.1} ms off the 100 ms schedule: offsets {offsets:?}"
    );
    assert!(
        (99.0..=101.0).contains(&mean),
        "mean advert interval {mean:.3} ms"
    );
}

/// Sync group: VI_2 goes to Fault (its weight-0 exec check fails), VI_1 follows it into Fault
/// and gives its VIP up; the check passes again: both return to Master. The group's notify
/// commands run on each group state.
#[test]
fn sync_group_members_fault_together() {
    let _serial = serial();
    let Some(topo) = Topo::new("sg") else { return };
    let flag = topo.dir.join("vi2-ok");
    std::fs::write(&flag, "").unwrap();
    let notify_log = topo.dir.join("group.log");
    let instance = |name: &str, vrid: u32, vip: &str, extra: &str| {
        format!(
            "[instances.{name}]\ninterface = \"eth0\"\nvrid = {vrid}\npriority = 150\n\
             advert_interval_ms = 100\nvips = [\"{vip}/24\"]\n{extra}\n"
        )
    };
    let config = format!(
        "[admin]\nlisten = \"{ADMIN}\"\n\n{}{}\
         [checks.vi2]\nkind = \"exec\"\ncommand = [\"/bin/test\", \"-e\", \"{}\"]\n\
         interval_ms = 100\nrise = 1\nfall = 1\n\n\
         [sync_groups.G]\ninstances = [\"VI_1\", \"VI_2\"]\n\
         notify.any = [\"/bin/sh\", \"-c\", \"echo $3 >> {}\", \"sh\"]\n",
        instance("VI_1", 51, VIP, ""),
        instance(
            "VI_2",
            52,
            VIP_B,
            "track_checks = [{ check = \"vi2\", weight = 0 }]"
        ),
        flag.display(),
        notify_log.display()
    );
    let c1 = topo.write("lb1.toml", &config);
    let _lb1 = topo.start(LB1, "lb1", &c1);
    let logs = || topo.dump();
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB1, "VI_2", "Master", Duration::from_secs(5));

    std::fs::remove_file(&flag).unwrap();
    topo.expect_state(LB1, "VI_2", "Fault", Duration::from_secs(5));
    topo.expect_state(LB1, "VI_1", "Fault", Duration::from_secs(5));
    assert!(!topo.has_address(LB1, VIP) && !topo.has_address(LB1, VIP_B));

    std::fs::write(&flag, "").unwrap();
    topo.expect_state(LB1, "VI_2", "Master", Duration::from_secs(10));
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&notify_log)
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .ends_with(&["FAULT", "BACKUP", "MASTER"])
        }),
        "group notify: {:?}\n{}",
        std::fs::read_to_string(&notify_log),
        logs()
    );
}

/// Whether each node is Master of VI_1 and of VI_2 (`None` while its `/status` does not answer).
fn group_masters(topo: &Topo) -> [Option<[bool; 2]>; 2] {
    [LB1, LB2].map(|i| {
        let status = topo.status(i)?;
        let master = |name: &str| {
            status
                .instances
                .iter()
                .any(|s| s.name == name && s.state == "Master")
        };
        Some([master("VI_1"), master("VI_2")])
    })
}

/// Samples both nodes until `done` has held for a second (true) or `timeout` passes (false);
/// also returns the longest time a node was seen Master of one member and not the other.
fn watch_group(
    topo: &Topo,
    timeout: Duration,
    done: impl Fn(&[Option<[bool; 2]>; 2]) -> bool,
) -> (bool, Duration) {
    let start = Instant::now();
    let mut split_since: Option<Instant> = None;
    let mut longest = Duration::ZERO;
    let mut done_since: Option<Instant> = None;
    while start.elapsed() < timeout {
        let sample = group_masters(topo);
        let now = Instant::now();
        let split = sample.iter().flatten().any(|m| m[0] != m[1]);
        match (split, split_since) {
            (true, None) => split_since = Some(now),
            (true, Some(t)) => longest = longest.max(now - t),
            (false, _) => split_since = None,
        }
        if done(&sample) {
            let since = *done_since.get_or_insert(now);
            if now - since >= Duration::from_secs(1) {
                return (true, longest);
            }
        } else {
            done_since = None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    (false, longest)
}

/// Sync group on two nodes, VI_1 and VI_2 in group G on each, lb1 (priority 150) Master of
/// both, lb2 (100) Backup, 100 ms adverts (lb2's Master_Down_Interval 361 ms). VI_2's adverts
/// are cut between the nodes (a tc filter on each node's egress): lb2's VI_2 wants Master but
/// its group holds it, as VI_1 still hears lb1, so the group does not split. lb2 is reloaded
/// with VI_1 at priority 200: lb2 takes both, lb1's VI_1 loses its election on its own and its
/// group steps VI_2 down (both VIPs on lb2). The cut heals: lb1's VI_2 would preempt but is held.
/// lb2 is reloaded back to 100: lb1 takes both again. A node is never seen Master of only one
/// member for longer than Master_Down_Interval + margin.
#[test]
fn sync_group_moves_master_and_backup_together() {
    let _serial = serial();
    let test = "sync_group_moves_master_and_backup_together";
    let Some(topo) = Topo::new("sm") else { return };
    if !netns::tool_available(test, "tc", "iproute2") {
        return;
    }
    let instance = |name: &str, vrid: u32, vip: &str, priority: u32| {
        format!(
            "[instances.{name}]\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\n\
             advert_interval_ms = 100\npreempt = true\nvips = [\"{vip}/24\"]\n\n"
        )
    };
    let config = |p1: u32, p2: u32| {
        format!(
            "[admin]\nlisten = \"{ADMIN}\"\n\n{}{}[sync_groups.G]\ninstances = [\"VI_1\", \"VI_2\"]\n",
            instance("VI_1", 51, VIP, p1),
            instance("VI_2", 52, VIP_B, p2)
        )
    };
    let c1 = topo.write("lb1.toml", &config(150, 150));
    let c2 = topo.write("lb2.toml", &config(100, 100));
    let _lb1 = topo.start(LB1, "lb1", &c1);
    let lb2 = topo.start(LB2, "lb2", &c2);
    let logs = || topo.dump();
    let on = |m: [bool; 2]| {
        move |s: &[Option<[bool; 2]>; 2]| s[0] == Some(m) && s[1] == Some([!m[0], !m[1]])
    };
    let (ok, _) = watch_group(&topo, Duration::from_secs(15), on([true, true]));
    assert!(ok, "lb1 is not Master of both\n{}", logs());

    // Cut VRID 52's adverts both ways: packets of protocol 112 with 52 in the VRID byte
    // (offset 21: a 20-byte IPv4 header, then version/type and the VRID) go to a class
    // whose queue holds nothing.
    let tc = |i: usize, args: &str| {
        let args: Vec<&str> = args.split_whitespace().collect();
        let out = topo.ns(i).command("tc").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "tc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let cut = |on: bool| {
        for i in [LB1, LB2] {
            if on {
                tc(i, "qdisc add dev eth0 root handle 1: htb default 1");
                tc(i, "class add dev eth0 parent 1: classid 1:1 htb rate 1gbit");
                tc(i, "class add dev eth0 parent 1: classid 1:2 htb rate 8bit");
                tc(i, "qdisc add dev eth0 parent 1:2 handle 20: pfifo limit 0");
                tc(
                    i,
                    "filter add dev eth0 parent 1: protocol ip u32 \
                     match ip protocol 112 0xff match u8 52 0xff at 21 flowid 1:2",
                );
            } else {
                tc(i, "qdisc del dev eth0 root");
            }
        }
    };
    cut(true);
    assert!(
        wait_until(Duration::from_secs(5), || topo
            .log("lb2")
            .contains("would be Master, held by its sync group")),
        "{}",
        logs()
    );
    let (ok, split) = watch_group(&topo, Duration::from_secs(3), on([true, true]));
    assert!(ok, "the group moved with one link cut\n{}", logs());
    assert_eq!(split, Duration::ZERO, "{}", logs());
    assert!(!topo.has_address(LB2, VIP) && !topo.has_address(LB2, VIP_B));

    // Reloads lb2 with VI_1 at `p1` and waits until node `to` holds the whole group, never
    // split longer than the bound.
    let move_group = |p1: u32, to: usize, what: &str| {
        topo.write("lb2.toml", &config(p1, 100));
        let t_hup = Instant::now();
        lb2.signal(Signal::SIGHUP);
        let (ok, split) = watch_group(&topo, Duration::from_secs(10), on([to == LB1; 2]));
        eprintln!(
            "{what}: settled {} ms after SIGHUP, longest split {} ms",
            ms(t_hup.elapsed()),
            ms(split)
        );
        assert!(ok, "{what}: not Master of both\n{}", logs());
        assert!(split < MDI_BOUND, "split {} ms\n{}", ms(split), logs());
        let from = 1 - to;
        assert!(topo.has_address(to, VIP) && topo.has_address(to, VIP_B));
        assert!(!topo.has_address(from, VIP) && !topo.has_address(from, VIP_B));
    };

    // lb2's VI_1 outranks lb1's: with its VI_2 wanting Master, lb2 takes both.
    move_group(200, LB2, "group to lb2");
    assert!(
        topo.log("lb1")
            .contains("sync group: stepping down to Backup"),
        "{}",
        logs()
    );

    // The cut heals: lb1's VI_2 hears a lower priority and would preempt, but its VI_1 does
    // not want Master: the group stays on lb2.
    cut(false);
    let (ok, split) = watch_group(&topo, Duration::from_secs(3), on([false, false]));
    assert!(ok, "the group moved after the heal\n{}", logs());
    assert_eq!(split, Duration::ZERO, "{}", logs());

    // And back: lb2's VI_1 at 100 again (its lower priority advertised, lb1 preempts).
    move_group(100, LB1, "group back to lb1");
}

/// (4) with passive health only (backends without checks): the master's failed connects take
/// its backends out, its pool counts as down, the VIP moves; once the backends are reachable
/// and their cool-down is over, it moves back.
#[test]
fn passive_failures_move_the_vip() {
    let _serial = serial();
    let Some(topo) = Topo::new("pa") else { return };
    let node = |p| {
        let mut n = Node::active_standby(p, 100);
        n.checked = false;
        n.toml()
    };
    let c1 = topo.write("lb1.toml", &node(150));
    let c2 = topo.write("lb2.toml", &node(100));
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    let logs = || topo.dump();
    let client = topo.served_client("192.0.2.100:80");

    let t_loss = Instant::now();
    for b in ["192.0.2.3", "192.0.2.4", "192.0.2.5"] {
        topo.ns(LB1)
            .ip(&["route", "add", "blackhole", &format!("{b}/32")]);
    }
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    topo.assert_served_again(
        &client,
        t_loss,
        "passive, backends lost",
        Duration::from_millis(2500),
    );

    for b in ["192.0.2.3", "192.0.2.4", "192.0.2.5"] {
        topo.ns(LB1)
            .ip(&["route", "del", "blackhole", &format!("{b}/32")]);
    }
    // fail_timeout is 1 s: then the backends count again and lb1 preempts.
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    assert!(
        client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        logs()
    );
}

/// A tracked interface (weight -60) going down lowers lb1 below lb2, which preempts; back up,
/// lb1 preempts back.
#[test]
fn tracked_interface_moves_priority() {
    let _serial = serial();
    let Some(topo) = Topo::new("ti") else { return };
    // A second link on lb1 (a veth pair: no dummy module needed); its peer going down takes
    // the carrier away.
    topo.ns(LB1).ip(&[
        "link", "add", "dum0", "type", "veth", "peer", "name", "dum1",
    ]);
    topo.ns(LB1).ip(&["link", "set", "dum0", "up"]);
    topo.ns(LB1).ip(&["link", "set", "dum1", "up"]);
    let mut n1 = Node::active_standby(150, 100);
    n1.extra = "track_interfaces = [{ interface = \"dum0\", weight = -60 }]\n".into();
    let c1 = topo.write("lb1.toml", &n1.toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    topo.ns(LB1).ip(&["link", "set", "dum1", "down"]);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB1, "VI_1", "Backup", Duration::from_secs(5));
    assert_eq!(topo.status(LB1).unwrap().instances[0].priority, 90);
    topo.ns(LB1).ip(&["link", "set", "dum1", "up"]);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    assert_eq!(topo.status(LB1).unwrap().instances[0].priority, 150);
}

/// SIGHUPs that change one instance of two (active-active), VI_2, while VI_1 never blinks (no
/// transition, no failed request): its priority down and up is applied in place (no restart;
/// raised above lb2's, it preempts), then a change that needs a restart restarts VI_2 only.
#[test]
fn reload_restarts_only_changed_instances() {
    let _serial = serial();
    let Some(topo) = Topo::new("rl") else { return };
    let node = |p1, p2, vi2_extra: &str| {
        let mut n = Node::active_standby(0, 100);
        n.instances = vec![("VI_1", 51, VIP, Some(p1)), ("VI_2", 52, VIP_B, Some(p2))];
        n.toml().replace(
            "[instances.VI_2]\n",
            &format!("[instances.VI_2]\n{vi2_extra}"),
        )
    };
    let c1 = topo.write("lb1.toml", &node(150, 100, ""));
    let c2 = topo.write("lb2.toml", &node(100, 150, ""));
    let lb1 = topo.start(LB1, "lb1", &c1);
    let _lb2 = topo.start(LB2, "lb2", &c2);
    let logs = || topo.dump();
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB1, "VI_2", "Backup", Duration::from_secs(15));
    let a = Client::start(topo.ns(CLIENT), "192.0.2.100:80");
    assert!(
        a.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
        "{}",
        logs()
    );
    let instance = |i, name: &str| {
        topo.status(i)
            .unwrap()
            .instances
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    };
    let before = instance(LB1, "VI_1").counters.master_transitions;
    let reloads = |n: usize| topo.log("lb1").matches("reload done").count() >= n;
    let t_hup = Instant::now();

    // Lower, in place: no restart, the new base priority shows.
    topo.write("lb1.toml", &node(150, 90, ""));
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || reloads(1)),
        "{}",
        logs()
    );
    assert!(
        wait_until(Duration::from_secs(10), || instance(LB1, "VI_2")
            .base_priority
            == 90),
        "{}",
        logs()
    );
    assert_eq!(instance(LB1, "VI_2").state, "Backup");
    assert!(topo.log("lb1").contains("applied in place"), "{}", logs());

    // Higher than lb2's 150, in place: lb1 preempts VI_2 without restarting it.
    topo.write("lb1.toml", &node(150, 200, ""));
    lb1.signal(Signal::SIGHUP);
    topo.expect_state(LB1, "VI_2", "Master", Duration::from_secs(5));
    topo.expect_state(LB2, "VI_2", "Backup", Duration::from_secs(5));
    assert!(
        !topo.log("lb1").contains("restarting it"),
        "a priority change restarted the instance\n{}",
        logs()
    );

    // A setting the router cannot take in place: VI_2 restarts, VI_1 does not.
    topo.write("lb1.toml", &node(150, 200, "preempt_delay_ms = 1\n"));
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || reloads(3)),
        "{}",
        logs()
    );
    assert!(topo
        .log("lb1")
        .contains("instance changed or removed, restarting it"));
    topo.expect_state(LB1, "VI_2", "Master", Duration::from_secs(10));

    assert!(a.wait_successes(Instant::now(), 40, Duration::from_secs(10)));
    assert_eq!(
        failures(&a.samples(), t_hup, Instant::now()),
        0,
        "VIP .100 lost requests"
    );
    let after = instance(LB1, "VI_1");
    assert_eq!(
        (after.state.as_str(), after.counters.master_transitions),
        ("Master", before)
    );
}

/// The master's interface is deleted and made again (a new index, its address added after it
/// comes up): lb1 goes to Fault and lb2 serves; once the new link has its address, lb1's
/// instance starts on it, preempts back, and the client is served through lb1 again.
#[test]
fn re_created_interface_is_followed() {
    let _serial = serial();
    let Some(topo) = Topo::new("rc") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    let (_lb1, _lb2) = topo.start_pair(&c1, &c2);
    let logs = || topo.dump();
    let client = topo.served_client("192.0.2.100:80");
    let old_index = topo.ns(LB1).ifindex("eth0");

    let t_del = Instant::now();
    topo.ns(LB1).ip(&["link", "del", "eth0"]);
    topo.expect_state(LB1, "VI_1", "Fault", Duration::from_secs(5));
    topo.assert_served_again(&client, t_del, "interface deleted", MDI_BOUND);

    // Made again: up first, its address a moment later (as a slow network manager would).
    let t_new = Instant::now();
    topo.remake_eth0(LB1, Duration::from_millis(300));
    assert_ne!(topo.ns(LB1).ifindex("eth0"), old_index);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    assert!(topo.has_address(LB1, VIP), "{}", logs());
    assert!(
        topo.log("lb1")
            .contains("instance started on its interface"),
        "{}",
        logs()
    );
    topo.assert_served_again(
        &client,
        t_new,
        "back on the re-created interface",
        MDI_BOUND,
    );
}

/// Sync group on lb1 (Master of both members), lb2 Backup of both; a reload changes only VI_1
/// on lb1: VI_1 restarts (priority 0), and its group's VI_2 steps down with it, so lb2 takes
/// the whole group by priority 0 (Skew_Time) instead of holding its VI_1 back while its VI_2
/// hears lb1 (which cost VI_1's VIP a whole Master_Down_Interval); lb1 then preempts both back.
#[test]
fn sync_group_member_reload_moves_the_group_by_priority_zero() {
    let _serial = serial();
    let Some(topo) = Topo::new("sr") else { return };
    let node = |p1| {
        let mut n = Node::active_standby(0, 100);
        n.instances = vec![("VI_1", 51, VIP, Some(p1)), ("VI_2", 52, VIP_B, Some(p1))];
        format!(
            "{}\n[sync_groups.G]\ninstances = [\"VI_1\", \"VI_2\"]\n",
            n.toml()
        )
    };
    let c1 = topo.write("lb1.toml", &node(150));
    let c2 = topo.write("lb2.toml", &node(100));
    let (lb1, _lb2) = topo.start_pair(&c1, &c2);
    topo.expect_state(LB1, "VI_2", "Master", Duration::from_secs(5));
    let a = topo.served_client("192.0.2.100:80");
    let b = topo.served_client("192.0.2.101:80");

    // preempt_delay_ms is not taken in place: VI_1 restarts.
    topo.write(
        "lb1.toml",
        &node(150).replace(
            "[instances.VI_1]\n",
            "[instances.VI_1]\npreempt_delay_ms = 1\n",
        ),
    );
    let t_hup = Instant::now();
    lb1.signal(Signal::SIGHUP);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(5));
    // lb1 takes the group back (preempt), both members.
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB1, "VI_2", "Master", Duration::from_secs(5));
    topo.expect_state(LB2, "VI_2", "Backup", Duration::from_secs(5));
    // lb2's Skew_Time (61 ms) and the handover margin: below its Master_Down_Interval (361 ms).
    let bound = Duration::from_millis(61) + HANDOVER_MARGIN;
    topo.assert_served_again(&a, t_hup, "VI_1 (reloaded)", bound);
    topo.assert_served_again(&b, t_hup, "VI_2 (its group)", bound);
    assert!(
        topo.log("lb1").contains("restarts for a reload"),
        "{}",
        topo.dump()
    );
}

/// lb1 starts before its interface exists (a VLAN or bond made later at boot): it runs, shows
/// the instance in Fault with the reason, and once the interface appears with its address the
/// instance starts on it and preempts lb2.
#[test]
fn missing_interface_at_start_is_waited_for() {
    let _serial = serial();
    let Some(topo) = Topo::new("mi") else { return };
    let c1 = topo.write("lb1.toml", &Node::active_standby(150, 100).toml());
    let c2 = topo.write("lb2.toml", &Node::active_standby(100, 100).toml());
    topo.ns(LB1).ip(&["link", "del", "eth0"]);
    let _lb2 = topo.start(LB2, "lb2", &c2);
    let _lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB1, "VI_1", "Fault", Duration::from_secs(10));
    let reason = topo.status(LB1).unwrap().instances[0].reason.clone();
    assert!(reason.contains("eth0"), "reason {reason:?}");
    assert!(topo
        .log("lb1")
        .contains("waiting in Fault for the interface"));

    topo.remake_eth0(LB1, Duration::ZERO);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(10));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    assert!(topo.has_address(LB1, VIP) && !topo.has_address(LB2, VIP));
    let client = topo.served_client("192.0.2.100:80");
    drop(client);
}

/// `accept_mode = false`: lb1 holds the VIP and answers ARP for it, but drops what is
/// addressed to it (a server on lb1 is reachable on lb1's own address only); a reload to
/// `accept_mode = true` opens it; a stop removes the nftables table, and so does a start
/// without the option after a run that was killed.
#[test]
fn accept_mode_off_drops_traffic_to_the_vip() {
    let _serial = serial();
    if !netns::tool_available(
        "accept_mode_off_drops_traffic_to_the_vip",
        "nft",
        "nftables",
    ) {
        return;
    }
    let Some(topo) = Topo::new("am") else { return };
    let local = Backend::start(topo.ns(LB1), "b-lb1");
    let config = |accept: bool| {
        format!(
            "[admin]\nlisten = \"{ADMIN}\"\n\n[instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\n\
             priority = 150\nadvert_interval_ms = 100\naccept_mode = {accept}\n\
             vips = [\"{VIP}/24\"]\n"
        )
    };
    let c1 = topo.write("lb1.toml", &config(false));
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    let logs = || topo.dump();
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    assert!(topo.has_address(LB1, VIP));
    let ask = |to: &str| {
        let to: SocketAddr = to.parse().unwrap();
        topo.ns(CLIENT).run(move || request(to))
    };
    assert_eq!(ask("192.0.2.1:8080").as_deref(), Some("b-lb1"));
    assert_eq!(ask("192.0.2.100:8080"), None, "{}", logs());
    // Address resolution still works: the client learnt the VIP's MAC (lb1's).
    let neigh = topo.ns(CLIENT).ip(&["neigh", "show", VIP]);
    assert!(
        neigh.contains(&topo.ns(LB1).mac("eth0")),
        "neighbour entry {neigh:?}"
    );
    let table = || {
        topo.ns(LB1).run(|| {
            std::process::Command::new("nft")
                .args(["list", "table", "inet", "ha_lb"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        })
    };
    assert!(table().contains(VIP), "{}", table());

    topo.write("lb1.toml", &config(true));
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || ask("192.0.2.100:8080")
            .is_some()),
        "{}",
        logs()
    );
    assert!(!table().contains("ha_lb"), "{}", table());

    topo.write("lb1.toml", &config(false));
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || table().contains(VIP)),
        "{}",
        logs()
    );
    assert!(lb1.stop(), "lb1 did not stop cleanly\n{}", logs());
    assert!(
        !table().contains("ha_lb"),
        "table left after stop: {}",
        table()
    );

    // Killed with its table in place, then started with the option off: the table goes.
    let c1 = topo.write("lb1.toml", &config(false));
    let lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    let worker = worker_pid(lb1.pid()).expect("lb1 has a worker");
    lb1.signal(Signal::SIGKILL);
    drop(lb1);
    // Its worker follows (parent-death signal); until then it holds the admin port a new
    // lb1 binds (an immediate restart would fail with EADDRINUSE, under load).
    assert!(wait_until(Duration::from_secs(5), || exited(worker)));
    assert!(table().contains(VIP), "{}", table());
    let c1 = topo.write("lb1.toml", &config(true));
    let _lb1 = topo.start(LB1, "lb1", &c1);
    assert!(
        wait_until(Duration::from_secs(15), || ask("192.0.2.100:8080")
            .is_some()),
        "{}",
        logs()
    );
    assert!(!table().contains("ha_lb"), "{}", table());
    drop(local);
}

/// Issue #18: the `custom_proxy` example (lb-core with its own selector, healthcheck HTTP
/// checks, ha-lb's failover API) on two nodes, measured like the binary: a process SIGKILL
/// (no supervisor: the peer waits its Master_Down_Interval) and a graceful stop (priority 0:
/// the peer takes over after its Skew_Time), within the binary's bounds.
#[test]
fn embedded_custom_proxy_fails_over() {
    let _serial = serial();
    let Some(topo) = Topo::new("cp") else { return };
    // Backends for a program that checks over HTTP, next to the topology's own on 8080.
    let _backends: Vec<_> = (0..3)
        .map(|i| {
            let name = format!("b{}", i + 1);
            Backend::serve(
                Some(topo.ns(2 + i)),
                "0.0.0.0:8081",
                &name,
                Answer::HttpAware,
            )
        })
        .collect();
    // Examples are built by `cargo test` next to the test binaries' directory.
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/custom_proxy");
    assert!(example.exists(), "{} not built", example.display());
    let start = |i: usize, name: &str, priority: &str| {
        let log = File::create(topo.dir.join(format!("{name}.log"))).unwrap();
        let mut cmd = topo.ns(i).command(example.to_str().unwrap());
        cmd.args(["eth0", "51", priority, "192.0.2.100/24", "80"])
            .args(["192.0.2.3:8081", "192.0.2.4:8081", "192.0.2.5:8081"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        ChildGuard::spawn(&mut cmd, Duration::from_secs(10))
    };
    let holds = |lb1: bool| {
        wait_until(Duration::from_secs(15), || {
            topo.has_address(LB1, VIP) == lb1 && topo.has_address(LB2, VIP) != lb1
        })
    };
    let lb1 = start(LB1, "lb1", "150");
    let _lb2 = start(LB2, "lb2", "100");
    assert!(holds(true), "{}", topo.dump());
    let client = topo.served_client("192.0.2.100:80");
    // All three backends are used: the health checks passed and the selector rotates.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        answers(
            &client.samples(),
            Instant::now() - Duration::from_millis(300)
        )
        .len(),
        3
    );

    let t_kill = Instant::now();
    lb1.signal(Signal::SIGKILL);
    // Killed, lb1 leaves its VIP on eth0 (nothing is left to remove it) until it runs again;
    // lb2's gratuitous ARPs take the client over.
    assert!(
        wait_until(Duration::from_secs(15), || topo.has_address(LB2, VIP)),
        "{}",
        topo.dump()
    );
    topo.assert_served_again(&client, t_kill, "custom proxy SIGKILL", MDI_BOUND);

    // It comes back (the VIP its killed run left is removed first) and preempts.
    let mut lb1 = start(LB1, "lb1", "150");
    assert!(holds(true), "{}", topo.dump());
    assert!(client.wait_successes(Instant::now(), 20, Duration::from_secs(10)));
    let t_stop = Instant::now();
    assert!(lb1.stop(), "a graceful stop exits");
    assert!(holds(false), "{}", topo.dump());
    topo.assert_served_again(
        &client,
        t_stop,
        "custom proxy graceful stop",
        HANDOVER_MARGIN + Duration::from_millis(61),
    );
}
