//! Warnings: valid files that probably do not say what was meant are accepted, with located
//! warnings; the example files have none.

use std::path::Path;

use ha_lb::config::{load_with_warnings, parse_with_warnings, Severity};

#[test]
fn unused_and_exposed_things_are_warned_in_file_order() {
    let text = r#"[admin]
listen = "0.0.0.0:9555"

[instances.v]
interface = "eth0"
vrid = 1
vips = ["192.0.2.1/24"]
track_pools = [{ pool = "p", weight = -50 }]

[listeners.l]
listen = "192.0.2.1:80"
pool = "p"

[pools.p]
backends = [{ address = "192.0.2.2:80" }]

[pools.q]
backends = [{ address = "192.0.2.3:80" }]

[checks.c]
kind = "tcp"
address = "192.0.2.3:80"
"#;
    let (_, warnings) = parse_with_warnings(text, Path::new("w.toml")).unwrap();
    let got: Vec<(usize, usize, &str)> = warnings
        .iter()
        .map(|w| (w.location.line, w.location.column, w.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, 10, "admin.listen"),
            (8, 16, "instances.v.track_pools[0]"),
            (17, 8, "pools.q"),
            (20, 9, "checks.c"),
        ]
    );
    assert!(warnings
        .iter()
        .all(|w| w.severity == Severity::Warning && !w.hint.is_empty()));
    assert!(warnings[0]
        .to_string()
        .starts_with("w.toml:2:10: warning: `admin.listen`"));
    assert!(warnings[1].message.contains("no backend with a check"));
}

#[test]
fn accept_mode_off_without_a_listener_on_the_vip_is_fine() {
    let text = r#"[instances.v]
interface = "eth0"
vrid = 1
accept_mode = false
vips = ["192.0.2.1/24"]
"#;
    let (_, warnings) = parse_with_warnings(text, Path::new("a.toml")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn an_address_owner_without_preempt_is_warned_that_it_preempts_anyway() {
    let text = r#"[instances.v]
interface = "eth0"
vrid = 1
priority = 255
address_owner = true
preempt = false
vips = ["192.0.2.1/24"]
"#;
    let (config, warnings) = parse_with_warnings(text, Path::new("o.toml")).unwrap();
    assert!(
        !config.instances["v"].preempt,
        "the file is valid and kept as written"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(
        (w.location.line, w.location.column, w.key.as_str()),
        (6, 11, "instances.v.preempt")
    );
    assert!(
        w.message.contains("always takes the VIPs back"),
        "{}",
        w.message
    );
    // Not for a non-owner, nor for an owner that preempts.
    for text in [
        "[instances.v]\ninterface = \"eth0\"\nvrid = 1\npreempt = false\nvips = [\"192.0.2.1/24\"]\n",
        "[instances.v]\ninterface = \"eth0\"\nvrid = 1\npriority = 255\naddress_owner = true\nvips = [\"192.0.2.1/24\"]\n",
    ] {
        let (_, warnings) = parse_with_warnings(text, Path::new("o.toml")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}

#[test]
fn examples_have_no_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (_, warnings) = load_with_warnings(&path).unwrap();
            assert!(warnings.is_empty(), "{}: {warnings:#?}", path.display());
        }
    }
}

#[test]
fn proxy_only_settings_on_nat_listeners_are_warned_with_their_key() {
    let text = r#"[listeners.l]
listen = "192.0.2.1:80"
pool = "p"
mode = "nat"
idle_timeout_ms = 60000
log = true
non_local_bind = false

[pools.p]
retries = 5
connect_timeout_ms = 100
max_fails = 3
fail_timeout_ms = 1000
slow_start_ms = 5000
on_backend_down = "close"
backends = [{ address = "192.0.2.2:80" }]
"#;
    let (_, warnings) = parse_with_warnings(text, Path::new("w.toml")).unwrap();
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "listeners.l.idle_timeout_ms",
            "listeners.l.non_local_bind",
            "pools.p.retries",
            "pools.p.connect_timeout_ms",
            "pools.p.max_fails",
            "pools.p.fail_timeout_ms",
            "pools.p.slow_start_ms",
        ]
    );
    assert!(
        warnings[3].message.contains("not used in NAT mode"),
        "{}",
        warnings[3]
    );
    assert!(
        warnings[5].message.contains("no passive health"),
        "{}",
        warnings[5]
    );
    // The same pool also behind a proxy listener: its settings are used there, no warning.
    let both = format!("{text}\n[listeners.m]\nlisten = \"192.0.2.1:81\"\npool = \"p\"\n");
    let (_, warnings) = parse_with_warnings(&both, Path::new("w.toml")).unwrap();
    assert!(
        warnings.iter().all(|w| w.key.starts_with("listeners.l.")),
        "{warnings:#?}"
    );
    // Defaults are no warning.
    let plain = "[listeners.l]\nlisten = \"192.0.2.1:80\"\npool = \"p\"\nmode = \"nat\"\n\n\
                 [pools.p]\nbackends = [{ address = \"192.0.2.2:80\" }]\n";
    let (_, warnings) = parse_with_warnings(plain, Path::new("w.toml")).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
