//! VRRP sockets between two network namespaces over a bridge: adverts made by vrrp-core cross
//! with TTL / hop limit 255 and arrive with the source, destination and TTL the receive checks
//! need, multicast and unicast, IPv4 and IPv6.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::netns;

use std::net::IpAddr;
use std::time::Duration;

use ha_lb::net::{Addresses, Interface, NetError, Received, VrrpSocket, VrrpSocketConfig};
use netns::{Lan, Netns};
use socket2::{Domain, Protocol, Socket, Type};
use vrrp_core::packet::{
    AddressList, Advertisement, Auth, ChecksumMode, IpContext, OwnedAddressList, Version,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Opens a VRRP socket on eth0 inside `ns`, sending from its primary IPv4 or its link-local
/// IPv6 address.
fn open(ns: &Netns, ipv6: bool, join_group: bool) -> VrrpSocket {
    ns.run(move || {
        let interface = Interface::by_name("eth0").unwrap();
        let mut addrs = Addresses::new().unwrap();
        let source = addrs
            .vrrp_source(interface.index(), ipv6)
            .unwrap()
            .expect("a source address");
        let s = VrrpSocket::open(&interface, &VrrpSocketConfig { source, join_group }).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    })
}

/// Opens a VRRP socket on eth0 inside `ns`, sending from `source`.
fn open_with(ns: &Netns, source: IpAddr, join_group: bool) -> VrrpSocket {
    ns.run(move || {
        let interface = Interface::by_name("eth0").unwrap();
        let s = VrrpSocket::open(&interface, &VrrpSocketConfig { source, join_group }).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    })
}

fn advert_bytes(vips: &OwnedAddressList, priority: u8, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let adv = Advertisement {
        version: Version::V3,
        vrid: 101,
        priority,
        interval_cs: 100,
        auth: Auth::None,
        addresses: vips.as_list(),
    };
    let mut buf = vec![0u8; adv.buffer_len()];
    adv.emit(
        &mut buf,
        &IpContext {
            src,
            dst,
            checksum: ChecksumMode::Rfc5798,
        },
    )
    .unwrap();
    buf
}

/// Receives until a datagram from `from` arrives (the LAN may carry others' traffic).
fn recv_from(s: &VrrpSocket, from: IpAddr) -> (Received, Vec<u8>) {
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        let r = s.recv(&mut buf).unwrap();
        if r.src == from {
            return (r.clone(), buf[r.payload].to_vec());
        }
    }
    panic!("nothing from {from}");
}

fn check_decodes(r: &Received, payload: &[u8], priority: u8) {
    let ctx = IpContext {
        src: r.src,
        dst: r.dst,
        checksum: ChecksumMode::Rfc5798,
    };
    let adv = Advertisement::decode(payload, &ctx).unwrap();
    assert_eq!(adv.priority, priority);
    assert_eq!(adv.vrid, 101);
}

#[test]
fn ipv4_adverts_cross_with_ttl_255_multicast_and_unicast() {
    let _serial = crate::netns::serial();
    if !Netns::available("ipv4_adverts_cross_with_ttl_255_multicast_and_unicast") {
        return;
    }
    let lan = Lan::new("vs4", 2, true);
    let a = open(&lan.nodes[0], false, true);
    let b = open(&lan.nodes[1], false, true);
    assert_eq!(a.source(), ip("192.0.2.1"));
    let vips = AddressList::encode_v4(&["192.0.2.200".parse().unwrap()]);

    let group = ip("224.0.0.18");
    let bytes = advert_bytes(&vips, 100, a.source(), group);
    a.send_to(&bytes, group).unwrap();
    let (r, payload) = recv_from(&b, a.source());
    assert_eq!(r.dst, group);
    assert_eq!(r.ttl, 255);
    assert_eq!(payload, bytes);
    check_decodes(&r, &payload, 100);

    // Unicast to the peer: the pseudo-header holds the peer's address, TTL is 255 too.
    let peer = ip("192.0.2.2");
    let bytes = advert_bytes(&vips, 90, a.source(), peer);
    a.send_to(&bytes, peer).unwrap();
    let (r, payload) = recv_from(&b, a.source());
    assert_eq!(r.dst, peer);
    assert_eq!(r.ttl, 255);
    check_decodes(&r, &payload, 90);

    // Our own multicast is not looped back to us.
    a.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    match a.recv(&mut buf) {
        Err(NetError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::WouldBlock
                || source.kind() == std::io::ErrorKind::TimedOut => {}
        other => panic!("A received something: {other:?}"),
    }
}

#[test]
fn the_received_ttl_is_the_one_on_the_wire() {
    let _serial = crate::netns::serial();
    if !Netns::available("the_received_ttl_is_the_one_on_the_wire") {
        return;
    }
    let lan = Lan::new("ttl", 2, true);
    let b = open(&lan.nodes[1], false, true);
    // A plain raw socket in A that sends with TTL 7, as a router one hop away would deliver.
    let sent = lan.nodes[0].run(|| {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
        s.set_ttl_v4(7).unwrap();
        let vips = AddressList::encode_v4(&["192.0.2.200".parse().unwrap()]);
        let bytes = advert_bytes(&vips, 50, ip("192.0.2.1"), ip("192.0.2.2"));
        let to = std::net::SocketAddr::new(ip("192.0.2.2"), 0);
        s.send_to(&bytes, &to.into()).unwrap();
        bytes
    });
    let (r, payload) = recv_from(&b, ip("192.0.2.1"));
    assert_eq!(r.ttl, 7);
    assert_eq!(payload, sent);
}

#[test]
fn ipv6_adverts_cross_with_hop_limit_255_multicast_and_unicast() {
    let _serial = crate::netns::serial();
    if !Netns::available("ipv6_adverts_cross_with_hop_limit_255_multicast_and_unicast") {
        return;
    }
    let lan = Lan::new("vs6", 2, true);
    let a = open(&lan.nodes[0], true, true);
    let b = open(&lan.nodes[1], true, true);
    // Sent from the link-local address, as RFC 5798 §5.1.2.1 asks.
    assert_eq!(a.source(), ip("fe80::ff:fe00:101"));
    let vips = AddressList::encode_v6(&["2001:db8::100".parse().unwrap()]);

    let group = ip("ff02::12");
    let bytes = advert_bytes(&vips, 200, a.source(), group);
    a.send_to(&bytes, group).unwrap();
    let (r, payload) = recv_from(&b, a.source());
    assert_eq!(r.dst, group);
    assert_eq!(r.ttl, 255);
    assert_eq!(payload, bytes);
    check_decodes(&r, &payload, 200);

    let peer = ip("2001:db8::2");
    let bytes = advert_bytes(&vips, 150, a.source(), peer);
    a.send_to(&bytes, peer).unwrap();
    let (r, payload) = recv_from(&b, a.source());
    assert_eq!(r.dst, peer);
    assert_eq!(r.ttl, 255);
    check_decodes(&r, &payload, 150);
}

#[test]
fn without_the_group_only_unicast_arrives() {
    let _serial = crate::netns::serial();
    if !Netns::available("without_the_group_only_unicast_arrives") {
        return;
    }
    let lan = Lan::new("uni", 2, true);
    for (ipv6, peer) in [(false, "192.0.2.2"), (true, "2001:db8::2")] {
        let a = open(&lan.nodes[0], ipv6, true);
        // B also has a socket that joined the group: the unicast-only one must still not
        // see multicast (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off).
        let joined = open(&lan.nodes[1], ipv6, true);
        // Unicast-only, from the address the peer sends to (keepalived's unicast_src_ip).
        let b = open_with(&lan.nodes[1], ip(peer), false);
        let vips = if ipv6 {
            AddressList::encode_v6(&["2001:db8::100".parse().unwrap()])
        } else {
            AddressList::encode_v4(&["192.0.2.200".parse().unwrap()])
        };
        let group = if ipv6 {
            ip("ff02::12")
        } else {
            ip("224.0.0.18")
        };
        a.send_to(&advert_bytes(&vips, 100, a.source(), group), group)
            .unwrap();
        let peer = ip(peer);
        let unicast = advert_bytes(&vips, 100, a.source(), peer);
        a.send_to(&unicast, peer).unwrap();
        // The first thing B sees is the unicast one: the multicast one never reached it.
        let (r, payload) = recv_from(&b, a.source());
        assert_eq!(r.dst, peer);
        assert_eq!(payload, unicast);
        // While the multicast one did reach B's joined socket.
        let (r, _) = recv_from(&joined, a.source());
        assert_eq!(r.dst, group);
    }
}

/// A datagram longer than the longest legal advert is reported as truncated (never passed on as
/// whole), and every datagram carries the kernel's arrival time. Over loopback, whose MTU
/// carries it unfragmented.
#[test]
fn an_oversized_datagram_is_reported_truncated_and_arrivals_are_stamped() {
    let _serial = crate::netns::serial();
    if !Netns::available("an_oversized_datagram_is_reported_truncated") {
        return;
    }
    let ns = Netns::new("trunc").unwrap();
    let got = ns.run(|| {
        let lo = Interface::by_name("lo").unwrap();
        let me = ip("127.0.0.1");
        let s = VrrpSocket::open(
            &lo,
            &VrrpSocketConfig {
                source: me,
                join_group: false,
            },
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
        let to = socket2::SockAddr::from(std::net::SocketAddr::new(me, 0));
        let mut big = vec![0u8; ha_lb::net::RECV_BUFFER_LEN + 100];
        big[0] = 0x31;
        big[1] = 7;
        tx.send_to(&big, &to).unwrap();
        tx.send_to(&[0x31, 7, 100, 1, 0, 100, 0, 0], &to).unwrap();
        let mut buf = vec![0u8; ha_lb::net::RECV_BUFFER_LEN];
        let first = s.recv(&mut buf).unwrap();
        let second = s.recv(&mut buf).unwrap();
        (first, second)
    });
    let (first, second) = got;
    assert!(first.truncated, "{first:?}");
    assert_eq!(first.payload.end, ha_lb::net::RECV_BUFFER_LEN);
    assert!(!second.truncated, "{second:?}");
    assert_eq!(second.payload.len(), 8);
    for r in [&first, &second] {
        let at = r.at.expect("SO_TIMESTAMPNS");
        let age = std::time::SystemTime::now().duration_since(at).unwrap();
        assert!(age < Duration::from_secs(5), "{age:?}");
    }
}
