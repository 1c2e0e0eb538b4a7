//! Every example configuration in examples/ validates, and the documented defaults are the
//! ones a minimal file gets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ha_lb::config::{load, parse, Algorithm, CheckKind, ProxyProtocol};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn every_example_validates() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path) {
                panic!("{} does not validate:\n{e}", path.display());
            }
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    seen.sort();
    for required in [
        "active-active-lb1.toml",
        "active-active-lb2.toml",
        "active-standby-lb1.toml",
        "active-standby-lb2.toml",
        "anycast-bgp.toml",
        "kube-apiserver.toml",
        "nat-lb.toml",
        "vrrp-only-nginx.toml",
    ] {
        assert!(
            seen.iter().any(|s| s == required),
            "examples/{required} is missing: {seen:?}"
        );
    }
}

#[test]
fn examples_use_test_net_addresses_only() {
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("192.168."),
                "{} uses a private LAN address",
                path.display()
            );
        }
    }
}

#[test]
fn active_standby_pair_matches_the_seed() {
    let lb1 = load(&examples_dir().join("active-standby-lb1.toml")).unwrap();
    let lb2 = load(&examples_dir().join("active-standby-lb2.toml")).unwrap();
    let (a, b) = (&lb1.instances["VI_1"], &lb2.instances["VI_1"]);
    assert_eq!((a.vrid, b.vrid), (101, 101));
    assert_eq!((a.priority, b.priority), (100, 50));
    assert_eq!(a.vips, b.vips);
    assert_eq!(a.password.as_deref(), Some("123456"));
    assert_eq!(a.unicast_src, b.unicast_peers.first().copied());
    assert_eq!(b.unicast_src, a.unicast_peers.first().copied());
    // Losing every backend must hand the VIP over: lb1's lowered priority is below lb2's.
    let drop = a.track_pools[0].weight;
    assert!(i64::from(a.priority) + i64::from(drop) < i64::from(b.priority));
}

#[test]
fn active_active_priorities_are_crossed() {
    let lb1 = load(&examples_dir().join("active-active-lb1.toml")).unwrap();
    let lb2 = load(&examples_dir().join("active-active-lb2.toml")).unwrap();
    for name in ["VI_1", "VI_2"] {
        let (a, b) = (&lb1.instances[name], &lb2.instances[name]);
        assert_eq!(a.vrid, b.vrid);
        assert_eq!(a.vips, b.vips);
        assert_ne!(a.priority, b.priority);
    }
    assert!(lb1.instances["VI_1"].priority > lb2.instances["VI_1"].priority);
    assert!(lb1.instances["VI_2"].priority < lb2.instances["VI_2"].priority);
}

#[test]
fn kube_apiserver_example_checks_readyz_over_https_with_long_timeouts() {
    let c = load(&examples_dir().join("kube-apiserver.toml")).unwrap();
    let pool = &c.pools["apiservers"];
    assert_eq!(pool.backends.len(), 3);
    assert!(
        c.listeners["apiserver"].idle_timeout_ms >= 3_600_000,
        "watches need a long idle timeout"
    );
    for b in &pool.backends {
        assert_eq!(b.address.port(), 6443);
        let check = &c.checks[b.check.as_deref().unwrap()];
        assert_eq!(check.kind, CheckKind::Https);
        assert_eq!(check.path.as_deref(), Some("/readyz"));
        // A template check: each backend is probed at its own address.
        assert_eq!(check.address, None);
    }
}

#[test]
fn minimal_file_gets_the_documented_defaults() {
    let text = r#"
[instances.v]
interface = "eth0"
vrid = 1
vips = ["192.0.2.1"]
[checks.c]
kind = "exec"
command = ["/bin/true"]
[pools.p]
backends = [{ address = "192.0.2.2:80" }]
[listeners.l]
listen = "192.0.2.1:80"
pool = "p"
"#;
    let c = parse(text, Path::new("min.toml")).unwrap();
    let i = &c.instances["v"];
    assert_eq!(i.priority, 100);
    assert_eq!(i.version, 3);
    assert_eq!(i.advert_interval_ms, 1000);
    assert!(i.preempt && i.accept_mode && !i.address_owner && !i.v3_checksum_as_v2);
    assert_eq!(i.preempt_delay_ms, 0);
    assert_eq!(i.vips[0].prefix, 32);
    assert!(i.unicast_peers.is_empty() && i.unicast_src.is_none() && i.password.is_none());
    assert_eq!((i.garp.master_delay_ms, i.garp.master_repeat), (5000, 5));
    assert_eq!(
        (i.garp.master_refresh_ms, i.garp.master_refresh_repeat),
        (0, 1)
    );
    assert_eq!(
        (i.garp.lower_prio_delay_ms, i.garp.lower_prio_repeat),
        (5000, 5)
    );
    let ch = &c.checks["c"];
    assert_eq!((ch.interval_ms, ch.rise, ch.fall), (2000, 2, 3));
    assert_eq!(ch.effective_timeout_ms(), 2000);
    let p = &c.pools["p"];
    assert_eq!(p.algorithm, Algorithm::Roundrobin);
    assert_eq!(p.proxy_protocol, ProxyProtocol::Off);
    assert_eq!((p.retries, p.connect_timeout_ms), (2, 3000));
    assert_eq!((p.max_fails, p.fail_timeout_ms), (1, 10_000));
    let b = &p.backends[0];
    assert_eq!((b.weight, b.max_conns, b.backup), (1, 0, false));
    let l = &c.listeners["l"];
    assert!(l.non_local_bind);
    assert_eq!(l.max_connections, 0);
    assert_eq!(l.idle_timeout_ms, 3_600_000);
    assert!(
        c.admin.is_none(),
        "the admin endpoint is off unless configured"
    );

    let with_admin = parse(&format!("{text}\n[admin]\n"), Path::new("min.toml")).unwrap();
    let expected: SocketAddr = "127.0.0.1:9555".parse().unwrap();
    assert_eq!(with_admin.admin.unwrap().listen, expected);
}

#[test]
fn a_config_survives_a_toml_round_trip() {
    for name in [
        "kube-apiserver.toml",
        "nat-lb.toml",
        "vrrp-only-nginx.toml",
        "active-active-lb1.toml",
    ] {
        let c = load(&examples_dir().join(name)).unwrap();
        let text = toml::to_string(&c).unwrap();
        let back = parse(&text, Path::new(name)).unwrap();
        assert_eq!(c, back, "{name}");
    }
}

/// The TOML blocks under "## Examples" in docs/config.md are whole files and must validate.
#[test]
fn examples_in_the_docs_validate() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md"))
            .unwrap();
    let (_, examples) = doc.split_once("\n## Examples\n").unwrap();
    let mut count = 0;
    for block in examples.split("```toml\n").skip(1) {
        let (text, _) = block.split_once("```").unwrap();
        if let Err(e) = parse(text, Path::new("docs/config.md")) {
            panic!("example in docs/config.md does not validate:\n{text}\n{e}");
        }
        count += 1;
    }
    assert_eq!(count, 3);
}

/// The translation shown in docs/import-keepalived.md is what the importer prints.
#[test]
fn import_example_in_the_docs_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../../docs/import-keepalived.md")).unwrap();
    let (_, example) = doc.split_once("\n## Example\n").unwrap();
    let (_, block) = example.split_once("```toml\n").unwrap();
    let (shown, _) = block.split_once("```").unwrap();
    let imp =
        ha_lb::keepalived::import_file(&root.join("tests/data/keepalived/lb1-active-standby.conf"))
            .unwrap();
    let text = imp.to_toml().unwrap();
    assert!(
        text.ends_with(shown),
        "docs/import-keepalived.md shows:\n{shown}\nthe importer prints:\n{text}"
    );
}
