//! `[conntrack_sync]` in check-config: a valid section is accepted with its defaults; each
//! mistake is refused naming its key.

use std::path::Path;

use ha_lb::config::{parse, ConfigError, DEFAULT_CONNTRACK_PORT};

const BASE: &str = r#"[instances.VI_1]
interface = "eth0"
vrid = 101
priority = 100
vips = ["192.0.2.200/24"]

[pools.web]
backends = [{ address = "192.0.2.21:80" }]

[listeners.web]
listen = "192.0.2.200:80"
pool = "web"
mode = "nat"
nat_source = "vip"
"#;

fn with(section: &str) -> String {
    format!("{BASE}\n[conntrack_sync]\n{section}")
}

/// The keys of the problems found.
fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("t.toml")) {
        Err(ConfigError::Invalid { diagnostics }) => {
            diagnostics.into_iter().map(|d| d.key.to_string()).collect()
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => Vec::new(),
    }
}

#[test]
fn valid_section_with_defaults() {
    let text = with("interface = \"eth1\"\nlocal = \"198.51.100.1\"\npeer = \"198.51.100.2\"\n");
    let c = parse(&text, Path::new("t.toml")).unwrap();
    let s = c.conntrack_sync.unwrap();
    assert_eq!(s.port, DEFAULT_CONNTRACK_PORT);
    assert_eq!(s.program, Path::new("/usr/sbin/conntrackd"));
    assert_eq!(s.state_dir, Path::new("/run/ha-lb/conntrackd"));
    assert_eq!(s.instance, None);
    assert_eq!(s.driving_instance(c.instances.keys()), Some("VI_1"));
}

#[test]
fn each_mistake_names_its_key() {
    let ok = "interface = \"eth1\"\nlocal = \"198.51.100.1\"\npeer = \"198.51.100.2\"\n";
    for (change, key) in [
        ("interface = \"\"\n", "conntrack_sync.interface"),
        ("peer = \"198.51.100.1\"\n", "conntrack_sync.peer"),
        ("peer = \"2001:db8::2\"\n", "conntrack_sync.peer"),
        ("local = \"127.0.0.1\"\n", "conntrack_sync.local"),
        ("peer = \"224.0.0.18\"\n", "conntrack_sync.peer"),
        ("port = 0\n", "conntrack_sync.port"),
        ("instance = \"VI_9\"\n", "conntrack_sync.instance"),
        ("program = \"conntrackd\"\n", "conntrack_sync.program"),
        ("state_dir = \"run\"\n", "conntrack_sync.state_dir"),
    ] {
        // The changed key replaces the valid one of the same name.
        let name = change.split(' ').next().unwrap();
        let mut section: String = ok
            .lines()
            .filter(|l| !l.starts_with(&format!("{name} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        section.push_str(change);
        assert_eq!(problems(&with(&section)), [key], "{change}");
    }
    let long = format!("state_dir = \"/{}\"\n", "d".repeat(100));
    assert_eq!(
        problems(&with(&format!("{ok}{long}"))),
        ["conntrack_sync.state_dir"]
    );
}

#[test]
fn an_instance_must_drive_it() {
    // Two instances and no `instance`: which one holds the VIP is not known.
    let two = BASE.replace(
        "[pools.web]",
        "[instances.VI_2]\ninterface = \"eth0\"\nvrid = 102\npriority = 100\nvips = [\"192.0.2.201/24\"]\n\n[pools.web]",
    );
    let text = format!(
        "{two}\n[conntrack_sync]\ninterface = \"eth1\"\nlocal = \"198.51.100.1\"\npeer = \"198.51.100.2\"\n"
    );
    assert_eq!(problems(&text), ["conntrack_sync.instance"]);
    assert_eq!(
        problems(&format!("{text}instance = \"VI_2\"\n")),
        Vec::<String>::new()
    );
}

#[test]
fn a_sync_without_vip_nat_listeners_is_warned_about() {
    let ok = "interface = \"eth1\"\nlocal = \"198.51.100.1\"\npeer = \"198.51.100.2\"\n";
    let warnings = |text: &str| -> Vec<String> {
        let (_, w) = ha_lb::config::parse_with_warnings(text, Path::new("t.toml")).unwrap();
        w.into_iter().map(|d| d.key.to_string()).collect()
    };
    assert!(warnings(&with(ok)).is_empty());
    let masquerade = with(ok).replace("nat_source = \"vip\"", "nat_source = \"masquerade\"");
    assert_eq!(warnings(&masquerade), ["conntrack_sync"]);
    let c = parse(&with(ok), Path::new("t.toml")).unwrap();
    assert!(c
        .summary()
        .contains("conntrack sync: conntrackd FTFW on eth1 from 198.51.100.1 to 198.51.100.2 port 3780, driven by instance VI_1"));
}
