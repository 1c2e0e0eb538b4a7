//! keepalived's `old_unicast_checksum`, live: a keepalived configured with it (VRRPv3, IPv4,
//! unicast) sends adverts whose checksum fails RFC 5798's check and passes vrrp-core's
//! `ChecksumMode::V3MulticastPseudoHeader`; and adverts we emit in that mode, sent through
//! `net::VrrpSocket` with a higher priority, make keepalived give its VIP up (it accepted them),
//! and silence gives it back.
//!
//! Needs `keepalived` at test time (Debian package keepalived); without it, or without network
//! namespaces, the test skips with a reason, except under `CI=true` where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::{keepalived, netns};

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_lb::net::{Interface, VrrpSocket, VrrpSocketConfig};
use netns::{wait_until, Lan, Netns};
use vrrp_core::packet::{
    AddressList, Advertisement, Auth, ChecksumMode, IpContext, PacketError, Version,
};

const CONF: &str = "global_defs {\n    router_id old-checksum\n}\n\
vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
version 3\n    priority 100\n    advert_int 0.1\n    old_unicast_checksum\n    \
unicast_src_ip 192.0.2.1\n    unicast_peer {\n        192.0.2.2\n    }\n    \
virtual_ipaddress {\n        192.0.2.200/24\n    }\n}\n";

#[test]
fn keepalived_old_unicast_checksum_interoperates_with_v3_multicast_pseudo_header() {
    let _shared = crate::netns::shared();
    let test = "keepalived_old_unicast_checksum";
    if !Netns::available(test) || !netns::tool_available(test, "keepalived", "keepalived") {
        return;
    }
    let lan = Lan::new("ikold", 2, true);
    let (ka_ns, our_ns) = (&lan.nodes[0], &lan.nodes[1]);
    let me: IpAddr = "192.0.2.2".parse().unwrap();
    let keepalived_addr: IpAddr = "192.0.2.1".parse().unwrap();
    let sock = Arc::new(our_ns.run(move || {
        let interface = Interface::by_name("eth0").unwrap();
        let s = VrrpSocket::open(
            &interface,
            &VrrpSocketConfig {
                source: me,
                join_group: false,
            },
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s
    }));
    let dir = std::env::temp_dir().join(format!("halb-ikold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, CONF).unwrap();
    let _keepalived = keepalived::start(ka_ns, &conf, &dir, Stdio::null());

    // 1. keepalived's adverts: bad by RFC 5798, good with the group in the pseudo-header.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 2048];
    let mut seen = 0;
    while seen < 3 {
        assert!(Instant::now() < deadline, "no adverts from keepalived");
        let Ok(r) = sock.recv(&mut buf) else { continue };
        assert_eq!((r.src, r.dst), (keepalived_addr, me));
        let bytes = &buf[r.payload.clone()];
        let ctx = |checksum| IpContext {
            src: r.src,
            dst: r.dst,
            checksum,
        };
        assert!(
            matches!(
                Advertisement::decode(bytes, &ctx(ChecksumMode::Rfc5798)),
                Err(PacketError::BadChecksum { .. })
            ),
            "keepalived's old_unicast_checksum advert passed the RFC check: {bytes:02x?}"
        );
        let adv = Advertisement::decode(bytes, &ctx(ChecksumMode::V3MulticastPseudoHeader))
            .unwrap_or_else(|e| panic!("rejected in the old-checksum mode: {e}: {bytes:02x?}"));
        assert_eq!(
            (adv.version, adv.vrid, adv.priority, adv.interval_cs),
            (Version::V3, 51, 100, 10)
        );
        seen += 1;
    }
    assert!(
        wait_until(Duration::from_secs(5), || ka_ns
            .has_address("eth0", "192.0.2.200")),
        "keepalived holds the VIP as master"
    );

    // 2. Our priority 200 in the same mode: keepalived accepts it and steps down.
    let vips = AddressList::encode_v4(&["192.0.2.200".parse().unwrap()]);
    let adv = Advertisement {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        interval_cs: 10,
        auth: Auth::None,
        addresses: vips.as_list(),
    };
    let mut bytes = vec![0u8; adv.buffer_len()];
    adv.emit(
        &mut bytes,
        &IpContext {
            src: me,
            dst: keepalived_addr,
            checksum: ChecksumMode::V3MulticastPseudoHeader,
        },
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sock, stop) = (Arc::clone(&sock), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sock.send_to(&bytes, keepalived_addr).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let gave_up = wait_until(Duration::from_secs(10), || {
        !ka_ns.has_address("eth0", "192.0.2.200")
    });
    // 3. Silence: keepalived takes the VIP back after its Master_Down_Interval.
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert!(gave_up, "keepalived ignored our old-checksum adverts");
    assert!(
        wait_until(Duration::from_secs(10), || ka_ns
            .has_address("eth0", "192.0.2.200")),
        "keepalived did not take the VIP back"
    );
    drop(lan);
    let _ = std::fs::remove_dir_all(&dir);
}
