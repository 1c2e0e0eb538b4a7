//! End to end: listeners in NAT mode (`mode = "nat"`): ha-lb programs nftables over netlink
//! and the kernel forwards every connection. The two-node harness of `support/topo.rs` (one
//! bridge: lb1 192.0.2.1, lb2 192.0.2.2, backends b1..b3 192.0.2.3..5 answering their name on
//! port 8080, client 192.0.2.6, VIP 192.0.2.100). ha-lb itself turns on `net.ipv4.ip_forward`
//! in the balancer's namespace: the tests set no sysctl (one turns forwarding off first, to
//! see ha-lb turn it on).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ha_lb::net::nat::{NatListener, Pick, Snat};
use nix::sys::signal::Signal;

use crate::backend::{Answer, Backend};
use crate::client::Client;
use crate::netns::{self, serial, wait_until, Netns};
use crate::topo::{kill, worker_pid, Topo, CLIENT, LB1, LB2, VIP};

/// Our NAT table as `nft` lists it in `ns`.
fn nft_table(ns: &Netns) -> String {
    ns.nft_table("ha_lb_nat")
}

fn has_nft(test: &str) -> bool {
    netns::tool_available(test, "nft", "nftables")
}

/// A node's configuration: VRRP instance VI_1 holding the VIP (priority `priority`), a NAT
/// listener VIP:80 over b1 (weight 2), b2 and backup b3, with a tcp check every 200 ms (fall 1),
/// and a NAT listener VIP:90 to the echo servers on b1 and b2 (port 9090).
fn config(priority: u32, nat_source: &str, pool_web: &str) -> String {
    format!(
        r#"[admin]
listen = "127.0.0.1:9555"
control = true

[instances.VI_1]
interface = "eth0"
vrid = 51
priority = {priority}
version = 3
advert_interval_ms = 100
vips = ["{VIP}/24"]
garp = {{ master_delay_ms = 0 }}

[listeners.web]
listen = "{VIP}:80"
pool = "web"
mode = "nat"
nat_source = "{nat_source}"

[listeners.echo]
listen = "{VIP}:90"
pool = "echo"
mode = "nat"
nat_source = "{nat_source}"

[checks.tcp]
kind = "tcp"
interval_ms = 200
timeout_ms = 100
rise = 1
fall = 1

[pools.web]
{pool_web}

[pools.echo]
backends = [
    {{ address = "192.0.2.3:9090", check = "tcp" }},
    {{ address = "192.0.2.4:9090", check = "tcp" }},
]
"#
    )
}

const WEB: &str = r#"backends = [
    { address = "192.0.2.3:8080", weight = 2, check = "tcp" },
    { address = "192.0.2.4:8080", check = "tcp" },
    { address = "192.0.2.5:8080", backup = true, check = "tcp" },
]"#;

/// A line echo server on port 9090 that prefixes each line with its name, until dropped.
fn echo(ns: &Netns, name: &str) -> Backend {
    Backend::serve(Some(ns), "0.0.0.0:9090", name, Answer::EchoLines)
}

/// One TCP connection from the client to VIP:90, kept open.
struct Flow {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Flow {
    fn open(ns: &Netns) -> Flow {
        let s = ns.run(|| {
            TcpStream::connect_timeout(
                &format!("{VIP}:90").parse().unwrap(),
                Duration::from_secs(2),
            )
            .unwrap()
        });
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Flow {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    /// Sends `word`, returns the answer (`NAME word`), or why there is none.
    fn ask(&mut self, word: &str) -> Result<String, String> {
        self.w
            .write_all(format!("{word}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) => Err("closed".into()),
            Ok(_) => Ok(line.trim().to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The answers of `client` after `since`, counted by backend.
fn counts(client: &Client, since: Instant) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in client.samples() {
        if let (true, Some(a)) = (s.at >= since, s.answer) {
            *m.entry(a).or_insert(0) += 1;
        }
    }
    m
}

/// The netlink batch ha-lb sends makes, as `nft` lists it, exactly the table its `nft` script
/// makes: round robin, random and source hash, IPv4 and IPv6, masquerade, snat to the VIP and
/// none, a listener without backends (no rule); replaced, then removed.
#[test]
fn nat_tables_over_netlink_match_the_nft_script() {
    let _serial = serial();
    if !has_nft("nat_tables_over_netlink_match_the_nft_script") || !Netns::available("natnl") {
        return;
    }
    let (ours, theirs) = (
        Netns::new("natnl-a").unwrap(),
        Netns::new("natnl-b").unwrap(),
    );
    let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let sets: Vec<Vec<NatListener>> = vec![
        vec![
            NatListener {
                listen: a("192.0.2.100:80"),
                pick: Pick::RoundRobin,
                snat: Snat::Masquerade,
                slots: vec![
                    a("198.51.100.1:8080"),
                    a("198.51.100.2:8080"),
                    a("198.51.100.1:8080"),
                ],
            },
            NatListener {
                listen: a("192.0.2.100:443"),
                pick: Pick::Random,
                snat: Snat::To("192.0.2.100".parse().unwrap()),
                slots: vec![a("198.51.100.3:443")],
            },
            NatListener {
                listen: a("192.0.2.101:443"),
                pick: Pick::SourceHash,
                snat: Snat::Preserve,
                slots: vec![],
            },
            NatListener {
                listen: a("[2001:db8::100]:80"),
                pick: Pick::SourceHash,
                snat: Snat::To("2001:db8::100".parse().unwrap()),
                slots: vec![a("[2001:db8::1]:8080"), a("[2001:db8::2]:8080")],
            },
        ],
        vec![NatListener {
            listen: a("192.0.2.100:80"),
            pick: Pick::RoundRobin,
            snat: Snat::Masquerade,
            slots: vec![a("198.51.100.2:8080")],
        }],
        vec![],
    ];
    for listeners in sets {
        let l = listeners.clone();
        ours.run(move || ha_lb::net::nat::apply(&l)).unwrap();
        let script = ha_lb::net::nat::ruleset(&listeners);
        theirs.nft_apply(&script);
        let (got, want) = (ours.nft_table("ha_lb_nat"), theirs.nft_table("ha_lb_nat"));
        assert_eq!(got, want, "for {listeners:?}");
        for l in listeners.iter().filter(|l| !l.slots.is_empty()) {
            assert!(got.contains(&l.listen.ip().to_string()), "{got}");
        }
        assert_eq!(got.is_empty(), listeners.is_empty(), "{got}");
    }
}

/// Weighted round robin through the kernel (b1 weight 2, b2 weight 1, b3 backup): 2:1, no
/// backup; b1's check going down takes it out of the map within one check interval and its
/// new flows go to b2; with b2 down too, the backup serves; b1 back, the backup stops.
#[test]
fn nat_balances_by_weight_and_follows_checks() {
    let _serial = serial();
    if !has_nft("nat_balances_by_weight_and_follows_checks") {
        return;
    }
    let Some(topo) = Topo::new("natrr") else {
        return;
    };
    let lb = topo.ns(LB1);
    // Forwarding off (a new namespace copies the host's): ha-lb turns it on.
    lb.sysctl("net.ipv4.ip_forward", "0");
    let forward = || lb.run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap());
    let c = topo.write("lb1.toml", &config(150, "masquerade", WEB));
    let _lb1 = topo.start(LB1, "lb1", &c);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    // Both primaries in the map (weights as repeated entries), the backup not.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let t = lb.nft_table("ha_lb_nat");
            t.contains("192.0.2.3 . 8080") && t.contains("192.0.2.4 . 8080")
        }),
        "{}\n{}",
        lb.nft_table("ha_lb_nat"),
        topo.dump()
    );
    assert_eq!(forward().trim(), "1");
    let table = lb.nft_table("ha_lb_nat");
    assert_eq!(table.matches("192.0.2.3 . 8080").count(), 2, "{table}");
    assert_eq!(table.matches("192.0.2.4 . 8080").count(), 1, "{table}");
    assert!(!table.contains("192.0.2.5 . 8080"), "{table}");
    assert!(
        table.contains("dnat ip to numgen inc mod 3 map @backends_1"),
        "{table}"
    );
    assert!(table.contains("masquerade"), "{table}");
    // No socket of ha-lb's on the port: the kernel does it all.
    let ss = lb
        .command("ss")
        .args(["-Htln", "sport = :80"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ss.stdout).trim().is_empty(),
        "{ss:?}"
    );

    let since = Instant::now();
    let client = topo.served_client(&format!("{VIP}:80"));
    assert!(client.wait_successes(since, 300, Duration::from_secs(20)));
    let n = counts(&client, since);
    let (b1, b2) = (
        n.get("b1").copied().unwrap_or(0),
        n.get("b2").copied().unwrap_or(0),
    );
    eprintln!("weights 2:1 -> {n:?}");
    assert!(
        !n.contains_key("b3"),
        "the backup served while primaries were up: {n:?}"
    );
    let ratio = b1 as f64 / b2 as f64;
    assert!((1.8..=2.2).contains(&ratio), "b1:b2 = {ratio}, {n:?}");
    // Every flow is counted per backend (open ones from the table, ended ones from events).
    let totals: BTreeMap<String, u64> = topo
        .status(LB1)
        .unwrap()
        .nat
        .into_iter()
        .find(|l| l.name == "web")
        .unwrap()
        .backends
        .into_iter()
        .map(|b| (b.address, b.flows_total))
        .collect();
    let answered = |addr: &str, n: usize| totals[addr] >= n as u64;
    assert!(
        answered("192.0.2.3:8080", b1) && answered("192.0.2.4:8080", b2),
        "{totals:?} {n:?}"
    );
    assert_eq!(totals["192.0.2.5:8080"], 0, "{totals:?}");

    // A client on the balancer itself is balanced too (the output hook).
    let local: Vec<String> = (0..3)
        .map(|_| {
            lb.run(|| {
                let mut s = TcpStream::connect_timeout(
                    &format!("{VIP}:80").parse().unwrap(),
                    Duration::from_secs(2),
                )
                .unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut s, &mut text).unwrap();
                text.trim().to_owned()
            })
        })
        .collect();
    let mut seen = local.clone();
    seen.sort();
    assert_eq!(seen, ["b1", "b1", "b2"], "{local:?}");

    // b1's check fails (its link goes down): out of the map within one interval (200 ms) plus
    // the check's timeout (100 ms) and room for a loaded machine.
    let down = Instant::now();
    topo.ns(2).ip(&["link", "set", "eth0", "down"]);
    assert!(
        wait_until(Duration::from_secs(3), || !lb
            .nft_table("ha_lb_nat")
            .contains("192.0.2.3 . 8080")),
        "{}",
        topo.dump()
    );
    let took = down.elapsed();
    eprintln!("b1 out of the map after {} ms", took.as_millis());
    assert!(took < Duration::from_millis(200 + 100 + 300), "{took:?}");
    let after = Instant::now();
    assert!(client.wait_successes(after, 50, Duration::from_secs(10)));
    let n = counts(&client, after);
    assert_eq!(n.keys().collect::<Vec<_>>(), ["b2"], "{n:?}");

    // b2 down too: the backup takes the new flows.
    topo.ns(3).ip(&["link", "set", "eth0", "down"]);
    assert!(wait_until(Duration::from_secs(3), || lb
        .nft_table("ha_lb_nat")
        .contains("192.0.2.5 . 8080")));
    let after = Instant::now();
    assert!(client.wait_successes(after, 50, Duration::from_secs(10)));
    assert_eq!(counts(&client, after).keys().collect::<Vec<_>>(), ["b3"]);

    // All three down: no rule, and the SYN reaches the node itself, which answers with a reset.
    topo.ns(4).ip(&["link", "set", "eth0", "down"]);
    assert!(wait_until(Duration::from_secs(3), || !lb
        .nft_table("ha_lb_nat")
        .contains("backends_1")));
    let refused = topo.ns(CLIENT).run(|| {
        TcpStream::connect_timeout(
            &format!("{VIP}:80").parse().unwrap(),
            Duration::from_secs(2),
        )
        .map(|_| ())
        .map_err(|e| e.kind())
    });
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused));
    topo.ns(4).ip(&["link", "set", "eth0", "up"]);

    // b1 back: the backup is out again.
    topo.ns(2).ip(&["link", "set", "eth0", "up"]);
    assert!(wait_until(Duration::from_secs(3), || {
        let t = lb.nft_table("ha_lb_nat");
        t.contains("192.0.2.3 . 8080") && !t.contains("192.0.2.5 . 8080")
    }));
    let after = Instant::now();
    assert!(client.wait_successes(after, 50, Duration::from_secs(10)));
    assert_eq!(counts(&client, after).keys().collect::<Vec<_>>(), ["b1"]);
}

/// A TCP connection through the NAT listener stays up across a reload that changes the
/// pool (the other backend removed, a new one added), an operator's drain and enable of
/// another backend, and another backend's check going down: the table is replaced, the flow's
/// conntrack entry is not touched. The status counts the flows per backend from conntrack.
#[test]
fn nat_reload_and_health_changes_keep_open_flows() {
    let _serial = serial();
    if !has_nft("nat_reload_and_health_changes_keep_open_flows") {
        return;
    }
    let Some(topo) = Topo::new("natrl") else {
        return;
    };
    let _echo = [
        echo(topo.ns(2), "b1"),
        echo(topo.ns(3), "b2"),
        echo(topo.ns(4), "b3"),
    ];
    let c = topo.write("lb1.toml", &config(150, "masquerade", WEB));
    let lb1 = topo.start(LB1, "lb1", &c);
    topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
    assert!(wait_until(Duration::from_secs(5), || nft_table(
        topo.ns(LB1)
    )
    .contains("192.0.2.4 . 9090")));
    // Two flows: round robin puts one on b1, one on b2.
    let mut flows = [Flow::open(topo.ns(CLIENT)), Flow::open(topo.ns(CLIENT))];
    let owners: Vec<String> = flows
        .iter_mut()
        .map(|f| {
            let a = f.ask("hello").unwrap();
            a.split(' ').next().unwrap().to_owned()
        })
        .collect();
    let mut sorted = owners.clone();
    sorted.sort();
    assert_eq!(sorted, ["b1", "b2"], "{owners:?}");
    let keep = owners.iter().position(|o| o == "b1").unwrap();
    // The status counts them from conntrack, per backend, with their bytes.
    let status = topo.status(LB1).unwrap();
    let echo = status.nat.iter().find(|l| l.name == "echo").unwrap();
    assert_eq!(echo.nat_source, "masquerade");
    for b in &echo.backends {
        assert_eq!((b.slots, b.flows, b.established), (1, 1, 1), "{echo:?}");
        assert!(
            b.bytes_from_clients > 0 && b.bytes_to_clients > 0,
            "{echo:?}"
        );
    }
    let metrics = topo.ns(LB1).run(|| {
        let mut s = TcpStream::connect("127.0.0.1:9555").unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s, &mut text).unwrap();
        text
    });
    assert!(
        metrics.contains(
            "ha_lb_nat_backend_established_flows{listen=\"192.0.2.100:90\",pool=\"echo\",backend=\"192.0.2.3:9090\"} 1"
        ),
        "{metrics}"
    );

    // Reload: echo pool now b1 and b3 (b2 removed).
    let text = config(150, "masquerade", WEB).replace("192.0.2.4:9090", "192.0.2.5:9090");
    std::fs::write(&c, text).unwrap();
    lb1.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(5), || {
            let t = nft_table(topo.ns(LB1));
            t.contains("192.0.2.5 . 9090") && !t.contains("192.0.2.4 . 9090")
        }),
        "{}",
        topo.dump()
    );
    assert!(
        wait_until(Duration::from_secs(5), || topo
            .log("lb1")
            .contains("reload done")),
        "{}",
        topo.dump()
    );
    assert_eq!(flows[keep].ask("after-reload").unwrap(), "b1 after-reload");
    // The flow to the removed backend goes on too (it still serves): no conntrack flush.
    assert_eq!(flows[1 - keep].ask("removed").unwrap(), "b2 removed");
    // A new flow goes to what the file says now.
    let mut fresh: Vec<String> = (0..4)
        .map(|_| {
            let mut f = Flow::open(topo.ns(CLIENT));
            f.ask("x").unwrap().split(' ').next().unwrap().to_owned()
        })
        .collect();
    fresh.sort();
    fresh.dedup();
    assert_eq!(fresh, ["b1", "b3"]);

    // An operator drains b3 (ha-lb ctl): out of the map, b1's flow goes on; enabled: back.
    let ctl = |action: &str| {
        let out = topo
            .ns(LB1)
            .command(&netns::halb_binary())
            .args([
                "ctl",
                "--admin",
                "127.0.0.1:9555",
                "backend",
                "echo",
                "192.0.2.5:9090",
                action,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    ctl("drain");
    assert!(wait_until(Duration::from_secs(3), || !nft_table(
        topo.ns(LB1)
    )
    .contains("192.0.2.5 . 9090")));
    assert_eq!(flows[keep].ask("drained").unwrap(), "b1 drained");
    ctl("enable");
    assert!(wait_until(Duration::from_secs(3), || nft_table(
        topo.ns(LB1)
    )
    .contains("192.0.2.5 . 9090")));

    // Another backend's check goes down (b3's link): the table changes, b1's flow goes on.
    topo.ns(4).ip(&["link", "set", "eth0", "down"]);
    assert!(wait_until(Duration::from_secs(3), || !nft_table(
        topo.ns(LB1)
    )
    .contains("192.0.2.5 . 9090")));
    for i in 0..20 {
        assert_eq!(
            flows[keep].ask(&format!("w{i}")).unwrap(),
            format!("b1 w{i}"),
            "{}",
            topo.dump()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Two balancers with the NAT listener (source NAT to the VIP, source hash): the client is
/// served through lb1, then through lb2 after lb1 stops, within the handover bound, and by the
/// same backend all along.
#[test]
fn nat_listener_follows_the_vip() {
    let _serial = serial();
    if !has_nft("nat_listener_follows_the_vip") {
        return;
    }
    let Some(topo) = Topo::new("natvip") else {
        return;
    };
    let web = format!("algorithm = \"sourcehash\"\n{WEB}");
    let c1 = topo.write("lb1.toml", &config(150, "vip", &web));
    let c2 = topo.write("lb2.toml", &config(100, "vip", &web));
    let (mut lb1, _lb2) = topo.start_pair(&c1, &c2);
    let table = nft_table(topo.ns(LB1));
    assert!(table.contains("snat ip to 192.0.2.100"), "{table}");
    assert!(table.contains("jhash ip saddr mod 3"), "{table}");
    assert!(wait_until(Duration::from_secs(5), || nft_table(
        topo.ns(LB2)
    )
    .contains("192.0.2.3 . 8080")));
    let client = topo.served_client(&format!("{VIP}:80"));
    let stopped = Instant::now();
    lb1.stop();
    topo.expect_state(LB2, "VI_1", "Master", Duration::from_secs(5));
    // lb2's Skew_Time at priority 100 is 61 ms; a graceful stop sends priority 0.
    topo.assert_served_again(
        &client,
        stopped,
        "NAT, lb1 stopped",
        Duration::from_millis(61 + 500),
    );
    // Source hash with the same seed on both nodes: the one client had one backend through
    // lb1, and keeps it through lb2.
    let all = counts(&client, Instant::now() - Duration::from_secs(3600));
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all.values().sum::<usize>() >= 40, "{all:?}");
    // lb1's rules are gone with it.
    assert_eq!(nft_table(topo.ns(LB1)), "");
}

/// Every rule goes: at a graceful stop, when the worker is killed (the supervisor removes
/// them, the restarted worker programs them again), and, after both processes are killed,
/// at the next start, also of a configuration without NAT listeners.
#[test]
fn nat_rules_are_removed_on_stop_and_after_a_kill() {
    let _serial = serial();
    if !has_nft("nat_rules_are_removed_on_stop_and_after_a_kill") {
        return;
    }
    let Some(topo) = Topo::new("natrm") else {
        return;
    };
    let lb = topo.ns(LB1);
    let c = topo.write("lb1.toml", &config(150, "masquerade", WEB));
    let mut lb1 = topo.start(LB1, "lb1", &c);
    let programmed = || lb.nft_table("ha_lb_nat").contains("192.0.2.3 . 8080");
    assert!(
        wait_until(Duration::from_secs(10), programmed),
        "{}",
        topo.dump()
    );

    // The worker killed: the supervisor removes the table, the new worker makes it again.
    let worker = worker_pid(lb1.pid()).unwrap();
    kill(worker, Signal::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || topo
            .log("lb1")
            .contains("NAT listeners' rules removed for the dead worker")),
        "{}",
        topo.dump()
    );
    assert!(
        wait_until(Duration::from_secs(10), || worker_pid(lb1.pid())
            .is_some_and(|w| w != worker)
            && programmed()),
        "{}",
        topo.dump()
    );

    // Graceful stop: nothing left.
    assert!(lb1.stop());
    assert_eq!(lb.nft_table("ha_lb_nat"), "", "{}", topo.dump());

    // Both processes killed: the table stays; the next start (without NAT listeners) removes it.
    let mut lb1 = topo.start(LB1, "lb1", &c);
    assert!(wait_until(Duration::from_secs(10), programmed));
    let worker = worker_pid(lb1.pid()).unwrap();
    lb1.signal(Signal::SIGKILL);
    kill(worker, Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(5), || lb1.has_exited()));
    thread::sleep(Duration::from_millis(200));
    assert!(programmed(), "a killed run leaves its table");
    let proxy_only =
        config(150, "masquerade", WEB).replace("mode = \"nat\"\nnat_source = \"masquerade\"\n", "");
    let c = topo.write("lb1-proxy.toml", &proxy_only);
    let _lb1 = topo.start(LB1, "lb1", &c);
    assert!(
        wait_until(Duration::from_secs(10), || lb
            .nft_table("ha_lb_nat")
            .is_empty()),
        "{}\n{}",
        lb.nft_table("ha_lb_nat"),
        topo.dump()
    );
}

/// A TCP server on `[::]:8081` in `ns` answering each connection with `name`, until dropped.
fn v6_server(ns: &Netns, name: &str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let name = name.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = ns.spawn(move || {
        let listener = TcpListener::bind("[::]:8081").unwrap();
        listener.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.write_all(format!("{name}\n").as_bytes());
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    rx.recv().unwrap();
    t
}

/// An IPv6 NAT listener: ha-lb turns on IPv6 forwarding, and round robin reaches both IPv6
/// backends through the kernel (the `ip6` rules, the 16-byte address registers).
#[test]
fn nat_listener_over_ipv6() {
    let _serial = serial();
    if !has_nft("nat_listener_over_ipv6") {
        return;
    }
    let Some(topo) = Topo::new("nat6") else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let servers = [
        v6_server(topo.ns(2), "b1", stop.clone()),
        v6_server(topo.ns(3), "b2", stop.clone()),
    ];
    let lb = topo.ns(LB1);
    lb.sysctl("net.ipv6.conf.all.forwarding", "0");
    let c = topo.write(
        "lb1.toml",
        r#"[admin]
listen = "127.0.0.1:9555"

[instances.VI_6]
interface = "eth0"
vrid = 61
priority = 150
advert_interval_ms = 100
vips = ["2001:db8::100/64"]

[listeners.web6]
listen = "[2001:db8::100]:80"
pool = "web6"
mode = "nat"

[checks.tcp]
kind = "tcp"
interval_ms = 200

[pools.web6]
backends = [
    { address = "[2001:db8::3]:8081", check = "tcp" },
    { address = "[2001:db8::4]:8081", check = "tcp" },
]
"#,
    );
    let _lb1 = topo.start(LB1, "lb1", &c);
    topo.expect_state(LB1, "VI_6", "Master", Duration::from_secs(15));
    assert!(
        wait_until(Duration::from_secs(5), || lb
            .nft_table("ha_lb_nat")
            .contains("2001:db8::4 . 8081")),
        "{}\n{}",
        lb.nft_table("ha_lb_nat"),
        topo.dump()
    );
    let forwarding =
        lb.run(|| std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap());
    assert_eq!(forwarding.trim(), "1");
    let since = Instant::now();
    let client = Client::start(topo.ns(CLIENT), "[2001:db8::100]:80");
    assert!(
        client.wait_successes(since, 100, Duration::from_secs(10)),
        "{}",
        topo.dump()
    );
    let n = counts(&client, since);
    eprintln!("IPv6 round robin: {n:?}");
    assert_eq!(n.keys().collect::<Vec<_>>(), ["b1", "b2"], "{n:?}");
    let (b1, b2) = (n["b1"], n["b2"]);
    assert!(b1.abs_diff(b2) <= 2 + (b1 + b2) / 20, "{n:?}");
    drop(client);
    stop.store(true, Ordering::Relaxed);
    for s in servers {
        let _ = s.join();
    }
}

/// `on_backend_down`: a backend whose check goes down but which still serves keeps its open
/// flow with `keep`; with `close` the flow's conntrack entry goes, and the client's next
/// packet is answered with a reset (it then reconnects to a healthy backend). With `log =
/// true` the ended flow is in the connection log (conntrack's destroy event).
#[test]
fn nat_on_backend_down_keep_or_close() {
    let _serial = serial();
    if !has_nft("nat_on_backend_down_keep_or_close") {
        return;
    }
    let Some(topo) = Topo::new("natdown") else {
        return;
    };
    let _echo = [echo(topo.ns(2), "b1"), echo(topo.ns(3), "b2")];
    let dir = std::env::temp_dir().join(format!("halb-natdown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in ["keep", "close"] {
        for b in ["b1", "b2"] {
            std::fs::write(dir.join(format!("{b}-up")), "").unwrap();
        }
        let check = |b: &str| {
            format!(
                "[checks.{b}]\nkind = \"exec\"\ncommand = [\"/usr/bin/test\", \"-e\", \"{}\"]\n\
                 interval_ms = 100\nrise = 1\nfall = 1\n",
                dir.join(format!("{b}-up")).display()
            )
        };
        let text = format!(
            r#"[admin]
listen = "127.0.0.1:9555"

[instances.VI_1]
interface = "eth0"
vrid = 51
priority = 150
advert_interval_ms = 100
vips = ["{VIP}/24"]

[listeners.echo]
listen = "{VIP}:90"
pool = "echo"
mode = "nat"
log = true

[pools.echo]
on_backend_down = "{mode}"
backends = [
    {{ address = "192.0.2.3:9090", check = "b1" }},
    {{ address = "192.0.2.4:9090", check = "b2" }},
]

{}
{}"#,
            check("b1"),
            check("b2")
        );
        let c = topo.write(&format!("lb1-{mode}.toml"), &text);
        let mut lb1 = topo.start(LB1, "lb1", &c);
        topo.expect_state(LB1, "VI_1", "Master", Duration::from_secs(15));
        let lb = topo.ns(LB1);
        assert!(wait_until(Duration::from_secs(5), || lb
            .nft_table("ha_lb_nat")
            .contains("192.0.2.4 . 9090")));
        let mut flows = [Flow::open(topo.ns(CLIENT)), Flow::open(topo.ns(CLIENT))];
        let on_b2 = flows
            .iter_mut()
            .position(|f| f.ask("hi").unwrap().starts_with("b2"))
            .unwrap();
        std::fs::remove_file(dir.join("b2-up")).unwrap();
        assert!(
            wait_until(Duration::from_secs(3), || !lb
                .nft_table("ha_lb_nat")
                .contains("192.0.2.4 . 9090")),
            "{}",
            topo.dump()
        );
        if mode == "close" {
            assert!(
                wait_until(Duration::from_secs(3), || topo
                    .log("lb1")
                    .contains("NAT flows ended")),
                "{}",
                topo.dump()
            );
        } else {
            thread::sleep(Duration::from_millis(300));
        }
        let answer = flows[on_b2].ask("after");
        match mode {
            "keep" => assert_eq!(answer, Ok("b2 after".to_owned()), "{}", topo.dump()),
            _ => {
                assert!(answer.is_err(), "{answer:?}\n{}", topo.dump());
                assert!(
                    topo.log("lb1").contains("NAT flows ended"),
                    "{}",
                    topo.dump()
                );
                // The client reconnects: to b1.
                let mut again = Flow::open(topo.ns(CLIENT));
                assert_eq!(again.ask("again").unwrap(), "b1 again");
                // The connection log (log = true) has the ended flow, from conntrack.
                let line = |log: &str| {
                    log.lines()
                        .find(|l| {
                            l.contains("ha_lb::connection")
                                && l.contains("backend=192.0.2.4:9090")
                                && l.contains("end=\"removed\"")
                        })
                        .map(str::to_owned)
                };
                assert!(
                    wait_until(Duration::from_secs(3), || line(&topo.log("lb1")).is_some()),
                    "{}",
                    topo.dump()
                );
                let line = line(&topo.log("lb1")).unwrap();
                for field in [
                    "listener=echo",
                    "client=192.0.2.6:",
                    "pool=echo",
                    "mode=\"nat\"",
                ] {
                    assert!(line.contains(field), "{field} not in {line}");
                }
                assert!(!line.contains("bytes_in=0 "), "{line}");
                assert!(!line.contains("duration_ms=-1"), "{line}");
                // b2 has no flow open any more; its ended one stays in its totals.
                let b2 = topo
                    .status(LB1)
                    .unwrap()
                    .nat
                    .into_iter()
                    .flat_map(|l| l.backends)
                    .find(|b| b.address == "192.0.2.4:9090")
                    .unwrap();
                assert_eq!(b2.flows, 0, "{b2:?}");
                assert!(
                    b2.flows_total >= 1 && b2.bytes_from_clients_total > 0,
                    "{b2:?}"
                );
            }
        }
        // The flow to b1 is untouched either way.
        assert_eq!(flows[1 - on_b2].ask("b1?").unwrap(), "b1 b1?");
        assert!(lb1.stop());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
