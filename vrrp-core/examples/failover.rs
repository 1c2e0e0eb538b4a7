//! Two simulated VRRP routers on one virtual LAN, in virtual time: lb1 (priority 100) is
//! Master, crashes, lb2 (priority 50) takes over, lb1 boots again and preempts, then shuts down
//! gracefully and lb2 takes over within Skew_Time. Prints the timeline.
//!
//! ```sh
//! cargo run -p vrrp-core --example failover
//! ```
//!
//! The "network" is a queue of packets delivered 1 ms after they are sent; the clock is an
//! `Instant` that jumps from one event to the next, so the run is instant and deterministic.

use std::error::Error;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use vrrp_core::packet::Version;
use vrrp_core::{Output, Received, Router, RouterConfig, State};

const LATENCY: Duration = Duration::from_millis(1);

struct Node {
    name: &'static str,
    config: RouterConfig,
    router: Router,
    up: bool,
}

struct Lan {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// (delivery time, destination node, source, destination address, payload)
    wire: Vec<(Instant, usize, IpAddr, IpAddr, Vec<u8>)>,
    adverts: usize,
    /// When a router last became Master.
    last_master: Option<Instant>,
}

impl Lan {
    fn at(&self) -> String {
        format!("{:>8.3}s", (self.now - self.t0).as_secs_f64())
    }

    /// Drains a router's outputs: prints what matters, puts adverts on the wire.
    fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].router.poll_output() {
            let name = self.nodes[i].name;
            match out {
                Output::StateChanged { from, to, reason } => {
                    println!("{} {name}: {from} -> {to} ({reason})", self.at());
                    if to == State::Master {
                        self.last_master = Some(self.now);
                    }
                }
                Output::AddAddresses(a) => println!("{} {name}: add {a:?}", self.at()),
                // Only a router held for a sync group wants Master; none is here.
                Output::WantsMaster(_) => {}
                Output::RemoveAddresses(a) => println!("{} {name}: remove {a:?}", self.at()),
                Output::Announce { addresses, repeat } => {
                    println!(
                        "{} {name}: {repeat} gratuitous ARPs for {addresses:?}",
                        self.at()
                    );
                }
                Output::Transmit(t) => {
                    self.adverts += 1;
                    if t.priority == 0 {
                        println!(
                            "{} {name}: advert with priority 0 (stepping down)",
                            self.at()
                        );
                    }
                    for j in 0..self.nodes.len() {
                        if j != i {
                            let at = self.now + LATENCY;
                            self.wire.push((at, j, t.src, t.dst, t.payload.clone()));
                        }
                    }
                }
                // Outputs a later vrrp-core may add: a driver ignores what it does not know.
                _ => {}
            }
        }
    }

    /// Runs every timer and delivery up to `until`, in time order.
    fn run_until(&mut self, until: Duration) {
        let until = self.t0 + until;
        loop {
            let packet = self.wire.iter().map(|p| p.0).min();
            let timer = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].up)
                .filter_map(|i| self.nodes[i].router.poll_timeout().map(|t| (t, i)))
                .min();
            let next = match (packet, timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if packet == Some(next) {
                let k = self.wire.iter().position(|p| p.0 == next).unwrap_or(0);
                let (_, to, src, dst, payload) = self.wire.swap_remove(k);
                if self.nodes[to].up {
                    let rx = Received {
                        src,
                        dst,
                        ttl: 255,
                        bytes: &payload,
                    };
                    // A drop is counted in the router's stats; nothing else to do here.
                    let _ = self.nodes[to].router.handle_packet(next, &rx);
                    self.drain(to);
                }
            } else if let Some((_, i)) = timer {
                self.nodes[i].router.handle_timeout(next);
                self.drain(i);
            }
        }
        self.now = until;
    }

    fn master(&self) -> Option<&'static str> {
        self.nodes
            .iter()
            .find(|n| n.up && n.router.state() == State::Master)
            .map(|n| n.name)
    }
}

fn node(name: &'static str, addr: &str, priority: u8) -> Result<Node, Box<dyn Error>> {
    let mut config = RouterConfig::new(
        101,
        Version::V3,
        addr.parse()?,
        vec!["192.0.2.100".parse()?],
    );
    config.priority = priority;
    config.announce.master_delay = None;
    Ok(Node {
        name,
        router: Router::new(config.clone())?,
        config,
        up: true,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let t0 = Instant::now();
    let mut lan = Lan {
        t0,
        now: t0,
        nodes: vec![
            node("lb1", "192.0.2.1", 100)?,
            node("lb2", "192.0.2.2", 50)?,
        ],
        wire: Vec::new(),
        adverts: 0,
        last_master: None,
    };
    println!("VRRPv3, VRID 101, VIP 192.0.2.100, adverts every 1 s, {LATENCY:?} latency");
    println!(
        "lb1 192.0.2.1 priority 100 (Master_Down_Interval {:?}), lb2 192.0.2.2 priority 50 ({:?})\n",
        lan.nodes[0].router.master_down_interval(),
        lan.nodes[1].router.master_down_interval()
    );

    println!("{} both start", lan.at());
    for i in 0..2 {
        lan.nodes[i].router.handle_startup(t0);
        lan.drain(i);
    }
    lan.run_until(Duration::from_secs(10));
    println!("{} master: {:?}\n", lan.at(), lan.master());

    println!("{} lb1 crashes (no priority 0)", lan.at());
    let crash = lan.now;
    lan.nodes[0].up = false;
    lan.wire.retain(|p| p.1 != 0);
    lan.run_until(Duration::from_secs(20));
    let took = lan.last_master.map(|t| t - crash).unwrap_or_default();
    println!(
        "{} master: {:?}, {took:?} after the crash\n",
        lan.at(),
        lan.master()
    );

    println!("{} lb1 boots again", lan.at());
    lan.nodes[0].router = Router::new(lan.nodes[0].config.clone())?;
    lan.nodes[0].up = true;
    lan.nodes[0].router.handle_startup(lan.now);
    lan.drain(0);
    lan.run_until(Duration::from_secs(30));
    println!("{} master: {:?}\n", lan.at(), lan.master());

    println!("{} lb1 shuts down gracefully", lan.at());
    let stop = lan.now;
    lan.nodes[0].router.handle_shutdown(stop);
    lan.drain(0);
    lan.run_until(Duration::from_secs(35));
    let took = lan.last_master.map(|t| t - stop).unwrap_or_default();
    println!(
        "{} master: {:?}, {took:?} after the shutdown (lb2's Skew_Time is {:?})\n",
        lan.at(),
        lan.master(),
        lan.nodes[1].router.skew_time()
    );

    let s = lan.nodes[1].router.stats();
    println!(
        "{} adverts sent in all; lb2 received {} (priority 0: {}), became Master {} times",
        lan.adverts, s.rcvd_advertisements, s.rcvd_pri_zero_packets, s.master_transitions
    );
    if lan.master() != Some("lb2") {
        return Err("lb2 should hold the address at the end".into());
    }
    Ok(())
}
