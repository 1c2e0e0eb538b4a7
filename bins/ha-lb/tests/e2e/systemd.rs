//! End to end: the systemd notification protocol and the admin probes (`/healthz`, `/readyz`)
//! of a real `ha-lb run`, in a network namespace of its own. systemd is played by a unix
//! datagram socket named by `NOTIFY_SOCKET` (a path: abstract names are per network
//! namespace), with `WATCHDOG_USEC` set as systemd sets it for `WatchdogSec=`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::netns;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use netns::{wait_until, ChildGuard, Netns};
use nix::sys::signal::Signal;

use crate::netns::serial;
use crate::topo::{admin_get, halb_run, kill, worker_pid};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("halb-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fake systemd: every message ha-lb sends, with when it arrived.
struct FakeSystemd {
    socket: UnixDatagram,
    path: PathBuf,
}

impl FakeSystemd {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        FakeSystemd { socket, path }
    }

    /// Messages received until `until` holds for one of them, or `timeout`.
    fn wait_for(&self, timeout: Duration, until: impl Fn(&str) -> bool) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = until(&m);
                got.push((Instant::now(), m));
                if done {
                    break;
                }
            }
        }
        got
    }

    /// Every message received during `d`.
    fn collect(&self, d: Duration) -> Vec<(Instant, String)> {
        self.wait_for(d, |_| false)
    }
}

fn start(
    ns: &Netns,
    config: &Path,
    notify: Option<&Path>,
    watchdog: Option<Duration>,
) -> ChildGuard {
    let mut cmd = halb_run(ns, config, Duration::from_millis(200));
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    if let Some(p) = notify {
        cmd.env("NOTIFY_SOCKET", p);
    }
    if let Some(w) = watchdog {
        cmd.env("WATCHDOG_USEC", w.as_micros().to_string());
    }
    ChildGuard::spawn(&mut cmd, Duration::from_secs(5))
}

/// A balancer-only node (no VRRP): a listener on loopback and the admin endpoint.
const BALANCER_ONLY: &str = r#"
[listeners.web]
listen = "127.0.0.1:8080"
pool = "web"

[pools.web]
backends = [{ address = "127.0.0.1:8081" }]

[admin]
listen = "127.0.0.1:9555"
"#;

/// READY=1 once up; WATCHDOG=1 at half the watchdog timeout from the worker's loop, and none
/// while the worker is frozen (so systemd would restart the service); RELOADING=1 then READY=1
/// around SIGHUP; STOPPING=1 on SIGTERM. With and without the supervisor.
#[test]
fn notifies_systemd_ready_reloading_watchdog_stopping() {
    let _serial = serial();
    if !Netns::available("notifies_systemd_ready_reloading_watchdog_stopping") {
        return;
    }
    for supervised in [true, false] {
        let ns = Netns::new("sdn").unwrap();
        let dir = TempDir::new(&format!("sdn-{supervised}"));
        let config = dir.write("ha-lb.toml", BALANCER_ONLY);
        let systemd = FakeSystemd::bind(&dir.0);
        let watchdog = Duration::from_millis(400);
        let mut node = if supervised {
            start(&ns, &config, Some(&systemd.path), Some(watchdog))
        } else {
            let mut cmd = ns.command(&netns::halb_binary());
            cmd.args(["run", "--no-supervisor", "--config"])
                .arg(&config)
                .env("NOTIFY_SOCKET", &systemd.path)
                .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
                .stdin(Stdio::null());
            ChildGuard::spawn(&mut cmd, Duration::from_secs(5))
        };
        let what = if supervised {
            "supervised"
        } else {
            "--no-supervisor"
        };

        let got = systemd.wait_for(Duration::from_secs(10), |m| m.contains("READY=1"));
        assert!(
            got.iter().any(|(_, m)| m.lines().any(|l| l == "READY=1")),
            "{what}: no READY=1: {got:?}"
        );
        // READY only once the listener is bound and the admin endpoint answers ready.
        let (code, body) = admin_get(&ns, "/readyz").expect("admin endpoint answers after READY=1");
        assert_eq!(code, 200, "{what}: /readyz after READY=1: {body}");
        let (code, body) = admin_get(&ns, "/healthz").unwrap();
        assert_eq!((code, body.as_str()), (200, "ok\n"), "{what}: /healthz");

        // Watchdog: pings every 200 ms (half of 400 ms), from the event loop.
        let pings: Vec<Instant> = systemd
            .collect(Duration::from_millis(1500))
            .into_iter()
            .filter(|(_, m)| m == "WATCHDOG=1")
            .map(|(t, _)| t)
            .collect();
        assert!(
            (5..=10).contains(&pings.len()),
            "{what}: expected about 7 WATCHDOG=1 in 1.5 s at 200 ms, got {}",
            pings.len()
        );
        let longest = pings.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(
            longest < watchdog,
            "{what}: watchdog pings {longest:?} apart, beyond the {watchdog:?} timeout"
        );

        // A frozen worker (a hung event loop) sends no more pings: systemd would restart it.
        let frozen = if supervised {
            worker_pid(node.pid()).unwrap()
        } else {
            i32::try_from(node.pid()).unwrap()
        };
        kill(frozen, Signal::SIGSTOP);
        let _ = systemd.collect(Duration::from_millis(100)); // in flight
        let during = systemd.collect(Duration::from_millis(1000));
        kill(frozen, Signal::SIGCONT);
        assert!(
            !during.iter().any(|(_, m)| m == "WATCHDOG=1"),
            "{what}: WATCHDOG=1 sent while the worker was frozen: {during:?}"
        );
        let again = systemd.wait_for(Duration::from_secs(2), |m| m == "WATCHDOG=1");
        assert!(
            again.iter().any(|(_, m)| m == "WATCHDOG=1"),
            "{what}: no WATCHDOG=1 after SIGCONT"
        );

        // Reload: RELOADING=1 (with MONOTONIC_USEC) then READY=1.
        node.signal(Signal::SIGHUP);
        let got = systemd.wait_for(Duration::from_secs(5), |m| m.starts_with("READY=1"));
        let texts: Vec<&str> = got
            .iter()
            .map(|(_, m)| m.as_str())
            .filter(|m| *m != "WATCHDOG=1")
            .collect();
        assert_eq!(texts.len(), 2, "{what}: around SIGHUP: {texts:?}");
        assert!(
            texts[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{what}: {texts:?}"
        );
        assert!(texts[1].starts_with("READY=1"), "{what}: {texts:?}");

        node.signal(Signal::SIGTERM);
        let got = systemd.wait_for(Duration::from_secs(5), |m| m.contains("STOPPING=1"));
        assert!(
            got.iter().any(|(_, m)| m.contains("STOPPING=1")),
            "{what}: no STOPPING=1: {got:?}"
        );
        assert!(wait_until(Duration::from_secs(5), || node.has_exited()));
    }
}

/// Without NOTIFY_SOCKET (not under systemd) ha-lb runs as before and sends nothing.
#[test]
fn runs_without_systemd() {
    let _serial = serial();
    if !Netns::available("runs_without_systemd") {
        return;
    }
    let ns = Netns::new("sdx").unwrap();
    let dir = TempDir::new("sdx");
    let config = dir.write("ha-lb.toml", BALANCER_ONLY);
    let _node = start(&ns, &config, None, Some(Duration::from_millis(200)));
    assert!(wait_until(Duration::from_secs(10), || admin_get(
        &ns, "/readyz"
    )
    .is_some_and(|(c, _)| c == 200)));
    assert_eq!(admin_get(&ns, "/healthz").unwrap().0, 200);
}

/// `/readyz` names what is missing: an instance whose interface does not exist yet keeps it
/// 503 with the instance and the interface in the body, until the interface appears with its
/// address; `/healthz` is 200 all along (the event loop answers). Both stay cheap: 200 probes
/// in a row answer within a bound.
#[test]
fn readyz_names_what_is_missing() {
    let _serial = serial();
    if !Netns::available("readyz_names_what_is_missing") {
        return;
    }
    let ns = Netns::new("rdz").unwrap();
    let dir = TempDir::new("rdz");
    let config = dir.write(
        "ha-lb.toml",
        r#"
[instances.VI_1]
interface = "late0"
vrid = 51
priority = 100
advert_interval_ms = 100
vips = ["192.0.2.100/24"]

[listeners.web]
listen = "127.0.0.1:8080"
pool = "web"

[pools.web]
backends = [{ address = "127.0.0.1:8081" }]

[admin]
listen = "127.0.0.1:9555"
"#,
    );
    let _node = start(&ns, &config, None, None);
    // While it starts: 503 "starting"; then 503 naming the instance.
    assert!(wait_until(Duration::from_secs(10), || admin_get(
        &ns, "/readyz"
    )
    .is_some_and(|(_, b)| !b.contains("starting"))));
    let (code, body) = admin_get(&ns, "/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("instance VI_1: not running (waiting for interface late0)"),
        "{body}"
    );
    assert!(!body.contains("listener"), "the listener is bound: {body}");
    assert_eq!(admin_get(&ns, "/healthz").unwrap().0, 200);

    // A veth pair inside the namespace (no dummy module on every kernel): both ends up give
    // late0 a carrier.
    ns.ip(&[
        "link", "add", "late0", "type", "veth", "peer", "name", "late0p",
    ]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "late0"]);
    ns.ip(&["link", "set", "late0p", "up"]);
    ns.ip(&["link", "set", "late0", "up"]);
    assert!(
        wait_until(Duration::from_secs(5), || admin_get(&ns, "/readyz")
            .is_some_and(|(c, _)| c == 200)),
        "/readyz stays 503 once late0 exists: {:?}",
        admin_get(&ns, "/readyz")
    );
    let (_, body) = admin_get(&ns, "/readyz").unwrap();
    assert_eq!(body, "ok: 1 instance(s), 1 listener(s) running\n");

    let t = Instant::now();
    for _ in 0..100 {
        assert_eq!(admin_get(&ns, "/healthz").unwrap().0, 200);
        assert_eq!(admin_get(&ns, "/readyz").unwrap().0, 200);
    }
    let each = t.elapsed() / 200;
    println!("probe round trip: {each:?} each");
    assert!(
        each < Duration::from_millis(20),
        "probes take {each:?} each"
    );
}
