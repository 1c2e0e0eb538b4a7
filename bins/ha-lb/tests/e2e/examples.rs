//! The shipped example configuration files, run as they are: the seed article's active-standby
//! pair (`examples/active-standby-lb{1,2}.toml`: VRRPv2, 1 s adverts, unicast, PASS auth) in
//! network namespaces with the addresses the files name (TEST-NET). lb1 serves the VIP over
//! the three backends; when lb1's worker is killed, lb2 serves within its Skew_Time + margin.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::backend::{Answer, Backend};
use crate::client::{answers, longest_gap, Client};
use crate::netns::{self, wait_until, ChildGuard, Lan, Netns};
use crate::topo::{kill, state, worker_pid};

#[test]
fn seed_active_standby_examples_fail_over() {
    let _serial = crate::netns::serial();
    if !Netns::available("seed_active_standby_examples_fail_over") {
        return;
    }
    let lan = Lan::new("ex", 4, false);
    let [lb1, lb2, backends, client] = [0, 1, 2, 3].map(|i| &lan.nodes[i]);
    for (ns, addr) in [
        (lb1, "192.0.2.11/24"),
        (lb2, "192.0.2.12/24"),
        (backends, "192.0.2.160/24"),
        (client, "192.0.2.50/24"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", "eth0"]);
    }
    // The backends the files name: 192.0.2.160, ports 8080..=8082, each named after its port.
    let _backends: Vec<_> = [8080u16, 8081, 8082]
        .map(|port| {
            let bind = format!("0.0.0.0:{port}");
            Backend::serve(Some(backends), &bind, &format!("b{port}"), Answer::Name)
        })
        .into();
    let examples = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
    let start = |ns: &Netns, file: &str| {
        let mut cmd = ns.command(&netns::halb_binary());
        cmd.args(["run", "--config", &format!("{examples}/{file}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        ChildGuard::spawn(&mut cmd, Duration::from_secs(10))
    };
    let node1 = start(lb1, "active-standby-lb1.toml");
    let _node2 = start(lb2, "active-standby-lb2.toml");
    // VRRPv2 with 1 s adverts: Master_Down_Interval is 3.6 s.
    assert!(wait_until(Duration::from_secs(20), || state(lb1, "VI_1")
        .as_deref()
        == Some("Master")));
    assert!(wait_until(Duration::from_secs(5), || state(lb2, "VI_1")
        .as_deref()
        == Some("Backup")));

    let client = Client::start(client, "192.0.2.200:80");
    let t0 = Instant::now();
    assert!(client.wait_successes(t0, 30, Duration::from_secs(10)));
    assert_eq!(
        answers(&client.samples(), t0),
        ["b8080", "b8081", "b8082"].map(String::from).into()
    );

    let t_kill = Instant::now();
    let worker = worker_pid(node1.pid()).expect("worker");
    kill(worker, Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || state(lb2, "VI_1")
        .as_deref()
        == Some("Master")));
    assert!(client.wait_successes(Instant::now(), 20, Duration::from_secs(10)));
    let gap = longest_gap(&client.samples(), t_kill, Instant::now());
    eprintln!(
        "seed example, worker SIGKILL: longest gap {} ms",
        gap.as_millis()
    );
    // lb2 (priority 50) waits Skew_Time = 206/256 s = 805 ms after lb1's priority 0, far
    // below the Master_Down_Interval of 3.8 s (margin: the client's timeouts and a loaded
    // machine, as in e2e_failover.rs).
    assert!(gap < Duration::from_millis(805 + 1200), "outage {gap:?}");
}
