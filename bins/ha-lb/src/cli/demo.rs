//! `ha-lb demo`: the whole thing on one machine, in seconds.
//!
//! Builds a throwaway topology of network namespaces on one bridge (TEST-NET-1 addresses):
//! two ha-lb nodes (lb1 priority 150, lb2 priority 100, VIP 192.0.2.100, VRRPv3 adverts every
//! 200 ms), three backends and a client that requests through the VIP every 10 ms. Then it
//! crashes lb1's worker, lets it come back and preempt, kills lb1 outright, and prints the
//! timeline the client saw. Everything is removed at the end, also on Ctrl-C.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ADVERT_MS: u64 = 200;
const VIP: &str = "192.0.2.100";

/// What the client thread, the status thread and the script report, in time order.
enum Event {
    /// A request's result, with the time it started.
    Answer(Instant, Option<String>),
    State(&'static str, String),
    Note(String),
    Done,
}

/// The namespaces and processes the demo made; removed on drop and on Ctrl-C.
#[derive(Clone, Default)]
struct Cleanup {
    namespaces: Arc<Mutex<Vec<String>>>,
    dir: Arc<Mutex<Option<PathBuf>>>,
}

impl Cleanup {
    fn run(&self) {
        let names = std::mem::take(&mut *self.namespaces.lock().unwrap_or_else(|e| e.into_inner()));
        for ns in names.iter().rev() {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if let Some(dir) = self.dir.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>> {
    let file = File::open(format!("/run/netns/{ns}")).with_context(|| format!("namespace {ns}"))?;
    Ok(thread::spawn(move || {
        if let Err(e) = setns(&file, CloneFlags::CLONE_NEWNET) {
            eprintln!("setns: {e}");
            std::process::exit(1);
        }
        f()
    }))
}

fn node_config(priority: u32, me: &str, admin: &str) -> String {
    format!(
        "# ha-lb demo node {me}\n\
         [global]\nrouter_id = \"{me}\"\n\n\
         [admin]\nlisten = \"{admin}\"\n\n\
         [instances.VI_1]\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval_ms = {ADVERT_MS}\nvips = [\"{VIP}/24\"]\n\
         track_pools = [{{ pool = \"web\", weight = -60 }}]\n\
         garp = {{ master_delay_ms = 0 }}\n\n\
         [listeners.web]\nlisten = \"{VIP}:80\"\npool = \"web\"\n\n\
         [checks.tcp]\nkind = \"tcp\"\ninterval_ms = 200\n\n\
         [pools.web]\nconnect_timeout_ms = 200\n\
         backends = [\n  {{ address = \"192.0.2.3:8080\", check = \"tcp\" }},\n  \
         {{ address = \"192.0.2.4:8080\", check = \"tcp\" }},\n  \
         {{ address = \"192.0.2.5:8080\", check = \"tcp\" }},\n]\n"
    )
}

fn request(target: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_millis(100)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn state_of(admin: SocketAddr) -> String {
    match crate_status(admin) {
        Some(s) => s,
        None => "down".into(),
    }
}

fn crate_status(admin: SocketAddr) -> Option<String> {
    let status = crate::status::fetch(admin).ok()?;
    status.instances.first().map(|i| i.state.clone())
}

/// The worker a supervisor runs.
fn worker_of(supervisor: u32) -> Option<i32> {
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

struct Demo {
    prefix: String,
    cleanup: Cleanup,
    dir: PathBuf,
    exe: PathBuf,
}

impl Demo {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn build(&self) -> Result<()> {
        let sw = self.ns("sw");
        self.add_ns(&sw)?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (i, name) in ["lb1", "lb2", "b1", "b2", "b3", "client"]
            .iter()
            .enumerate()
        {
            let ns = self.ns(name);
            self.add_ns(&ns)?;
            let port = format!("p{i}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("192.0.2.{}/24", i + 1),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    fn add_ns(&self, ns: &str) -> Result<()> {
        ip(&["netns", "add", ns])?;
        self.cleanup
            .namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    fn start_backend(&self, name: &'static str) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        in_ns(&self.ns(name), move || {
            let listener = match TcpListener::bind("0.0.0.0:8080") {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            for mut conn in listener.incoming().flatten() {
                let _ = conn.write_all(format!("{name}\n").as_bytes());
            }
        })?;
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => bail!("backend {name}: {e}"),
            Err(_) => bail!("backend {name} did not start"),
        }
    }

    fn start_node(&self, name: &str, priority: u32, addr: &str) -> Result<Child> {
        let config = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            node_config(priority, name, &format!("{addr}:9555")),
        )?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))?;
        Command::new("ip")
            .args(["netns", "exec", &self.ns(name)])
            .arg(&self.exe)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start ha-lb")
    }
}

/// Prints the timeline from the events, and returns the outages seen (when, how long).
fn print_timeline(rx: mpsc::Receiver<(Instant, Event)>, t0: Instant) -> Vec<(String, Duration)> {
    let mut outages = Vec::new();
    let mut last_ok: Option<Instant> = None;
    let mut failing_since: Option<(Instant, String)> = None;
    let mut note = String::new();
    let mut answers = Vec::new();
    let stamp = |t: Instant| format!("{:>8.3}s", (t - t0).as_secs_f64());
    while let Ok((at, event)) = rx.recv() {
        match event {
            Event::Done => break,
            Event::Note(n) => {
                println!("{}  ===== {n}", stamp(at));
                note = n;
            }
            Event::State(node, state) => println!("{}  {node} is {state}", stamp(at)),
            // Before the first answer (the VIP is not up yet) there is nothing to lose; a request
            // that started before the last answer says nothing about the service now.
            Event::Answer(started, None) if last_ok.is_none_or(|ok| started < ok) => {}
            Event::Answer(_, None) => {
                if failing_since.is_none() {
                    failing_since = Some((at, note.clone()));
                    println!("{}  client: no answer through {VIP}", stamp(at));
                }
            }
            Event::Answer(_, Some(who)) if last_ok.is_none() => {
                println!(
                    "{}  client: first answer through {VIP} (by {who})",
                    stamp(at)
                );
                answers.push(who);
                last_ok = Some(at);
            }
            Event::Answer(_, Some(who)) => {
                if let Some((_, during)) = failing_since.take() {
                    let gap = last_ok.map_or(Duration::ZERO, |l| at - l);
                    println!(
                        "{}  client: answered again (by {who}): {} ms without an answer",
                        stamp(at),
                        gap.as_millis()
                    );
                    outages.push((during, gap));
                } else if answers.len() < 6 {
                    answers.push(who.clone());
                    if answers.len() == 6 {
                        println!(
                            "{}  client: answers through {VIP}: {} ...",
                            stamp(at),
                            answers.join(" ")
                        );
                    }
                }
                last_ok = Some(at);
            }
        }
    }
    outages
}

/// Whether the effective user is root (from /proc/self/status: `Uid: real effective ...`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs the demo. Needs root (network namespaces, raw sockets).
///
/// # Errors
///
/// When the topology cannot be built (not root, no `ip`), or a node does not come up.
pub fn run() -> Result<()> {
    if !is_root() {
        bail!("ha-lb demo builds network namespaces: run it as root (e.g. sudo ha-lb demo)");
    }
    let exe = std::env::current_exe().context("cannot find the ha-lb executable")?;
    let prefix = format!("halb-demo-{}", std::process::id());
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir)?;
    let cleanup = Cleanup::default();
    *cleanup.dir.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.clone());
    // Ctrl-C / SIGTERM: remove everything, then exit.
    {
        let cleanup = cleanup.clone();
        thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                eprintln!("\ninterrupted: removing the demo's namespaces");
                cleanup.run();
                std::process::exit(130);
            });
        });
    }
    let demo = Demo {
        prefix,
        cleanup: cleanup.clone(),
        dir,
        exe,
    };
    // A guard, so that a panic (e.g. stdout closed under us) cleans up too.
    let _guard = Guard(cleanup);
    script(&demo)
}

/// Runs the cleanup when dropped.
struct Guard(Cleanup);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.run();
    }
}

fn script(demo: &Demo) -> Result<()> {
    println!(
        "building the topology: namespaces {}-*, bridge br0, 192.0.2.0/24",
        demo.prefix
    );
    println!("  lb1 192.0.2.1 (priority 150)   lb2 192.0.2.2 (priority 100)   VIP {VIP}:80");
    println!("  backends b1..b3 192.0.2.3-5:8080   client 192.0.2.6   VRRPv3, adverts every {ADVERT_MS} ms");
    demo.build()?;
    for b in ["b1", "b2", "b3"] {
        demo.start_backend(b)?;
    }
    let mut lb1 = demo.start_node("lb1", 150, "192.0.2.1")?;
    let mut lb2 = demo.start_node("lb2", 100, "192.0.2.2")?;

    let (tx, rx) = mpsc::channel::<(Instant, Event)>();
    let t0 = Instant::now();
    let printer = thread::spawn(move || print_timeline(rx, t0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let send = |tx: &mpsc::Sender<(Instant, Event)>, e| {
        let _ = tx.send((Instant::now(), e));
    };
    // Status watcher and client, both in the client's namespace.
    let (watch_tx, watch_stop) = (tx.clone(), stop.clone());
    in_ns(&demo.ns("client"), move || {
        let nodes: [(&'static str, SocketAddr); 2] = [
            ("lb1", SocketAddr::from(([192, 0, 2, 1], 9555))),
            ("lb2", SocketAddr::from(([192, 0, 2, 2], 9555))),
        ];
        let mut last = [String::new(), String::new()];
        while !watch_stop.load(std::sync::atomic::Ordering::Relaxed) {
            for (i, (name, addr)) in nodes.iter().enumerate() {
                let s = state_of(*addr);
                if s != last[i] {
                    let _ = watch_tx.send((Instant::now(), Event::State(name, s.clone())));
                    last[i] = s;
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
    })?;
    let (client_tx, client_stop) = (tx.clone(), stop.clone());
    in_ns(&demo.ns("client"), move || {
        let target = SocketAddr::from(([192, 0, 2, 100], 80));
        // A request every 10 ms, each on a thread of its own (threads inherit the namespace):
        // one caught in flight when the VIP moves hangs until its timeout, and must not delay
        // the next, or the timeline would show the client's timeouts instead of the failover.
        let mut next = Instant::now();
        while !client_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let tx = client_tx.clone();
            thread::spawn(move || {
                let started = Instant::now();
                let answer = request(target);
                let _ = tx.send((Instant::now(), Event::Answer(started, answer)));
            });
            next += Duration::from_millis(10);
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    })?;

    let wait_for =
        |admin: SocketAddr, ns: String, state: &'static str, secs: u64| -> Result<bool> {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < deadline {
                let s = in_ns(&ns, move || state_of(admin))?
                    .join()
                    .unwrap_or_default();
                if s == state {
                    return Ok(true);
                }
                thread::sleep(Duration::from_millis(50));
            }
            Ok(false)
        };
    let lb1_admin = SocketAddr::from(([192, 0, 2, 1], 9555));
    let lb2_admin = SocketAddr::from(([192, 0, 2, 2], 9555));
    let client_ns = demo.ns("client");
    if !wait_for(lb1_admin, client_ns.clone(), "Master", 15)? {
        bail!(
            "lb1 did not become Master; see {}",
            demo.dir.join("lb1.log").display()
        );
    }
    thread::sleep(Duration::from_secs(2));

    let worker = worker_of(lb1.id()).context("lb1 has no worker process")?;
    send(
        &tx,
        Event::Note(format!(
            "SIGKILL lb1's worker (pid {worker}): its supervisor sends priority 0 at once"
        )),
    );
    kill(Pid::from_raw(worker), Signal::SIGKILL)?;
    wait_for(lb2_admin, client_ns.clone(), "Master", 10)?;
    send(
        &tx,
        Event::Note(
            "lb1's supervisor restarts the worker; it preempts (priority 150 > 100)".into(),
        ),
    );
    wait_for(lb1_admin, client_ns.clone(), "Master", 15)?;
    thread::sleep(Duration::from_secs(2));

    send(
        &tx,
        Event::Note(
            "SIGKILL lb1 entirely (supervisor and worker): lb2 waits Master_Down_Interval".into(),
        ),
    );
    let _ = kill(
        Pid::from_raw(i32::try_from(lb1.id()).unwrap_or(0)),
        Signal::SIGKILL,
    );
    wait_for(lb2_admin, client_ns.clone(), "Master", 10)?;
    thread::sleep(Duration::from_secs(1));
    let _ = lb1.wait();

    send(
        &tx,
        Event::Note("SIGTERM lb2 (graceful stop): nobody is left to take over".into()),
    );
    let _ = kill(
        Pid::from_raw(i32::try_from(lb2.id()).unwrap_or(0)),
        Signal::SIGTERM,
    );
    thread::sleep(Duration::from_millis(800));
    let _ = lb2.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread::sleep(Duration::from_millis(100));
    send(&tx, Event::Done);
    let outages = printer.join().unwrap_or_default();

    let skew = Duration::from_micros((256 - 100) * ADVERT_MS * 1000 / 256);
    let mdi = Duration::from_millis(3 * ADVERT_MS) + skew;
    println!("\noutages the client saw (adverts every {ADVERT_MS} ms: Skew_Time of lb2 {} ms, Master_Down_Interval {} ms):",
        skew.as_millis(), mdi.as_millis());
    for (what, gap) in outages
        .iter()
        .filter(|(w, _)| !w.starts_with("SIGTERM lb2"))
    {
        println!("  {:>6} ms  after: {what}", gap.as_millis());
    }
    println!(
        "\nlogs were in {} (removed now); cleaning up",
        demo.dir.display()
    );
    Ok(())
}
