//! Scale of the `healthcheck` crate: N targets checked every second, CPU time per core,
//! measured side by side with haproxy checking the same targets in the same run.
//!
//! ```sh
//! cargo bench -p ha-lb-benches --bench healthcheck_scale -- --targets 1000 --secs 15 --kind tcp
//! ```
//!
//! Options: `--targets N` (1000), `--secs S` measured seconds (15, at most 120), `--warmup S`
//! (3), `--kind tcp|http` (tcp), `--flavor multi|current` tokio runtime (multi, 2 workers),
//! `--no-peer` to skip haproxy. The targets are N loopback listeners served by a child process
//! (this binary re-run as a server), whose accept count gives the check rate actually achieved.
//! CPU is utime + stime from `/proc/PID/stat`, for our process and for haproxy alike.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use healthcheck::{CheckConfig, HttpConfig, Monitor, MonitorConfig, State, TcpConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

type Res<T> = Result<T, Box<dyn Error>>;

const SERVER_ENV: &str = "HC_SCALE_SERVER";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tcp,
    Http,
}

struct Options {
    targets: usize,
    secs: u64,
    warmup: u64,
    kind: Kind,
    multi: bool,
    peer: bool,
}

fn options() -> Res<Options> {
    let mut o = Options {
        targets: 1000,
        secs: 15,
        warmup: 3,
        kind: Kind::Tcp,
        multi: true,
        peer: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--targets" => o.targets = value()?.parse()?,
            "--secs" => o.secs = value()?.parse::<u64>()?.clamp(1, 120),
            "--warmup" => o.warmup = value()?.parse::<u64>()?.min(30),
            "--kind" => {
                o.kind = match value()?.as_str() {
                    "tcp" => Kind::Tcp,
                    "http" => Kind::Http,
                    other => return Err(format!("--kind {other}: tcp or http").into()),
                }
            }
            "--flavor" => o.multi = value()? != "current",
            "--no-peer" => o.peer = false,
            // Passed by `cargo bench` to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// The target side: N listeners that answer any request with a 200 and close.
fn serve(targets: usize) -> Res<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let accepted = Arc::new(AtomicU64::new(0));
        let mut ports = Vec::with_capacity(targets);
        for _ in 0..targets {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            ports.push(listener.local_addr()?.port().to_string());
            let accepted = accepted.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        let read =
                            tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
                                .await;
                        if let Ok(Ok(n)) = read {
                            if n > 0 {
                                let _ = stream.write_all(RESPONSE).await;
                            }
                        }
                    });
                }
            });
        }
        let mut out = tokio::io::stdout();
        out.write_all(format!("{}\n", ports.join(" ")).as_bytes())
            .await?;
        out.flush().await?;
        // Each line on stdin asks for the accept count; EOF ends the server.
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(_line) = lines.next_line().await? {
            let n = accepted.load(Ordering::Relaxed);
            out.write_all(format!("{n}\n").as_bytes()).await?;
            out.flush().await?;
        }
        Ok(())
    })
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    ports: Vec<u16>,
}

impl Server {
    fn start(targets: usize) -> Res<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(SERVER_ENV, targets.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let ports = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<u16>, _>>()?;
        if ports.len() != targets {
            return Err(format!("server opened {} of {targets} ports", ports.len()).into());
        }
        Ok(Server {
            child,
            stdin,
            stdout,
            ports,
        })
    }

    fn accepted(&mut self) -> Res<u64> {
        self.stdin.write_all(b"count\n")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(line.trim().parse()?)
    }

    fn stop(mut self) -> Res<()> {
        drop(self.stdin);
        // EOF on stdin ends it; kill by PID if it lingers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// CPU time of a process, all threads: (user, system).
fn cpu_time(pid: u32) -> Res<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let close = stat.rfind(')').ok_or("bad stat")?;
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After "pid (comm)": state is field 0, utime 11, stime 12 (in clock ticks).
    let field = |i: usize| -> Res<u64> { Ok(fields.get(i).ok_or("bad stat")?.parse()?) };
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let secs = |ticks: u64| Duration::from_secs_f64(ticks as f64 / hz);
    Ok((secs(field(11)?), secs(field(12)?)))
}

struct Measure {
    name: String,
    cpu: Duration,
    user: Duration,
    wall: Duration,
    /// Checks done in the window, when the checker can tell.
    checks: Option<u64>,
    /// Connections the targets accepted in the window (a TCP probe reset before accept is
    /// not seen; an HTTP probe always is).
    accepted: u64,
}

impl Measure {
    fn core_pct(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }

    fn checks(&self) -> u64 {
        self.checks.unwrap_or(self.accepted)
    }
}

/// Samples CPU of `pid`, the server's accept count and `checks()` over `secs`.
fn measure(
    name: &str,
    pid: u32,
    server: &Mutex<Server>,
    secs: u64,
    checks: impl Fn() -> Option<u64>,
) -> Res<Measure> {
    let accepted = || -> Res<u64> { server.lock().map_err(|e| e.to_string())?.accepted() };
    let (c0, a0, k0, t0) = (cpu_time(pid)?, accepted()?, checks(), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, a1, k1, t1) = (cpu_time(pid)?, accepted()?, checks(), Instant::now());
    let user = c1.0.saturating_sub(c0.0);
    Ok(Measure {
        name: name.to_owned(),
        cpu: user + c1.1.saturating_sub(c0.1),
        user,
        wall: t1 - t0,
        checks: k0.zip(k1).map(|(a, b)| b - a),
        accepted: a1 - a0,
    })
}

fn monitor_config() -> MonitorConfig {
    MonitorConfig {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 3,
        jitter: 0.1,
        ..MonitorConfig::default()
    }
}

fn run_ours(o: &Options, server: &Arc<Mutex<Server>>) -> Res<(Measure, usize)> {
    let rt = if o.multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    let ports = server.lock().map_err(|e| e.to_string())?.ports.clone();
    let mut monitors = Vec::with_capacity(ports.len());
    for port in &ports {
        let check = match o.kind {
            Kind::Tcp => CheckConfig::Tcp(TcpConfig {
                address: format!("127.0.0.1:{port}"),
                source: None,
            }),
            Kind::Http => {
                CheckConfig::Http(HttpConfig::new(format!("http://127.0.0.1:{port}/readyz")))
            }
        }
        .build()?;
        let _guard = rt.enter();
        monitors.push(Monitor::spawn(
            format!("t{port}"),
            check,
            &monitor_config(),
        )?);
    }
    let monitors = Arc::new(monitors);
    let flavor = if o.multi {
        "multi-thread, 2 workers"
    } else {
        "current-thread"
    };
    let name = format!("healthcheck ({flavor})");
    let (secs, warmup) = (o.secs, o.warmup);
    let (srv, mons) = (server.clone(), monitors.clone());
    // Measured from a blocking thread so that a current-thread runtime keeps running.
    let m = rt.block_on(async move {
        tokio::time::sleep(Duration::from_secs(warmup)).await;
        tokio::task::spawn_blocking(move || {
            let checks = || Some(mons.iter().map(|m| m.snapshot().checks).sum());
            measure(&name, std::process::id(), &srv, secs, checks).map_err(|e| e.to_string())
        })
        .await
    })??;
    let up = monitors.iter().filter(|m| m.state() == State::Up).count();
    drop(monitors);
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok((m, up))
}

/// The floor: one thread doing the same probes with blocking std sockets, paced to the same
/// rate, no runtime, no rise/fall. What is left above it is the cost of the monitor itself.
fn run_raw(o: &Options, server: &Arc<Mutex<Server>>) -> Res<Measure> {
    let ports = server.lock().map_err(|e| e.to_string())?.ports.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let (kind, flag, count) = (o.kind, stop.clone(), done.clone());
    let worker = std::thread::spawn(move || {
        let start = Instant::now();
        let mut n: u64 = 0;
        while !flag.load(Ordering::Relaxed) {
            for port in &ports {
                if probe_raw(kind, *port) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                // One probe per target per second, spread evenly.
                let due = start + Duration::from_micros(n * 1_000_000 / ports.len() as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
    });
    std::thread::sleep(Duration::from_secs(o.warmup));
    let checks = || Some(done.load(Ordering::Relaxed));
    let m = measure(
        "raw blocking loop (floor)",
        std::process::id(),
        server,
        o.secs,
        checks,
    );
    stop.store(true, Ordering::Relaxed);
    worker.join().map_err(|_| "raw worker panicked")?;
    m
}

fn probe_raw(kind: Kind, port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if kind == Kind::Http {
        let request = b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
        let mut buf = [0u8; 512];
        if stream.write_all(request).is_err() || !matches!(stream.read(&mut buf), Ok(n) if n > 0) {
            return false;
        }
    }
    // Close with a reset, like the other two.
    let _ = set_linger_zero(&stream);
    true
}

/// SO_LINGER 0 (std's `set_linger` is unstable).
fn set_linger_zero(stream: &std::net::TcpStream) -> std::io::Result<()> {
    rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO))?;
    Ok(())
}

fn haproxy_path() -> Option<String> {
    [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .map(str::to_owned)
}

fn run_haproxy(o: &Options, server: &Mutex<Server>, haproxy: &str) -> Res<Measure> {
    let base = std::env::temp_dir().join(format!("hc-scale-haproxy-{}", std::process::id()));
    let (path, sock, log, stats) = (
        base.with_extension("cfg"),
        base.with_extension("sock"),
        base.with_extension("log"),
        base.with_extension("stats"),
    );
    // haproxy refuses to start without a listener: give it one on a unix socket.
    let mut cfg = format!(
        "global\n  maxconn 8192\n  spread-checks 10\n  stats socket {}\n\
         defaults\n  mode tcp\n  timeout connect 1s\n  timeout check 1s\n  timeout client 10s\n  timeout server 10s\n\
         frontend unused\n  bind unix@{}\n  default_backend targets\n\
         backend targets\n",
        stats.display(),
        sock.display()
    );
    if o.kind == Kind::Http {
        cfg.push_str("  option httpchk GET /readyz\n");
    }
    cfg.push_str("  default-server check inter 1s rise 2 fall 3\n");
    let ports = server.lock().map_err(|e| e.to_string())?.ports.clone();
    for (i, port) in ports.iter().enumerate() {
        cfg.push_str(&format!("  server t{i} 127.0.0.1:{port}\n"));
    }
    std::fs::write(&path, cfg)?;
    let mut child = Command::new(haproxy)
        .arg("-f")
        .arg(&path)
        .arg("-db")
        .arg("-q")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    std::thread::sleep(Duration::from_secs(o.warmup));
    let result = match child.try_wait()? {
        Some(status) => Err(format!(
            "haproxy exited early: {status}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
        .into()),
        // haproxy keeps no count of checks; HTTP probes are counted at the targets.
        None => measure("haproxy", child.id(), server, o.secs, || None),
    };
    let up = haproxy_up(&stats);
    println!(
        "targets up at the end (haproxy): {}/{}",
        up.unwrap_or(0),
        ports.len()
    );
    child.kill()?;
    child.wait()?;
    for file in [&path, &sock, &log, &stats] {
        let _ = std::fs::remove_file(file);
    }
    result
}

/// Servers that haproxy's stats socket reports UP.
fn haproxy_up(stats: &Path) -> Res<usize> {
    use std::io::Read;
    let mut conn = std::os::unix::net::UnixStream::connect(stats)?;
    conn.write_all(b"show stat\n")?;
    let mut csv = String::new();
    conn.read_to_string(&mut csv)?;
    Ok(csv
        .lines()
        .filter(|l| l.starts_with("targets,t") && l.contains(",UP,"))
        .count())
}

fn main() -> Res<()> {
    if let Ok(n) = std::env::var(SERVER_ENV) {
        return serve(n.parse()?);
    }
    let o = options()?;
    let server = Arc::new(Mutex::new(Server::start(o.targets)?));
    let kind = if o.kind == Kind::Tcp { "tcp" } else { "http" };
    println!(
        "{} {kind} targets, interval 1 s, {} s warm-up, {} s measured",
        o.targets, o.warmup, o.secs
    );
    let (ours, up) = run_ours(&o, &server)?;
    std::thread::sleep(Duration::from_secs(1));
    let raw = run_raw(&o, &server)?;
    let mut rows = vec![ours, raw];
    let peer = if o.peer { haproxy_path() } else { None };
    if o.peer && peer.is_none() {
        println!("haproxy not found: `apt-get install haproxy` for the side-by-side row");
    }
    if let Some(haproxy) = &peer {
        // Let the sockets of the previous run drain.
        std::thread::sleep(Duration::from_secs(1));
        rows.push(run_haproxy(&o, &server, haproxy)?);
    }
    match Arc::try_unwrap(server) {
        Ok(server) => server.into_inner().map_err(|e| e.to_string())?.stop()?,
        Err(_) => return Err("server still shared".into()),
    }

    println!(
        "| checker | checks/s | accepted/s | CPU s | wall s | % of one core | of which user | µs CPU per check |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in &rows {
        let wall = m.wall.as_secs_f64();
        let (rate, per_check) = match m.checks() {
            0 => ("n/a".to_owned(), "n/a".to_owned()),
            n => (
                format!("{:.0}", n as f64 / wall),
                format!("{:.1}", 1e6 * m.cpu.as_secs_f64() / n as f64),
            ),
        };
        println!(
            "| {} | {rate} | {:.0} | {:.2} | {wall:.1} | {:.2} | {:.2} | {per_check} |",
            m.name,
            m.accepted as f64 / wall,
            m.cpu.as_secs_f64(),
            m.core_pct(),
            100.0 * m.user.as_secs_f64() / wall,
        );
    }
    println!("targets up at the end (healthcheck): {up}/{}", o.targets);
    if let [ours, raw, ..] = &rows[..] {
        println!(
            "healthcheck above the floor: {:.2} % of one core",
            ours.core_pct() - raw.core_pct()
        );
    }
    if let [ours, _, haproxy] = &rows[..] {
        println!(
            "CPU ratio healthcheck / haproxy: {:.2}",
            ours.cpu.as_secs_f64() / haproxy.cpu.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
