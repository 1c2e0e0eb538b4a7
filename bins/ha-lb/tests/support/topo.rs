//! The two-node topology of the failover tests: two `ha-lb run` nodes, three backends and a
//! client, each in its own network namespace on one bridge (TEST-NET addresses), torn down on
//! drop (namespaces delete what runs in them). Also the node configuration builder
//! ([`Node`]) and what tests ask of a running `ha-lb` (its `/status`, its worker's PID).
//!
//! Topology (`Lan` of `netns.rs`): node 0 = lb1 192.0.2.1, node 1 = lb2 192.0.2.2,
//! nodes 2..=4 = backends b1..b3 192.0.2.3..5 (port 8080), node 5 = client 192.0.2.6.
//! VIP 192.0.2.100, listener port 80, admin endpoint 127.0.0.1:9555 in each node.
//!
//! Included by `tests/e2e/main.rs` with `#[path]`, as `netns.rs` is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test module uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ha_lb::status::{InstanceStatus, NodeStatus};
use nix::sys::signal::Signal;

use crate::backend::Backend;
use crate::client::{longest_gap, ms, Client};
use crate::netns::{self, wait_until, ChildGuard, Lan, Netns};

/// lb1's node index.
pub const LB1: usize = 0;
/// lb2's node index.
pub const LB2: usize = 1;
/// The client's node index.
pub const CLIENT: usize = 5;
/// The VIP of VI_1.
pub const VIP: &str = "192.0.2.100";
/// The admin endpoint of each node (in its own namespace).
pub const ADMIN: &str = "127.0.0.1:9555";

/// The whole topology, torn down on drop.
pub struct Topo {
    /// The namespaces and the bridge.
    pub lan: Lan,
    /// The nodes' configuration files and logs.
    pub dir: PathBuf,
    _backends: Vec<Backend>,
}

impl Topo {
    /// Makes the topology and starts the backends, or `None` without namespaces (see
    /// [`Netns::available`]).
    pub fn new(tag: &str) -> Option<Self> {
        if !Netns::available(tag) {
            return None;
        }
        let lan = Lan::new(tag, 6, true);
        let backends = (0..3)
            .map(|i| Backend::start(&lan.nodes[2 + i], &format!("b{}", i + 1)))
            .collect();
        let dir = std::env::temp_dir().join(format!("halb-e2e-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Topo {
            lan,
            dir,
            _backends: backends,
        })
    }

    /// Node `i`'s namespace.
    pub fn ns(&self, i: usize) -> &Netns {
        &self.lan.nodes[i]
    }

    /// Writes `text` to `name` in the topology's directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts `ha-lb run` (with its supervisor) on node `i`; its log goes to `<name>.log`.
    pub fn start(&self, i: usize, name: &str, config: &Path) -> ChildGuard {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .unwrap();
        let mut cmd = halb_run(self.ns(i), config, Duration::from_secs(1));
        ChildGuard::spawn(cmd.stderr(log), Duration::from_secs(10))
    }

    /// Starts lb1 and lb2 and waits until lb1 is Master of VI_1 and lb2 its Backup.
    pub fn start_pair(&self, c1: &Path, c2: &Path) -> (ChildGuard, ChildGuard) {
        let lb1 = self.start(LB1, "lb1", c1);
        let lb2 = self.start(LB2, "lb2", c2);
        self.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
        self.expect_state(LB2, "VI_1", "Backup", Duration::from_secs(5));
        (lb1, lb2)
    }

    /// A client of `target` in the client's namespace, once it got 20 answers.
    pub fn served_client(&self, target: &str) -> Client {
        let client = Client::start(self.ns(CLIENT), target);
        assert!(
            client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
            "{}",
            self.dump()
        );
        client
    }

    /// Waits until `client` got 20 more answers, then checks that the longest time it went
    /// without one since `since` stays under `bound` (and prints it, for the record).
    pub fn assert_served_again(
        &self,
        client: &Client,
        since: Instant,
        what: &str,
        bound: Duration,
    ) {
        assert!(
            client.wait_successes(Instant::now(), 20, Duration::from_secs(10)),
            "{what}: not served again\n{}",
            self.dump()
        );
        let gap = longest_gap(&client.samples(), since, Instant::now());
        eprintln!("{what}: longest gap {} ms", ms(gap));
        assert!(
            gap < bound,
            "{what}: outage {} ms\n{}",
            ms(gap),
            self.dump()
        );
    }

    /// The log of the node started as `name`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Both nodes' logs, for assertion messages.
    pub fn dump(&self) -> String {
        ["lb1", "lb2"]
            .iter()
            .map(|n| format!("===== {n}.log =====\n{}", self.log(n)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Node `i`'s `/status`, or `None` while it does not answer.
    pub fn status(&self, i: usize) -> Option<NodeStatus> {
        status(self.ns(i))
    }

    /// The state of `instance` on node `i`.
    pub fn state(&self, i: usize, instance: &str) -> Option<String> {
        state(self.ns(i), instance)
    }

    /// Waits until `instance` on node `i` is in `state`; returns whether it came.
    pub fn wait_state(&self, i: usize, instance: &str, state: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.state(i, instance).as_deref() == Some(state)
        })
    }

    /// Waits for [`Topo::wait_state`], or fails with the nodes' logs.
    pub fn expect_state(&self, i: usize, instance: &str, state: &str, timeout: Duration) {
        assert!(
            self.wait_state(i, instance, state, timeout),
            "node {i}: {instance} not {state} within {timeout:?} (now {:?})\n{}",
            self.state(i, instance),
            self.dump()
        );
    }

    /// Makes node `i`'s `eth0` again after it was deleted: a new veth to the bridge (a new
    /// index, same MAC), up first, then its address `address_after` later.
    pub fn remake_eth0(&self, i: usize, address_after: Duration) {
        let id = u8::try_from(i + 1).unwrap();
        netns::veth(self.ns(i), "eth0", &self.lan.switch, &format!("p{i}"), id);
        self.lan
            .switch
            .ip(&["link", "set", &format!("p{i}"), "master", "br0"]);
        thread::sleep(address_after);
        self.ns(i).ip(&[
            "addr",
            "add",
            &format!("192.0.2.{}/24", i + 1),
            "dev",
            "eth0",
        ]);
    }

    /// Whether node `i` has `addr` on `eth0`.
    pub fn has_address(&self, i: usize, addr: &str) -> bool {
        self.ns(i).has_address("eth0", addr)
    }

    /// Whether node `i` has `addr` on any interface (eth0, or a VMAC interface).
    pub fn holds(&self, i: usize, addr: &str) -> bool {
        self.ns(i)
            .ip(&["-o", "addr", "show"])
            .contains(&format!(" {addr}/"))
    }

    /// The MAC the client's neighbour entry for the VIP holds, if any.
    pub fn client_neigh(&self) -> Option<String> {
        let out = self.ns(CLIENT).ip(&["neigh", "show", VIP, "dev", "eth0"]);
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_owned)
    }

    /// Cuts (`on`) or restores the switch between lb1's and lb2's ports: bridge port
    /// isolation, so both still reach the client and the backends.
    pub fn isolate(&self, on: bool) {
        for port in ["p0", "p1"] {
            self.lan.switch.ip(&[
                "link",
                "set",
                "dev",
                port,
                "type",
                "bridge_slave",
                "isolated",
                if on { "on" } else { "off" },
            ]);
        }
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        // HALB_E2E_KEEP_LOGS=1 keeps the nodes' logs for a look at the timings.
        if std::env::var_os("HALB_E2E_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `ha-lb run --config CONFIG` in `ns` (`$HALB_BINARY` or the one cargo built), draining for
/// `drain` on stop, logging at info to what the caller sets as stderr.
pub fn halb_run(ns: &Netns, config: &Path, drain: Duration) -> Command {
    let mut cmd = ns.command(&netns::halb_binary());
    cmd.args(["run", "--config"])
        .arg(config)
        .args(["--drain-timeout-ms", &drain.as_millis().to_string()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// The `/status` of the node whose admin endpoint is [`ADMIN`] in `ns`, or `None` while it
/// does not answer.
pub fn status(ns: &Netns) -> Option<NodeStatus> {
    ns.run(|| ha_lb::status::fetch(ADMIN.parse().unwrap()).ok())
}

/// `instance`'s status on the node in `ns`.
pub fn instance(ns: &Netns, instance: &str) -> Option<InstanceStatus> {
    status(ns)?
        .instances
        .into_iter()
        .find(|s| s.name == instance)
}

/// `instance`'s state on the node in `ns`.
pub fn state(ns: &Netns, name: &str) -> Option<String> {
    instance(ns, name).map(|s| s.state)
}

/// GET `path` from the admin endpoint in `ns`: (status code, body), or `None` when nothing
/// answers.
pub fn admin_get(ns: &Netns, path: &str) -> Option<(u16, String)> {
    let path = path.to_owned();
    ns.run(move || {
        let mut s = TcpStream::connect(ADMIN).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        Some((code, body))
    })
}

/// The worker a supervisor runs (its only child).
pub fn worker_pid(supervisor: u32) -> Option<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{supervisor}/task")).ok()?;
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().ok();
        }
    }
    None
}

/// Sends `signal` to `pid` (a PID the test keeps: never by name).
pub fn kill(pid: i32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

/// One node's configuration for the two-node topology, written by [`Node::toml`].
pub struct Node<'a> {
    /// The instances' priority (unless overridden per instance).
    pub priority: u32,
    /// Whether a higher priority takes over from a running Master.
    pub preempt: bool,
    /// The advert interval.
    pub advert_ms: u64,
    /// (instance name, vrid, vip, priority override)
    pub instances: Vec<(&'a str, u32, &'a str, Option<u32>)>,
    /// (unicast_src, the one unicast peer), else multicast.
    pub unicast: Option<(&'a str, &'a str)>,
    /// The tcp check's interval.
    pub check_interval_ms: u64,
    /// The pool's backends.
    pub backends: Vec<&'a str>,
    /// A file the notify commands append the state to.
    pub notify: Option<String>,
    /// Backends have a tcp check (else only passive health sees them fail).
    pub checked: bool,
    /// More lines for each instance.
    pub extra: String,
}

impl Node<'_> {
    /// VI_1 (vrid 51, [`VIP`]) over b1..b3 with tcp checks every 100 ms, preempting.
    pub fn active_standby(priority: u32, advert_ms: u64) -> Self {
        Node {
            priority,
            preempt: true,
            advert_ms,
            instances: vec![("VI_1", 51, VIP, None)],
            unicast: None,
            check_interval_ms: 100,
            backends: vec!["192.0.2.3:8080", "192.0.2.4:8080", "192.0.2.5:8080"],
            notify: None,
            checked: true,
            extra: String::new(),
        }
    }

    /// The configuration file's text.
    pub fn toml(&self) -> String {
        let mut t = format!("[admin]\nlisten = \"{ADMIN}\"\n\n");
        for (name, vrid, vip, prio) in &self.instances {
            let v6 = vip.contains(':');
            t += &format!(
                "[instances.{name}]\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {}\n\
                 version = 3\nadvert_interval_ms = {}\npreempt = {}\n\
                 vips = [\"{vip}/{}\"]\ntrack_pools = [{{ pool = \"web\", weight = -60 }}]\n\
                 garp = {{ master_delay_ms = 0 }}\n",
                prio.unwrap_or(self.priority),
                self.advert_ms,
                self.preempt,
                if v6 { 64 } else { 24 }
            );
            t += &self.extra;
            if let Some(file) = &self.notify {
                for state in ["master", "backup", "fault", "stop"] {
                    t += &format!(
                        "notify.{state} = [\"/bin/sh\", \"-c\", \"echo {} >> {file}\"]\n",
                        state.to_uppercase()
                    );
                }
            }
            if let Some((src, peer)) = self.unicast {
                t += &format!("unicast_src = \"{src}\"\nunicast_peers = [\"{peer}\"]\n");
            }
            let listen = if v6 {
                format!("[{vip}]:80")
            } else {
                format!("{vip}:80")
            };
            t += &format!("\n[listeners.{name}]\nlisten = \"{listen}\"\npool = \"web\"\n\n");
        }
        t += &format!(
            "[checks.tcp]\nkind = \"tcp\"\ninterval_ms = {}\nrise = 2\nfall = 2\n\n\
             [pools.web]\nconnect_timeout_ms = 200\nfail_timeout_ms = 1000\n",
            self.check_interval_ms
        );
        for b in &self.backends {
            t += &format!("\n[[pools.web.backends]]\naddress = \"{b}\"\n");
            if self.checked {
                t += "check = \"tcp\"\n";
            }
        }
        t
    }
}
