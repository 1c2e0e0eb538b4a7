//! A TCP proxy of your own with failover: lb-core balances with a selector written here,
//! healthcheck probes each backend over HTTP, and ha-lb's failover API holds the VIP; while no
//! backend is healthy the node's priority drops by 60, so a peer with backends takes the VIP.
//!
//! ```sh
//! # As root, on each node of one LAN (priority 150 on one, 100 on the other):
//! cargo run -p ha-lb --example custom_proxy -- eth0 51 150 192.0.2.100/24 80 192.0.2.3:8080 192.0.2.4:8080
//! ```
//! SIGTERM: the VIP is handed over (priority 0) and the proxy drains.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ha_lb::failover::Failover;
use healthcheck::{CheckConfig, HttpConfig, Monitor, MonitorConfig, State};
use lb_core::{Algorithm, Backend, BackendConfig, BackendState, Balancer, BalancerConfig};
use lb_core::{ListenerConfig, PickContext, Picker, PoolConfig, Selector};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Our own selection: plain rotation over the available members.
struct Rotate;
struct RotatePicker(AtomicUsize);

impl Selector for Rotate {
    fn name(&self) -> &str {
        "rotate"
    }
    fn prepare(&self, _members: &[Arc<Backend>]) -> Box<dyn Picker> {
        Box::new(RotatePicker(AtomicUsize::new(0)))
    }
}

impl Picker for RotatePicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let n = ctx.members().len();
        let start = self.0.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| ctx.is_available(i))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [iface, vrid, priority, vip, port, backends @ ..] = args.as_slice() else {
        return Err("usage: custom_proxy IFACE VRID PRIORITY VIP/PREFIX PORT BACKEND...".into());
    };
    let vip: ha_lb::config::Vip = vip.parse()?;
    let backends: Vec<std::net::SocketAddr> = backends.iter().flat_map(|b| b.parse()).collect();
    let members = backends.iter().map(|&b| BackendConfig::new(b)).collect();
    let mut pool = PoolConfig::new("app", members);
    pool.algorithm = Algorithm::Custom(Arc::new(Rotate));
    let mut listener = ListenerConfig::new((vip.address, port.parse()?).into(), "app");
    listener.freebind = true; // listen before the VIP arrives: serve the moment it does
    let (pools, listeners) = (vec![pool], vec![listener]);
    let balancer = Balancer::start(BalancerConfig { pools, listeners })?;
    // One HTTP check per backend, every 500 ms; the pool is healthy while any backend is up.
    let (healthy_tx, healthy) = watch::channel(true);
    let checks = MonitorConfig::default().with_interval(Duration::from_millis(500));
    let mut monitors = Vec::new();
    for &b in &backends {
        let check = CheckConfig::Http(HttpConfig::new(format!("http://{b}/"))).build()?;
        monitors.push((b, Monitor::spawn(b.to_string(), check, &checks)?));
    }
    let states: Vec<_> = monitors
        .iter()
        .map(|(b, m)| (*b, m.subscribe().state))
        .collect();
    let pool = balancer.pool("app").ok_or("no pool")?;
    for (b, mut state) in states.clone() {
        let (pool, states, healthy_tx) = (pool.clone(), states.clone(), healthy_tx.clone());
        tokio::spawn(async move {
            while state.changed().await.is_ok() {
                let up = *state.borrow_and_update() == State::Up;
                let _ = pool.set_state(b, [BackendState::Down, BackendState::Up][usize::from(up)]);
                let _ = healthy_tx.send(states.iter().any(|(_, s)| *s.borrow() == State::Up));
            }
        });
    }

    let failover = Failover::builder(iface, vrid.parse()?)
        .priority(priority.parse()?)
        .vip(vip)
        .advert_interval(Duration::from_millis(100))
        .track("backends", healthy, -60)
        .spawn()
        .await?;
    signal(SignalKind::terminate())?.recv().await;
    failover.shutdown().await; // priority 0: the peer takes over at once
    balancer.shutdown(Duration::from_secs(2)).await;
    drop(monitors);
    Ok(())
}
