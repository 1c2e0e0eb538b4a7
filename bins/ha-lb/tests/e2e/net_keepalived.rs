//! Interoperability with the real keepalived (Debian's package), in namespaces on a bridge:
//! our socket receives keepalived's adverts and vrrp-core accepts them; keepalived accepts
//! ours: a higher priority from us makes it give its VIP up, and silence gives it back.
//!
//! Needs `keepalived` at test time. Without it the test skips with a reason, except under
//! `CI=true` where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

use crate::{keepalived, netns};

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_lb::net::{Addresses, Interface, VrrpSocket, VrrpSocketConfig};
use netns::{wait_until, ChildGuard, Lan, Netns};
use vrrp_core::packet::{
    AddressList, Advertisement, Auth, ChecksumMode, IpContext, OwnedAddressList, Version,
};

/// keepalived running in a namespace; stopped (SIGTERM, then SIGKILL) by PID on drop.
struct Keepalived {
    _process: ChildGuard,
    dir: PathBuf,
}

impl Keepalived {
    fn start(ns: &Netns, tag: &str, conf: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("halb-ka-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keepalived.conf");
        std::fs::write(&file, conf).unwrap();
        let process = keepalived::start(ns, &file, &dir, Stdio::null());
        Keepalived {
            _process: process,
            dir,
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Case {
    tag: &'static str,
    version: Version,
    ipv6: bool,
    /// keepalived's advert_int, and ours in centiseconds.
    advert_int: &'static str,
    interval_cs: u16,
    auth: Auth,
    vip: &'static str,
    vip_cidr: &'static str,
    auth_conf: &'static str,
    /// Unicast both ways (keepalived's `unicast_src_ip` / `unicast_peer`), as in the seed.
    unicast: bool,
}

fn conf(c: &Case) -> String {
    let unicast = if c.unicast {
        "  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }\n"
    } else {
        ""
    };
    format!(
        "global_defs {{\n  router_id {tag}\n  vrrp_version {v}\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority 100\n  advert_int {int}\n{auth}{unicast}  virtual_ipaddress {{\n    {vip}\n  }}\n}}\n",
        tag = c.tag,
        v = c.version.number(),
        int = c.advert_int,
        auth = c.auth_conf,
        vip = c.vip_cidr,
    )
}

fn open(ns: &Netns, ipv6: bool, join_group: bool) -> VrrpSocket {
    ns.run(move || {
        let interface = Interface::by_name("eth0").unwrap();
        let source = Addresses::new()
            .unwrap()
            .vrrp_source(interface.index(), ipv6)
            .unwrap()
            .unwrap();
        let s = VrrpSocket::open(&interface, &VrrpSocketConfig { source, join_group }).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s
    })
}

fn run_case(c: &Case) {
    let lan = Lan::new(c.tag, 2, true);
    let (ka_ns, our_ns) = (&lan.nodes[0], &lan.nodes[1]);
    let sock = Arc::new(open(our_ns, c.ipv6, !c.unicast));
    let _ka = Keepalived::start(ka_ns, c.tag, &conf(c));
    // Where keepalived sends to (and where we send ours).
    let (to_us, to_keepalived) = if c.unicast {
        (IpAddr::from([192, 0, 2, 2]), IpAddr::from([192, 0, 2, 1]))
    } else if c.ipv6 {
        let g = IpAddr::from([0xff02, 0, 0, 0, 0, 0, 0, 0x12]);
        (g, g)
    } else {
        let g = IpAddr::from([224, 0, 0, 18]);
        (g, g)
    };
    // 1. keepalived becomes master; its adverts reach our socket with TTL 255 and decode.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    let mut seen = 0;
    while seen < 3 {
        assert!(
            Instant::now() < deadline,
            "{}: no adverts from keepalived",
            c.tag
        );
        let Ok(r) = sock.recv(&mut buf) else { continue };
        assert_eq!(r.dst, to_us, "{}", c.tag);
        assert_eq!(r.ttl, 255, "{}", c.tag);
        let ctx = IpContext {
            src: r.src,
            dst: r.dst,
            checksum: ChecksumMode::Rfc5798,
        };
        let adv = Advertisement::decode(&buf[r.payload.clone()], &ctx)
            .unwrap_or_else(|e| panic!("{}: keepalived's advert rejected: {e}", c.tag));
        assert_eq!(adv.version, c.version);
        assert_eq!(adv.vrid, 51);
        assert_eq!(adv.priority, 100);
        assert_eq!(adv.interval_cs, c.interval_cs);
        assert_eq!(adv.auth, c.auth);
        assert_eq!(
            adv.addresses.iter().collect::<Vec<_>>(),
            vec![c.vip.parse::<IpAddr>().unwrap()]
        );
        seen += 1;
    }
    assert!(
        wait_until(Duration::from_secs(5), || ka_ns.has_address("eth0", c.vip)),
        "{}: keepalived holds the VIP as master",
        c.tag
    );

    // 2. We advertise priority 200: keepalived must accept our adverts and step down.
    let stop = Arc::new(AtomicBool::new(false));
    let vips: OwnedAddressList = AddressList::encode(
        vrrp_core::packet::Family::of(&c.vip.parse().unwrap()),
        &[c.vip.parse().unwrap()],
    )
    .unwrap();
    let adv = Advertisement {
        version: c.version,
        vrid: 51,
        priority: 200,
        interval_cs: c.interval_cs,
        auth: c.auth,
        addresses: vips.as_list(),
    };
    let mut bytes = vec![0u8; adv.buffer_len()];
    adv.emit(
        &mut bytes,
        &IpContext {
            src: sock.source(),
            dst: to_keepalived,
            checksum: ChecksumMode::Rfc5798,
        },
    )
    .unwrap();
    let sender = {
        let (sock, stop) = (Arc::clone(&sock), Arc::clone(&stop));
        let period = Duration::from_millis(u64::from(c.interval_cs) * 10);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sock.send_to(&bytes, to_keepalived).unwrap();
                std::thread::sleep(period);
            }
        })
    };
    let gave_up = wait_until(Duration::from_secs(10), || {
        !ka_ns.has_address("eth0", c.vip)
    });
    // 3. Silence: keepalived takes over again after its Master_Down_Interval.
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert!(gave_up, "{}: keepalived ignored our higher priority", c.tag);
    assert!(
        wait_until(Duration::from_secs(10), || ka_ns.has_address("eth0", c.vip)),
        "{}: keepalived did not take the VIP back",
        c.tag
    );
}

#[test]
fn keepalived_v3_ipv4_interoperates() {
    let _shared = crate::netns::shared();
    let name = "keepalived_v3_ipv4_interoperates";
    if !Netns::available(name) || !netns::tool_available(name, "keepalived", "keepalived") {
        return;
    }
    run_case(&Case {
        tag: "ka3v4",
        version: Version::V3,
        ipv6: false,
        advert_int: "0.1",
        interval_cs: 10,
        auth: Auth::None,
        vip: "192.0.2.200",
        vip_cidr: "192.0.2.200/24",
        auth_conf: "",
        unicast: false,
    });
}

#[test]
fn keepalived_v3_ipv6_interoperates() {
    let _shared = crate::netns::shared();
    let name = "keepalived_v3_ipv6_interoperates";
    if !Netns::available(name) || !netns::tool_available(name, "keepalived", "keepalived") {
        return;
    }
    run_case(&Case {
        tag: "ka3v6",
        version: Version::V3,
        ipv6: true,
        advert_int: "0.1",
        interval_cs: 10,
        auth: Auth::None,
        vip: "2001:db8::200",
        vip_cidr: "2001:db8::200/64",
        auth_conf: "",
        unicast: false,
    });
}

#[test]
fn keepalived_v2_with_the_seeds_password_interoperates() {
    let _shared = crate::netns::shared();
    let name = "keepalived_v2_with_the_seeds_password_interoperates";
    if !Netns::available(name) || !netns::tool_available(name, "keepalived", "keepalived") {
        return;
    }
    run_case(&Case {
        tag: "ka2",
        version: Version::V2,
        ipv6: false,
        advert_int: "1",
        interval_cs: 100,
        auth: Auth::simple(b"123456").unwrap(),
        vip: "192.0.2.200",
        vip_cidr: "192.0.2.200/24",
        auth_conf: "  authentication {\n    auth_type PASS\n    auth_pass 123456\n  }\n",
        unicast: false,
    });
}

#[test]
fn keepalived_seed_active_standby_unicast_interoperates() {
    let _shared = crate::netns::shared();
    // The seed's lb1: VRRPv2, PASS 123456, advert 1 s, unicast to the peer.
    let name = "keepalived_seed_active_standby_unicast_interoperates";
    if !Netns::available(name) || !netns::tool_available(name, "keepalived", "keepalived") {
        return;
    }
    run_case(&Case {
        tag: "kaseed",
        version: Version::V2,
        ipv6: false,
        advert_int: "1",
        interval_cs: 100,
        auth: Auth::simple(b"123456").unwrap(),
        vip: "192.0.2.200",
        vip_cidr: "192.0.2.200/24",
        auth_conf: "  authentication {\n    auth_type PASS\n    auth_pass 123456\n  }\n",
        unicast: true,
    });
}
