//! Properties of the importer and the config loader on arbitrary input: they return a result
//! (never panic), and whatever imports and validates survives the TOML round trip.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use proptest::prelude::*;

use ha_lb::config;
use ha_lb::keepalived::import_str;

/// keepalived-like text: keywords the importer knows, numbers, addresses, braces, quotes and
/// comment characters, in any order.
fn keepalived_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("vrrp_instance".to_string()),
        Just("vrrp_script".to_string()),
        Just("vrrp_sync_group".to_string()),
        Just("global_defs".to_string()),
        Just("group".to_string()),
        Just("interface".to_string()),
        Just("virtual_router_id".to_string()),
        Just("priority".to_string()),
        Just("advert_int".to_string()),
        Just("version".to_string()),
        Just("authentication".to_string()),
        Just("auth_pass".to_string()),
        Just("virtual_ipaddress".to_string()),
        Just("unicast_peer".to_string()),
        Just("track_script".to_string()),
        Just("track_interface".to_string()),
        Just("weight".to_string()),
        Just("script".to_string()),
        Just("notify_master".to_string()),
        Just("garp_master_delay".to_string()),
        Just("include".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\n".to_string()),
        Just("#".to_string()),
        Just("!".to_string()),
        Just("\"".to_string()),
        Just("192.0.2.1/24".to_string()),
        Just("2001:db8::1".to_string()),
        Just("dev".to_string()),
        Just("label".to_string()),
        Just("注释".to_string()),
        (-300i32..300).prop_map(|n| n.to_string()),
        "[a-z_]{1,8}",
        "[0-9.]{1,6}",
    ];
    prop::collection::vec(word, 0..80).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A well-formed keepalived instance with arbitrary valid values translates value for
    /// value, and the translation validates.
    #[test]
    fn structured_instances_translate_exactly(
        vrid in 1u32..=255,
        priority in 1u32..=254,
        advert_s in 1u64..=255,
        nopreempt in any::<bool>(),
        password in "[a-zA-Z0-9]{1,8}",
        host in 1u8..=250,
        peers in prop::collection::btree_set(1u8..=250, 0..4),
        prefix in 8u8..=32,
        weight in -253i32..=253,
        interval_s in 1u64..=60,
        rise in 1u32..=10,
        fall in 1u32..=10,
    ) {
        let peers: Vec<u8> = peers.into_iter().filter(|p| *p != host).collect();
        let peer_lines: String = peers.iter().map(|p| format!("        192.0.2.{p}\n")).collect();
        let text = format!(
            "vrrp_script chk {{\n    script \"/usr/local/bin/chk --flag\"\n    interval {interval_s}\n    \
             weight {weight}\n    rise {rise}\n    fall {fall}\n}}\n\
             vrrp_instance VI {{\n    interface eth0\n    virtual_router_id {vrid}\n    priority {priority}\n    \
             advert_int {advert_s}\n{}    unicast_src_ip 192.0.2.{host}\n    unicast_peer {{\n{peer_lines}    }}\n    \
             authentication {{\n        auth_type PASS\n        auth_pass {password}\n    }}\n    \
             virtual_ipaddress {{\n        198.51.100.1/{prefix}\n    }}\n    track_script {{\n        chk\n    }}\n}}\n",
            if nopreempt { "    nopreempt\n" } else { "" },
        );
        let imp = import_str(&text, Path::new("/nonexistent-ha-lb-prop/keepalived.conf")).unwrap();
        prop_assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
        let i = &imp.config.instances["VI"];
        prop_assert_eq!((i.vrid, i.priority, i.version), (vrid, priority, 2));
        prop_assert_eq!(i.advert_interval_ms, advert_s * 1000);
        prop_assert_eq!(i.preempt, !nopreempt);
        prop_assert_eq!(i.password.as_deref(), Some(password.as_str()));
        prop_assert_eq!(i.unicast_src, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, host))));
        let want: Vec<IpAddr> = peers.iter().map(|p| IpAddr::V4(Ipv4Addr::new(192, 0, 2, *p))).collect();
        prop_assert_eq!(&i.unicast_peers, &want);
        prop_assert_eq!(i.vips[0].prefix, prefix);
        prop_assert_eq!(i.track_checks[0].weight, weight);
        let c = &imp.config.checks["chk"];
        prop_assert_eq!((c.interval_ms, c.rise, c.fall), (interval_s * 1000, rise, fall));
        prop_assert_eq!(c.command.clone().unwrap(), vec!["/usr/local/bin/chk".to_string(), "--flag".to_string()]);
        let toml_text = imp.to_toml().unwrap();
        let back = config::parse(&toml_text, Path::new("t.toml")).unwrap();
        prop_assert_eq!(back, imp.config);
    }

    #[test]
    fn importer_never_panics_and_valid_output_round_trips(text in keepalived_text()) {
        // The file lives in a directory that does not exist, so any `include` matches nothing.
        let path = Path::new("/nonexistent-ha-lb-prop/keepalived.conf");
        if let Ok(imp) = import_str(&text, path) {
            if let Ok(toml_text) = imp.to_toml() {
                let back = config::parse(&toml_text, Path::new("t.toml")).unwrap();
                prop_assert_eq!(back, imp.config);
            }
            for w in &imp.warnings {
                prop_assert!(w.line >= 1);
            }
        }
    }

    #[test]
    fn config_loader_never_panics_and_locates_errors(text in "[\\[\\]a-z_.=\"0-9 /:{},\n-]{0,200}") {
        if let Err(config::ConfigError::Invalid { diagnostics }) = config::parse(&text, Path::new("p.toml")) {
            prop_assert!(!diagnostics.is_empty());
            let lines = text.split('\n').count();
            for d in diagnostics {
                prop_assert!(d.location.line >= 1 && d.location.line <= lines, "{}", d);
                prop_assert!(d.location.column >= 1);
                prop_assert!(!d.hint.is_empty());
            }
        }
    }
}
