//! The importer on configs written to use every keyword it translates (tests/data/keepalived/
//! full.conf and the files it includes), and on syntax keepalived accepts or refuses.

// Helpers shared by the tests: a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::data::{data, line_of};
use ha_lb::config::{self, CheckKind, TrackInterface};
use ha_lb::keepalived::{import_file, Import, ImportError};

fn full() -> Import {
    import_file(&data("full.conf")).unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A throwaway directory for configs written by a test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ha-lb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn global_defs() {
    let imp = full();
    assert_eq!(imp.config.global.router_id.as_deref(), Some("edge-1"));
    // vrrp_version 3 applies to instances that do not say; LEGACY says 2.
    assert_eq!(imp.config.instances["V4"].version, 3);
    assert_eq!(imp.config.instances["LEGACY"].version, 2);
    // vrrp_garp_* globals are the base of every instance's garp table.
    let g = &imp.config.instances["LEGACY"].garp;
    assert_eq!((g.master_delay_ms, g.master_repeat), (2000, 3));
    assert_eq!((g.master_refresh_ms, g.master_refresh_repeat), (60_000, 2));
    assert_eq!((g.lower_prio_delay_ms, g.lower_prio_repeat), (4000, 1));
    assert_eq!((g.interval_ms, g.gna_interval_ms), (1, 2));
    // `v3_checksum_as_v2` (keepalived 2.2.8+) is every instance's default, but V4 turns it
    // off for its `old_unicast_checksum`, and it changes nothing for VRRPv2 or IPv6.
    for i in imp.config.instances.values() {
        assert!(!i.v3_checksum_as_v2);
    }
    assert!(imp.config.instances["V4"].old_unicast_checksum);
    assert!(!imp.config.instances["LEGACY"].old_unicast_checksum);
}

#[test]
fn vrrp_script_to_exec_check() {
    let imp = full();
    let c = &imp.config.checks["chk_haproxy"];
    assert_eq!(c.kind, CheckKind::Exec);
    assert_eq!(
        c.command.as_deref(),
        Some(&strings(&["/usr/bin/pgrep", "-x", "haproxy"])[..])
    );
    assert_eq!(
        (c.interval_ms, c.timeout_ms, c.rise, c.fall),
        (1500, Some(3000), 2, 4)
    );
    // `user nobody` in the vrrp_script: the check runs as nobody; `script_user` in
    // global_defs: every other script runs as that.
    assert_eq!(c.run_as.as_deref(), Some("nobody"));
    assert_eq!(
        imp.config.global.run_as.as_deref(),
        Some("keepalived_script:nogroup")
    );
    // Defined in an included file, after nothing: still found by instances.
    let dns = &imp.config.checks["chk_dns"];
    assert_eq!(
        dns.command.as_deref(),
        Some(&strings(&["/usr/local/bin/check-dns"])[..])
    );
    assert_eq!(
        (dns.interval_ms, dns.timeout_ms, dns.rise, dns.fall),
        (3000, None, 1, 1)
    );
}

#[test]
fn vrrp_instance_v4() {
    let imp = full();
    let i = &imp.config.instances["V4"];
    assert_eq!(i.interface, "eth0");
    assert_eq!((i.vrid, i.priority, i.advert_interval_ms), (51, 150, 500));
    assert!(!i.preempt, "nopreempt");
    assert!(!i.accept_mode, "no_accept");
    assert_eq!(
        i.unicast_src,
        Some("192.0.2.1".parse().unwrap()),
        "mcast_src_ip"
    );
    let peers: Vec<IpAddr> = vec!["192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap()];
    assert_eq!(i.unicast_peers, peers);
    assert_eq!(i.unicast_min_ttl, 250, "the lowest peer's min_ttl");
    assert_eq!(
        i.vips.len(),
        3,
        "the IPv6 address is left out of an IPv4 instance"
    );
    let v = &i.vips[0];
    assert_eq!((v.address, v.prefix), ("192.0.2.100".parse().unwrap(), 24));
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert_eq!(v.label.as_deref(), Some("eth0:vip"));
    assert_eq!(v.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));
    assert_eq!((i.vips[1].prefix, i.vips[1].dev.as_deref()), (32, None));
    assert_eq!(i.vips[2].dev.as_deref(), Some("eth1"));
    let tracks: Vec<(&str, i32)> = i
        .track_checks
        .iter()
        .map(|t| (t.check.as_str(), t.weight))
        .collect();
    assert_eq!(
        tracks,
        [("chk_haproxy", 10), ("chk_dns", -30)],
        "script weight, then an override"
    );
    assert_eq!(
        i.track_interfaces,
        [
            TrackInterface {
                interface: "eth1".into(),
                weight: -50
            },
            TrackInterface {
                interface: "eth2".into(),
                weight: 0
            }
        ]
    );
    assert_eq!(
        i.notify.master,
        Some(strings(&["/etc/keepalived/notify.sh", "MASTER"]))
    );
    assert_eq!(
        i.notify.backup,
        Some(strings(&["/etc/keepalived/backup.sh"]))
    );
    assert_eq!(
        i.notify.fault,
        Some(strings(&["/etc/keepalived/notify.sh", "FAULT"]))
    );
    assert_eq!(i.notify.stop, Some(strings(&["/etc/keepalived/stop.sh"])));
    assert_eq!(i.notify.any, Some(strings(&["/etc/keepalived/any.sh"])));
    // Instance garp_* override the globals, the rest stay global.
    assert_eq!((i.garp.master_delay_ms, i.garp.master_repeat), (1000, 2));
    assert_eq!(i.garp.master_refresh_ms, 60_000);
}

#[test]
fn vrrp_instance_v6_and_owner() {
    let imp = full();
    let i = &imp.config.instances["V6"];
    assert_eq!(i.version, 3);
    assert_eq!(i.priority, 255);
    assert!(i.address_owner, "priority 255 is the address owner");
    assert_eq!(i.preempt_delay_ms, 30_000);
    assert_eq!(i.unicast_src, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(
        i.unicast_peers,
        vec!["2001:db8::2".parse::<IpAddr>().unwrap()],
        "one-line block"
    );
    assert_eq!(
        i.unicast_min_ttl, 64,
        "keepalived's IPv6 unicast adverts come with hop limit 64"
    );
    assert_eq!(i.password, None, "VRRPv3 has no authentication");
    assert!(
        !i.old_unicast_checksum,
        "`old_unicast_checksum never` is the RFC checksum"
    );
    assert_eq!(
        (i.vips[0].prefix, i.vips[0].dev.as_deref()),
        (64, Some("eth0"))
    );
    assert_eq!(i.track_checks[0].weight, -20, "the script's own weight");
    let g = &i.garp;
    assert_eq!((g.interval_ms, g.gna_interval_ms), (10, 20));
    assert_eq!((g.master_refresh_ms, g.master_refresh_repeat), (30_000, 3));
    assert_eq!((g.lower_prio_delay_ms, g.lower_prio_repeat), (6000, 7));
}

#[test]
fn v2_password_is_cut_to_8_bytes_like_keepalived() {
    let imp = full();
    let i = &imp.config.instances["LEGACY"];
    assert_eq!(i.password.as_deref(), Some("longer-t"));
    assert_eq!(i.advert_interval_ms, 2000);
}

#[test]
fn sync_group() {
    let imp = full();
    let g = &imp.config.sync_groups["G1"];
    assert_eq!(g.instances, strings(&["V4", "LEGACY"]));
    assert_eq!(
        g.notify.master,
        Some(strings(&["/etc/keepalived/group.sh", "master"]))
    );
    assert_eq!(
        g.notify.backup,
        Some(strings(&["/etc/keepalived/group.sh", "backup"]))
    );
    assert_eq!(
        g.notify.fault,
        Some(strings(&["/etc/keepalived/group.sh", "fault"]))
    );
    assert_eq!(
        g.notify.stop,
        Some(strings(&["/etc/keepalived/group.sh", "stop"]))
    );
    assert_eq!(g.notify.any, Some(strings(&["/etc/keepalived/group.sh"])));
}

#[test]
fn everything_not_translated_is_a_warning_with_its_line() {
    let imp = full();
    let main = data("full.conf");
    let inc = data("full.d/20-static.conf");
    let expect: Vec<(PathBuf, usize, &str)> = vec![
        (
            main.clone(),
            line_of(&main, "notification_email {"),
            "notification_email",
        ),
        (
            inc.clone(),
            line_of(&inc, "static_ipaddress"),
            "static_ipaddress",
        ),
        (main.clone(), line_of(&main, "state BACKUP"), "state BACKUP"),
        (main.clone(), line_of(&main, "max_ttl 255"), "max_ttl 255"),
        (
            main.clone(),
            line_of(&main, "2001:db8::dead/64"),
            "2001:db8::dead",
        ),
        (main.clone(), line_of(&main, "scope global"), "scope global"),
        (main.clone(), line_of(&main, "chk_missing"), "chk_missing"),
        (
            main.clone(),
            line_of(
                &main,
                "notify_fault \"/etc/keepalived/notify.sh FAULT\" root",
            ),
            "\"root\"",
        ),
        (
            main.clone(),
            line_of(&main, "auth_pass secret"),
            "VRRPv3 has no authentication",
        ),
        (
            main.clone(),
            line_of(&main, "vrrp_instance V6"),
            "unicast_min_ttl = 64",
        ),
        (
            main.clone(),
            line_of(&main, "longer-than-8"),
            "longer than 8 bytes",
        ),
        (
            main.clone(),
            line_of(&main, "global_tracking"),
            "global_tracking",
        ),
        (
            main.clone(),
            line_of(&main, "virtual_server 192.0.2.120 80"),
            "keepalived's default wlc",
        ),
    ];
    let got: Vec<(PathBuf, usize, String)> = imp
        .warnings
        .iter()
        .map(|w| (w.file.clone(), w.line, w.message.clone()))
        .collect();
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for ((file, line, needle), (gfile, gline, gmsg)) in expect.iter().zip(&got) {
        assert_eq!((file, line), (gfile, gline), "{gmsg}");
        assert!(gmsg.contains(needle), "{gmsg:?} lacks {needle:?}");
    }
}

#[test]
fn full_translation_passes_check_config() {
    let imp = full();
    let text = imp.to_toml().unwrap();
    let back = config::parse(&text, Path::new("full.toml")).unwrap();
    assert_eq!(back, imp.config);
}

#[test]
fn include_globs_are_relative_sorted_and_empty_matches_warn() {
    let dir = TempDir::new("include");
    dir.write("conf.d/b.conf", "vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  192.0.2.2\n }\n}\n");
    dir.write("conf.d/a.conf", "global_defs {\n router_id from-a\n}\n");
    dir.write("conf.d/skip.txt", "garbage {\n");
    let main = dir.write(
        "keepalived.conf",
        "include conf.d/*.conf\ninclude none/*.conf\n",
    );
    let imp = import_file(&main).unwrap();
    assert_eq!(imp.config.global.router_id.as_deref(), Some("from-a"));
    assert_eq!(imp.config.instances["B"].vrid, 2);
    assert_eq!(imp.warnings.len(), 1, "{:#?}", imp.warnings);
    assert_eq!(
        (imp.warnings[0].file.clone(), imp.warnings[0].line),
        (main, 2)
    );
    assert!(imp.warnings[0].message.contains("matches no file"));
    imp.to_toml().unwrap();
}

#[test]
fn include_cycle_is_an_error() {
    let dir = TempDir::new("cycle");
    let a = dir.write("a.conf", "include b.conf\n");
    dir.write("b.conf", "global_defs {\n}\ninclude a.conf\n");
    match import_file(&a) {
        Err(ImportError::Syntax {
            line,
            message,
            file,
        }) => {
            assert_eq!(line, 3);
            assert!(file.ends_with("b.conf"));
            assert!(message.contains("cycle"), "{message}");
        }
        other => panic!("expected a cycle error, got {other:?}"),
    }
}

#[test]
fn unbalanced_braces_are_errors_with_lines() {
    let dir = TempDir::new("braces");
    let open = dir.write(
        "open.conf",
        "global_defs {\n router_id x\nvrrp_instance V {\n interface eth0\n}\n",
    );
    match import_file(&open) {
        Err(ImportError::Syntax { line, message, .. }) => {
            assert_eq!(line, 1);
            assert!(message.contains("never closed"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let close = dir.write("close.conf", "global_defs {\n}\n}\n");
    match import_file(&close) {
        Err(ImportError::Syntax { line, message, .. }) => {
            assert_eq!(line, 3);
            assert!(message.contains("without a matching"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match import_file(&dir.0.join("missing.conf")) {
        Err(ImportError::Read { path, .. }) => assert!(path.ends_with("missing.conf")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn comments_quotes_and_non_utf8_bytes() {
    let dir = TempDir::new("lexing");
    let mut bytes =
        b"! bang comment\n# hash comment \xff\xfe not UTF-8\nvrrp_instance \"Q\" { # trailing\n"
            .to_vec();
    bytes.extend_from_slice(
        b" interface eth0 ! another\n virtual_router_id 7\n advert_int 0.05\n version 3\n virtual_ipaddress { 192.0.2.7/24 }\n}\n",
    );
    let p = dir.0.join("k.conf");
    std::fs::write(&p, bytes).unwrap();
    let imp = import_file(&p).unwrap();
    let i = &imp.config.instances["Q"];
    assert_eq!((i.vrid, i.advert_interval_ms, i.version), (7, 50, 3));
    assert_eq!(i.vips[0].prefix, 24);
    assert_eq!(imp.warnings.len(), 1, "{:#?}", imp.warnings);
    assert!(imp.warnings[0].message.contains("not valid UTF-8"));
}

#[test]
fn bad_values_are_warned_and_an_invalid_translation_is_refused() {
    let dir = TempDir::new("values");
    let p = dir.write(
        "v.conf",
        "vrrp_instance X {\n interface eth0\n virtual_router_id abc\n priority 300\n virtual_ipaddress {\n  192.0.2.9\n }\n}\n",
    );
    let imp = import_file(&p).unwrap();
    let lines: Vec<usize> = imp.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [3, 4, 1], "{:#?}", imp.warnings);
    assert_eq!(
        imp.config.instances["X"].priority, 100,
        "a bad priority keeps the default"
    );
    match imp.to_toml() {
        Err(ImportError::Invalid(e)) => {
            assert!(e.to_string().contains("VRID 0 is out of range"), "{e}");
        }
        other => panic!("expected an invalid translation, got {other:?}"),
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = "a {\n".repeat(100_000);
    match ha_lb::keepalived::import_str(&text, Path::new("deep.conf")) {
        Err(ImportError::Syntax { line, message, .. }) => {
            assert_eq!(line, 33);
            assert!(message.contains("nest deeper"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vrrp_track_process_becomes_a_process_check() {
    let path = data("track-process.conf");
    let imp = import_file(&path).unwrap();
    // The script of the same name keeps its name; the process check gets a suffix.
    let nginx = &imp.config.checks["nginx-process"];
    assert_eq!(nginx.kind, CheckKind::Process);
    assert_eq!(nginx.process.as_deref(), Some("nginx"));
    assert_eq!((nginx.rise, nginx.fall), (1, 1));
    assert_eq!(imp.config.checks["nginx"].kind, CheckKind::Exec);
    assert_eq!(
        imp.config.checks["haproxy"].process.as_deref(),
        Some("haproxy")
    );
    let tracks: Vec<(&str, i32)> = imp.config.instances["VI_1"]
        .track_checks
        .iter()
        .map(|t| (t.check.as_str(), t.weight))
        .collect();
    assert_eq!(
        tracks,
        [("nginx-process", -30), ("haproxy", -5), ("nginx", -10)]
    );
    let got: Vec<(usize, bool)> = imp
        .warnings
        .iter()
        .map(|w| {
            (
                w.line,
                w.message.contains("not translated") || w.message.contains("name"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (line_of(&path, "process /usr/sbin/nginx"), true),
            (line_of(&path, "delay 2"), true),
            (line_of(&path, "        missing"), true),
        ],
        "{:#?}",
        imp.warnings
    );
    imp.to_toml().unwrap();
}

/// The config of one `vrrp_instance` named `name`: VRRPv3 unless `version` says, the VIP
/// `vip`, and `extra` lines.
fn instance_text(name: &str, vrid: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n version 3\n\
         virtual_ipaddress {{\n  {vip}\n }}\n{extra}}}\n"
    )
}

#[test]
fn v3_checksum_as_v2_is_translated_from_global_defs_and_instances() {
    // keepalived 2.2.8 added `v3_checksum_as_v2`: VRRPv3 IPv4 checksums without the
    // pseudo-header. Dropping it left the migrated node deaf to its keepalived peer.
    let dir = TempDir::new("v3-checksum");
    let text = [
        "global_defs {\n v3_checksum_as_v2\n}\n".to_string(),
        // Inherits the global default.
        instance_text("INHERITS", 1, "192.0.2.1", ""),
        // Turns it off for itself.
        instance_text("OFF", 2, "192.0.2.2", " v3_checksum_as_v2 false\n"),
        // VRRPv2 and IPv6 have no such checksum: the global default changes nothing, silently.
        instance_text("V2", 3, "192.0.2.3", " version 2\n"),
        instance_text("V6", 4, "2001:db8::4", ""),
        // Said in an IPv6 instance: warned, not translated.
        instance_text("V6_SAYS", 5, "2001:db8::5", " v3_checksum_as_v2 yes\n"),
        // With old_unicast_checksum: keepalived leaves the pseudo-header out, so does ha-lb.
        instance_text(
            "BOTH",
            6,
            "192.0.2.6",
            " unicast_peer {\n  192.0.2.60\n }\n old_unicast_checksum\n",
        ),
        // A value keepalived does not know: warned, the global default stays.
        instance_text("BAD", 7, "192.0.2.7", " v3_checksum_as_v2 maybe\n"),
    ]
    .concat();
    let path = dir.write("keepalived.conf", &text);
    let imp = import_file(&path).unwrap();
    let on = |name: &str| imp.config.instances[name].v3_checksum_as_v2;
    assert!(on("INHERITS"));
    assert!(!on("OFF"));
    assert!(!on("V2"));
    assert!(!on("V6"));
    assert!(!on("V6_SAYS"));
    assert!(on("BOTH"));
    assert!(!imp.config.instances["BOTH"].old_unicast_checksum);
    assert!(on("BAD"));
    let warned: Vec<(usize, &str)> = imp
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(warned.len(), 3, "{warned:#?}");
    assert_eq!(warned[0].0, line_of(&path, "v3_checksum_as_v2 yes"));
    assert!(warned[0].1.contains("only changes VRRPv3 IPv4"));
    assert_eq!(warned[1].0, line_of(&path, "old_unicast_checksum"));
    assert!(warned[1].1.contains("no pseudo-header"));
    assert_eq!(warned[2].0, line_of(&path, "v3_checksum_as_v2 maybe"));
    // The translation is a valid config: the option lands only where check-config takes it.
    let back = config::parse(&imp.to_toml().unwrap(), Path::new("t.toml")).unwrap();
    assert_eq!(back, imp.config);
    assert_eq!(
        back.instances["INHERITS"].checksum_mode(),
        vrrp_core::packet::ChecksumMode::V3WithoutPseudoHeader
    );

    // Without global_defs, an instance's bare keyword turns it on.
    let one = dir.write(
        "one.conf",
        &instance_text("A", 1, "192.0.2.1", " v3_checksum_as_v2\n"),
    );
    let imp = import_file(&one).unwrap();
    assert!(imp.config.instances["A"].v3_checksum_as_v2);
    assert!(imp.warnings.is_empty(), "{:#?}", imp.warnings);
}

#[test]
fn nopreempt_of_the_address_owner_is_dropped_with_a_warning() {
    // keepalived: "nopreempt is incompatible with priority 255 - resetting nopreempt".
    let dir = TempDir::new("owner-nopreempt");
    let path = dir.write(
        "keepalived.conf",
        &instance_text("O", 1, "192.0.2.1", " priority 255\n nopreempt\n"),
    );
    let imp = import_file(&path).unwrap();
    let i = &imp.config.instances["O"];
    assert!(i.address_owner && i.preempt);
    assert_eq!(imp.warnings.len(), 1, "{:#?}", imp.warnings);
    assert_eq!(imp.warnings[0].line, line_of(&path, "nopreempt"));
    assert!(imp.warnings[0].message.contains("always preempts"));
}

#[test]
fn use_vmac_and_vmac_xmit_base_are_translated() {
    let dir = TempDir::new("vmac");
    let text = [
        instance_text("DEFAULT", 1, "192.0.2.1", " use_vmac\n"),
        instance_text(
            "NAMED",
            2,
            "192.0.2.2",
            " use_vmac vrrp-web\n vmac_xmit_base\n",
        ),
        instance_text("V6", 3, "2001:db8::3", " use_vmac\n"),
        instance_text("PLAIN", 4, "192.0.2.4", ""),
    ]
    .concat();
    let path = dir.write("keepalived.conf", &text);
    let imp = import_file(&path).unwrap();
    assert!(imp.warnings.is_empty(), "{:#?}", imp.warnings);
    let i = |n: &str| &imp.config.instances[n];
    assert!(i("DEFAULT").use_vmac && !i("DEFAULT").vmac_xmit_base);
    assert_eq!(
        i("DEFAULT").vmac().as_deref(),
        Some("vrrp.1"),
        "keepalived's name"
    );
    assert_eq!(i("NAMED").vmac().as_deref(), Some("vrrp-web"));
    assert!(i("NAMED").vmac_xmit_base);
    assert_eq!(i("V6").vmac().as_deref(), Some("vrrp6.3"));
    assert_eq!(i("PLAIN").vmac(), None);
    // The translation is a valid config and reads back the same.
    let back = config::parse(&imp.to_toml().unwrap(), Path::new("t.toml")).unwrap();
    assert_eq!(back, imp.config);
}
