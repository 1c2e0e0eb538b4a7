//! Invalid configurations: each is rejected with the file, line and column of the offending
//! key, the key's path, a message and a hint.

use std::path::Path;

use ha_lb::config::{parse, ConfigError, Diagnostic};

/// A valid file: one instance, one check, one pool, one listener. Cases edit it.
const BASE: &str = r#"[instances.VI_1]
interface = "eth0"
vrid = 101
priority = 100
vips = ["192.0.2.200/24"]
track_checks = [{ check = "web", weight = -20 }]

[checks.web]
kind = "tcp"
address = "192.0.2.21:80"

[pools.web]
backends = [{ address = "192.0.2.21:80", check = "web" }]

[listeners.web]
listen = "192.0.2.200:80"
pool = "web"
"#;

fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match parse(text, Path::new("t.toml")) {
        Err(ConfigError::Invalid { diagnostics }) => diagnostics,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

/// 1-based line and character column where `needle` starts in `text` (its first occurrence
/// at or after the line that contains `after`).
fn position(text: &str, after: &str, needle: &str) -> (usize, usize) {
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} not in text"));
    let offset = start
        + text[start..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// Asserts exactly one problem, at `needle` (searched from `after`), about `key`, whose message
/// contains `message`; the hint is not empty.
fn assert_problem(text: &str, after: &str, needle: &str, key: &str, message: &str) {
    let d = diagnostics(text);
    assert_eq!(d.len(), 1, "expected one problem, got: {d:#?}");
    let d = &d[0];
    let (line, column) = position(text, after, needle);
    assert_eq!((d.location.line, d.location.column), (line, column), "{d}");
    assert_eq!(d.location.file, Path::new("t.toml"));
    assert_eq!(d.key, key, "{d}");
    assert!(
        d.message.contains(message),
        "message {:?} lacks {message:?}",
        d.message
    );
    assert!(!d.hint.trim().is_empty(), "no hint: {d}");
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_is_valid() {
    parse(BASE, Path::new("t.toml")).unwrap();
}

#[test]
fn unknown_keys_are_rejected_where_they_are() {
    let text = edit("priority = 100", "prority = 100");
    assert_problem(
        &text,
        "prority",
        "prority",
        "instances.VI_1.prority",
        "unknown field `prority`",
    );
    let text = format!("{BASE}\n[checks.web.tls]\nserver_name = \"x\"\nverify = false\n");
    let d = diagnostics(&text);
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("unknown field `verify`"), "{}", d[0]);
    assert_eq!(d[0].location.line, position(&text, "verify", "verify").0);
    let text = format!("{BASE}\n[extra]\nx = 1\n");
    assert_problem(&text, "[extra]", "extra", "extra", "unknown field `extra`");
}

#[test]
fn vrid_out_of_range() {
    for bad in ["0", "256"] {
        let text = edit("vrid = 101", &format!("vrid = {bad}"));
        assert_problem(
            &text,
            "vrid",
            bad,
            "instances.VI_1.vrid",
            &format!("VRID {bad} is out of range"),
        );
    }
}

#[test]
fn priority_zero_too_high_and_owner() {
    let text = edit("priority = 100", "priority = 0");
    assert_problem(
        &text,
        "priority",
        "0",
        "instances.VI_1.priority",
        "priority 0 is reserved",
    );
    let text = edit("priority = 100", "priority = 256");
    assert_problem(
        &text,
        "priority",
        "256",
        "instances.VI_1.priority",
        "out of range",
    );
    let text = edit("priority = 100", "priority = 255");
    assert_problem(
        &text,
        "priority",
        "255",
        "instances.VI_1.priority",
        "only for the owner",
    );
    let text = edit("priority = 100", "priority = 255\naddress_owner = true");
    parse(&text, Path::new("t.toml")).unwrap();
    let text = edit("priority = 100", "address_owner = true");
    assert_problem(
        &text,
        "address_owner",
        "true",
        "instances.VI_1.address_owner",
        "priority 255",
    );
}

#[test]
fn v2_rules() {
    let text = edit(
        "vips = [\"192.0.2.200/24\"]",
        "version = 2\nvips = [\"2001:db8::200/64\"]",
    );
    assert_problem(
        &text,
        "version",
        "2",
        "instances.VI_1.version",
        "VRRPv2 cannot carry IPv6",
    );
    let text = edit(
        "priority = 100",
        "priority = 100\nversion = 2\nadvert_interval_ms = 1500",
    );
    assert_problem(
        &text,
        "advert_interval_ms",
        "1500",
        "instances.VI_1.advert_interval_ms",
        "whole seconds",
    );
    let text = edit(
        "priority = 100",
        "priority = 100\nversion = 2\nadvert_interval_ms = 3000",
    );
    parse(&text, Path::new("t.toml")).unwrap();
    let text = edit("priority = 100", "version = 4");
    assert_problem(
        &text,
        "version",
        "4",
        "instances.VI_1.version",
        "does not exist",
    );
}

#[test]
fn advert_interval_range() {
    for (bad, msg) in [
        ("0", "must not be zero"),
        ("5", "10..=40950"),
        ("40960", "10..=40950"),
        ("15", "steps of 10"),
    ] {
        let text = edit("priority = 100", &format!("advert_interval_ms = {bad}"));
        assert_problem(
            &text,
            "advert_interval_ms",
            bad,
            "instances.VI_1.advert_interval_ms",
            msg,
        );
    }
}

#[test]
fn password_rules() {
    let text = edit("priority = 100", "version = 2\npassword = \"123456789\"");
    assert_problem(
        &text,
        "password",
        "\"123456789\"",
        "instances.VI_1.password",
        "1 to 8",
    );
    let text = edit("priority = 100", "version = 2\npassword = \"12345678\"");
    parse(&text, Path::new("t.toml")).unwrap();
    let text = edit("priority = 100", "password = \"123456\"");
    assert_problem(
        &text,
        "password",
        "\"123456\"",
        "instances.VI_1.password",
        "VRRPv3 has no authentication",
    );
}

#[test]
fn mixed_vip_families_point_at_the_odd_one() {
    let text = edit(
        "vips = [\"192.0.2.200/24\"]",
        "vips = [{ address = \"192.0.2.200/24\", label = \"eth0:标签\" }, \"2001:db8::1/64\"]",
    );
    // The column counts characters, so the multi-byte label does not shift it.
    assert_problem(
        &text,
        "vips",
        "\"2001:db8::1/64\"",
        "instances.VI_1.vips[1]",
        "one instance carries one family",
    );
}

#[test]
fn bad_vip_text_is_a_parse_error_at_the_value() {
    let text = edit("\"192.0.2.200/24\"", "\"192.0.2.200/33\"");
    let d = diagnostics(&text);
    assert_eq!(d.len(), 1);
    assert!(
        d[0].message.contains("prefix `33` is not valid for IPv4"),
        "{}",
        d[0]
    );
    assert_eq!(
        d[0].location.line,
        position(&text, "vips", "192.0.2.200/33").0
    );
}

#[test]
fn duplicate_vrid_and_family_on_one_interface() {
    let second =
        "\n[instances.VI_2]\ninterface = \"eth0\"\nvrid = 101\nvips = [\"192.0.2.201/24\"]\n";
    let text = format!("{BASE}{second}");
    assert_problem(
        &text,
        "[instances.VI_2]",
        "101",
        "instances.VI_2.vrid",
        "already used by instance \"VI_1\"",
    );
    // Same VRID, other family: allowed (RFC 5798 keeps them apart).
    let text = format!(
        "{BASE}{}",
        second.replace("192.0.2.201/24", "2001:db8::201/64")
    );
    parse(&text, Path::new("t.toml")).unwrap();
    // Same VRID, other interface: allowed.
    let text = format!("{BASE}{}", second.replace("eth0", "eth1"));
    parse(&text, Path::new("t.toml")).unwrap();
}

#[test]
fn undefined_references() {
    let text = edit("check = \"web\", weight", "check = \"nginx\", weight");
    assert_problem(
        &text,
        "track_checks",
        "\"nginx\"",
        "instances.VI_1.track_checks[0].check",
        "no check named \"nginx\"",
    );
    let d = diagnostics(&text);
    assert!(
        d[0].hint.contains("web"),
        "hint should list defined checks: {}",
        d[0].hint
    );
    let text = edit("pool = \"web\"", "pool = \"api\"");
    assert_problem(
        &text,
        "[listeners.web]",
        "\"api\"",
        "listeners.web.pool",
        "no pool named \"api\"",
    );
    let text = edit(
        "priority = 100",
        "track_pools = [{ pool = \"api\", weight = -10 }]",
    );
    assert_problem(
        &text,
        "track_pools",
        "\"api\"",
        "instances.VI_1.track_pools[0].pool",
        "no pool named",
    );
    let text = edit("check = \"web\" }]", "check = \"db\" }]");
    assert_problem(
        &text,
        "backends",
        "\"db\"",
        "pools.web.backends[0].check",
        "no check named \"db\"",
    );
    let text = format!("{BASE}\n[sync_groups.G]\ninstances = [\"VI_1\", \"VI_9\"]\n");
    assert_problem(
        &text,
        "[sync_groups.G]",
        "\"VI_9\"",
        "sync_groups.G.instances[1]",
        "no instance named",
    );
}

#[test]
fn check_values() {
    let text = edit(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\ninterval_ms = 0\n",
    );
    assert_problem(
        &text,
        "interval_ms",
        "0",
        "checks.web.interval_ms",
        "interval must not be zero",
    );
    let text = edit(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\nrise = 0\n",
    );
    assert_problem(
        &text,
        "rise",
        "0",
        "checks.web.rise",
        "rise 0 is out of range",
    );
    let text = edit(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\nfall = 101\n",
    );
    assert_problem(&text, "fall", "101", "checks.web.fall", "fall 101");
    let text = edit(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\ntimeout_ms = 0\n",
    );
    assert_problem(
        &text,
        "timeout_ms",
        "0",
        "checks.web.timeout_ms",
        "timeout must not be zero",
    );
    let text = edit(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\npath = \"/healthz\"\n",
    );
    assert_problem(
        &text,
        "path",
        "\"/healthz\"",
        "checks.web.path",
        "does not apply to a tcp check",
    );
    let text = edit("kind = \"tcp\"", "kind = \"http\"").replace(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\npath = \"healthz\"\n",
    );
    assert_problem(
        &text,
        "path",
        "\"healthz\"",
        "checks.web.path",
        "does not start with `/`",
    );
    let text = edit(
        "kind = \"tcp\"\naddress = \"192.0.2.21:80\"",
        "kind = \"exec\"",
    );
    assert_problem(
        &text,
        "[checks.web]",
        "\"exec\"",
        "checks.web.kind",
        "needs a command",
    );
    let text = edit(
        "kind = \"tcp\"\naddress = \"192.0.2.21:80\"",
        "kind = \"process\"\nprocess = \"/usr/sbin/nginx\"",
    );
    assert_problem(
        &text,
        "process =",
        "\"/usr/sbin/nginx\"",
        "checks.web.process",
        "not a process name",
    );
    let text = edit("kind = \"tcp\"", "kind = \"udp\"");
    assert_problem(
        &text,
        "kind",
        "\"udp\"",
        "checks.web.kind",
        "unknown variant `udp`",
    );
    let text = edit("kind = \"tcp\"", "kind = \"https\"")
        + "\n[checks.web.tls]\nclient_cert_file = \"/etc/c.pem\"\n";
    assert_problem(
        &text,
        "[checks.web.tls]",
        "tls",
        "checks.web.tls",
        "go together",
    );
}

#[test]
fn pool_and_listener_values() {
    let text = edit(
        "backends = [{ address = \"192.0.2.21:80\", check = \"web\" }]",
        "backends = []",
    );
    assert_problem(&text, "backends", "[]", "pools.web.backends", "no backends");
    let text = edit("check = \"web\" }]", "check = \"web\", weight = 1001 }]");
    assert_problem(
        &text,
        "backends",
        "1001 }",
        "pools.web.backends[0].weight",
        "weight 1001 is out of range",
    );
    // Weight 0 drains a backend: valid.
    let text = edit("check = \"web\" }]", "check = \"web\", weight = 0 }]");
    parse(&text, Path::new("t.toml")).unwrap();
    let text = edit("[pools.web]\n", "[pools.web]\nalgorithm = \"fastest\"\n");
    assert_problem(
        &text,
        "algorithm",
        "\"fastest\"",
        "pools.web.algorithm",
        "unknown variant `fastest`",
    );
    let text = edit("[pools.web]\n", "[pools.web]\nproxy_protocol = \"v3\"\n");
    assert_problem(
        &text,
        "proxy_protocol",
        "\"v3\"",
        "pools.web.proxy_protocol",
        "unknown variant `v3`",
    );
    let text = edit("pool = \"web\"\n", "pool = \"web\"\nidle_timeout_ms = 0\n");
    assert_problem(
        &text,
        "idle_timeout_ms",
        "0",
        "listeners.web.idle_timeout_ms",
        "must not be zero",
    );
    let text = edit("[pools.web]\n", "[pools.web]\nidle_timeout_ms = 1000\n");
    assert_problem(
        &text,
        "idle_timeout_ms",
        "idle_timeout_ms",
        "pools.web.idle_timeout_ms",
        "unknown field `idle_timeout_ms`",
    );
    let text = edit("listen = \"192.0.2.200:80\"", "listen = \"192.0.2.200\"");
    assert_problem(
        &text,
        "listen",
        "\"192.0.2.200\"",
        "listeners.web.listen",
        "invalid socket address",
    );
    // A Master with accept_mode = false drops traffic to its VIPs: no listener can serve there.
    let text = edit("priority = 100\n", "priority = 100\naccept_mode = false\n");
    assert_problem(
        &text,
        "[listeners.web]",
        "\"192.0.2.200:80\"",
        "listeners.web.listen",
        "accept_mode = false",
    );
    let text = format!("{BASE}\n[listeners.again]\nlisten = \"192.0.2.200:80\"\npool = \"web\"\n");
    let d = diagnostics(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].message.contains("also the address of listener"),
        "{}",
        d[0]
    );
}

#[test]
fn wrong_types_and_syntax() {
    let text = edit("vrid = 101", "vrid = \"101\"");
    assert_problem(
        &text,
        "vrid",
        "\"101\"",
        "instances.VI_1.vrid",
        "invalid type",
    );
    let text = edit("vrid = 101", "vrid = -1");
    assert_problem(&text, "vrid", "-1", "instances.VI_1.vrid", "invalid value");
    let text = edit("vrid = 101", "vrid = = 101");
    let d = diagnostics(&text);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].location.line, 3, "{}", d[0]);
    let text = edit("interface = \"eth0\"\n", "");
    assert_problem(
        &text,
        "[instances.VI_1]",
        "[instances",
        "instances.VI_1",
        "missing field `interface`",
    );
}

#[test]
fn empty_file_has_nothing_to_run() {
    let d = diagnostics("# only a comment\n");
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].location.line, d[0].location.column), (1, 1));
    assert!(d[0].message.contains("nothing to run"));
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = edit("vrid = 101", "vrid = 0")
        .replace("priority = 100", "priority = 0")
        .replace("pool = \"web\"", "pool = \"nope\"");
    let d = diagnostics(&text);
    let keys: Vec<&str> = d.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "instances.VI_1.vrid",
            "instances.VI_1.priority",
            "listeners.web.pool"
        ]
    );
    let rendered = ConfigError::Invalid { diagnostics: d }.to_string();
    assert!(
        rendered.contains("t.toml:3:8: error: `instances.VI_1.vrid`: VRID 0 is out of range"),
        "{rendered}"
    );
    assert!(rendered.contains("3 | vrid = 0"), "{rendered}");
    assert!(rendered.contains("= hint: "), "{rendered}");
    assert!(rendered.contains("3 problems found"), "{rendered}");
}

#[test]
fn process_and_header_keys() {
    let process = |body: &str| edit("kind = \"tcp\"\naddress = \"192.0.2.21:80\"", body);
    parse(
        &process("kind = \"process\"\npidfile = \"/run/nginx.pid\""),
        Path::new("t.toml"),
    )
    .unwrap();
    let text = process("kind = \"process\"\nprocess = \"nginx\"\npidfile = \"/run/nginx.pid\"");
    assert_problem(
        &text,
        "pidfile",
        "\"/run/nginx.pid\"",
        "checks.web.pidfile",
        "not both",
    );
    let text = process("kind = \"process\"");
    assert_problem(
        &text,
        "[checks.web]",
        "\"process\"",
        "checks.web.kind",
        "process name or a pidfile",
    );
    let text = process("kind = \"tcp\"\naddress = \"192.0.2.21:80\"\npidfile = \"/run/x.pid\"");
    assert_problem(
        &text,
        "pidfile",
        "\"/run/x.pid\"",
        "checks.web.pidfile",
        "does not apply to a tcp check",
    );
    let http = |headers: &str| {
        edit("kind = \"tcp\"", "kind = \"http\"").replace(
            "address = \"192.0.2.21:80\"\n",
            &format!("address = \"192.0.2.21:80\"\nheaders = {headers}\n"),
        )
    };
    parse(&http("{ X-Check = \"ha-lb\" }"), Path::new("t.toml")).unwrap();
    let text = http("{ \"Bad Header\" = \"x\" }");
    assert_problem(
        &text,
        "headers",
        "\"x\"",
        "checks.web.headers.\"Bad Header\"",
        "not an HTTP header name",
    );
    let text = edit(
        "address = \"192.0.2.21:80\"\n",
        "address = \"192.0.2.21:80\"\nheaders = { A = \"b\" }\n",
    );
    assert_problem(
        &text,
        "headers",
        "headers",
        "checks.web.headers",
        "does not apply to a tcp check",
    );
}

#[test]
fn track_weights_follow_keepalived_bounds() {
    let text = edit("weight = -20", "weight = -253");
    parse(&text, Path::new("t.toml")).unwrap();
    let text = edit("weight = -20", "weight = -254");
    assert_problem(
        &text,
        "track_checks",
        "-254",
        "instances.VI_1.track_checks[0].weight",
        "weight -254 is out of range",
    );
    let text = edit(
        "priority = 100",
        "track_interfaces = [{ interface = \"eth1\", weight = 300 }]",
    );
    assert_problem(
        &text,
        "track_interfaces",
        "300",
        "instances.VI_1.track_interfaces[0].weight",
        "weight 300 is out of range",
    );
}

#[test]
fn network_checks_without_address_are_backend_templates() {
    // BASE's check is used by a backend and tracked by the instance: it needs its address.
    let text = edit("address = \"192.0.2.21:80\"\n", "");
    assert_problem(
        &text,
        "[checks.web]",
        "\"tcp\"",
        "checks.web.kind",
        "tracked by instance \"VI_1\" needs an address",
    );
    // Used by backends only, it probes each backend's own address.
    let text = edit("address = \"192.0.2.21:80\"\n", "").replace(
        "track_checks = [{ check = \"web\", weight = -20 }]",
        "track_pools = [{ pool = \"web\", weight = -20 }]",
    );
    parse(&text, Path::new("t.toml")).unwrap();
}

#[test]
fn vips_whose_advert_exceeds_the_mtu() {
    let list = |n: usize| {
        (1..=n)
            .map(|i| format!("\"2001:db8::{i:x}/64\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // 90 IPv6 VIPs: 40 + 8 + 90 * 16 = 1488 bytes, fits in 1500.
    let fits = edit(
        "vips = [\"192.0.2.200/24\"]",
        &format!("vips = [{}]", list(90)),
    )
    .replace(
        "listen = \"192.0.2.200:80\"",
        "listen = \"[2001:db8::1]:80\"",
    );
    parse(&fits, Path::new("t.toml")).unwrap();
    // 91: 1504 bytes; no peer would hear it (and 128 would be cut by a 2 KiB buffer).
    let text = edit(
        "vips = [\"192.0.2.200/24\"]",
        &format!("vips = [{}]", list(91)),
    )
    .replace(
        "listen = \"192.0.2.200:80\"",
        "listen = \"[2001:db8::1]:80\"",
    );
    assert_problem(
        &text,
        "vips",
        "[\"2001",
        "instances.VI_1.vips",
        "1504 bytes",
    );
}

#[test]
fn delays_vrrp_core_refuses_are_located_errors_first() {
    // vrrp-core's RouterConfig::validate refuses delays over MAX_DELAY (so `now + delay`
    // cannot overflow); check-config refuses them first, where they are in the file. (That
    // vrrp-core takes them at the bound: runtime::router_config's unit tests.)
    use ha_lb::config::MAX_DURATION_MS;
    assert!(std::time::Duration::from_millis(MAX_DURATION_MS) <= vrrp_core::MAX_DELAY);
    let too_long = MAX_DURATION_MS + 1;
    for (key, setting) in [
        ("preempt_delay_ms", "preempt_delay_ms"),
        ("garp.master_delay_ms", "garp = { master_delay_ms"),
        ("garp.master_refresh_ms", "garp = { master_refresh_ms"),
        ("garp.lower_prio_delay_ms", "garp = { lower_prio_delay_ms"),
    ] {
        let line = |v: u64| {
            let close = if setting.starts_with("garp") {
                " }"
            } else {
                ""
            };
            format!("priority = 100\n{setting} = {v}{close}")
        };
        let text = edit("priority = 100", &line(too_long));
        assert_problem(
            &text,
            setting,
            &too_long.to_string(),
            &format!("instances.VI_1.{key}"),
            "out of range",
        );
        // At the bound: valid.
        parse(
            &edit("priority = 100", &line(MAX_DURATION_MS)),
            Path::new("t.toml"),
        )
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[test]
fn vmac_settings_are_checked() {
    // vmac_name / vmac_xmit_base without use_vmac change nothing: said so.
    let text = edit("vrid = 101", "vrid = 101\nvmac_xmit_base = true");
    assert_problem(
        &text,
        "vmac_xmit_base",
        "true",
        "instances.VI_1.vmac_xmit_base",
        "without use_vmac",
    );
    // An interface name longer than the kernel takes.
    let text = edit(
        "vrid = 101",
        "vrid = 101\nuse_vmac = true\nvmac_name = \"a-very-long-vmac-name\"",
    );
    assert_problem(
        &text,
        "vmac_name",
        "\"a-very",
        "instances.VI_1.vmac_name",
        "cannot name an interface",
    );
    // Two instances on one VMAC interface.
    let text = format!(
        "{}\n[instances.VI_2]\ninterface = \"eth0\"\nvrid = 102\nuse_vmac = true\nvmac_name = \"v\"\n\
         vips = [\"192.0.2.201/24\"]\n",
        edit("vrid = 101", "vrid = 101\nuse_vmac = true\nvmac_name = \"v\"")
    );
    let d = diagnostics(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].message.contains("uses the VMAC interface \"v\" too"),
        "{}",
        d[0]
    );
    // The default name is fine.
    let text = edit("vrid = 101", "vrid = 101\nuse_vmac = true");
    assert!(parse(&text, Path::new("t.toml")).is_ok());
}

#[test]
fn admin_control_off_loopback_needs_a_token() {
    let text = format!("[admin]\nlisten = \"192.0.2.1:9555\"\ncontrol = true\n\n{BASE}");
    assert_problem(&text, "[admin]", "true", "admin.control", "without a token");
    // On loopback, or with a token file, it is fine.
    let ok = format!("[admin]\ncontrol = true\n\n{BASE}");
    parse(&ok, Path::new("t.toml")).unwrap();
    let ok = format!(
        "[admin]\nlisten = \"192.0.2.1:9555\"\ncontrol = true\ntoken_file = \"/etc/ha-lb/token\"\n\n{BASE}"
    );
    parse(&ok, Path::new("t.toml")).unwrap();
    // A token without control is a mistake.
    let text = format!("[admin]\ntoken_file = \"/etc/ha-lb/token\"\n\n{BASE}");
    assert_problem(
        &text,
        "[admin]",
        "\"/etc/ha-lb/token\"",
        "admin.token_file",
        "without control",
    );
}

#[test]
fn pool_day2_options() {
    let text = edit(
        "[pools.web]\n",
        "[pools.web]\non_backend_down = \"close\"\nslow_start_ms = 3600001\n",
    );
    assert_problem(
        &text,
        "[pools.web]",
        "3600001",
        "pools.web.slow_start_ms",
        "out of range",
    );
    let d = diagnostics(&edit(
        "[pools.web]\n",
        "[pools.web]\non_backend_down = \"kill\"\n",
    ));
    assert!(d[0].message.contains("kill"), "{d:#?}");
    // run_as is for exec checks only.
    assert_problem(
        &edit("kind = \"tcp\"\n", "kind = \"tcp\"\nrun_as = \"nobody\"\n"),
        "[checks.web]",
        "\"nobody\"",
        "checks.web.run_as",
        "does not apply",
    );
}

/// BASE with its listener in NAT mode (and `extra` keys after `pool = "web"`).
fn nat(extra: &str) -> String {
    edit(
        "pool = \"web\"\n",
        &format!("pool = \"web\"\nmode = \"nat\"\n{extra}"),
    )
}

#[test]
fn nat_listeners_refuse_what_nftables_cannot_do() {
    // The base NAT listener, and each source NAT, are valid.
    parse(&nat(""), Path::new("t.toml")).unwrap();
    for source in ["masquerade", "vip", "preserve"] {
        parse(
            &nat(&format!("nat_source = \"{source}\"\n")),
            Path::new("t.toml"),
        )
        .unwrap();
    }
    let text = nat("nat_source = \"dsr\"\n");
    assert_problem(
        &text,
        "nat_source",
        "\"dsr\"",
        "listeners.web.nat_source",
        "unknown variant `dsr`",
    );
    let text = edit("pool = \"web\"\n", "pool = \"web\"\nmode = \"tproxy\"\n");
    assert_problem(
        &text,
        "mode",
        "\"tproxy\"",
        "listeners.web.mode",
        "unknown variant `tproxy`",
    );
    // nat_source on a proxy listener means nothing.
    let text = edit("pool = \"web\"\n", "pool = \"web\"\nnat_source = \"vip\"\n");
    assert_problem(
        &text,
        "nat_source",
        "\"vip\"",
        "listeners.web.nat_source",
        "NAT listeners only",
    );
    // Algorithms without an nftables form: refused with the list of those that have one.
    for algorithm in ["leastconn", "p2c", "maglev"] {
        let text = nat("").replace(
            "[pools.web]\n",
            &format!("[pools.web]\nalgorithm = \"{algorithm}\"\n"),
        );
        assert_problem(
            &text,
            "[pools.web]",
            &format!("\"{algorithm}\""),
            "pools.web.algorithm",
            &format!("algorithm {algorithm} has no nftables form"),
        );
        let d = diagnostics(&text);
        assert!(
            d[0].hint.contains("roundrobin, random and sourcehash"),
            "{}",
            d[0]
        );
    }
    for algorithm in ["roundrobin", "random", "sourcehash"] {
        let text = nat("").replace(
            "[pools.web]\n",
            &format!("[pools.web]\nalgorithm = \"{algorithm}\"\n"),
        );
        parse(&text, Path::new("t.toml")).unwrap();
    }
    // sourcehash is NAT's: a proxy listener is pointed to maglev.
    let text = edit("[pools.web]\n", "[pools.web]\nalgorithm = \"sourcehash\"\n");
    assert_problem(
        &text,
        "[pools.web]",
        "\"sourcehash\"",
        "pools.web.algorithm",
        "sourcehash is for NAT listeners",
    );
    // Backends would wait for a PROXY header that never comes.
    let text = nat("").replace("[pools.web]\n", "[pools.web]\nproxy_protocol = \"v2\"\n");
    assert_problem(
        &text,
        "[pools.web]",
        "\"v2\"",
        "pools.web.proxy_protocol",
        "sends no PROXY protocol header",
    );
    // Limits the kernel does not enforce.
    let text = nat("max_connections = 10\n");
    assert_problem(
        &text,
        "max_connections",
        "10",
        "listeners.web.max_connections",
        "not enforced by a NAT listener",
    );
    let text = nat("").replace("check = \"web\" }]", "check = \"web\", max_conns = 5 }]");
    assert_problem(
        &text,
        "backends",
        "5 }",
        "pools.web.backends[0].max_conns",
        "not enforced for NAT listener",
    );
    // No NAT across families, none from loopback or to a wildcard.
    let text = nat("").replace(
        "address = \"192.0.2.21:80\", check",
        "address = \"[2001:db8::21]:80\", check",
    );
    assert_problem(
        &text,
        "[pools.web]",
        "\"[2001:db8::21]:80\"",
        "pools.web.backends[0].address",
        "does not translate between families",
    );
    let text = nat("").replace("listen = \"192.0.2.200:80\"", "listen = \"127.0.0.1:80\"");
    assert_problem(
        &text,
        "[listeners.web]",
        "\"127.0.0.1:80\"",
        "listeners.web.listen",
        "loopback",
    );
    let text = nat("").replace("listen = \"192.0.2.200:80\"", "listen = \"0.0.0.0:80\"");
    assert_problem(
        &text,
        "[listeners.web]",
        "\"0.0.0.0:80\"",
        "listeners.web.listen",
        "not an address a NAT listener can rewrite",
    );
}
