//! End to end: stateful failover of NAT listeners (`[conntrack_sync]`, conntrackd in FTFW
//! mode over the VRRP link). One TCP connection from the client through the VIP, a byte every
//! 10 ms echoed by its backend, keeps flowing across a SIGTERM of the Master and a SIGKILL of
//! its worker, across a handover to a node whose conntrackd had died (ha-lb starts it again
//! at the transition) and across a handover from a Master whose conntrackd died while nothing
//! changed (ha-lb's watch starts it again): the node taking the VIP already holds the flow's
//! translation.
//!
//! The two-node harness of `support/topo.rs`: lb1 192.0.2.1 (priority 150), lb2 192.0.2.2 (100),
//! backends b1 and b2 (192.0.2.3, .4) echoing bytes on port 9091 after a line with their name,
//! client 192.0.2.6, VIP 192.0.2.100. The listener balances round robin with
//! `nat_source = "vip"`. A first connection takes b1, so the stream goes to b2: a node without
//! the flow's state would send its packets to b1 (its own first slot), which resets it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::backend::{Answer, Backend};
use crate::client::ms;
use crate::netns::{self, serial, wait_until, Netns};
use crate::topo::{kill, worker_pid, Topo, CLIENT, LB1, LB2, VIP};

/// The longest the stream may go without an echo across a handover: lb2's Skew_Time at
/// priority 100 (61 ms) or lb1's preemption, plus TCP's first two retransmission timeouts
/// (200 ms, then 400 ms) for the segments sent while the VIP moved, plus 300 ms for a loaded
/// machine.
const STREAM_BOUND: Duration = Duration::from_millis(61 + 200 + 400 + 300);

fn config(priority: u32, local: &str, peer: &str, state_dir: &Path) -> String {
    format!(
        r#"[admin]
listen = "127.0.0.1:9555"

[instances.VI_1]
interface = "eth0"
vrid = 51
priority = {priority}
version = 3
advert_interval_ms = 100
vips = ["{VIP}/24"]
garp = {{ master_delay_ms = 0 }}

[listeners.stream]
listen = "{VIP}:90"
pool = "stream"
mode = "nat"
nat_source = "vip"

[checks.tcp]
kind = "tcp"
interval_ms = 200
timeout_ms = 100
rise = 1
fall = 2

[pools.stream]
backends = [
    {{ address = "192.0.2.3:9091", check = "tcp" }},
    {{ address = "192.0.2.4:9091", check = "tcp" }},
]

[conntrack_sync]
interface = "eth0"
local = "{local}"
peer = "{peer}"
state_dir = "{}"
"#,
        state_dir.display()
    )
}

/// What the streaming client saw.
#[derive(Debug, Default)]
struct Seen {
    /// When each echoed byte came back.
    echoes: Vec<Instant>,
    /// The first error (a reset, the end of the stream, a write error) and when.
    error: Option<(Instant, String)>,
}

/// One TCP connection through the VIP: a byte every 10 ms, each echo timed.
struct Stream {
    backend: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Stream {
    fn start(ns: &Netns) -> Stream {
        let s = ns.run(|| {
            TcpStream::connect_timeout(
                &format!("{VIP}:90").parse().unwrap(),
                Duration::from_secs(2),
            )
            .unwrap()
        });
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut backend = String::new();
        r.read_line(&mut backend).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let fail = |seen: &Mutex<Seen>, what: String| {
            let mut seen = seen.lock().unwrap();
            if seen.error.is_none() {
                seen.error = Some((Instant::now(), what));
            }
        };
        let reader = {
            let (seen, stop) = (seen.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    match r.read(&mut buf) {
                        Ok(0) => return fail(&seen, "stream closed".into()),
                        Ok(n) => {
                            let now = Instant::now();
                            seen.lock().unwrap().echoes.extend((0..n).map(|_| now));
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return fail(&seen, format!("read: {e}")),
                    }
                }
            })
        };
        let writer = {
            let (seen, stop) = (seen.clone(), stop.clone());
            let mut w = s;
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = w.write_all(b"x") {
                        return fail(&seen, format!("write: {e}"));
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Stream {
            backend: backend.trim().to_owned(),
            seen,
            stop,
            threads: vec![reader, writer],
        }
    }

    fn echoes_since(&self, since: Instant) -> usize {
        self.seen
            .lock()
            .unwrap()
            .echoes
            .iter()
            .filter(|t| **t >= since)
            .count()
    }

    /// Waits for `n` echoes after `since`; false on timeout or an error.
    fn wait_echoes(&self, since: Instant, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.echoes_since(since) >= n || self.seen.lock().unwrap().error.is_some()
        }) && self.seen.lock().unwrap().error.is_none()
    }

    /// The longest time without an echo between `from` and the last echo.
    fn longest_gap(&self, from: Instant) -> Duration {
        let seen = self.seen.lock().unwrap();
        let mut last = from;
        let mut gap = Duration::ZERO;
        for t in seen.echoes.iter().filter(|t| **t >= from) {
            gap = gap.max(t.duration_since(last));
            last = *t;
        }
        gap
    }

    fn error(&self) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .error
            .as_ref()
            .map(|(_, e)| e.clone())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Kills a node's conntrackd through its control socket when the test ends, however it ends
/// (it detaches from ha-lb, which stops it only on a graceful stop).
struct Conntrackd(PathBuf);

impl Drop for Conntrackd {
    fn drop(&mut self) {
        let conf = self.0.join("conntrackd.conf");
        if self.0.join("conntrackd.ctl").exists() {
            let _ = std::process::Command::new("conntrackd")
                .arg("-C")
                .arg(&conf)
                .arg("-k")
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `ns`'s kernel holds a TCP flow to VIP:90 (a `conntrack -L` line).
fn holds_flow(ns: &Netns) -> bool {
    let out = ns
        .command("conntrack")
        .args(["-L", "-p", "tcp", "--dport", "90"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("ESTABLISHED")
}

/// Checks the stream after a handover at `at`: 100 more echoes, no error, no long gap.
fn assert_kept(topo: &Topo, stream: &Stream, at: Instant, what: &str) {
    let ok = stream.wait_echoes(at, 100, Duration::from_secs(10));
    let gap = stream.longest_gap(at);
    eprintln!(
        "{what}: longest gap without an echo {} ms, error {:?}",
        ms(gap),
        stream.error()
    );
    assert!(
        ok,
        "{what}: the stream broke: {:?}\n{}",
        stream.error(),
        topo.dump()
    );
    assert!(
        gap < STREAM_BOUND,
        "{what}: {} ms without an echo\n{}",
        ms(gap),
        topo.dump()
    );
}

#[test]
fn conntrack_sync_keeps_a_stream_across_sigterm_and_worker_kill() {
    let _serial = serial();
    let test = "conntrack_sync_keeps_a_stream_across_sigterm_and_worker_kill";
    if !netns::tool_available(test, "nft", "nftables")
        || !netns::tool_available(test, "conntrackd", "conntrackd")
        || !netns::tool_available(test, "conntrack", "conntrack")
    {
        return;
    }
    let Some(topo) = Topo::new("ctsync") else {
        return;
    };
    let dir = |n: &str| std::env::temp_dir().join(format!("halb-ct-{n}-{}", std::process::id()));
    let (d1, d2) = (Conntrackd(dir("lb1")), Conntrackd(dir("lb2")));
    let c1 = topo.write("lb1.toml", &config(150, "192.0.2.1", "192.0.2.2", &d1.0));
    let c2 = topo.write("lb2.toml", &config(100, "192.0.2.2", "192.0.2.1", &d2.0));
    // Byte echo servers on port 9091 that first send a line with their name.
    let _b1 = Backend::serve(Some(topo.ns(2)), "0.0.0.0:9091", "b1", Answer::NameThenEcho);
    let _b2 = Backend::serve(Some(topo.ns(3)), "0.0.0.0:9091", "b2", Answer::NameThenEcho);
    let (mut lb1, _lb2) = topo.start_pair(&c1, &c2);
    for d in [&d1, &d2] {
        assert!(
            wait_until(Duration::from_secs(5), || d
                .0
                .join("conntrackd.ctl")
                .exists()),
            "conntrackd not running in {}\n{}",
            d.0.display(),
            topo.dump()
        );
    }
    // Both backends up on lb1 (the map has two slots), then a first connection takes b1.
    let first = Stream::start(topo.ns(CLIENT));
    drop(first);
    let stream = Stream::start(topo.ns(CLIENT));
    assert_eq!(stream.backend, "b2", "round robin: the second connection");
    assert!(stream.wait_echoes(Instant::now(), 50, Duration::from_secs(5)));
    // The flow's state reached lb2's kernel through conntrackd.
    assert!(
        wait_until(Duration::from_secs(5), || holds_flow(topo.ns(LB2))),
        "lb2 never got the flow\n{}",
        topo.dump()
    );

    // 1. The Master stops (SIGTERM): lb2 takes the VIP after its Skew_Time.
    let at = Instant::now();
    assert!(lb1.stop());
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(5));
    assert_kept(&topo, &stream, at, "lb1 SIGTERM");

    // lb1 comes back and preempts (priority 150): the flow moves back to it.
    let at = Instant::now();
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    topo.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
    assert_kept(&topo, &stream, at, "lb1 back (preempts)");

    // 2. lb1's worker is killed: its supervisor sends priority 0, lb2 takes over, the new
    // worker preempts again; the conntrackd it started before is kept.
    let worker = worker_pid(lb1.pid()).unwrap();
    let at = Instant::now();
    kill(worker, Signal::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(10), || worker_pid(lb1.pid())
            .is_some_and(|w| w != worker)
            && topo.state(LB1, "VI_1").as_deref() == Some("Master")),
        "{}",
        topo.dump()
    );
    assert_kept(&topo, &stream, at, "lb1 worker SIGKILL");
    assert!(
        topo.log("lb1").contains("keeping the running conntrackd"),
        "{}",
        topo.dump()
    );
    assert_eq!(stream.error(), None);

    // A conntrackd that died is started again at the next transition: lb2's, told to exit,
    // is back when lb2 becomes Master (lb1 stopped); the stream still flows (the flow's state
    // stays in lb2's kernel table).
    let conntrackd = |d: &Conntrackd, flag: &str| {
        std::process::Command::new("conntrackd")
            .arg("-C")
            .arg(d.0.join("conntrackd.conf"))
            .arg(flag)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(conntrackd(&d2, "-k"));
    assert!(wait_until(Duration::from_secs(5), || !conntrackd(
        &d2, "-s"
    )));
    let at = Instant::now();
    assert!(lb1.stop());
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(5));
    assert!(
        wait_until(Duration::from_secs(5), || conntrackd(&d2, "-s")),
        "lb2's conntrackd was not started again\n{}",
        topo.dump()
    );
    // Started again by the transition, or by the watch if its round came first.
    assert!(topo.log("lb2").contains("starting it again"));
    assert_kept(
        &topo,
        &stream,
        at,
        "lb1 SIGTERM again, lb2's conntrackd restarted",
    );

    // A conntrackd that dies while nothing changes is started again by ha-lb's watch and
    // given the Master's commands: lb2 still hands the stream over when lb1 takes the VIP back.
    assert!(conntrackd(&d2, "-k"));
    assert!(wait_until(Duration::from_secs(5), || !conntrackd(
        &d2, "-s"
    )));
    assert!(
        wait_until(Duration::from_secs(15), || conntrackd(&d2, "-s")),
        "lb2's conntrackd was not started again without a transition\n{}",
        topo.dump()
    );
    assert!(
        topo.log("lb2")
            .contains("conntrackd died: starting it again"),
        "{}",
        topo.dump()
    );
    let at = Instant::now();
    let mut lb1 = topo.start(LB1, "lb1", &c1);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    assert_kept(
        &topo,
        &stream,
        at,
        "lb2's conntrackd restarted by the watch, lb1 back",
    );

    // A graceful stop ends the node's conntrackd.
    drop(stream);
    assert!(lb1.stop());
    assert!(
        wait_until(Duration::from_secs(5), || !d1
            .0
            .join("conntrackd.lock")
            .exists()),
        "lb1's conntrackd still runs"
    );
}
