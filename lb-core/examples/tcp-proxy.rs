//! A small runnable TCP proxy on lb-core, for trying it out and for the head-to-head benchmark
//! (`benches/scripts/lb-head-to-head.sh`).
//!
//! ```sh
//! cargo run --release -p lb-core --example tcp-proxy -- \
//!     --listen 127.0.0.1:8000 --backend 127.0.0.1:8081 --backend 127.0.0.1:8082 --threads 1
//! ```
//! Stops gracefully (10 s) on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use lb_core::{
    Algorithm, BackendConfig, Balancer, BalancerConfig, ListenerConfig, PoolConfig, ProxyProtocol,
    TransferMode,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Algo {
    RoundRobin,
    LeastConn,
    P2c,
    Random,
    Maglev,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Splice,
    Userspace,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Pp {
    None,
    V1,
    V2,
}

/// An L4 TCP proxy on lb-core.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (repeat for several).
    #[arg(long, required = true)]
    listen: Vec<SocketAddr>,
    /// Backend address, optionally `ADDR@WEIGHT` (repeat for several).
    #[arg(long, required = true)]
    backend: Vec<String>,
    /// Selection algorithm.
    #[arg(long, value_enum, default_value = "round-robin")]
    algorithm: Algo,
    /// Tokio worker threads; 1 runs a single-threaded runtime unless `--multi-thread`.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Use tokio's multi-thread scheduler even for one worker (for comparing schedulers).
    #[arg(long)]
    multi_thread: bool,
    /// Tasks polled between two checks for new I/O events (tokio's `event_interval`; 61 by
    /// default).
    #[arg(long)]
    event_interval: Option<u32>,
    /// How bytes are moved.
    #[arg(long, value_enum, default_value = "auto")]
    mode: Mode,
    /// PROXY protocol header towards backends.
    #[arg(long, value_enum, default_value = "none")]
    proxy_protocol: Pp,
    /// Idle timeout in seconds (0 = none).
    #[arg(long, default_value_t = 3600)]
    idle_timeout: u64,
    /// Most client connections at once (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    max_conns: u32,
    /// Userspace buffer size per direction, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    buffer: usize,
    /// Bind with SO_REUSEPORT.
    #[arg(long)]
    reuseport: bool,
}

fn parse_backend(s: &str) -> anyhow::Result<BackendConfig> {
    let (addr, weight) = match s.split_once('@') {
        Some((a, w)) => (a, w.parse()?),
        None => (s, 1),
    };
    Ok(BackendConfig::new(addr.parse()?).weight(weight))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = if args.threads <= 1 && !args.multi_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads.max(1));
        b
    };
    if let Some(n) = args.event_interval {
        builder.event_interval(n);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let backends = args
        .backend
        .iter()
        .map(|b| parse_backend(b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut pool = PoolConfig::new("default", backends);
    pool.algorithm = match args.algorithm {
        Algo::RoundRobin => Algorithm::RoundRobin,
        Algo::LeastConn => Algorithm::LeastConn,
        Algo::P2c => Algorithm::PowerOfTwo,
        Algo::Random => Algorithm::Random,
        Algo::Maglev => Algorithm::maglev(),
    };
    pool.proxy_protocol = match args.proxy_protocol {
        Pp::None => ProxyProtocol::None,
        Pp::V1 => ProxyProtocol::V1,
        Pp::V2 => ProxyProtocol::V2,
    };
    let listeners = args
        .listen
        .iter()
        .map(|&addr| {
            let mut l = ListenerConfig::new(addr, "default");
            l.transfer = match args.mode {
                Mode::Auto => TransferMode::Auto,
                Mode::Splice => TransferMode::Splice,
                Mode::Userspace => TransferMode::Userspace,
            };
            l.idle_timeout =
                (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
            l.max_connections = args.max_conns;
            l.buffer_size = args.buffer;
            l.reuseport = args.reuseport;
            l
        })
        .collect();
    let balancer = Balancer::start(BalancerConfig {
        pools: vec![pool],
        listeners,
    })?;
    for l in balancer.listeners() {
        eprintln!("listening on {}", l.local_addr());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let stats = balancer.stats();
    for l in &stats.listeners {
        eprintln!("{l:?}");
    }
    let reports = balancer.shutdown(Duration::from_secs(10)).await;
    eprintln!("stopped: {reports:?}");
    Ok(())
}
