//! The shipped example configuration files, run as they are: the seed article's active-standby
//! pair (`examples/active-standby-lb{1,2}.toml`: VRRPv2, 1 s adverts, unicast, PASS auth) in
//! network namespaces with the addresses the files name (TEST-NET). lb1 serves the VIP over
//! the three backends; when lb1's worker is killed, lb2 serves within its Skew_Time + margin.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::netns;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use netns::{wait_until, ChildGuard, Lan, Netns};

/// When a request ended, and the backend that answered it.
type Sample = (Instant, Option<String>);

fn state(ns: &Netns) -> Option<String> {
    ns.run(|| {
        ha_lb::status::fetch("127.0.0.1:9555".parse().unwrap())
            .ok()
            .and_then(|s| s.instances.first().map(|i| i.state.clone()))
    })
}

fn request(target: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_millis(100)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut t = String::new();
    s.read_to_string(&mut t).ok()?;
    (!t.is_empty()).then_some(t)
}

fn worker_pid(supervisor: u32) -> Option<i32> {
    for t in std::fs::read_dir(format!("/proc/{supervisor}/task"))
        .ok()?
        .flatten()
    {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().ok();
        }
    }
    None
}

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
    let stop = Arc::new(AtomicBool::new(false));
    for port in [8080u16, 8081, 8082] {
        let stop = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        backends.spawn(move || {
            let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(format!("{port}").as_bytes());
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        rx.recv().unwrap();
    }
    let examples = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
    let start = |ns: &Netns, file: &str| {
        let mut cmd = ns.command(env!("CARGO_BIN_EXE_ha-lb"));
        cmd.args(["run", "--config", &format!("{examples}/{file}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        ChildGuard::spawn(&mut cmd, Duration::from_secs(10))
    };
    let node1 = start(lb1, "active-standby-lb1.toml");
    let _node2 = start(lb2, "active-standby-lb2.toml");
    // VRRPv2 with 1 s adverts: Master_Down_Interval is 3.6 s.
    assert!(wait_until(Duration::from_secs(20), || state(lb1)
        .as_deref()
        == Some("Master")));
    assert!(wait_until(Duration::from_secs(5), || state(lb2).as_deref()
        == Some("Backup")));

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let (out, flag) = (samples.clone(), stop.clone());
    let client_thread = client.spawn(move || {
        let vip: SocketAddr = "192.0.2.200:80".parse().unwrap();
        while !flag.load(Ordering::Relaxed) {
            let a = request(vip);
            out.lock().unwrap().push((Instant::now(), a));
            thread::sleep(Duration::from_millis(5));
        }
    });
    let ok_since = |t: Instant| {
        samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, a)| *at >= t && a.is_some())
            .count()
    };
    let t0 = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || ok_since(t0) >= 30));
    let seen: BTreeSet<String> = samples
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, a)| a.clone())
        .collect();
    assert_eq!(seen, ["8080", "8081", "8082"].map(String::from).into());

    let t_kill = Instant::now();
    let worker = worker_pid(node1.pid()).expect("worker");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || state(lb2)
        .as_deref()
        == Some("Master")));
    let t1 = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || ok_since(t1) >= 20));
    stop.store(true, Ordering::Relaxed);
    client_thread.join().unwrap();
    let samples = samples.lock().unwrap().clone();
    let mut last = t_kill;
    let mut gap = Duration::ZERO;
    for (at, _) in samples
        .iter()
        .filter(|(at, a)| *at >= t_kill && a.is_some())
    {
        gap = gap.max(*at - last);
        last = *at;
    }
    eprintln!(
        "seed example, worker SIGKILL: longest gap {} ms",
        gap.as_millis()
    );
    // lb2 (priority 50) waits Skew_Time = 206/256 s = 805 ms after lb1's priority 0, far
    // below the Master_Down_Interval of 3.8 s (margin: the client's timeouts and a loaded
    // machine, as in e2e_failover.rs).
    assert!(gap < Duration::from_millis(805 + 1200), "outage {gap:?}");
}
