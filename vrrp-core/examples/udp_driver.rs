//! A real driver loop, with real time and real sockets: two routers in two threads talk VRRPv3
//! in unicast mode over UDP on loopback (127.0.0.1 and 127.0.0.2), standing in for the raw
//! IP-protocol-112 socket a production driver opens. lb1 (priority 100) starts alone and becomes
//! Master; lb2 (priority 200) starts later and preempts; lb2 shuts down and lb1 takes over again.
//! About 3 seconds.
//!
//! ```sh
//! cargo run -p vrrp-core --example udp_driver
//! ```

use std::error::Error;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use vrrp_core::packet::Version;
use vrrp_core::{Output, Received, Router, RouterConfig};

/// Runs one router until `stop_at`, then shuts it down and sends its last outputs.
fn drive(
    name: &str,
    mut router: Router,
    socket: UdpSocket,
    peer: SocketAddr,
    start_at: Instant,
    stop_at: Instant,
    epoch: Instant,
) -> Result<Router, Box<dyn Error + Send + Sync>> {
    let me = router.config().primary_address;
    thread::sleep(start_at.saturating_duration_since(Instant::now()));
    router.handle_startup(Instant::now());
    let mut buf = [0u8; 1500];
    let mut stopped = false;
    loop {
        // 1. Do what the router asks.
        while let Some(output) = router.poll_output() {
            let t = epoch.elapsed().as_secs_f64();
            match output {
                // A raw socket would send t.payload as an IP packet from t.src to t.dst with
                // TTL t.ttl; here the peer's UDP port stands for its address.
                Output::Transmit(t) if t.dst == peer.ip() => {
                    socket.send_to(&t.payload, peer)?;
                }
                Output::Transmit(_) => {}
                Output::StateChanged { from, to, reason } => {
                    println!("{t:>6.3}s {name}: {from} -> {to} ({reason})");
                }
                Output::AddAddresses(a) => println!("{t:>6.3}s {name}: would add {a:?}"),
                // Only a router held for a sync group wants Master; none is here.
                Output::WantsMaster(_) => {}
                Output::RemoveAddresses(a) => println!("{t:>6.3}s {name}: would remove {a:?}"),
                Output::Announce { addresses, repeat } => {
                    println!("{t:>6.3}s {name}: would send {repeat} GARPs for {addresses:?}");
                }
                // Outputs a later vrrp-core may add: a driver ignores what it does not know.
                _ => {}
            }
        }
        if stopped {
            return Ok(router);
        }
        // 2. Wait for a packet, the router's next deadline, or our own stop time.
        let now = Instant::now();
        if now >= stop_at {
            router.handle_shutdown(now);
            stopped = true;
            continue;
        }
        let wake = router.poll_timeout().map_or(stop_at, |t| t.min(stop_at));
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let rx = Received {
                    src: from.ip(),
                    dst: me,
                    // UDP hides the TTL; unicast adverts are not TTL-checked anyway.
                    ttl: 255,
                    bytes: &buf[..n],
                };
                if let Err(e) = router.handle_packet(Instant::now(), &rx) {
                    println!("{name}: dropped a packet: {e}");
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // 3. Nothing came: let the timers run (a spurious call is harmless).
                router.handle_timeout(Instant::now());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn config(me: IpAddr, peer: IpAddr, priority: u8) -> RouterConfig {
    let vip = IpAddr::from([192, 0, 2, 100]);
    let mut c = RouterConfig::new(7, Version::V3, me, vec![vip]);
    c.priority = priority;
    c.advert_interval_cs = 20;
    c.unicast_peers = vec![peer];
    c.announce.master_delay = None;
    c
}

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let ip1 = IpAddr::from([127, 0, 0, 1]);
    let ip2 = IpAddr::from([127, 0, 0, 2]);
    let s1 = UdpSocket::bind((ip1, 0))?;
    let s2 = UdpSocket::bind((ip2, 0))?;
    let (a1, a2) = (s1.local_addr()?, s2.local_addr()?);
    let r1 = Router::new(config(ip1, ip2, 100))?;
    let r2 = Router::new(config(ip2, ip1, 200))?;
    let epoch = Instant::now();
    let at = |ms| epoch + Duration::from_millis(ms);
    println!("VRRPv3 every 200 ms over UDP on loopback: lb1 {a1} (priority 100), lb2 {a2} (200)");
    let (stop1, start2, stop2) = (at(3000), at(1000), at(2200));
    let t1 = thread::spawn(move || drive("lb1", r1, s1, a2, epoch, stop1, epoch));
    let t2 = thread::spawn(move || drive("lb2", r2, s2, a1, start2, stop2, epoch));
    let r2 = t2.join().map_err(|_| "lb2's thread panicked")??;
    let r1 = t1.join().map_err(|_| "lb1's thread panicked")??;
    println!(
        "lb1 became Master {} times, lb2 {} times",
        r1.stats().master_transitions,
        r2.stats().master_transitions
    );
    Ok(())
}
