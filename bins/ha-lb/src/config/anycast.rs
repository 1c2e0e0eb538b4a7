//! `[anycast.NAME]`: VIPs announced by a routing daemon (BIRD, FRR) instead of VRRP.
//!
//! Every healthy node holds the VIPs at once, as host routes (/32, /128) on a dummy interface
//! ha-lb makes (`ha-lb0` by default); the node's BGP daemon exports the routes of that
//! interface, and the upstream router spreads flows over the nodes (ECMP). When something
//! tracked goes down, on a graceful stop and when the worker dies, the addresses go and the
//! daemon withdraws the route. See docs/bgp.md.
//!
//! Named after what it is (one address served from many places: anycast), not after BGP: ha-lb
//! speaks no BGP itself, and OSPF or IS-IS export the same routes.

use serde::{Deserialize, Serialize};

use super::vip::Vip;

/// The dummy interface the VIPs go on when `interface` is not given.
pub const DEFAULT_ANYCAST_INTERFACE: &str = "ha-lb0";
/// How long a stopping node keeps accepting after its routes are withdrawn, by default.
pub const DEFAULT_WITHDRAW_WAIT_MS: u64 = 1000;
/// The longest `withdraw_wait_ms` accepted: one minute.
pub const MAX_WITHDRAW_WAIT_MS: u64 = 60_000;

/// One group of anycast VIPs and what their announcement depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anycast {
    /// The addresses, written without prefix or as /32 (IPv4) or /128 (IPv6). Required, at
    /// least one.
    pub vips: Vec<Vip>,
    /// The dummy interface ha-lb makes (if missing) and puts the VIPs on: what the routing
    /// daemon exports. At most 15 bytes. Default `ha-lb0`.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// Checks that must be up (a first result in, and passing) for the VIPs to be announced.
    /// Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_checks: Vec<String>,
    /// Pools that must have a healthy backend for the VIPs to be announced. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_pools: Vec<String>,
    /// Interfaces whose link must be up (typically the uplinks) for the VIPs to be announced.
    /// Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interfaces: Vec<String>,
    /// Graceful stop: how long the listeners keep accepting after the routes are withdrawn
    /// (the VIPs move from `interface` to `lo`, so they stay local while the daemon withdraws
    /// and the router stops sending), in milliseconds, 0..=60000. Default 1000.
    #[serde(default = "default_withdraw_wait_ms")]
    pub withdraw_wait_ms: u64,
}

impl Anycast {
    /// A group of `vips` on the default interface, tracking nothing.
    pub fn new(vips: Vec<Vip>) -> Self {
        Anycast {
            vips,
            interface: default_interface(),
            track_checks: Vec::new(),
            track_pools: Vec::new(),
            track_interfaces: Vec::new(),
            withdraw_wait_ms: DEFAULT_WITHDRAW_WAIT_MS,
        }
    }
}

fn default_interface() -> String {
    DEFAULT_ANYCAST_INTERFACE.to_owned()
}

fn default_withdraw_wait_ms() -> u64 {
    DEFAULT_WITHDRAW_WAIT_MS
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, parse_with_warnings, ConfigError};

    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new("t.toml")) {
            Err(ConfigError::Invalid { diagnostics }) => {
                diagnostics.iter().map(|d| d.to_string()).collect()
            }
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    const BASE: &str = "[checks.api]\nkind = \"tcp\"\naddress = \"198.51.100.1:80\"\n\
        [pools.web]\nbackends = [{ address = \"198.51.100.1:80\" }]\n";

    #[test]
    fn defaults_and_keys() {
        let text = format!(
            "{BASE}[anycast.api]\nvips = [\"192.0.2.10\", \"2001:db8::10/128\"]\n\
             track_checks = [\"api\"]\ntrack_pools = [\"web\"]\ntrack_interfaces = [\"eth0\"]\n"
        );
        let config = parse(&text, Path::new("t.toml")).unwrap();
        let a = &config.anycast["api"];
        assert_eq!(a.interface, "ha-lb0");
        assert_eq!(a.withdraw_wait_ms, 1000);
        assert_eq!(a.vips[0].prefix, 32);
        assert_eq!(a.vips[1].prefix, 128);
        assert_eq!(a.track_checks, ["api"]);
    }

    #[test]
    fn an_anycast_group_alone_is_something_to_run() {
        parse(
            "[anycast.a]\nvips = [\"192.0.2.10\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
    }

    #[test]
    fn refuses_what_cannot_be_announced_with_its_line() {
        let text = "[anycast.a]\nvips = [\"192.0.2.10/24\", { address = \"192.0.2.11\", dev = \"eth0\" }]\n\
             interface = \"this-name-is-too-long\"\ntrack_checks = [\"nope\"]\ntrack_pools = [\"web\"]\n\
             track_interfaces = [\"\"]\nwithdraw_wait_ms = 70000\n";
        let e = errors(text);
        let all = e.join("\n");
        assert!(all.contains("t.toml:2:"), "{all}");
        assert!(all.contains("not a host address"), "{all}");
        assert!(all.contains("dev, label and broadcast"), "{all}");
        assert!(
            all.contains("t.toml:3:") && all.contains("longer than 15 bytes"),
            "{all}"
        );
        assert!(
            all.contains("t.toml:4:") && all.contains("no check named \"nope\""),
            "{all}"
        );
        assert!(
            all.contains("t.toml:5:") && all.contains("no pool named \"web\""),
            "{all}"
        );
        assert!(
            all.contains("t.toml:6:") && all.contains("interface is empty"),
            "{all}"
        );
        assert!(
            all.contains("t.toml:7:") && all.contains("out of range"),
            "{all}"
        );
        assert_eq!(e.len(), 7, "{all}");
    }

    #[test]
    fn a_vip_belongs_to_one_group_and_not_to_vrrp() {
        let text = "[instances.v]\ninterface = \"eth0\"\nvrid = 1\nvips = [\"192.0.2.10/24\"]\n\
             [anycast.a]\nvips = [\"192.0.2.10\", \"192.0.2.10\"]\n\
             [anycast.b]\nvips = [\"192.0.2.10\"]\ninterface = \"eth0\"\n";
        let all = errors(text).join("\n");
        assert!(all.contains("also a VIP of instance \"v\""), "{all}");
        assert!(all.contains("listed twice"), "{all}");
        assert!(all.contains("also in [anycast.a]"), "{all}");
        assert!(all.contains("the interface of instance \"v\""), "{all}");
    }

    #[test]
    fn warns_about_a_group_that_tracks_nothing_or_serves_nothing() {
        let text = "[anycast.a]\nvips = [\"192.0.2.10\"]\n\
             [checks.c]\nkind = \"tcp\"\naddress = \"198.51.100.1:80\"\n\
             [anycast.b]\nvips = [\"192.0.2.11\"]\ntrack_checks = [\"c\"]\n\
             [listeners.l]\nlisten = \"192.0.2.11:80\"\npool = \"p\"\n\
             [pools.p]\nbackends = [{ address = \"198.51.100.1:80\" }]\n";
        let (_, warnings) = parse_with_warnings(text, Path::new("t.toml")).unwrap();
        let all: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let all = all.join("\n");
        assert!(
            all.contains("t.toml:1:") && all.contains("tracks no check and no pool"),
            "{all}"
        );
        assert!(
            all.contains("t.toml:2:") && all.contains("no listener serves"),
            "{all}"
        );
        // b tracks a check and has a listener; c is used (by b).
        assert!(!all.contains("\"b\""), "{all}");
        assert!(!all.contains("used by no instance"), "{all}");
    }

    #[test]
    fn a_listener_on_an_anycast_vip_binds_before_it_is_there() {
        let text = "[anycast.a]\nvips = [\"192.0.2.10\"]\n\
             [listeners.l]\nlisten = \"192.0.2.10:80\"\npool = \"p\"\nnon_local_bind = false\n\
             [pools.p]\nbackends = [{ address = \"198.51.100.1:80\" }]\n";
        let all = errors(text).join("\n");
        assert!(
            all.contains("t.toml:6:") && all.contains("without non_local_bind"),
            "{all}"
        );
    }

    #[test]
    fn needs_vips() {
        let all = errors("[anycast.a]\nvips = []\n").join("\n");
        assert!(
            all.contains("t.toml:2:") && all.contains("no VIPs"),
            "{all}"
        );
    }
}
