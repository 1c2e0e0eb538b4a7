//! Day-2 operations end to end: `ha-lb ctl` on a running node (backends drained, disabled,
//! re-weighted and enabled, kept across SIGHUP until the file changes them; an instance put in
//! maintenance), the bearer token, the connection log in JSON, the reload metrics.
//!
//! The backend tests run `ha-lb run` on loopback (no VRRP, no privileges); maintenance runs
//! two nodes in network namespaces (TEST-NET addresses, torn down also on failure).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::netns;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use netns::{wait_until, ChildGuard, Lan, Netns};
use nix::sys::signal::Signal;

use crate::backend::{free_port, Answer, Backend};
use crate::netns::serial;
use crate::topo::{self, ADMIN, VIP};

/// A backend on loopback that writes its name and a newline, then keeps the connection until
/// the client closes it.
fn backend(name: &str) -> (SocketAddr, Backend) {
    let b = Backend::local(name, Answer::NameAndHold);
    (b.addr(), b)
}

/// Opens a connection through the balancer and reads the backend's name; the stream stays
/// open.
fn open(listen: SocketAddr) -> Option<(String, BufReader<TcpStream>)> {
    let s = TcpStream::connect_timeout(&listen, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let name = line.trim().to_owned();
    (!name.is_empty()).then_some((name, r))
}

/// The backends that answered `n` new connections (each closed at once), counted.
fn spread(listen: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        if let Some((name, _)) = open(listen) {
            *seen.entry(name).or_insert(0) += 1;
        }
    }
    seen
}

fn names(m: &BTreeMap<String, usize>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

/// Whether the server closed `r` (end of stream or reset) within `timeout`.
fn closed_within(r: &mut BufReader<TcpStream>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 16];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        r.get_ref().set_read_timeout(Some(left)).unwrap();
        match r.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

struct Lb {
    child: ChildGuard,
    dir: PathBuf,
    file: PathBuf,
    admin: SocketAddr,
    listen: SocketAddr,
}

/// The node's configuration: admin with control (and a token) or without, one logged
/// listener, one pool.
fn lb_config(
    admin: SocketAddr,
    listen: SocketAddr,
    dir: &Path,
    backends: &[(SocketAddr, u32)],
    control: bool,
) -> String {
    let token = if control {
        format!("token_file = \"{}\"\n", dir.join("token").display())
    } else {
        String::new()
    };
    let mut t = format!(
        "[admin]\nlisten = \"{admin}\"\ncontrol = {control}\n{token}\n\
         [listeners.web]\nlisten = \"{listen}\"\npool = \"web\"\nnon_local_bind = false\n\
         log = true\n\n[pools.web]\n"
    );
    for (b, w) in backends {
        t += &format!("\n[[pools.web.backends]]\naddress = \"{b}\"\nweight = {w}\n");
    }
    t
}

impl Lb {
    fn config(&self, backends: &[(SocketAddr, u32)], control: bool) -> String {
        lb_config(self.admin, self.listen, &self.dir, backends, control)
    }

    fn start(tag: &str, backends: &[(SocketAddr, u32)]) -> Lb {
        let dir = std::env::temp_dir().join(format!("halb-day2-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "s3cret-token\n").unwrap();
        let file = dir.join("lb.toml");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        std::fs::write(&file, lb_config(admin, listen, &dir, backends, true)).unwrap();
        let log = std::fs::File::create(dir.join("lb.log")).unwrap();
        let child = ChildGuard::spawn(
            Command::new(env!("CARGO_BIN_EXE_ha-lb"))
                .args([
                    "run",
                    "--no-supervisor",
                    "--log-format",
                    "json",
                    "--drain-timeout-ms",
                    "500",
                    "--config",
                ])
                .arg(&file)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stderr(log),
            Duration::from_secs(10),
        );
        let lb = Lb {
            child,
            dir,
            file,
            admin,
            listen,
        };
        // The listener binds before the admin endpoint does: wait for both.
        assert!(
            wait_until(Duration::from_secs(10), || open(lb.listen).is_some()
                && TcpStream::connect(lb.admin).is_ok()),
            "{}",
            lb.log()
        );
        lb
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("lb.log")).unwrap_or_default()
    }

    /// Runs `ha-lb ctl --config FILE ARGS`: (success, stdout + stderr).
    fn ctl(&self, args: &[&str]) -> (bool, String) {
        ctl(Some(&self.file), args)
    }

    /// Configuration loads so far (applied and rejected), from `/metrics`; `None` while the
    /// endpoint does not answer (a reload that changes `[admin]` restarts it).
    fn loads(&self) -> Option<u64> {
        Some(
            self.metrics()?
                .lines()
                .filter(|l| l.starts_with("ha_lb_config_reload_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum(),
        )
    }

    /// Writes `text` to the file, sends SIGHUP and waits until the load is counted.
    fn reload(&self, text: &str) {
        let before = self.loads().expect("the admin endpoint answers");
        std::fs::write(&self.file, text).unwrap();
        self.child.signal(Signal::SIGHUP);
        assert!(
            wait_until(Duration::from_secs(10), || self
                .loads()
                .is_some_and(|n| n > before)),
            "{}",
            self.log()
        );
    }

    fn backend_status(&self, addr: SocketAddr) -> ha_lb::status::BackendStatus {
        let s = ha_lb::status::fetch(self.admin).unwrap();
        s.pools[0]
            .backends
            .iter()
            .find(|b| b.address == addr.to_string())
            .cloned()
            .unwrap()
    }

    fn metrics(&self) -> Option<String> {
        let mut s = TcpStream::connect(self.admin).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
        let mut t = String::new();
        s.read_to_string(&mut t).ok()?;
        Some(t)
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        self.child.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ctl(config: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ha-lb"));
    cmd.arg("ctl");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn ctl_help_lists_the_commands() {
    let _serial = crate::netns::serial();
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["ctl", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("backend") && text.contains("instance"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["ctl", "backend", "web", "192.0.2.1:80", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["drain", "disable", "enable", "weight"] {
        assert!(text.contains(cmd), "{cmd} not in\n{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["ctl", "instance", "VI_1", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("maintenance"));
}

/// Drain, weight, disable and enable through `ha-lb ctl`, with the token; kept across a
/// SIGHUP that leaves the backend alone, ended by one that changes it; the connection log in
/// JSON; reload metrics.
#[test]
fn backend_control_is_kept_across_reload_until_the_file_changes_the_backend() {
    let _serial = serial();
    let (a, _sa) = backend("a");
    let (b, _sb) = backend("b");
    let lb = Lb::start("ctl", &[(a, 1), (b, 1)]);
    let a_s = a.to_string();
    assert_eq!(names(&spread(lb.listen, 10)), ["a", "b"]);

    // Without the token: refused, and nothing changes.
    let (ok, out) = ctl(
        None,
        &[
            "--admin",
            &lb.admin.to_string(),
            "backend",
            "web",
            &a_s,
            "drain",
        ],
    );
    assert!(!ok && out.contains("401"), "{out}");
    assert_eq!(lb.backend_status(a).state, "up");
    // A wrong token: refused too.
    let wrong = lb.dir.join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let (ok, out) = ctl(
        None,
        &[
            "--admin",
            &lb.admin.to_string(),
            "--token-file",
            wrong.to_str().unwrap(),
            "backend",
            "web",
            &a_s,
            "drain",
        ],
    );
    assert!(!ok && out.contains("401"), "{out}");

    // Drain a: an open connection to it stays, new ones go to b.
    let (name, mut on_a) = loop {
        let (n, r) = open(lb.listen).unwrap();
        if n == "a" {
            break (n, r);
        }
    };
    assert_eq!(name, "a");
    let (ok, out) = lb.ctl(&["backend", "web", &a_s, "drain"]);
    assert!(ok, "{out}");
    assert!(out.contains("drain"), "{out}");
    assert_eq!(names(&spread(lb.listen, 10)), ["b"]);
    assert!(!closed_within(&mut on_a, Duration::from_millis(300)));
    let st = lb.backend_status(a);
    assert_eq!(
        (st.state.as_str(), st.admin.as_deref()),
        ("drain", Some("drain"))
    );
    assert_eq!(st.active, 1);

    // Unknown pool or backend: a clear refusal.
    let (ok, out) = lb.ctl(&["backend", "nope", &a_s, "drain"]);
    assert!(!ok && out.contains("no pool \"nope\""), "{out}");
    let (ok, out) = lb.ctl(&["backend", "web", "127.0.0.1:1", "drain"]);
    assert!(!ok && out.contains("has no backend"), "{out}");

    // A SIGHUP that leaves a alone keeps the drain (b's weight changes: a's entry does not).
    lb.reload(&lb.config(&[(a, 1), (b, 2)], true));
    assert_eq!(lb.backend_status(a).admin.as_deref(), Some("drain"));
    assert_eq!(names(&spread(lb.listen, 10)), ["b"]);

    // Weight: b to 0 leaves no backend, a's drain holds.
    let (ok, out) = lb.ctl(&["backend", "web", &b.to_string(), "weight", "0"]);
    assert!(ok, "{out}");
    assert!(spread(lb.listen, 3).is_empty());
    assert_eq!(lb.backend_status(b).weight, 0);
    let (ok, _) = lb.ctl(&["backend", "web", &b.to_string(), "weight", "1001"]);
    assert!(!ok);

    // Enable a: traffic again, only to a.
    let (ok, out) = lb.ctl(&["backend", "web", &a_s, "enable"]);
    assert!(ok, "{out}");
    assert_eq!(names(&spread(lb.listen, 6)), ["a"]);

    // Disable a with a grace: the open connection is closed once the grace has passed, not
    // before.
    let (ok, out) = lb.ctl(&["backend", "web", &a_s, "disable", "--grace-ms", "700"]);
    assert!(ok, "{out}");
    assert!(!closed_within(&mut on_a, Duration::from_millis(200)));
    assert!(
        closed_within(&mut on_a, Duration::from_secs(5)),
        "{}",
        lb.log()
    );
    assert_eq!(lb.backend_status(a).state, "maintenance");

    // A SIGHUP that changes a (its weight) ends the operator's change to it; b's weight 0
    // stays (the file did not change b).
    lb.reload(&lb.config(&[(a, 3), (b, 2)], true));
    let st = lb.backend_status(a);
    assert_eq!(
        (st.state.as_str(), st.admin.as_deref(), st.weight),
        ("up", None, 3)
    );
    assert_eq!(lb.backend_status(b).admin.as_deref(), Some("weight 0"));
    assert_eq!(names(&spread(lb.listen, 6)), ["a"]);
    // Setting b back to the file's weight ends that change too.
    let (ok, _) = lb.ctl(&["backend", "web", &b.to_string(), "weight", "2"]);
    assert!(ok);
    assert_eq!(lb.backend_status(b).admin, None);

    // A broken file: rejected and counted.
    lb.reload("this is not toml");
    let m = lb.metrics().expect("the admin endpoint answers");
    for line in [
        "ha_lb_config_reload_total{result=\"success\"} 3",
        "ha_lb_config_reload_total{result=\"failure\"} 1",
        "ha_lb_config_last_reload_success_timestamp_seconds ",
        "ha_lb_build_info{version=",
        "ha_lb_connection_log_dropped_total 0",
    ] {
        assert!(m.contains(line), "no {line} in\n{m}");
    }

    // The connection log: JSON lines, one per connection, with the fields asked for.
    drop(on_a);
    let log = lb.log();
    let records: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "ha_lb::connection")
        .collect();
    assert!(records.len() >= 40, "{} records\n{log}", records.len());
    let disabled = records
        .iter()
        .find(|r| r["end"] == "disabled")
        .unwrap_or_else(|| panic!("no disabled record in\n{log}"));
    assert_eq!(disabled["backend"], a_s.as_str());
    assert_eq!(disabled["listener"], "web");
    assert_eq!(disabled["pool"], "web");
    assert!(disabled["duration_ms"].as_f64().unwrap() > 700.0);
    assert!(records.iter().any(|r| r["end"] == "no_backend"));
    let closed = records
        .iter()
        .find(|r| r["end"] == "client_closed")
        .unwrap();
    for key in ["client", "connect_ms", "bytes_in", "bytes_out", "tried"] {
        assert!(!closed[key].is_null(), "no {key} in {closed}");
    }
    assert_eq!(closed["bytes_out"], 2, "a name and a newline");
    // Every line is JSON, none has ANSI colours (stderr is a file).
    assert!(!log.contains('\u{1b}'));
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
}

#[test]
fn control_off_refuses_writes() {
    let _serial = serial();
    let (a, _sa) = backend("a");
    let lb = Lb::start("off", &[(a, 1)]);
    lb.reload(&lb.config(&[(a, 1)], false));
    let (ok, out) = lb.ctl(&["backend", "web", &a.to_string(), "drain"]);
    assert!(
        !ok && out.contains("403") && out.contains("control is off"),
        "{out}"
    );
    assert_eq!(lb.backend_status(a).state, "up");
}

// ---- maintenance: two nodes in namespaces ----

fn vrrp_config(priority: u32) -> String {
    format!(
        "[admin]\nlisten = \"{ADMIN}\"\ncontrol = true\n\n\
         [instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval_ms = 100\npreempt = true\nvips = [\"{VIP}/24\"]\n\
         garp = {{ master_delay_ms = 0 }}\n"
    )
}

fn instance(ns: &Netns) -> Option<ha_lb::status::InstanceStatus> {
    topo::instance(ns, "VI_1")
}

fn state(ns: &Netns) -> Option<String> {
    topo::state(ns, "VI_1")
}

/// Maintenance on hands the VIP over at once (priority 0: lb2 within its Skew_Time plus a
/// margin, far below Master_Down_Interval) and keeps lb1 Backup although it has the higher
/// priority and preempts, across a SIGHUP too; off lets it preempt back.
#[test]
fn maintenance_hands_over_and_stays_backup_until_off() {
    let _serial = serial();
    if !Netns::available("maint") {
        return;
    }
    let lan = Lan::new("maint", 2, true);
    let dir = std::env::temp_dir().join(format!("halb-day2-maint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let start = |i: usize, priority: u32| {
        let file = dir.join(format!("lb{i}.toml"));
        std::fs::write(&file, vrrp_config(priority)).unwrap();
        let log = std::fs::File::create(dir.join(format!("lb{i}.log"))).unwrap();
        let mut cmd = lan.nodes[i].command(env!("CARGO_BIN_EXE_ha-lb"));
        cmd.args(["run", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        (ChildGuard::spawn(&mut cmd, Duration::from_secs(10)), file)
    };
    let dump = || {
        (0..2)
            .map(|i| {
                format!(
                    "===== lb{i} =====\n{}",
                    std::fs::read_to_string(dir.join(format!("lb{i}.log"))).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (lb1, file1) = start(0, 150);
    let (_lb2, _) = start(1, 100);
    let (n1, n2) = (&lan.nodes[0], &lan.nodes[1]);
    assert!(
        wait_until(Duration::from_secs(15), || state(n1).as_deref()
            == Some("Master")
            && state(n2).as_deref() == Some("Backup")),
        "{}",
        dump()
    );
    let ctl_in = |ns: &Netns, on: &str| {
        let out = ns
            .command(env!("CARGO_BIN_EXE_ha-lb"))
            .args(["ctl", "instance", "VI_1", "maintenance", on])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let before = instance(n2).unwrap().counters.master_transitions;
    let asked = Instant::now();
    ctl_in(n1, "on");
    // lb2 hears priority 0 and takes over after its Skew_Time (0.61 * 100 ms... 60 ms),
    // not after Master_Down_Interval (361 ms).
    assert!(
        wait_until(Duration::from_secs(5), || n2.has_address("eth0", VIP)),
        "{}",
        dump()
    );
    let took = asked.elapsed();
    eprintln!(
        "maintenance on: lb2 holds the VIP after {} ms",
        took.as_millis()
    );
    assert!(
        took < Duration::from_millis(300),
        "{} ms\n{}",
        took.as_millis(),
        dump()
    );
    assert_eq!(
        instance(n2).unwrap().counters.master_transitions,
        before + 1
    );
    // lb1 stays Backup (it would preempt otherwise), shows maintenance, holds no VIP.
    thread::sleep(Duration::from_secs(1));
    let i1 = instance(n1).unwrap();
    assert_eq!(
        (i1.state.as_str(), i1.maintenance),
        ("Backup", true),
        "{}",
        dump()
    );
    assert!(!n1.has_address("eth0", VIP));
    // A SIGHUP (the file unchanged, and then changed in place) keeps it.
    std::fs::write(&file1, vrrp_config(160)).unwrap();
    lb1.signal(Signal::SIGHUP);
    thread::sleep(Duration::from_secs(1));
    let i1 = instance(n1).unwrap();
    assert_eq!(
        (i1.state.as_str(), i1.maintenance),
        ("Backup", true),
        "{}",
        dump()
    );
    assert_eq!(state(n2).as_deref(), Some("Master"));
    // Off: lb1 preempts back.
    ctl_in(n1, "off");
    assert!(
        wait_until(Duration::from_secs(5), || state(n1).as_deref()
            == Some("Master")
            && n1.has_address("eth0", VIP)
            && !n2.has_address("eth0", VIP)),
        "{}",
        dump()
    );
    assert!(!instance(n1).unwrap().maintenance);
    drop(lb1);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- scripts and privileges ----

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `ha-lb sandbox` (how exec checks and notify commands run) leaves the command no
/// capability: in a namespace where root adds an address, the same command through the
/// sandbox cannot; `--run-as` changes the user and group.
#[test]
fn sandboxed_commands_cannot_add_an_address_when_ha_lb_can() {
    let _serial = serial();
    if !Netns::available("sandbox") {
        return;
    }
    let ns = Netns::new("sandbox").unwrap();
    let run = |sandbox: bool, args: &[&str]| {
        let mut cmd = ns.command(env!("CARGO_BIN_EXE_ha-lb"));
        if !sandbox {
            cmd = ns.command(args[0]);
            cmd.args(&args[1..]);
        } else {
            cmd.args(["sandbox", "--"]).args(args);
        }
        cmd.output().unwrap()
    };
    let out = run(true, &["ip", "addr", "add", "198.51.100.9/32", "dev", "lo"]);
    assert!(
        !out.status.success(),
        "the sandboxed command added an address"
    );
    assert!(!ns
        .ip(&["addr", "show", "dev", "lo"])
        .contains("198.51.100.9"));
    let out = run(
        false,
        &["ip", "addr", "add", "198.51.100.9/32", "dev", "lo"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(ns
        .ip(&["addr", "show", "dev", "lo"])
        .contains("198.51.100.9"));
    // Every set empty, and the bounding set too (nothing to regain from a setuid program).
    let out = run(true, &["grep", "^Cap", "/proc/self/status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(set) && l.ends_with("0000000000000000")),
            "{set} not empty:\n{text}"
        );
    }
    let out = ns
        .command(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["sandbox", "--run-as", "nobody", "--", "id"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("uid=65534"), "{text}");
    assert!(
        !text.contains("(root)"),
        "supplementary groups left: {text}"
    );
}

/// `ha-lb run`: a notify command cannot add an address while ha-lb adds the VIP; an exec
/// check with `run_as` runs as that user, without capabilities.
#[test]
fn notify_and_check_commands_run_without_capabilities() {
    let _serial = serial();
    if !Netns::available("scriptcaps") {
        return;
    }
    let lan = Lan::new("scriptcaps", 1, true);
    let ns = &lan.nodes[0];
    let dir = std::env::temp_dir().join(format!("halb-day2-scripts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The check (as nobody) writes here.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let notify_out = dir.join("notify.out");
    let check_out = dir.join("check.out");
    let config = format!(
        "[admin]\nlisten = \"{ADMIN}\"\n\n\
         [checks.caps]\nkind = \"exec\"\ninterval_ms = 100\nrun_as = \"nobody\"\n\
         command = [\"/bin/sh\", \"-c\", \"(id -u; grep ^CapEff /proc/self/status) > {check}\"]\n\n\
         [instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\npriority = 150\n\
         advert_interval_ms = 100\nvips = [\"{VIP}/24\"]\n\
         track_checks = [{{ check = \"caps\", weight = -10 }}]\n\
         notify.master = [\"/bin/sh\", \"-c\", \"ip addr add 198.51.100.7/32 dev eth0; echo $? > {notify}\"]\n",
        check = check_out.display(),
        notify = notify_out.display(),
    );
    let file = dir.join("lb.toml");
    std::fs::write(&file, config).unwrap();
    let log = std::fs::File::create(dir.join("lb.log")).unwrap();
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_ha-lb"));
    cmd.args(["run", "--config"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let _lb = ChildGuard::spawn(&mut cmd, Duration::from_secs(10));
    let log = || std::fs::read_to_string(dir.join("lb.log")).unwrap_or_default();
    // The check runs again every interval and rewrites its file: keep what was read whole.
    let check = std::cell::RefCell::new(String::new());
    assert!(
        wait_until(Duration::from_secs(15), || ns.has_address("eth0", VIP)
            && std::fs::read_to_string(&notify_out)
                .is_ok_and(|t| !t.trim().is_empty())
            && std::fs::read_to_string(&check_out).is_ok_and(|t| t
                .contains("CapEff")
                && {
                    *check.borrow_mut() = t;
                    true
                })),
        "{}",
        log()
    );
    let status = std::fs::read_to_string(&notify_out).unwrap();
    assert_ne!(status.trim(), "0", "the notify command added an address");
    assert!(!ns
        .ip(&["addr", "show", "dev", "eth0"])
        .contains("198.51.100.7"));
    let check = check.into_inner();
    assert!(check.starts_with("65534\n"), "{check}");
    assert!(check.trim_end().ends_with("0000000000000000"), "{check}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// As root, a program another user can change is refused, with the file named.
#[test]
fn script_writable_by_another_user_is_refused() {
    let _serial = serial();
    if !is_root() {
        eprintln!("script_writable_by_another_user_is_refused: needs root; skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("halb-day2-insecure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&script, Some(65534), None).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = |script: &Path| {
        format!(
            "[checks.c]\nkind = \"exec\"\ncommand = [\"{}\"]\n\n\
             [listeners.web]\nlisten = \"{listen}\"\npool = \"web\"\nnon_local_bind = false\n\n\
             [pools.web]\n[[pools.web.backends]]\naddress = \"127.0.0.1:9\"\ncheck = \"c\"\n",
            script.display()
        )
    };
    let file = dir.join("lb.toml");
    std::fs::write(&file, config(&script)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["run", "--no-supervisor", "--config"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refusing to run") && err.contains(&script.display().to_string()),
        "{err}"
    );
    assert!(err.contains("owned by uid 65534"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- accept_mode = false over netlink ----

/// The table ha-lb makes over netlink is, as `nft` lists it, the very table its `nft` script
/// makes; replacing it (other addresses, one family only) and removing it work the same.
#[test]
fn nf_tables_over_netlink_matches_the_nft_script() {
    let _serial = serial();
    if !netns::tool_available(
        "nf_tables_over_netlink_matches_the_nft_script",
        "nft",
        "nftables",
    ) || !Netns::available("nftnl")
    {
        return;
    }
    let (ours, theirs) = (
        Netns::new("nftnl-a").unwrap(),
        Netns::new("nftnl-b").unwrap(),
    );
    let sets: [Vec<std::net::IpAddr>; 4] = [
        vec![
            "192.0.2.100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
            "192.0.2.101".parse().unwrap(),
        ],
        vec!["2001:db8::7".parse().unwrap()],
        vec!["198.51.100.1".parse().unwrap()],
        vec![],
    ];
    for addresses in sets {
        let a = addresses.clone();
        ours.run(move || ha_lb::net::firewall::apply(&a)).unwrap();
        let script = ha_lb::net::firewall::ruleset(&addresses);
        theirs.nft_apply(&script);
        let (got, want) = (ours.nft_table("ha_lb"), theirs.nft_table("ha_lb"));
        assert_eq!(got, want, "for {addresses:?}");
        for a in &addresses {
            assert!(got.contains(&a.to_string()), "{got}");
        }
        assert_eq!(got.is_empty(), addresses.is_empty(), "{got}");
    }
}

/// `ha-lb run` with `accept_mode = false` and no `nft` anywhere on its PATH: the VIP is held
/// and traffic to it dropped, the host address still answers; a stop removes the table.
#[test]
fn accept_mode_off_needs_no_nft_program() {
    let _serial = serial();
    if !netns::tool_available("accept_mode_off_needs_no_nft_program", "nft", "nftables")
        || !Netns::available("amnl")
    {
        return;
    }
    let lan = Lan::new("amnl", 2, true);
    let (lb, client) = (&lan.nodes[0], &lan.nodes[1]);
    let dir = std::env::temp_dir().join(format!("halb-day2-amnl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A server on the node, on every address.
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let server = lb.spawn(move || {
        let l = TcpListener::bind("0.0.0.0:8080").unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !flag.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(b"here\n");
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    rx.recv().unwrap();
    let file = dir.join("lb.toml");
    std::fs::write(
        &file,
        format!(
            "[admin]\nlisten = \"{ADMIN}\"\n\n[instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\n\
             priority = 150\nadvert_interval_ms = 100\naccept_mode = false\n\
             vips = [\"{VIP}/24\"]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("lb.log")).unwrap();
    let mut cmd = lb.command("/usr/bin/env");
    cmd.args([
        "PATH=/nonexistent",
        env!("CARGO_BIN_EXE_ha-lb"),
        "run",
        "--config",
    ])
    .arg(&file)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log);
    let mut node = ChildGuard::spawn(&mut cmd, Duration::from_secs(10));
    let logs = || std::fs::read_to_string(dir.join("lb.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(15), || lb.has_address("eth0", VIP)),
        "{}",
        logs()
    );
    let ask = |to: &str| {
        let to: SocketAddr = to.parse().unwrap();
        client.run(move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(300)).ok()?;
            s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
            let mut t = String::new();
            s.read_to_string(&mut t).ok()?;
            Some(t)
        })
    };
    assert_eq!(ask("192.0.2.1:8080").as_deref(), Some("here\n"));
    assert_eq!(ask(&format!("{VIP}:8080")), None, "{}", logs());
    assert!(
        lb.nft_table("ha_lb").contains(VIP),
        "{}",
        lb.nft_table("ha_lb")
    );
    assert!(node.stop(), "{}", logs());
    assert!(
        lb.nft_table("ha_lb").is_empty(),
        "table left: {}",
        lb.nft_table("ha_lb")
    );
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&dir);
}
