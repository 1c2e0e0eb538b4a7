//! `ha-lb import-keepalived` on the four keepalived.conf files of the seed article (copied
//! byte for byte, UTF-8 comments included, into tests/data/keepalived).

// Helpers shared by the tests: a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use super::data;
use ha_lb::config::{self, CheckKind};
use ha_lb::keepalived::{import_file, Import};

fn import(name: &str) -> Import {
    import_file(&data::data(name)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The line of the first line of `file` that contains `needle`.
fn line_of(file: &str, needle: &str) -> usize {
    data::line_of(&data::data(file), needle)
}

#[test]
fn active_standby_pair() {
    for (file, priority, src, peer, router_id) in [
        (
            "lb1-active-standby.conf",
            100,
            "192.168.19.158",
            "192.168.19.159",
            "lb1",
        ),
        (
            "lb2-active-standby.conf",
            50,
            "192.168.19.159",
            "192.168.19.158",
            "lb2",
        ),
    ] {
        let c = import(file).config;
        assert_eq!(c.global.router_id.as_deref(), Some(router_id));
        assert_eq!(c.instances.len(), 1, "{file}");
        let i = &c.instances["VI_1"];
        assert_eq!(i.interface, "ens33");
        assert_eq!(i.vrid, 101);
        assert_eq!(i.priority, priority, "{file}");
        assert_eq!(i.version, 2, "keepalived's default version is 2");
        assert_eq!(i.advert_interval_ms, 1000);
        assert!(i.preempt);
        assert_eq!(i.password.as_deref(), Some("123456"));
        assert_eq!(i.unicast_src, Some(ip(src)));
        assert_eq!(i.unicast_peers, vec![ip(peer)]);
        assert_eq!(i.vips.len(), 1);
        assert_eq!(i.vips[0].address, ip("192.168.19.200"));
        assert_eq!(i.vips[0].prefix, 32);
        assert_eq!(i.track_checks.len(), 1);
        assert_eq!(i.track_checks[0].check, "check_nginx");
        assert_eq!(i.track_checks[0].weight, -20);
        let check = &c.checks["check_nginx"];
        assert_eq!(check.kind, CheckKind::Exec);
        assert_eq!(check.interval_ms, 2000);
        assert_eq!(
            (check.rise, check.fall),
            (1, 1),
            "keepalived's rise/fall default is 1"
        );
        assert_eq!(
            check.command.as_deref(),
            Some(&["/etc/keepalived/nginx_check.sh".to_string()][..])
        );
        assert!(c.listeners.is_empty() && c.pools.is_empty());
    }
}

#[test]
fn active_active_pair_has_crossed_priorities() {
    let lb1 = import("lb1-active-active.conf").config;
    let lb2 = import("lb2-active-active.conf").config;
    for c in [&lb1, &lb2] {
        assert_eq!(c.instances.len(), 2);
        assert_eq!(c.instances["VI_1"].vrid, 101);
        assert_eq!(c.instances["VI_2"].vrid, 102);
        assert_eq!(c.instances["VI_1"].vips[0].address, ip("192.168.19.200"));
        assert_eq!(c.instances["VI_2"].vips[0].address, ip("192.168.19.201"));
        for i in c.instances.values() {
            assert_eq!(i.advert_interval_ms, 1000);
            assert_eq!(i.password.as_deref(), Some("123456"));
            assert_eq!(i.track_checks[0].weight, -20);
        }
    }
    assert_eq!(
        (
            lb1.instances["VI_1"].priority,
            lb1.instances["VI_2"].priority
        ),
        (100, 50)
    );
    assert_eq!(
        (
            lb2.instances["VI_1"].priority,
            lb2.instances["VI_2"].priority
        ),
        (50, 100)
    );
    assert_eq!(
        lb1.instances["VI_2"].unicast_peers,
        vec![ip("192.168.19.159")]
    );
    assert_eq!(
        lb2.instances["VI_2"].unicast_peers,
        vec![ip("192.168.19.158")]
    );
}

#[test]
fn seed_warnings_name_their_lines() {
    let file = "lb1-active-active.conf";
    let imp = import(file);
    let lines: Vec<usize> = imp.warnings.iter().map(|w| w.line).collect();
    // `state` of both instances, and the check script that kills keepalived instead of failing.
    let script_line = line_of(file, "script \"/etc/keepalived/nginx_check.sh\"");
    let state1 = line_of(file, "state MASTER");
    let state2 = line_of(file, "state BACKUP");
    assert_eq!(
        lines,
        vec![script_line, state1, state2],
        "{:#?}",
        imp.warnings
    );
    assert!(imp.warnings.iter().all(|w| w.file == data::data(file)));
    assert!(
        imp.warnings[0].message.contains("stops keepalived"),
        "{}",
        imp.warnings[0]
    );
    assert!(
        imp.warnings[0].message.contains("process"),
        "{}",
        imp.warnings[0]
    );
    assert!(imp.warnings[1].to_string().starts_with(&format!(
        "{}:{state1}: warning:",
        data::data(file).display()
    )));
}

#[test]
fn every_seed_translation_passes_check_config() {
    for file in [
        "lb1-active-standby.conf",
        "lb2-active-standby.conf",
        "lb1-active-active.conf",
        "lb2-active-active.conf",
    ] {
        let imp = import(file);
        let text = imp.to_toml().unwrap();
        let back = config::parse(&text, Path::new("imported.toml")).unwrap();
        assert_eq!(
            back, imp.config,
            "{file}: the TOML must say exactly what was translated"
        );
        for w in &imp.warnings {
            assert!(
                text.contains(&w.message),
                "{file}: warning missing from the TOML header: {w}"
            );
        }
    }
}

#[test]
fn cli_output_passes_cli_check_config() {
    let dir = std::env::temp_dir().join(format!("ha-lb-import-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("lb1.toml");
    let bin = env!("CARGO_BIN_EXE_ha-lb");
    let import = Command::new(bin)
        .arg("import-keepalived")
        .arg(data::data("lb1-active-active.conf"))
        .arg("--output")
        .arg(&out_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert_eq!(import.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning: `state MASTER`"), "{stderr}");
    assert!(stderr.contains("translated with 3 warning(s)"), "{stderr}");
    let check = Command::new(bin)
        .arg("check-config")
        .arg(&out_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("instance VI_2: ens33 VRID 102 VRRPv2 priority 50"),
        "{stdout}"
    );
}

#[test]
fn stdout_is_the_config_and_nothing_else() {
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .arg("import-keepalived")
        .arg(data::data("lb2-active-standby.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let c = config::parse(&stdout, Path::new("stdout.toml")).unwrap();
    assert_eq!(c.instances["VI_1"].priority, 50);
}
