//! A selection algorithm written outside lb-core: "first available by address order", a
//! simple primary/standby policy (always the lowest address that can take traffic).
//!
//! ```sh
//! cargo run -p lb-core --example custom-selector
//! ```

use std::sync::Arc;
use std::time::Duration;

use lb_core::{
    Algorithm, Backend, BackendConfig, BackendState, Balancer, BalancerConfig, ListenerConfig,
    PickContext, Picker, PoolConfig, Selector,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Always the lowest-addressed available backend.
struct FirstByAddress;

struct FirstByAddressPicker {
    /// Member indexes sorted by address, computed once per membership change.
    order: Vec<usize>,
}

impl Selector for FirstByAddress {
    fn name(&self) -> &str {
        "first-by-address"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| members[i].addr());
        println!("membership changed: {} members", members.len());
        Box::new(FirstByAddressPicker { order })
    }
}

impl Picker for FirstByAddressPicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        self.order.iter().copied().find(|&i| ctx.is_available(i))
    }
}

/// A backend that answers every connection with its name.
async fn backend(name: &'static str) -> anyhow::Result<std::net::SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(name.as_bytes()).await;
        }
    });
    Ok(addr)
}

async fn ask(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = backend("a").await?;
    let b = backend("b").await?;
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    let mut pool = PoolConfig::new("custom", vec![BackendConfig::new(a), BackendConfig::new(b)]);
    pool.algorithm = Algorithm::Custom(Arc::new(FirstByAddress));
    let balancer = Balancer::start(BalancerConfig {
        pools: vec![pool],
        listeners: vec![ListenerConfig::new("127.0.0.1:0".parse()?, "custom")],
    })?;
    let front = balancer.listeners()[0].local_addr();
    println!("to {first}: {}", ask(front).await?);
    if let Some(p) = balancer.pool("custom") {
        p.set_state(first, BackendState::Down)?;
    }
    println!("{first} down, to {second}: {}", ask(front).await?);
    balancer.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
