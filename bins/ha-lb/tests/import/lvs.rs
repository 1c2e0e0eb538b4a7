//! keepalived's LVS half imported: `virtual_server`, `virtual_server_group`, `real_server`,
//! `sorry_server` and their checkers (tests/data/keepalived/lvs-*.conf). Every keyword is
//! translated or a warning with its line.

// Helpers shared by the tests: a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;

use super::data::{data, line_of, nth_line_of};
use ha_lb::config::{self, Algorithm, CheckKind, ListenerMode, NatSource};
use ha_lb::keepalived::{import_file, import_str, Import};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn director() -> Import {
    import_file(&data("lvs-nat-director.conf")).unwrap()
}

fn keywords() -> Import {
    import_file(&data("lvs-keywords.conf")).unwrap()
}

fn text(conf: &str) -> Import {
    import_str(conf, Path::new("/nonexistent/keepalived.conf")).unwrap()
}

/// The messages of the warnings on `line`.
fn warnings_at(imp: &Import, line: usize) -> Vec<String> {
    imp.warnings
        .iter()
        .filter(|w| w.line == line)
        .map(|w| w.message.clone())
        .collect()
}

#[test]
fn two_virtual_servers_become_listeners_pools_and_checks() {
    let imp = director();
    let c = &imp.config;
    assert_eq!(c.listeners.len(), 2);
    let web = &c.listeners["vs-192.0.2.100-80"];
    assert_eq!(web.listen, addr("192.0.2.100:80"));
    assert_eq!(web.pool, "vs-192.0.2.100-80");
    let tls = &c.listeners["vs-192.0.2.100-443"];
    assert_eq!(tls.listen, addr("192.0.2.100:443"));
    // LVS-NAT: the kernel rewrites the destination and the real servers, routed through the
    // director (its gateway VIP), see the client's address.
    for l in [web, tls] {
        assert_eq!(l.mode, ListenerMode::Nat);
        assert_eq!(l.nat_source, Some(NatSource::Preserve));
    }

    // wrr with weights 3, 1 and 0 (drained), and the sorry server as a backup.
    let pool = &c.pools["vs-192.0.2.100-80"];
    assert_eq!(pool.algorithm, Algorithm::Roundrobin);
    let backends: Vec<(SocketAddr, u32, bool)> = pool
        .backends
        .iter()
        .map(|b| (b.address, b.weight, b.backup))
        .collect();
    assert_eq!(
        backends,
        [
            (addr("198.51.100.11:80"), 3, false),
            (addr("198.51.100.12:80"), 1, false),
            (addr("198.51.100.13:80"), 0, false),
            (addr("198.51.100.99:8080"), 1, true),
        ]
    );
    assert_eq!(
        pool.backends[3].check, None,
        "a sorry server has no checker"
    );
    // The three identical HTTP_GETs are one template check, probing each backend.
    let check_name = pool.backends[0].check.clone().unwrap();
    assert!(pool.backends[..3]
        .iter()
        .all(|b| b.check.as_deref() == Some(check_name.as_str())));
    let check = &c.checks[&check_name];
    assert_eq!(check.kind, CheckKind::Http);
    assert_eq!(check.address, None);
    assert_eq!(check.path.as_deref(), Some("/healthz"));
    assert_eq!(check.expect_status.as_deref(), Some(&[200][..]));
    // delay_loop 5, connect_timeout 2, retry 2: three failures in a row, one success.
    assert_eq!(
        (check.interval_ms, check.timeout_ms, check.rise, check.fall),
        (5000, Some(2000), 1, 3)
    );

    // sh + persistence_timeout: source hashing; TCP_CHECK with keepalived's default retry 1.
    let pool = &c.pools["vs-192.0.2.100-443"];
    assert_eq!(pool.algorithm, Algorithm::Sourcehash);
    let check = &c.checks[pool.backends[0].check.as_ref().unwrap()];
    assert_eq!(check.kind, CheckKind::Tcp);
    assert_eq!(
        (check.interval_ms, check.timeout_ms, check.rise, check.fall),
        (3000, Some(1000), 1, 2)
    );
}

#[test]
fn director_warnings_are_the_expected_ones() {
    let imp = director();
    let f = data("lvs-nat-director.conf");
    let lines: Vec<usize> = imp.warnings.iter().map(|w| w.line).collect();
    let mut expect = vec![
        nth_line_of(&f, "state MASTER", 0),
        nth_line_of(&f, "state MASTER", 1),
        nth_line_of(&f, "TCP_CHECK {", 0),
        nth_line_of(&f, "TCP_CHECK {", 1),
        line_of(&f, "persistence_timeout 300"),
    ];
    expect.sort();
    let mut got = lines.clone();
    got.sort();
    assert_eq!(got, expect, "{:#?}", imp.warnings);
    assert!(warnings_at(&imp, line_of(&f, "persistence_timeout"))[0].contains("source hashing"));
    // The HTTP_GETs retry every delay_loop (5 s) as keepalived's delay_before_retry 5 does:
    // no caveat. The TCP_CHECKs' default delay_before_retry (1 s) is not the delay_loop (3 s).
    let tcp = &warnings_at(&imp, nth_line_of(&f, "TCP_CHECK {", 0))[0];
    assert!(tcp.contains("6 s instead of 4 s"), "{tcp}");
}

#[test]
fn translation_passes_check_config() {
    for imp in [director(), keywords()] {
        let toml = imp.to_toml().unwrap();
        let back = config::parse(&toml, Path::new("lvs.toml")).unwrap();
        assert_eq!(back, imp.config);
    }
}

#[test]
fn virtual_server_group_ranges_and_families() {
    let imp = keywords();
    let c = &imp.config;
    let f = data("lvs-keywords.conf");
    let group: Vec<(&str, SocketAddr)> = c
        .listeners
        .iter()
        .filter(|(_, l)| l.pool == "vsg-WEB")
        .map(|(n, l)| (n.as_str(), l.listen))
        .collect();
    assert_eq!(
        group,
        [
            ("vsg-WEB-192.0.2.10-8080", addr("192.0.2.10:8080")),
            ("vsg-WEB-192.0.2.11-8080", addr("192.0.2.11:8080")),
            ("vsg-WEB-192.0.2.12-8080", addr("192.0.2.12:8080")),
        ]
    );
    assert!(warnings_at(&imp, line_of(&f, "fwmark 7"))[0].contains("fwmark"));
    assert!(
        warnings_at(&imp, line_of(&f, "virtual_server group WEB"))[0]
            .contains("[2001:db8::10]:8080 is not of the family")
    );
}

#[test]
fn group_virtual_server_settings_and_checkers() {
    let imp = keywords();
    let c = &imp.config;
    let f = data("lvs-keywords.conf");
    let pool = &c.pools["vsg-WEB"];
    // rr ignores weights: 5 becomes 1, 0 stays drained.
    assert_eq!(pool.algorithm, Algorithm::Roundrobin);
    let weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, [1, 0]);
    assert!(warnings_at(&imp, line_of(&f, "lb_algo rr"))[0].contains("ignores weights"));
    assert!(warnings_at(&imp, line_of(&f, "lb_kind DR"))[0].contains("masquerade"));
    for l in c.listeners.values().filter(|l| l.pool == "vsg-WEB") {
        assert_eq!(l.mode, ListenerMode::Nat);
        assert_eq!(l.nat_source, Some(NatSource::Masquerade), "DR");
    }
    assert!(warnings_at(&imp, line_of(&f, "quorum 2"))[0].contains("quorum"));

    // The first real server: virtual-server defaults (delay_loop 2.5, connect_timeout 4,
    // virtualhost), its own nb_get_retry 1, ranges in status_code; digest and the second url
    // warned.
    let first = &c.checks[pool.backends[0].check.as_ref().unwrap()];
    assert_eq!(first.kind, CheckKind::Http);
    assert_eq!(
        (first.interval_ms, first.timeout_ms, first.fall),
        (2500, Some(4000), 2)
    );
    assert_eq!(first.host.as_deref(), Some("www.example.test"));
    assert_eq!(
        first.expect_status.as_deref(),
        Some(&[200, 204, 300, 301, 302][..])
    );
    assert!(warnings_at(&imp, line_of(&f, "digest "))[0].contains("digest"));
    assert!(warnings_at(&imp, line_of(&f, "path /other") - 1)[0].contains("second `url`"));

    // The second: its own delay_loop 1, the virtual server's retry 3, connect_ip/port, the
    // url's virtualhost, keepalived's default 2xx; bindto, warmup, regex and a second checker
    // warned.
    let second = &c.checks[pool.backends[1].check.as_ref().unwrap()];
    assert_eq!(
        (second.interval_ms, second.timeout_ms, second.fall),
        (1000, Some(4000), 4)
    );
    assert_eq!(second.address, Some(addr("198.51.100.122:9090")));
    assert_eq!(second.host.as_deref(), Some("ready.example.test"));
    let statuses: Vec<u16> = (200..=299).collect();
    assert_eq!(second.expect_status.as_deref(), Some(&statuses[..]));
    for needle in ["bindto", "warmup 3", "regex", "TCP_CHECK {"] {
        assert_eq!(warnings_at(&imp, line_of(&f, needle)).len(), 1, "{needle}");
    }
}

#[test]
fn ssl_get_misc_check_and_weights() {
    let imp = keywords();
    let c = &imp.config;
    let f = data("lvs-keywords.conf");
    let pool = &c.pools["vs-192.0.2.20-443"];
    // wlc: weighted round robin with a warning; LVS weights scaled to ha-lb's 1000.
    assert_eq!(pool.algorithm, Algorithm::Roundrobin);
    assert!(warnings_at(&imp, line_of(&f, "lb_algo wlc"))[0].contains("leastconn"));
    assert!(warnings_at(&imp, line_of(&f, "lb_kind TUN"))[0].contains("masquerade"));
    let l = &c.listeners["vs-192.0.2.20-443"];
    assert_eq!(l.nat_source, Some(NatSource::Masquerade), "TUN");
    let weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, [1000, 500, 1]);

    let ssl = &c.checks[pool.backends[0].check.as_ref().unwrap()];
    assert_eq!(ssl.kind, CheckKind::Https);
    assert_eq!(ssl.fall, 1, "retry 0");
    let tls = ssl.tls.as_ref().unwrap();
    assert!(tls.insecure_skip_verify, "keepalived does not verify");
    assert_eq!(tls.server_name.as_deref(), Some("api.example.test"));
    assert_eq!(
        tls.client_cert_file.as_deref(),
        Some(Path::new("/etc/keepalived/client.pem"))
    );
    assert_eq!(
        tls.client_key_file.as_deref(),
        Some(Path::new("/etc/keepalived/client.key"))
    );
    assert!(warnings_at(&imp, line_of(&f, "ca /etc"))[0].contains("ca"));

    let misc = &c.checks[pool.backends[1].check.as_ref().unwrap()];
    assert_eq!(misc.kind, CheckKind::Exec);
    assert_eq!(
        misc.command.as_deref().unwrap(),
        ["/usr/local/bin/check-app", "--port", "443"]
    );
    assert_eq!(misc.timeout_ms, Some(7000));
    assert_eq!(misc.run_as.as_deref(), Some("nobody:nogroup"));
    assert_eq!(
        (misc.rise, misc.fall),
        (1, 1),
        "MISC_CHECK's default retry is 0"
    );
    assert_eq!(misc.interval_ms, 60_000, "keepalived's default delay_loop");
    for needle in ["misc_dynamic", "SMTP_CHECK", "uthreshold", "notify_up"] {
        assert_eq!(warnings_at(&imp, line_of(&f, needle)).len(), 1, "{needle}");
    }
    // The SMTP_CHECK's server has no check: always a candidate.
    assert_eq!(pool.backends[2].check, None);
}

#[test]
fn skipped_virtual_servers_and_other_schedulers() {
    let imp = keywords();
    let c = &imp.config;
    let f = data("lvs-keywords.conf");
    assert!(!c.listeners.values().any(|l| l.listen.port() == 53), "UDP");
    assert!(warnings_at(&imp, line_of(&f, "protocol UDP"))[0].contains("TCP only"));
    assert!(warnings_at(&imp, line_of(&f, "virtual_server fwmark"))[0].contains("fwmark"));
    let smtp = &c.pools["vs-192.0.2.40-25"];
    assert_eq!(smtp.algorithm, Algorithm::Roundrobin);
    assert_eq!(
        c.checks[smtp.backends[0].check.as_ref().unwrap()].address,
        Some(addr("198.51.100.61:2525")),
        "connect_port alone: the real server's address"
    );
    for needle in [
        "lb_algo lc",
        "persistence_granularity",
        "ha_suspend",
        "lb_algo fo",
    ] {
        assert_eq!(warnings_at(&imp, line_of(&f, needle)).len(), 1, "{needle}");
    }
}

#[test]
fn every_warning_of_the_keyword_file_is_accounted_for() {
    let imp = keywords();
    let f = data("lvs-keywords.conf");
    // Each needle's line carries exactly the warnings counted here, and no other line has any.
    let expect: Vec<(usize, usize)> = [
        ("ca /etc", 1),
        ("fwmark 7", 1),
        ("virtual_server group WEB", 1),
        ("lb_algo rr", 1),
        ("lb_kind DR", 1),
        ("quorum 2", 1),
        ("digest ", 1),
        ("path /other", 0),
        ("bindto", 1),
        ("warmup 3", 1),
        ("regex", 1),
        ("TCP_CHECK {", 1),
        ("lb_algo wlc", 1),
        ("lb_kind TUN", 1),
        ("uthreshold", 1),
        ("notify_up", 1),
        ("SSL_GET {", 1),
        ("misc_dynamic", 1),
        ("SMTP_CHECK", 1),
        ("protocol UDP", 1),
        ("virtual_server fwmark", 1),
        ("lb_algo lc", 1),
        ("persistence_granularity", 1),
        ("ha_suspend", 1),
        ("lb_algo fo", 1),
        ("lb_algo mh", 1),
        ("weight 70000", 0),
    ]
    .iter()
    .map(|(n, k)| (line_of(&f, n), *k))
    .collect();
    let mut counted = 0;
    for (line, k) in &expect {
        assert_eq!(
            warnings_at(&imp, *line).len(),
            *k,
            "line {line}: {:?}",
            warnings_at(&imp, *line)
        );
        counted += k;
    }
    // Not at a needle's line: the second url (its block's line), the retry caveats at the
    // HTTP_GET and TCP_CHECK lines, the scaled weights at the virtual_server line.
    let http_get_1 = nth_line_of(&f, "HTTP_GET {", 0);
    let http_get_2 = nth_line_of(&f, "HTTP_GET {", 1);
    let tcp_25 = nth_line_of(&f, "TCP_CHECK {", 1);
    let vs_443 = line_of(&f, "virtual_server 192.0.2.20 443");
    let url_2 = line_of(&f, "path /other") - 1;
    for (line, needle) in [
        (http_get_1, "retry 1"),
        (http_get_2, "retry 3"),
        (tcp_25, "retry 1"),
        (vs_443, "scaled down by 70000/1000"),
        (url_2, "second `url`"),
    ] {
        let w = warnings_at(&imp, line);
        assert_eq!(w.len(), 1, "line {line}: {w:?}");
        assert!(w[0].contains(needle), "{w:?} lacks {needle:?}");
        counted += 1;
    }
    assert_eq!(imp.warnings.len(), counted, "{:#?}", imp.warnings);
}

#[test]
fn defaults_and_edge_cases() {
    // No lb_algo: keepalived's wlc, with a warning; no lb_kind: NAT; no checker: no check.
    let imp = text("virtual_server 192.0.2.1 80 {\n  real_server 198.51.100.1 8080 {\n  }\n}\n");
    let pool = &imp.config.pools["vs-192.0.2.1-80"];
    assert_eq!(pool.backends[0].address, addr("198.51.100.1:8080"));
    assert_eq!(pool.backends[0].check, None);
    assert_eq!(imp.warnings.len(), 1, "{:?}", imp.warnings);
    assert!(imp.warnings[0].message.contains("keepalived's default wlc"));
    assert_eq!(imp.warnings[0].line, 1);

    // A real server without a port takes the virtual server's (DR style).
    let imp =
        text("virtual_server 192.0.2.1 443 {\n lb_algo wrr\n real_server 198.51.100.1 {\n }\n}\n");
    assert_eq!(
        imp.config.pools["vs-192.0.2.1-443"].backends[0].address,
        addr("198.51.100.1:443")
    );
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);

    // No real server: nothing to balance, left out with a warning; the same address twice:
    // the second left out.
    let imp = text(
        "virtual_server 192.0.2.1 80 {\n lb_algo wrr\n}\n\
         virtual_server 192.0.2.2 80 {\n lb_algo wrr\n real_server 198.51.100.1 80 {\n }\n}\n\
         virtual_server 192.0.2.2 80 {\n lb_algo wrr\n real_server 198.51.100.2 80 {\n }\n}\n",
    );
    assert_eq!(imp.config.listeners.len(), 1);
    assert_eq!(
        imp.config.pools["vs-192.0.2.2-80"].backends[0].address,
        addr("198.51.100.1:80")
    );
    let lines: Vec<usize> = imp.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [1, 9], "{:?}", imp.warnings);

    // A group that does not exist, a bad address, a real server of the other family, a
    // HTTP_GET without url, a MISC_CHECK without misc_path.
    let imp = text(
        "virtual_server group NOPE {\n}\n\
         virtual_server 192.0.2.300 80 {\n}\n\
         virtual_server 192.0.2.3 80 {\n lb_algo wrr\n\
           real_server 2001:db8::1 80 {\n }\n\
           real_server 198.51.100.3 80 {\n  HTTP_GET {\n  }\n }\n\
           real_server 198.51.100.4 80 {\n  MISC_CHECK {\n  }\n }\n}\n",
    );
    let lines: Vec<usize> = imp.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [1, 3, 7, 10, 14], "{:#?}", imp.warnings);
    let pool = &imp.config.pools["vs-192.0.2.3-80"];
    assert_eq!(pool.backends.len(), 2);
    assert!(pool.backends.iter().all(|b| b.check.is_none()));
    imp.to_toml().unwrap();

    // persistence_timeout 0 is no persistence; a sorry server that is also a real server is
    // not added twice.
    let imp = text(
        "virtual_server 192.0.2.4 80 {\n lb_algo wrr\n persistence_timeout 0\n\
         sorry_server 198.51.100.5 80\n real_server 198.51.100.5 80 {\n }\n}\n",
    );
    let pool = &imp.config.pools["vs-192.0.2.4-80"];
    assert_eq!(pool.algorithm, Algorithm::Roundrobin);
    assert_eq!(pool.backends.len(), 1);
    let lines: Vec<usize> = imp.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [4], "{:#?}", imp.warnings);
}

#[test]
fn cli_import_then_check_config_has_no_error_or_warning() {
    let dir = std::env::temp_dir().join(format!("ha-lb-import-lvs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_ha-lb");
    for (name, warnings) in [("lvs-nat-director", 5), ("lvs-keywords", 30)] {
        let out_file = dir.join(format!("{name}.toml"));
        let import = std::process::Command::new(bin)
            .arg("import-keepalived")
            .arg(data(&format!("{name}.conf")))
            .arg("--output")
            .arg(&out_file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&import.stderr);
        assert_eq!(import.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!("translated with {warnings} warning(s)")),
            "{stderr}"
        );
        let check = std::process::Command::new(bin)
            .arg("check-config")
            .arg(&out_file)
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        assert_eq!(check.status.code(), Some(0), "{out}");
        assert!(!out.contains("warning"), "{out}");
        assert!(out.contains("(nat, source "), "{out}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipvs_connection_sync_points_to_conntrack_sync() {
    let imp = text(
        "global_defs {\n lvs_sync_daemon eth1 VI_1 id 5\n}\n\
         vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n\
         lvs_sync_daemon_interface eth1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    );
    let lines: Vec<(usize, bool)> = imp
        .warnings
        .iter()
        .map(|w| {
            (
                w.line,
                w.message
                    .contains("[conntrack_sync] with interface = \"eth1\""),
            )
        })
        .collect();
    assert_eq!(lines, [(2, true), (8, true)], "{:#?}", imp.warnings);
}

#[test]
fn notify_commands_driving_conntrackd_point_to_conntrack_sync() {
    let imp = text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n\
         virtual_ipaddress {\n  192.0.2.1\n }\n\
         notify_master \"/etc/conntrackd/primary-backup.sh primary\"\n\
         notify_backup \"/etc/conntrackd/primary-backup.sh backup\"\n\
         notify_fault \"/usr/local/bin/page-me\"\n}\n",
    );
    let i = &imp.config.instances["VI_1"];
    assert_eq!(
        i.notify.master.as_deref().unwrap(),
        ["/etc/conntrackd/primary-backup.sh", "primary"],
        "still translated"
    );
    let lines: Vec<usize> = imp
        .warnings
        .iter()
        .filter(|w| w.message.contains("[conntrack_sync]"))
        .map(|w| w.line)
        .collect();
    assert_eq!(lines, [8, 9], "{:#?}", imp.warnings);
}
