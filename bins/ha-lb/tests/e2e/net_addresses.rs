//! Virtual addresses over netlink, in a network namespace: added (IPv6 without DAD), seen by
//! `ip addr`, removed, and the ones a crashed run left behind found and removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::netns;

use std::net::IpAddr;

use ha_lb::net::{Addresses, IfAddr, VipOptions};
use netns::{Lan, Netns};

fn vip(s: &str, prefix: u8) -> IfAddr {
    IfAddr::new(s.parse().unwrap(), prefix)
}

/// `ip -o addr show dev eth0` lines that hold `addr/prefix`.
fn ip_addr_line(ns: &Netns, cidr: &str) -> Option<String> {
    ns.ip(&["-o", "addr", "show", "dev", "eth0"])
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == cidr))
        .map(str::to_owned)
}

#[test]
fn a_vip_carries_its_label_and_broadcast() {
    let _serial = crate::netns::serial();
    if !Netns::available("a_vip_carries_its_label_and_broadcast") {
        return;
    }
    let lan = Lan::new("addrlbl", 1, true);
    let ns = &lan.nodes[0];
    let ifindex = ns.ifindex("eth0");
    let v4 = vip("192.0.2.200", 24);
    let added = ns.run(move || {
        let options = VipOptions {
            label: Some("eth0:vip".into()),
            broadcast: Some("192.0.2.255".parse().unwrap()),
        };
        Addresses::new()
            .unwrap()
            .add_vip_with(ifindex, v4, &options)
            .unwrap()
    });
    assert!(added);
    let line = ip_addr_line(ns, "192.0.2.200/24").expect("ip addr shows the VIP");
    assert!(line.contains("brd 192.0.2.255"), "{line}");
    assert!(line.contains("eth0:vip"), "{line}");
}

#[test]
fn vips_are_added_and_removed() {
    let _serial = crate::netns::serial();
    if !Netns::available("vips_are_added_and_removed") {
        return;
    }
    let lan = Lan::new("addr", 1, true);
    let ns = &lan.nodes[0];
    let ifindex = ns.ifindex("eth0");
    let v4 = vip("192.0.2.200", 32);
    let v6 = vip("2001:db8::100", 64);

    let (added, again, listed) = ns.run(move || {
        let mut a = Addresses::new().unwrap();
        let added = (
            a.add_vip(ifindex, v4).unwrap(),
            a.add_vip(ifindex, v6).unwrap(),
        );
        let again = a.add_vip(ifindex, v4).unwrap();
        (added, again, a.list(ifindex).unwrap())
    });
    assert_eq!(added, (true, true));
    assert!(!again, "adding twice reports it was there");
    for v in [v4, v6] {
        let e = listed.iter().find(|e| e.addr == v).expect("listed");
        assert!(e.is_vip, "{v} tagged as ha-lb's");
        assert!(!e.tentative, "{v} usable at once");
    }
    // The primary address is listed and not taken for a VIP.
    let primary = listed
        .iter()
        .find(|e| e.addr == vip("192.0.2.1", 24))
        .unwrap();
    assert!(!primary.is_vip);

    let line = ip_addr_line(ns, "192.0.2.200/32").expect("ip addr shows the IPv4 VIP");
    assert!(line.contains("eth0"), "{line}");
    let line = ip_addr_line(ns, "2001:db8::100/64").expect("ip addr shows the IPv6 VIP");
    assert!(line.contains("nodad"), "added without DAD: {line}");
    assert!(!line.contains("tentative"), "{line}");

    // The VRRP source stays the primary address, not the VIP.
    let src = ns.run(move || {
        Addresses::new()
            .unwrap()
            .vrrp_source(ifindex, false)
            .unwrap()
    });
    assert_eq!(src, Some("192.0.2.1".parse::<IpAddr>().unwrap()));

    let removed = ns.run(move || {
        let mut a = Addresses::new().unwrap();
        [
            a.remove(ifindex, v4).unwrap(),
            a.remove(ifindex, v6).unwrap(),
            a.remove(ifindex, v4).unwrap(),
        ]
    });
    assert_eq!(removed, [true, true, false]);
    assert!(ip_addr_line(ns, "192.0.2.200/32").is_none());
    assert!(ip_addr_line(ns, "2001:db8::100/64").is_none());
    assert!(
        ip_addr_line(ns, "192.0.2.1/24").is_some(),
        "the primary stays"
    );
}

#[test]
fn stale_vips_of_a_crashed_run_are_removed() {
    let _serial = crate::netns::serial();
    if !Netns::available("stale_vips_of_a_crashed_run_are_removed") {
        return;
    }
    let lan = Lan::new("stale", 1, true);
    let ns = &lan.nodes[0];
    let ifindex = ns.ifindex("eth0");
    // A crashed run: one tagged VIP no longer in the configuration, one IPv6 VIP.
    ns.run(move || {
        let mut a = Addresses::new().unwrap();
        a.add_vip(ifindex, vip("192.0.2.250", 32)).unwrap();
        a.add_vip(ifindex, vip("2001:db8::250", 128)).unwrap();
    });
    // Configured VIP left by another tool (keepalived), untagged, with another prefix.
    ns.ip(&["addr", "add", "192.0.2.200/24", "dev", "eth0"]);
    // An address of the operator's that is neither: it must stay.
    ns.ip(&["addr", "add", "198.51.100.9/24", "dev", "eth0"]);

    let mut removed = ns.run(move || {
        let mut a = Addresses::new().unwrap();
        a.remove_stale(ifindex, &["192.0.2.200".parse().unwrap()])
            .unwrap()
    });
    removed.sort();
    assert_eq!(
        removed,
        vec![
            vip("192.0.2.200", 24),
            vip("192.0.2.250", 32),
            vip("2001:db8::250", 128)
        ]
    );
    for gone in ["192.0.2.200/24", "192.0.2.250/32", "2001:db8::250/128"] {
        assert!(ip_addr_line(ns, gone).is_none(), "{gone} still there");
    }
    for kept in ["192.0.2.1/24", "198.51.100.9/24", "2001:db8::1/64"] {
        assert!(ip_addr_line(ns, kept).is_some(), "{kept} was removed");
    }
    // Nothing left to do the second time.
    let again = ns.run(move || {
        Addresses::new()
            .unwrap()
            .remove_stale(ifindex, &["192.0.2.200".parse().unwrap()])
            .unwrap()
    });
    assert!(again.is_empty());
}

#[test]
fn changes_need_the_interface_to_exist() {
    let _serial = crate::netns::serial();
    if !Netns::available("changes_need_the_interface_to_exist") {
        return;
    }
    let ns = Netns::new("noif").unwrap();
    let err = ns
        .run(|| {
            Addresses::new()
                .unwrap()
                .add_vip(999, vip("192.0.2.200", 32))
        })
        .unwrap_err();
    assert!(err.is_link_gone(), "{err}");
}

#[test]
fn unknown_interfaces_are_named_in_the_error() {
    let _serial = crate::netns::serial();
    if !Netns::available("unknown_interfaces_are_named_in_the_error") {
        return;
    }
    let ns = Netns::new("noname").unwrap();
    let err = ns.run(|| ha_lb::net::Interface::by_name("nosuch0").unwrap_err());
    assert!(matches!(err, ha_lb::net::NetError::NoSuchInterface(ref n) if n == "nosuch0"));
    assert!(err.is_link_gone());
}

#[test]
fn a_new_vip_answers_at_once() {
    let _serial = crate::netns::serial();
    if !Netns::available("a_new_vip_answers_at_once") {
        return;
    }
    // A VIP must serve the moment it is added: no DAD delay for IPv6, ARP/ND answered.
    let lan = Lan::new("serve", 2, true);
    let (a, b) = (&lan.nodes[0], &lan.nodes[1]);
    let ifindex = a.ifindex("eth0");
    // DAD on, as on a real host: only IFA_F_NODAD makes the IPv6 VIP usable at once.
    a.sysctl("net.ipv6.conf.eth0.accept_dad", "1");
    for (v, port) in [
        (vip("192.0.2.200", 32), 7001),
        (vip("2001:db8::200", 64), 7002),
    ] {
        let listener = a.run(move || {
            Addresses::new().unwrap().add_vip(ifindex, v).unwrap();
            std::net::TcpListener::bind((v.addr, port)).unwrap()
        });
        let connected = b.run(move || {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::new(v.addr, port),
                std::time::Duration::from_secs(5),
            )
            .map(|_| ())
        });
        assert!(connected.is_ok(), "{v}: {connected:?}");
        let (_conn, peer) = listener.accept().unwrap();
        assert_eq!(
            peer.ip(),
            if v.addr.is_ipv4() {
                "192.0.2.2".parse::<IpAddr>().unwrap()
            } else {
                "2001:db8::2".parse::<IpAddr>().unwrap()
            }
        );
    }
}
