//! Gratuitous ARP and unsolicited Neighbor Advertisements, sent in one namespace and seen in
//! the other twice: as frames by an AF_PACKET reader, and by the peer's kernel, which moves its
//! neighbour entry for the VIP to the announcing MAC (the point of announcing).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::netns;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ha_lb::config::Vip;
use ha_lb::net::{Addresses, Announcer, Interface};
use ha_lb::testing::{AnnounceSpacing, Announcers, Vips};
use netns::{wait_until, Lan, Netns};
use socket2::{Domain, Protocol, Socket, Type};

const ETH_P_ALL: u16 = 0x0003;

/// An AF_PACKET socket that sees every frame of the namespace it is made in.
fn sniffer(ns: &Netns) -> Socket {
    ns.run(|| {
        let proto = i32::from(ETH_P_ALL.to_be());
        let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto))).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s
    })
}

/// Reads frames until `pred` matches one, for at most 5 s.
fn capture(s: &Socket, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    capture_stamped(s, pred).0
}

/// Reads frames until `pred` matches one, for at most 5 s; also returns the instant the
/// kernel received it (SO_TIMESTAMPNS), so that gaps between frames do not depend on when
/// this thread got to read them.
fn capture_stamped(s: &Socket, pred: impl Fn(&[u8]) -> bool) -> (Vec<u8>, Duration) {
    use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    setsockopt(s, sockopt::ReceiveTimestampns, &true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let Ok(msg) = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        else {
            continue;
        };
        let stamp = msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(t) => Some(Duration::from(t)),
            _ => None,
        });
        let n = msg.bytes;
        if pred(&buf[..n]) {
            return (buf[..n].to_vec(), stamp.expect("no SO_TIMESTAMPNS"));
        }
    }
    panic!("no matching frame in 5 s");
}

fn neigh_mac(ns: &Netns, addr: &str) -> Option<String> {
    let out = ns.ip(&["neigh", "show", addr, "dev", "eth0"]);
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_owned)
}

#[test]
fn gratuitous_arp_reaches_the_peer_and_moves_its_arp_entry() {
    let _serial = crate::netns::serial();
    if !Netns::available("gratuitous_arp_reaches_the_peer_and_moves_its_arp_entry") {
        return;
    }
    let lan = Lan::new("garp", 2, true);
    let (a, b) = (&lan.nodes[0], &lan.nodes[1]);
    // B believes the VIP is elsewhere; no lock time, so the announcement may override it.
    b.sysctl("net.ipv4.neigh.eth0.locktime", "0");
    b.ip(&[
        "neigh",
        "add",
        "192.0.2.200",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "eth0",
        "nud",
        "stale",
    ]);
    let sniff = sniffer(b);
    let vip = Ipv4Addr::new(192, 0, 2, 200);
    let mac = a.run(move || {
        let ann = Announcer::open(&Interface::by_name("eth0").unwrap()).unwrap();
        ann.gratuitous_arp(vip).unwrap();
        ann.mac()
    });
    assert_eq!(mac, [2, 0, 0, 0, 1, 1]);

    let f = capture(&sniff, |f| f.len() >= 42 && f[12..14] == [0x08, 0x06]);
    assert_eq!(&f[0..6], &[0xff; 6], "broadcast");
    assert_eq!(&f[6..12], &mac);
    assert_eq!(&f[20..22], &[0, 1], "ARP request");
    assert_eq!(&f[22..28], &mac, "sender MAC");
    assert_eq!(&f[28..32], &vip.octets(), "sender IP");
    assert_eq!(&f[38..42], &vip.octets(), "target IP");

    assert!(
        wait_until(Duration::from_secs(5), || neigh_mac(b, "192.0.2.200")
            .as_deref()
            == Some("02:00:00:00:01:01")),
        "B's ARP entry: {:?}",
        neigh_mac(b, "192.0.2.200")
    );
}

/// The ICMPv6 checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
fn icmpv6_checksum_ok(src: &[u8], dst: &[u8], msg: &[u8]) -> bool {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for w in b.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            let lo = w.get(1).map_or(0, |x| u32::from(*x));
            sum += hi | lo;
        }
    };
    add(src);
    add(dst);
    add(&u32::try_from(msg.len()).unwrap().to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[test]
fn unsolicited_na_reaches_the_peer_and_overrides_its_neighbour_entry() {
    let _serial = crate::netns::serial();
    if !Netns::available("unsolicited_na_reaches_the_peer_and_overrides_its_neighbour_entry") {
        return;
    }
    let lan = Lan::new("na", 2, true);
    let (a, b) = (&lan.nodes[0], &lan.nodes[1]);
    b.ip(&[
        "neigh",
        "add",
        "2001:db8::100",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "eth0",
        "nud",
        "stale",
    ]);
    let sniff = sniffer(b);
    let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let source = a.run(move || {
        let interface = Interface::by_name("eth0").unwrap();
        let source = match Addresses::new()
            .unwrap()
            .vrrp_source(interface.index(), true)
            .unwrap()
        {
            Some(std::net::IpAddr::V6(s)) => s,
            other => panic!("no link-local address: {other:?}"),
        };
        let ann = Announcer::open(&interface).unwrap();
        ann.neighbor_advertisement(vip, source, false).unwrap();
        source
    });

    // Ethernet, IPv6 next header ICMPv6, type 136.
    let f = capture(&sniff, |f| {
        f.len() >= 14 + 40 + 32 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136
    });
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1], "to all-nodes");
    assert_eq!(&f[6..12], &[2, 0, 0, 0, 1, 1]);
    let ip6 = &f[14..54];
    assert_eq!(ip6[7], 255, "hop limit");
    assert_eq!(&ip6[8..24], &source.octets());
    assert_eq!(
        &ip6[24..40],
        &"ff02::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    let icmp = &f[54..54 + 32];
    assert_eq!(icmp[4], 0x20, "Override set, Solicited and Router clear");
    assert_eq!(&icmp[8..24], &vip.octets());
    assert_eq!(
        &icmp[24..32],
        &[2, 1, 2, 0, 0, 0, 1, 1],
        "target link-layer option"
    );
    assert!(
        icmpv6_checksum_ok(&ip6[8..24], &ip6[24..40], icmp),
        "the kernel filled in a valid checksum"
    );

    assert!(
        wait_until(Duration::from_secs(5), || neigh_mac(b, "2001:db8::100")
            .as_deref()
            == Some("02:00:00:00:01:01")),
        "B's neighbour entry: {:?}",
        neigh_mac(b, "2001:db8::100")
    );
}

/// `garp.interval_ms`: the announcements of one burst leave that far apart, the first at once.
#[test]
fn a_burst_is_spaced_by_the_configured_interval() {
    let _serial = crate::netns::serial();
    if !Netns::available("a_burst_is_spaced_by_the_configured_interval") {
        return;
    }
    let lan = Lan::new("garpgap", 2, true);
    let (a, b) = (&lan.nodes[0], &lan.nodes[1]);
    let sniff = sniffer(b);
    let vip = Ipv4Addr::new(192, 0, 2, 201);
    let gap = Duration::from_millis(80);
    let sent_at = a.run(move || {
        let spacing = AnnounceSpacing {
            arp: gap,
            na: Duration::ZERO,
        };
        let iface = Interface::by_name("eth0").unwrap();
        let vips = Vips::new(
            "spaced",
            &iface,
            &[Vip::new(vip.into(), 24)],
            None,
            spacing,
            &Announcers::default(),
        )
        .unwrap();
        let t = Instant::now();
        vips.announce(&[vip.into()], 4);
        // The burst goes on in the background: announcing does not block the caller.
        assert!(t.elapsed() < gap, "announce waited {:?}", t.elapsed());
        t
    });
    let garp = |f: &[u8]| f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[28..32] == vip.octets();
    let (_, first) = capture_stamped(&sniff, garp);
    assert!(
        sent_at.elapsed() < gap,
        "the first one at once: read {:?} after announcing",
        sent_at.elapsed()
    );
    let mut arrivals = vec![first];
    arrivals.extend((1..4).map(|_| capture_stamped(&sniff, garp).1));
    for pair in arrivals.windows(2) {
        let d = pair[1] - pair[0];
        // At least the interval, as the kernel timed the frames.
        assert!(d >= gap - Duration::from_millis(2), "gap {d:?} < {gap:?}");
    }
}

/// Two instances on one interface announce at the same moment: their gratuitous ARPs share
/// the interface's spacing, so the wire sees one announcement per interval, not two.
#[test]
fn two_instances_on_one_interface_share_the_spacing() {
    let _serial = crate::netns::serial();
    if !Netns::available("two_instances_on_one_interface_share_the_spacing") {
        return;
    }
    let lan = Lan::new("garpiface", 2, true);
    let (a, b) = (&lan.nodes[0], &lan.nodes[1]);
    let sniff = sniffer(b);
    let (vip1, vip2) = (Ipv4Addr::new(192, 0, 2, 201), Ipv4Addr::new(192, 0, 2, 202));
    let gap = Duration::from_millis(60);
    a.run(move || {
        let spacing = AnnounceSpacing {
            arp: gap,
            na: Duration::ZERO,
        };
        let iface = Interface::by_name("eth0").unwrap();
        let announcers = Announcers::default();
        let open = |name: &str, vip: Ipv4Addr| {
            Vips::new(
                name,
                &iface,
                &[Vip::new(vip.into(), 24)],
                None,
                spacing,
                &announcers,
            )
            .unwrap()
        };
        let (one, two) = (open("one", vip1), open("two", vip2));
        one.announce(&[vip1.into()], 3);
        two.announce(&[vip2.into()], 3);
    });
    let garp = |f: &[u8]| {
        f.len() >= 42
            && f[12..14] == [0x08, 0x06]
            && (f[28..32] == vip1.octets() || f[28..32] == vip2.octets())
    };
    let frames: Vec<(Duration, [u8; 4])> = (0..6)
        .map(|_| {
            let (f, at) = capture_stamped(&sniff, garp);
            (at, [f[28], f[29], f[30], f[31]])
        })
        .collect();
    // Both instances' announcements arrived, three each.
    for vip in [vip1, vip2] {
        assert_eq!(
            frames.iter().filter(|(_, ip)| *ip == vip.octets()).count(),
            3
        );
    }
    for pair in frames.windows(2) {
        let d = pair[1].0 - pair[0].0;
        // At least the interval, less a little for the sender's sleep granularity.
        assert!(
            d >= gap - Duration::from_millis(2),
            "two announcements {d:?} apart on one interface (interval {gap:?})"
        );
    }
}
