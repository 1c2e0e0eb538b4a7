//! Network namespaces for tests: made by the test, torn down by a Drop guard (also when the
//! test panics), uniquely named so tests run in parallel.
//!
//! Include it from a test file with
//! `#[path = "support/netns.rs"] mod netns;`.
//!
//! How code runs inside a namespace: [`Netns::run`] runs a closure on a fresh thread that
//! `setns(2)`s itself into the namespace. A network namespace is per thread, and sockets keep
//! the namespace they were created in, so a socket made inside `run` can be returned and used
//! from the test's own thread. External tools (`ip`, `tcpdump`, ha-lb itself) run with
//! [`Netns::command`], i.e. `ip netns exec`.
//!
//! Without the right to make namespaces, [`Netns::available`] prints why and returns `false`
//! so the test can return early, except when `CI=true`: there it panics, so a CI run never
//! passes by skipping.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part

use std::fs::File;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One network namespace, deleted on drop with everything still running in it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

fn run_ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"))
}

/// Whether `program` runs (`program --version`). Prints why not and returns `false` so the test
/// can return early, except when `CI=true`: there it panics, naming the Debian `package`.
pub fn tool_available(test: &str, program: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {program} is required in CI (Debian package {package})"
        );
        eprintln!("SKIPPED {test}: {program} is not installed");
    }
    found
}

impl Netns {
    /// Whether this process can make network namespaces. Prints the reason when it cannot;
    /// panics instead when `CI=true`.
    pub fn available(test: &str) -> bool {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        let probe = PROBE.get_or_init(|| match Netns::new("probe") {
            Ok(ns) => {
                drop(ns);
                Ok(())
            }
            Err(e) => Err(e),
        });
        match probe {
            Ok(()) => true,
            Err(reason) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{test}: network namespaces are required in CI but cannot be made: {reason}"
                );
                eprintln!("SKIPPED {test}: cannot make network namespaces ({reason})");
                false
            }
        }
    }

    /// Makes a namespace named `halb-<tag>-<pid>-<n>`, with `lo` up and IPv6 DAD off (so
    /// link-local addresses are usable at once).
    pub fn new(tag: &str) -> Result<Self, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("halb-{tag}-{}-{n}", std::process::id());
        let out = run_ip(&["netns", "add", &name]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        Ok(ns)
    }

    /// The namespace's name (for `ip -n`, `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...`; panics with its stderr when it fails. Returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        let out = run_ip(&all);
        assert!(
            out.status.success(),
            "ip {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `ifname` in the namespace has the address `addr` (with any prefix length).
    pub fn has_address(&self, ifname: &str, addr: &str) -> bool {
        self.ip(&["-o", "addr", "show", "dev", ifname])
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// `nft list table inet TABLE` in the namespace, blank lines left out (empty when there is
    /// no such table).
    pub fn nft_table(&self, table: &str) -> String {
        let out = self
            .command("nft")
            .args(["list", "table", "inet", table])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Loads an `nft -f` script in the namespace; panics with the script when nft refuses it.
    pub fn nft_apply(&self, script: &str) {
        let mut nft = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        nft.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "{script}");
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let v = value.to_owned();
        self.run(move || std::fs::write(&path, v))
            .unwrap_or_else(|e| panic!("sysctl {key}={value}: {e}"));
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has joined the namespace, and returns what it returns.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Starts `f` on a thread that has joined the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
    }

    /// The index of interface `ifname` in the namespace.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        let name = ifname.to_owned();
        self.run(move || nix::net::if_::if_nametoindex(name.as_str()))
            .unwrap_or_else(|e| panic!("no interface {ifname} in {}: {e}", self.name))
    }

    /// The MAC address of `ifname`, as `ip` prints it.
    pub fn mac(&self, ifname: &str) -> String {
        let out = self.ip(&["-o", "link", "show", "dev", ifname]);
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC in {out}"))
            .to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes the test left in the namespace, by PID.
        let pids = run_ip(&["netns", "pids", &self.name]);
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let out = run_ip(&["netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!(
                "cannot delete namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Joins `a_if` in `a` and `b_if` in `b` with a veth pair, with fixed MACs `02:00:00:00:xx:01`
/// and `...:02` (`xx` from `id`), both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str, id: u8) {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.ip(&[
        "link",
        "set",
        a_if,
        "address",
        &format!("02:00:00:00:{id:02x}:01"),
    ]);
    b.ip(&[
        "link",
        "set",
        b_if,
        "address",
        &format!("02:00:00:00:{id:02x}:02"),
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A LAN: one namespace holding bridge `br0`, and `n` node namespaces each with `eth0` on it.
/// Node `i` (from 0) gets 192.0.2.(i+1)/24 and 2001:db8::(i+1)/64 unless `addresses` is off.
#[derive(Debug)]
pub struct Lan {
    /// The node namespaces.
    pub nodes: Vec<Netns>,
    /// The namespace of the bridge (dropped last).
    pub switch: Netns,
}

impl Lan {
    /// Builds the LAN.
    pub fn new(tag: &str, n: usize, addresses: bool) -> Self {
        let switch = Netns::new(&format!("{tag}-sw")).expect("switch namespace");
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        // No multicast snooping: VRRP groups reach every port without IGMP/MLD state.
        switch.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        switch.ip(&["link", "set", "br0", "up"]);
        let mut nodes = Vec::new();
        for i in 0..n {
            let node = Netns::new(&format!("{tag}-n{i}")).expect("node namespace");
            let port = format!("p{i}");
            veth(&node, "eth0", &switch, &port, u8::try_from(i + 1).unwrap());
            switch.ip(&["link", "set", &port, "master", "br0"]);
            if addresses {
                node.ip(&[
                    "addr",
                    "add",
                    &format!("192.0.2.{}/24", i + 1),
                    "dev",
                    "eth0",
                ]);
                node.ip(&[
                    "addr",
                    "add",
                    &format!("2001:db8::{}/64", i + 1),
                    "dev",
                    "eth0",
                    "nodad",
                ]);
            }
            nodes.push(node);
        }
        Lan { nodes, switch }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(Duration::from_millis(10), timeout, cond)
}

/// Polls `cond` every `every` until it holds or `timeout` passes; returns whether it held.
/// For conditions that cost a process each time (`ip addr`) where tens of milliseconds of
/// resolution are enough.
pub fn wait_until_every(
    every: Duration,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(every);
    }
}

/// A child process (e.g. started with [`Netns::command`]) stopped on drop, by its PID: SIGTERM,
/// then SIGKILL after `grace`. `ip netns exec` execs the program, so the PID is the program's.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    grace: Duration,
}

impl ChildGuard {
    /// Spawns `cmd` and guards it.
    pub fn spawn(cmd: &mut Command, grace: Duration) -> Self {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        ChildGuard { child, grace }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the process (e.g. SIGKILL to simulate a crash).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, signal);
    }

    /// Whether the process has exited (and reaps it if so).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops the process as Drop does and returns whether it exited within the grace time.
    pub fn stop(&mut self) -> bool {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let exited = wait_until(self.grace, || self.has_exited());
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        exited
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.has_exited() {
            self.stop();
        }
    }
}

static SERIAL: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by every test of the e2e binary that times what it sees in milliseconds (failover
/// bounds): they share one machine's CPU, so such a test runs alone, with no other test of
/// the binary (a test that failed does not block the others).
pub fn serial() -> std::sync::RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// Held instead of [`serial`] by a test whose deadlines are seconds (interop with keepalived
/// and tshark) and whose own load is small: such tests run alongside each other (as many as
/// the test harness runs threads), never alongside one that holds [`serial`]. A test waiting
/// for [`serial`] keeps new ones from starting (the lock prefers writers), so none starves.
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

/// The `ha-lb` binary the e2e tests run: the one cargo built, or `$HALB_BINARY` (CI runs the
/// failover tests again with the binary taken out of the container image).
pub fn halb_binary() -> String {
    std::env::var("HALB_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ha-lb").to_owned())
}
