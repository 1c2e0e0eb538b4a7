//! Semantic checks that serde cannot express: ranges, families, cross-references and
//! combinations. Each problem names the key it is about, so the loader can point at its line.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::check::{Check, CheckKind};
use super::garp::Garp;
use super::instance::Instance;
use super::key_path::KeyPath;
use super::listener::ListenerMode;
use super::notify::Notify;
use super::pool::{Algorithm, Pool, ProxyProtocol};
use super::Config;

/// The longest VRRPv3 advert interval in milliseconds (the 12-bit field in centiseconds).
const MAX_V3_INTERVAL_MS: u64 = vrrp_core::packet::MAX_V3_INTERVAL_CS as u64 * 10;
/// The longest VRRPv2 advert interval in milliseconds (the 8-bit field in seconds).
const MAX_V2_INTERVAL_MS: u64 = vrrp_core::packet::MAX_V2_INTERVAL_S as u64 * 1000;

/// Ethernet's MTU: an advert longer than this is never heard on most LANs.
const ETHERNET_MTU: usize = 1500;

/// Longest interval or timeout accepted for checks, connects and delays: one hour.
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// Longest idle timeout accepted: seven days (long-lived watches through the balancer).
pub const MAX_IDLE_TIMEOUT_MS: u64 = 604_800_000;

/// One problem found by [`validate`], not yet placed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it is about.
    pub path: KeyPath,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Checks a configuration that serde accepted; returns every problem found (empty when valid).
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut v = Validator {
        problems: Vec::new(),
    };
    v.whole(config);
    for (name, inst) in &config.instances {
        v.instance(config, name, inst);
    }
    v.instance_conflicts(config);
    v.vmacs(config);
    v.sync_groups(config);
    for (name, check) in &config.checks {
        v.check(config, name, check);
    }
    for (name, pool) in &config.pools {
        v.pool(config, name, pool);
    }
    v.listeners(config);
    v.anycast(config);
    if let Some(sync) = &config.conntrack_sync {
        v.conntrack_sync(config, sync);
    }
    if let Some(admin) = &config.admin {
        if admin.listen.port() == 0 {
            v.push(
                KeyPath::root().key("admin").key("listen"),
                "port 0 is not a fixed port",
                "give the port to serve /metrics and /status on, e.g. \"127.0.0.1:9555\"",
            );
        }
        if admin.control && !admin.listen.ip().is_loopback() && admin.token_file.is_none() {
            v.push(
                KeyPath::root().key("admin").key("control"),
                format!(
                    "control = true on {}, not a loopback address, without a token",
                    admin.listen
                ),
                "set token_file = \"/etc/ha-lb/admin.token\" (a file readable only by root), \
                 or listen on 127.0.0.1",
            );
        }
        if admin.token_file.is_some() && !admin.control {
            v.push(
                KeyPath::root().key("admin").key("token_file"),
                "token_file without control = true: nothing would use it",
                "set control = true to accept ha-lb ctl, or remove token_file",
            );
        }
    }
    v.problems
}

struct Validator {
    problems: Vec<Problem>,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Validator {
    fn push(&mut self, path: KeyPath, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem {
            path,
            message: message.into(),
            hint: hint.into(),
        });
    }

    fn name(&mut self, path: KeyPath, name: &str) {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.push(
                path,
                format!("name {name:?} is empty or contains white space"),
                "use letters, digits, `_` or `-`, e.g. VI_1",
            );
        }
    }

    fn whole(&mut self, config: &Config) {
        if config.instances.is_empty() && config.listeners.is_empty() && config.anycast.is_empty() {
            self.push(
                KeyPath::root(),
                "nothing to run: no [instances.NAME], no [anycast.NAME] and no [listeners.NAME]",
                "add a VRRP instance or an anycast group, a listener, or both (see examples/ and docs/config.md)",
            );
        }
        for (section, names) in [
            ("instances", config.instances.keys().collect::<Vec<_>>()),
            ("sync_groups", config.sync_groups.keys().collect()),
            ("anycast", config.anycast.keys().collect()),
            ("checks", config.checks.keys().collect()),
            ("pools", config.pools.keys().collect()),
            ("listeners", config.listeners.keys().collect()),
        ] {
            for n in names {
                self.name(KeyPath::root().key(section).key(n), n);
            }
        }
        if let Some(id) = &config.global.router_id {
            if id.trim().is_empty() {
                self.push(
                    KeyPath::root().key("global").key("router_id"),
                    "router_id is empty",
                    "remove it to use the hostname, or name this node (e.g. \"lb1\")",
                );
            }
        }
    }

    /// `use_vmac` and its companions: a usable interface name, unique on the node, and not
    /// for an address owner (its VIPs are its real addresses on `interface`).
    fn vmacs(&mut self, config: &Config) {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (name, inst) in &config.instances {
            let p = KeyPath::root().key("instances").key(name);
            if !inst.use_vmac {
                for (key, set) in [
                    ("vmac_name", inst.vmac_name.is_some()),
                    ("vmac_xmit_base", inst.vmac_xmit_base),
                ] {
                    if set {
                        self.push(
                            p.key(key),
                            format!("{key} has no effect without use_vmac"),
                            format!("set use_vmac = true, or remove {key}"),
                        );
                    }
                }
                continue;
            }
            if inst.address_owner {
                self.push(
                    p.key("use_vmac"),
                    "an address owner's VIPs are its real addresses on its interface, not on a VMAC interface",
                    "remove use_vmac, or address_owner",
                );
            }
            let Some(vmac) = inst.vmac() else { continue };
            let bad = vmac.is_empty()
                || vmac.len() > 15
                || vmac == "."
                || vmac == ".."
                || vmac.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
            if bad {
                self.push(
                    p.key("vmac_name"),
                    format!("{vmac:?} cannot name an interface"),
                    "use at most 15 bytes without '/', ':' or spaces, e.g. \"vrrp.51\"",
                );
            }
            if vmac == inst.interface {
                self.push(
                    p.key("vmac_name"),
                    "the VMAC interface cannot be the instance's own interface",
                    "remove vmac_name to use the default vrrp.VRID",
                );
            }
            if let Some((_, other)) = seen.iter().find(|(n, _)| *n == vmac) {
                self.push(
                    p.key("vmac_name"),
                    format!("instance {other:?} uses the VMAC interface {vmac:?} too"),
                    "give each instance its own vmac_name",
                );
            }
            seen.push((vmac, name.as_str()));
        }
    }

    fn weight(&mut self, path: KeyPath, weight: i32) {
        let max = i32::from(vrrp_core::MAX_TRACK_WEIGHT);
        if !(-max..=max).contains(&weight) {
            self.push(
                path,
                format!("weight {weight} is out of range"),
                format!(
                    "use -{max}..={max} (as keepalived): negative lowers the priority while down, \
                     positive raises it while up, 0 means Fault while down"
                ),
            );
        }
    }

    fn notify(&mut self, path: KeyPath, notify: &Notify) {
        for (key, argv) in notify.commands() {
            if argv.first().is_none_or(|a| a.trim().is_empty()) {
                self.push(
                    path.key(key),
                    "the command is empty",
                    "give the program and its arguments, e.g. [\"/usr/local/bin/notify\", \"master\"]",
                );
            }
        }
    }

    fn duration(&mut self, path: KeyPath, value: u64, min: u64, max: u64, what: &str) {
        if value < min || value > max {
            let message = if value == 0 {
                format!("{what} must not be zero")
            } else {
                format!("{what} {value} ms is out of range")
            };
            self.push(path, message, format!("use {min}..={max} (milliseconds)"));
        }
    }

    fn instance(&mut self, config: &Config, name: &str, inst: &Instance) {
        let p = KeyPath::root().key("instances").key(name);
        if inst.interface.trim().is_empty() {
            self.push(
                p.key("interface"),
                "interface is empty",
                "name the interface, e.g. \"eth0\"",
            );
        }
        if !(1..=255).contains(&inst.vrid) {
            self.push(
                p.key("vrid"),
                format!("VRID {} is out of range", inst.vrid),
                "use 1..=255, the same on every node of this virtual router",
            );
        }
        match inst.priority {
            0 => self.push(
                p.key("priority"),
                "priority 0 is reserved: a master sends it when it gives up",
                "use 1..=254 (higher wins the election; keepalived's default is 100)",
            ),
            255 if !inst.address_owner => self.push(
                p.key("priority"),
                "priority 255 is only for the owner of the addresses (RFC 5798)",
                "use 1..=254, or set address_owner = true if the VIPs are this node's real addresses",
            ),
            256.. => self.push(
                p.key("priority"),
                format!("priority {} is out of range", inst.priority),
                "use 1..=254 (255 only with address_owner = true)",
            ),
            _ => {}
        }
        if inst.address_owner && inst.priority != 255 {
            self.push(
                p.key("address_owner"),
                "the address owner must have priority 255",
                "set priority = 255, or remove address_owner",
            );
        }
        let v2 = inst.version == 2;
        if inst.version != 2 && inst.version != 3 {
            self.push(
                p.key("version"),
                format!("VRRP version {} does not exist", inst.version),
                "use 3 (RFC 5798, the default) or 2 (RFC 3768, IPv4 only)",
            );
        }
        let ai = inst.advert_interval_ms;
        if ai == 0 {
            self.push(
                p.key("advert_interval_ms"),
                "the advertisement interval must not be zero",
                "use 1000 (one second, the default) or, with version 3, down to 10",
            );
        } else if v2 && (ai % 1000 != 0 || ai > MAX_V2_INTERVAL_MS) {
            self.push(
                p.key("advert_interval_ms"),
                format!(
                    "VRRPv2 advertises in whole seconds; {ai} ms is not 1..={} s",
                    MAX_V2_INTERVAL_MS / 1000
                ),
                format!(
                    "use a multiple of 1000 up to {MAX_V2_INTERVAL_MS}, or version = 3 for sub-second intervals"
                ),
            );
        } else if !v2 && (ai % 10 != 0 || !(10..=MAX_V3_INTERVAL_MS).contains(&ai)) {
            self.push(
                p.key("advert_interval_ms"),
                format!(
                    "VRRPv3 advertises in centiseconds; {ai} ms is not 10..={MAX_V3_INTERVAL_MS} in steps of 10"
                ),
                format!("use a multiple of 10 between 10 and {MAX_V3_INTERVAL_MS}"),
            );
        }
        self.duration(
            p.key("preempt_delay_ms"),
            inst.preempt_delay_ms,
            0,
            MAX_DURATION_MS,
            "preempt delay",
        );
        if !inst.preempt && inst.preempt_delay_ms > 0 {
            self.push(
                p.key("preempt_delay_ms"),
                "preempt_delay_ms has no effect with preempt = false",
                "remove preempt_delay_ms, or set preempt = true",
            );
        }
        self.vips(&p, inst);
        let v6 = inst.is_ipv6();
        if v2 && v6 {
            self.push(
                p.key("version"),
                "VRRPv2 cannot carry IPv6 addresses",
                "use version = 3 for IPv6 VIPs",
            );
        }
        if inst.v3_checksum_as_v2 && (v2 || v6) {
            self.push(
                p.key("v3_checksum_as_v2"),
                "v3_checksum_as_v2 applies only to VRRPv3 over IPv4",
                "remove it, or use version = 3 with IPv4 VIPs",
            );
        }
        if inst.old_unicast_checksum && (v2 || v6) {
            self.push(
                p.key("old_unicast_checksum"),
                "old_unicast_checksum applies only to VRRPv3 over IPv4",
                "remove it, or use version = 3 with IPv4 VIPs",
            );
        }
        if inst.old_unicast_checksum && inst.v3_checksum_as_v2 {
            self.push(
                p.key("old_unicast_checksum"),
                "old_unicast_checksum and v3_checksum_as_v2 are two different checksums",
                "keep the one the other nodes of the virtual router use",
            );
        }
        if let Some(pw) = &inst.password {
            if !v2 {
                self.push(
                    p.key("password"),
                    "VRRPv3 has no authentication (RFC 5798 removed it)",
                    "remove password, or use version = 2 to talk to a keepalived using auth_type PASS",
                );
            } else if pw.is_empty() || pw.len() > 8 {
                self.push(
                    p.key("password"),
                    format!("the password is {} bytes; VRRPv2 carries 1 to 8", pw.len()),
                    "use at most 8 bytes: keepalived cuts longer ones, so both sides must agree",
                );
            }
        }
        if let (Some(src), Some(first)) = (inst.unicast_src, inst.vips.first()) {
            if src.is_ipv4() != first.address.is_ipv4() {
                self.push(
                    p.key("unicast_src"),
                    format!(
                        "unicast_src is {} but the VIPs are {}",
                        family(&src),
                        family(&first.address)
                    ),
                    "adverts go in the VIPs' family: use an address of that family",
                );
            }
        }
        if inst.unicast_min_ttl != vrrp_core::packet::TTL && !inst.is_unicast() {
            self.push(
                p.key("unicast_min_ttl"),
                "unicast_min_ttl applies to unicast adverts only: multicast adverts always need \
                 TTL 255 (RFC 5798)",
                "remove unicast_min_ttl, or list unicast_peers",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, peer) in inst.unicast_peers.iter().enumerate() {
            let pp = p.key("unicast_peers").index(i);
            if let Some(first) = inst.vips.first() {
                if peer.is_ipv4() != first.address.is_ipv4() {
                    self.push(
                        pp.clone(),
                        format!(
                            "peer {peer} is {} but the VIPs are {}",
                            family(peer),
                            family(&first.address)
                        ),
                        "list the peers' addresses of the VIPs' family",
                    );
                }
            }
            if !seen.insert(*peer) {
                self.push(
                    pp.clone(),
                    format!("peer {peer} is listed twice"),
                    "remove the duplicate",
                );
            }
            if Some(*peer) == inst.unicast_src {
                self.push(
                    pp,
                    format!("peer {peer} is this node's own unicast_src"),
                    "list only the other nodes",
                );
            }
        }
        for (i, t) in inst.track_checks.iter().enumerate() {
            let tp = p.key("track_checks").index(i);
            self.weight(tp.key("weight"), t.weight);
            if !config.checks.contains_key(&t.check) {
                self.push(
                    tp.key("check"),
                    format!("no check named {:?}", t.check),
                    defined_hint("checks", &config.checks),
                );
            }
        }
        for (i, t) in inst.track_pools.iter().enumerate() {
            let tp = p.key("track_pools").index(i);
            self.weight(tp.key("weight"), t.weight);
            if !config.pools.contains_key(&t.pool) {
                self.push(
                    tp.key("pool"),
                    format!("no pool named {:?}", t.pool),
                    defined_hint("pools", &config.pools),
                );
            }
        }
        for (i, t) in inst.track_interfaces.iter().enumerate() {
            let tp = p.key("track_interfaces").index(i);
            self.weight(tp.key("weight"), t.weight);
            if t.interface.trim().is_empty() {
                self.push(
                    tp.key("interface"),
                    "interface is empty",
                    "name the interface, e.g. \"eth1\"",
                );
            }
        }
        self.notify(p.key("notify"), &inst.notify);
        self.garp(p.key("garp"), &inst.garp);
    }

    fn vips(&mut self, p: &KeyPath, inst: &Instance) {
        let Some(first) = inst.vips.first() else {
            self.push(
                p.key("vips"),
                "an instance needs at least one VIP",
                "add e.g. vips = [\"192.0.2.200/24\"]",
            );
            return;
        };
        // One advert carries every VIP: it must fit in one frame, or no peer ever hears it
        // and every node becomes Master. 1500 is Ethernet's MTU; the worker also checks the
        // interface's real MTU when the instance starts.
        let len = inst.advert_ip_len();
        if inst.vips.len() > 255 {
            self.push(
                p.key("vips"),
                format!("{} VIPs: an advert carries at most 255", inst.vips.len()),
                "split the VIPs over several instances",
            );
        } else if len > ETHERNET_MTU {
            self.push(
                p.key("vips"),
                format!(
                    "{} VIPs make an advert of {len} bytes with its IP header, more than an \
                     Ethernet MTU of {ETHERNET_MTU}: peers would never hear it",
                    inst.vips.len()
                ),
                "split the VIPs over several instances (at most 90 IPv6 VIPs per instance)",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, vip) in inst.vips.iter().enumerate() {
            let vp = p.key("vips").index(i);
            if vip.is_ipv6() != first.is_ipv6() {
                self.push(
                    vp.clone(),
                    format!(
                        "VIP {} is {} but the first VIP is {}: one instance carries one family",
                        vip.address,
                        family(&vip.address),
                        family(&first.address)
                    ),
                    "put IPv4 and IPv6 VIPs in two instances (they may share the VRID)",
                );
            }
            if !seen.insert(vip.address) {
                self.push(
                    vp.clone(),
                    format!("VIP {} is listed twice", vip.address),
                    "remove the duplicate",
                );
            }
            if vip.is_ipv6() && (vip.label.is_some() || vip.broadcast.is_some()) {
                self.push(
                    vp.clone(),
                    "labels and broadcast addresses are IPv4 only",
                    "remove label/broadcast",
                );
            }
            if let Some(label) = &vip.label {
                let dev = vip.dev.as_deref().unwrap_or(&inst.interface);
                if !label.starts_with(dev) || label.len() > 15 {
                    self.push(
                        vp.clone(),
                        format!("label {label:?} must start with the device name {dev:?} and be at most 15 bytes"),
                        format!("use e.g. \"{dev}:vip\" (Linux rejects other labels)"),
                    );
                }
            }
            if vip.dev.as_deref().is_some_and(|d| d.trim().is_empty()) {
                self.push(
                    vp,
                    "dev is empty",
                    "remove dev to use the instance's interface",
                );
            }
        }
    }

    fn garp(&mut self, p: KeyPath, g: &Garp) {
        for (key, value, min) in [
            ("master_repeat", g.master_repeat, 1),
            ("master_refresh_repeat", g.master_refresh_repeat, 1),
            ("lower_prio_repeat", g.lower_prio_repeat, 0),
        ] {
            if !(min..=255).contains(&value) {
                self.push(
                    p.key(key),
                    format!("{key} {value} is out of range"),
                    format!("use {min}..=255"),
                );
            }
        }
        for (key, value) in [
            ("master_delay_ms", g.master_delay_ms),
            ("master_refresh_ms", g.master_refresh_ms),
            ("lower_prio_delay_ms", g.lower_prio_delay_ms),
            ("interval_ms", g.interval_ms),
            ("gna_interval_ms", g.gna_interval_ms),
        ] {
            self.duration(p.key(key), value, 0, MAX_DURATION_MS, key);
        }
    }

    fn instance_conflicts(&mut self, config: &Config) {
        let mut by_router: BTreeMap<(&str, u32, bool), &str> = BTreeMap::new();
        let mut by_vip: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for (name, inst) in &config.instances {
            let p = KeyPath::root().key("instances").key(name);
            let key = (inst.interface.as_str(), inst.vrid, inst.is_ipv6());
            if let Some(other) = by_router.insert(key, name) {
                self.push(
                    p.key("vrid"),
                    format!(
                        "VRID {} on {} ({}) is already used by instance {other:?}",
                        inst.vrid,
                        inst.interface,
                        if inst.is_ipv6() { "IPv6" } else { "IPv4" }
                    ),
                    "each interface carries one virtual router per VRID and family: pick another VRID",
                );
            }
            for (i, vip) in inst.vips.iter().enumerate() {
                if let Some(other) = by_vip.insert(vip.address, name) {
                    if other != name {
                        self.push(
                            p.key("vips").index(i),
                            format!("VIP {} is also in instance {other:?}", vip.address),
                            "a VIP belongs to one instance",
                        );
                    }
                }
            }
        }
    }

    fn sync_groups(&mut self, config: &Config) {
        let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, group) in &config.sync_groups {
            let p = KeyPath::root().key("sync_groups").key(name);
            if group.instances.is_empty() {
                self.push(
                    p.key("instances"),
                    "the group has no instances",
                    "list at least two instance names",
                );
            }
            for (i, member) in group.instances.iter().enumerate() {
                let mp = p.key("instances").index(i);
                if !config.instances.contains_key(member) {
                    self.push(
                        mp,
                        format!("no instance named {member:?}"),
                        defined_hint("instances", &config.instances),
                    );
                } else if let Some(other) = member_of.insert(member, name) {
                    self.push(
                        mp,
                        format!("instance {member:?} is already in sync group {other:?}"),
                        "an instance belongs to at most one sync group",
                    );
                }
            }
            self.notify(p.key("notify"), &group.notify);
        }
    }

    fn check(&mut self, config: &Config, name: &str, c: &Check) {
        let p = KeyPath::root().key("checks").key(name);
        self.duration(
            p.key("interval_ms"),
            c.interval_ms,
            10,
            MAX_DURATION_MS,
            "interval",
        );
        if let Some(t) = c.timeout_ms {
            self.duration(p.key("timeout_ms"), t, 1, MAX_DURATION_MS, "timeout");
        }
        for (key, value) in [("rise", c.rise), ("fall", c.fall)] {
            if !(1..=100).contains(&value) {
                self.push(
                    p.key(key),
                    format!("{key} {value} is out of range"),
                    "use 1..=100: the number of results in a row that change the state",
                );
            }
        }
        let kind = c.kind;
        let net = matches!(kind, CheckKind::Tcp | CheckKind::Http | CheckKind::Https);
        let http = matches!(kind, CheckKind::Http | CheckKind::Https);
        let allowed: [(&str, bool, bool); 12] = [
            ("address", c.address.is_some(), net),
            ("path", c.path.is_some(), http),
            ("host", c.host.is_some(), http),
            ("method", c.method.is_some(), http),
            ("headers", !c.headers.is_empty(), http),
            ("expect_status", c.expect_status.is_some(), http),
            ("expect_body", c.expect_body.is_some(), http),
            ("tls", c.tls.is_some(), kind == CheckKind::Https),
            ("command", c.command.is_some(), kind == CheckKind::Exec),
            ("run_as", c.run_as.is_some(), kind == CheckKind::Exec),
            ("process", c.process.is_some(), kind == CheckKind::Process),
            ("pidfile", c.pidfile.is_some(), kind == CheckKind::Process),
        ];
        for (key, present, ok) in allowed {
            if present && !ok {
                self.push(
                    p.key(key),
                    format!("`{key}` does not apply to a {} check", kind.as_str()),
                    format!("remove it, or change `kind` ({})", kind_keys(key)),
                );
            }
        }
        if net && c.address.is_none() {
            // Without an address the check probes each backend that uses it at the backend's
            // own address; an instance tracking it would have nothing to probe.
            let tracked_by = config
                .instances
                .iter()
                .find(|(_, i)| i.track_checks.iter().any(|t| t.check == name));
            if let Some((instance, _)) = tracked_by {
                self.push(
                    p.key("kind"),
                    format!(
                        "a {} check tracked by instance {instance:?} needs an address",
                        kind.as_str()
                    ),
                    "add address = \"192.0.2.21:6443\"; only checks used by backends alone may \
                     leave it out (they probe each backend's address)",
                );
            }
        }
        if let Some(path) = &c.path {
            if !path.starts_with('/') {
                self.push(
                    p.key("path"),
                    format!("path {path:?} does not start with `/`"),
                    "e.g. path = \"/readyz\"",
                );
            }
        }
        if let Some(m) = &c.method {
            if m.is_empty() || !m.chars().all(|ch| ch.is_ascii_uppercase()) {
                self.push(
                    p.key("method"),
                    format!("method {m:?} is not an HTTP method"),
                    "e.g. \"GET\" or \"HEAD\"",
                );
            }
        }
        for name in c.headers.keys() {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                self.push(
                    p.key("headers").key(name),
                    format!("{name:?} is not an HTTP header name"),
                    "use letters, digits and `-`, e.g. \"X-Health-Check\"",
                );
            }
        }
        if let Some(codes) = &c.expect_status {
            if codes.is_empty() {
                self.push(
                    p.key("expect_status"),
                    "the list is empty",
                    "remove it to accept any 2xx or 3xx",
                );
            }
            for (i, code) in codes.iter().enumerate() {
                if !(100..=599).contains(code) {
                    self.push(
                        p.key("expect_status").index(i),
                        format!("{code} is not an HTTP status"),
                        "use 100..=599",
                    );
                }
            }
        }
        if let Some(tls) = &c.tls {
            if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
                self.push(
                    p.key("tls"),
                    "client_cert_file and client_key_file go together",
                    "set both, or neither",
                );
            }
        }
        if kind == CheckKind::Exec
            && c.command
                .as_ref()
                .is_none_or(|a| a.first().is_none_or(|s| s.trim().is_empty()))
        {
            self.push(
                p.key(if c.command.is_some() { "command" } else { "kind" }),
                "an exec check needs a command",
                "add command = [\"/usr/local/bin/check\", \"arg\"] (run without a shell; exit 0 = healthy)",
            );
        }
        if kind == CheckKind::Process {
            match &c.process {
                None if c.pidfile.is_none() => self.push(
                    p.key("kind"),
                    "a process check needs a process name or a pidfile",
                    "add process = \"nginx\" (or pidfile = \"/run/nginx.pid\")",
                ),
                Some(_) if c.pidfile.is_some() => self.push(
                    p.key("pidfile"),
                    "a process check watches a name or a pidfile, not both",
                    "remove `process` or `pidfile`",
                ),
                None => {}
                Some(n) if n.is_empty() || n.len() > 15 || n.contains('/') => self.push(
                    p.key("process"),
                    format!("{n:?} is not a process name as /proc/PID/comm shows it"),
                    "use the program name, at most 15 bytes, without a path (e.g. \"nginx\")",
                ),
                Some(_) => {}
            }
        }
    }

    fn pool(&mut self, config: &Config, name: &str, pool: &Pool) {
        let p = KeyPath::root().key("pools").key(name);
        if pool.backends.is_empty() {
            self.push(
                p.key("backends"),
                "the pool has no backends",
                "add [[pools.NAME.backends]] tables",
            );
        } else if pool.backends.iter().all(|b| b.backup) {
            self.push(
                p.key("backends"),
                "every backend is a backup",
                "make at least one backend a primary (backup = false)",
            );
        }
        if pool.retries > 100 {
            self.push(
                p.key("retries"),
                format!("retries {} is out of range", pool.retries),
                "use 0..=100",
            );
        }
        self.duration(
            p.key("connect_timeout_ms"),
            pool.connect_timeout_ms,
            1,
            MAX_DURATION_MS,
            "connect timeout",
        );

        if pool.slow_start_ms > MAX_DURATION_MS {
            self.push(
                p.key("slow_start_ms"),
                format!("slow_start_ms {} is out of range", pool.slow_start_ms),
                "use 0..=3600000 (0 = full weight at once)",
            );
        }
        if pool.max_fails > 0 {
            self.duration(
                p.key("fail_timeout_ms"),
                pool.fail_timeout_ms,
                1,
                MAX_DURATION_MS,
                "fail timeout",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, b) in pool.backends.iter().enumerate() {
            let bp = p.key("backends").index(i);
            if !seen.insert(b.address) {
                self.push(
                    bp.key("address"),
                    format!("backend {} is listed twice", b.address),
                    "remove the duplicate or raise its weight",
                );
            }
            if b.address.port() == 0 || b.address.ip().is_unspecified() {
                self.push(
                    bp.key("address"),
                    format!("{} is not a backend address", b.address),
                    "give the backend's IP and port",
                );
            }
            if b.weight > 1000 {
                self.push(
                    bp.key("weight"),
                    format!("weight {} is out of range", b.weight),
                    "use 0..=1000 (0 drains the backend: no new connections)",
                );
            }
            if let Some(check) = &b.check {
                if !config.checks.contains_key(check) {
                    self.push(
                        bp.key("check"),
                        format!("no check named {check:?}"),
                        defined_hint("checks", &config.checks),
                    );
                }
            }
        }
    }

    fn listeners(&mut self, config: &Config) {
        let mut seen = BTreeMap::new();
        for (name, l) in &config.listeners {
            let p = KeyPath::root().key("listeners").key(name);
            if !config.pools.contains_key(&l.pool) {
                self.push(
                    p.key("pool"),
                    format!("no pool named {:?}", l.pool),
                    defined_hint("pools", &config.pools),
                );
            }
            self.duration(
                p.key("idle_timeout_ms"),
                l.idle_timeout_ms,
                1,
                MAX_IDLE_TIMEOUT_MS,
                "idle timeout",
            );
            if l.listen.port() == 0 {
                self.push(
                    p.key("listen"),
                    "port 0 is not a fixed port",
                    "give the port clients connect to",
                );
            }
            // The Master drops what is addressed to such a VIP: a listener there never serves.
            let refused = config.instances.iter().find(|(_, i)| {
                !i.accept_mode
                    && !i.address_owner
                    && i.vips.iter().any(|v| v.address == l.listen.ip())
            });
            if let Some((iname, _)) = refused {
                self.push(
                    p.key("listen"),
                    format!(
                        "{} is a VIP of instance {iname:?}, which has accept_mode = false: its Master drops traffic to it",
                        l.listen.ip()
                    ),
                    format!("set accept_mode = true in [instances.{iname}] (the default) to serve on the VIP"),
                );
            }
            // An anycast VIP is on this node only while the group is healthy: the listener must
            // be bound before (and stay bound after) it is there.
            let anycast = config
                .anycast
                .iter()
                .find(|(_, a)| a.vips.iter().any(|v| v.address == l.listen.ip()));
            if let (Some((aname, _)), false) = (anycast, l.non_local_bind) {
                self.push(
                    p.key("non_local_bind"),
                    format!(
                        "{} is a VIP of [anycast.{aname}], on this node only while it is healthy: \
                         without non_local_bind the listener cannot start before it",
                        l.listen.ip()
                    ),
                    "remove non_local_bind = false (the default, true, binds with IP_FREEBIND)",
                );
            }
            self.nat_listener(config, &p, l);
            if let Some(other) = seen.insert(l.listen, name) {
                self.push(
                    p.key("listen"),
                    format!("{} is also the address of listener {other:?}", l.listen),
                    "each listener needs its own address and port",
                );
            }
        }
    }
}

impl Validator {
    /// `mode = "nat"`: what nftables cannot do is refused, naming the key; `nat_source` only
    /// with it.
    fn nat_listener(&mut self, config: &Config, p: &KeyPath, l: &super::Listener) {
        if l.mode != ListenerMode::Nat {
            if l.nat_source.is_some() {
                self.push(
                    p.key("nat_source"),
                    "nat_source applies to NAT listeners only: a proxy listener's backends see ha-lb's own address",
                    "add mode = \"nat\", or remove nat_source",
                );
            }
            if let Some(pool) = config.pools.get(&l.pool) {
                if pool.algorithm == Algorithm::Sourcehash {
                    self.push(
                        KeyPath::root().key("pools").key(&l.pool).key("algorithm"),
                        format!(
                            "algorithm sourcehash is for NAT listeners, and proxy listener {} uses pool {:?}",
                            l.listen, l.pool
                        ),
                        "use maglev (consistent hashing on the client address) for a proxy listener",
                    );
                }
            }
            return;
        }
        let ip = l.listen.ip();
        if ip.is_unspecified() || ip.is_multicast() {
            self.push(
                p.key("listen"),
                format!("{ip} is not an address a NAT listener can rewrite"),
                "give the VIP (or node address) clients connect to, e.g. \"192.0.2.200:80\"",
            );
        } else if ip.is_loopback() {
            self.push(
                p.key("listen"),
                format!("{ip} is a loopback address: the kernel does not route loopback sources to other hosts, so a NAT listener cannot forward from it"),
                "listen on a VIP or a node address, or use mode = \"proxy\" for a loopback listener",
            );
        }
        if l.max_connections > 0 {
            self.push(
                p.key("max_connections"),
                "max_connections is not enforced by a NAT listener (the kernel forwards every connection)",
                "remove max_connections, or use mode = \"proxy\"",
            );
        }
        let Some(pool) = config.pools.get(&l.pool) else {
            return;
        };
        let pp = KeyPath::root().key("pools").key(&l.pool);
        if !pool.algorithm.nat_capable() {
            self.push(
                pp.key("algorithm"),
                format!(
                    "algorithm {} has no nftables form, and NAT listener {} uses pool {:?}",
                    pool.algorithm.as_str(),
                    l.listen,
                    l.pool
                ),
                "NAT listeners support roundrobin, random and sourcehash (weighted); \
                 use one of them, or mode = \"proxy\"",
            );
        }
        if pool.proxy_protocol != ProxyProtocol::Off {
            self.push(
                pp.key("proxy_protocol"),
                format!(
                    "NAT listener {} sends no PROXY protocol header, and backends of pool {:?} would wait for one",
                    l.listen, l.pool
                ),
                "remove proxy_protocol (with nat_source = \"preserve\" backends see the client address itself)",
            );
        }
        for (i, b) in pool.backends.iter().enumerate() {
            let bp = pp.key("backends").index(i);
            if b.max_conns > 0 {
                self.push(
                    bp.key("max_conns"),
                    format!(
                        "max_conns is not enforced for NAT listener {} (the kernel forwards every connection)",
                        l.listen
                    ),
                    "remove max_conns, or use mode = \"proxy\"",
                );
            }
            if b.address.is_ipv4() != l.listen.is_ipv4() {
                self.push(
                    bp.key("address"),
                    format!(
                        "backend {} is {} and NAT listener {} is {}: nftables NAT does not translate between families",
                        b.address,
                        family(&b.address.ip()),
                        l.listen,
                        family(&ip)
                    ),
                    "use backends of the listener's family, or mode = \"proxy\"",
                );
            }
        }
    }

    /// `[anycast.NAME]`: host addresses each in one place, a usable dummy interface name that
    /// no VRRP instance uses, tracked things that exist.
    fn anycast(&mut self, config: &Config) {
        let mut owner: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for (name, a) in &config.anycast {
            let p = KeyPath::root().key("anycast").key(name);
            if a.vips.is_empty() {
                self.push(
                    p.key("vips"),
                    "no VIPs",
                    "list the addresses to announce, e.g. vips = [\"192.0.2.10\"]",
                );
            }
            let mut own = BTreeSet::new();
            for (i, vip) in a.vips.iter().enumerate() {
                let vp = p.key("vips").index(i);
                let host = if vip.is_ipv6() { 128 } else { 32 };
                if vip.prefix != host {
                    self.push(
                        vp.clone(),
                        format!("{vip} is not a host address: an anycast VIP is announced as a /{host}"),
                        format!("write {} (or {}/{host}); the routing daemon announces exactly this address", vip.address, vip.address),
                    );
                }
                if vip.dev.is_some() || vip.label.is_some() || vip.broadcast.is_some() {
                    self.push(
                        vp.clone(),
                        "dev, label and broadcast do not apply to an anycast VIP: it goes on the group's dummy `interface`",
                        "write the address alone, and set `interface` to choose the dummy interface",
                    );
                }
                if !own.insert(vip.address) {
                    self.push(
                        vp.clone(),
                        format!("{} is listed twice", vip.address),
                        "remove the duplicate",
                    );
                    continue;
                }
                if let Some(other) = owner.insert(vip.address, name) {
                    self.push(
                        vp.clone(),
                        format!("{} is also in [anycast.{other}]", vip.address),
                        "each address belongs to one group",
                    );
                }
                if let Some((iname, _)) = config
                    .instances
                    .iter()
                    .find(|(_, i)| i.vips.iter().any(|v| v.address == vip.address))
                {
                    self.push(
                        vp,
                        format!("{} is also a VIP of instance {iname:?}: VRRP would move it while BGP announces it", vip.address),
                        "announce each address one way: remove it from the instance or from this group",
                    );
                }
            }
            let iface = a.interface.as_str();
            if iface.is_empty()
                || iface.contains(['/', ':'])
                || iface.chars().any(char::is_whitespace)
                || iface == "."
                || iface == ".."
            {
                self.push(
                    p.key("interface"),
                    format!("{iface:?} is not a usable interface name"),
                    "use letters, digits, `-`, `_` or `.`, e.g. \"ha-lb0\" (the default)",
                );
            } else if iface.len() > 15 {
                self.push(
                    p.key("interface"),
                    format!("interface name {iface:?} is longer than 15 bytes"),
                    "Linux interface names have at most 15 bytes: use a shorter one, e.g. \"ha-lb0\"",
                );
            } else if iface == "lo" {
                self.push(
                    p.key("interface"),
                    "lo cannot be the anycast interface: ha-lb makes and empties this dummy interface",
                    "remove the key to use \"ha-lb0\", or name another dummy interface",
                );
            } else if let Some((iname, _)) = config.instances.iter().find(|(_, i)| {
                i.interface == iface
                    || i.vmac().as_deref() == Some(iface)
                    || i.vips.iter().any(|v| v.dev.as_deref() == Some(iface))
            }) {
                self.push(
                    p.key("interface"),
                    format!("{iface} is the interface of instance {iname:?}: the anycast interface is a dummy one ha-lb makes"),
                    "remove the key to use \"ha-lb0\", or name an interface nothing else uses",
                );
            }
            for (i, c) in a.track_checks.iter().enumerate() {
                match config.checks.get(c) {
                    None => self.push(
                        p.key("track_checks").index(i),
                        format!("no check named {c:?}"),
                        defined_hint("checks", &config.checks),
                    ),
                    Some(check)
                        if check.address.is_none()
                            && matches!(
                                check.kind,
                                CheckKind::Tcp | CheckKind::Http | CheckKind::Https
                            ) =>
                    {
                        self.push(
                            p.key("track_checks").index(i),
                            format!("check {c:?} has no address: it probes each backend that uses it, so there is nothing to track"),
                            "track the pool whose backends use it (track_pools), or give the check an address",
                        );
                    }
                    Some(_) => {}
                }
            }
            for (i, pool) in a.track_pools.iter().enumerate() {
                if !config.pools.contains_key(pool) {
                    self.push(
                        p.key("track_pools").index(i),
                        format!("no pool named {pool:?}"),
                        defined_hint("pools", &config.pools),
                    );
                }
            }
            for (i, t) in a.track_interfaces.iter().enumerate() {
                if t.trim().is_empty() {
                    self.push(
                        p.key("track_interfaces").index(i),
                        "interface is empty",
                        "name the interface, e.g. \"eth0\"",
                    );
                } else if *t == a.interface {
                    self.push(
                        p.key("track_interfaces").index(i),
                        format!("{t} is the group's own dummy interface"),
                        "track the uplinks the routes leave through, e.g. \"eth0\"",
                    );
                }
            }
            if a.withdraw_wait_ms > super::MAX_WITHDRAW_WAIT_MS {
                self.push(
                    p.key("withdraw_wait_ms"),
                    format!("withdraw_wait_ms {} is out of range", a.withdraw_wait_ms),
                    format!("use 0..={} (milliseconds)", super::MAX_WITHDRAW_WAIT_MS),
                );
            }
        }
    }
}

fn kind_keys(key: &str) -> &'static str {
    match key {
        "address" => "`address` is for tcp, http and https",
        "tls" => "`tls` is for https",
        "command" | "run_as" => "`command` and `run_as` are for exec",
        "process" | "pidfile" => "`process` and `pidfile` are for process",
        _ => "this key is for http and https",
    }
}

fn defined_hint<V>(section: &str, map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        format!("define it as [{section}.NAME]; this file has no [{section}] yet")
    } else {
        let names: Vec<&str> = map.keys().map(String::as_str).collect();
        format!(
            "define it as [{section}.NAME], or use one of: {}",
            names.join(", ")
        )
    }
}

impl Validator {
    /// `[conntrack_sync]`: two distinct unicast addresses of one family, an instance to drive
    /// it, absolute paths, and a control socket path that fits a Unix socket address.
    fn conntrack_sync(&mut self, config: &Config, sync: &super::ConntrackSync) {
        let p = KeyPath::root().key("conntrack_sync");
        if sync.interface.is_empty() || sync.interface.len() > 15 || sync.interface.contains('/') {
            self.push(
                p.key("interface"),
                format!("{:?} cannot name an interface", sync.interface),
                "name the sync link's interface, e.g. \"eth1\"",
            );
        }
        for (key, ip) in [("local", sync.local), ("peer", sync.peer)] {
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                self.push(
                    p.key(key),
                    format!("{ip} is not an address of the sync link"),
                    "give a unicast address on the sync link's interface",
                );
            }
        }
        if sync.local == sync.peer {
            self.push(
                p.key("peer"),
                format!("peer {} is also the local address", sync.peer),
                "give the other balancer's address on the sync link",
            );
        } else if sync.local.is_ipv4() != sync.peer.is_ipv4() {
            self.push(
                p.key("peer"),
                format!(
                    "peer {} is {} and local {} is {}",
                    sync.peer,
                    family(&sync.peer),
                    sync.local,
                    family(&sync.local)
                ),
                "give both addresses of one family",
            );
        }
        if sync.port == 0 {
            self.push(
                p.key("port"),
                "port 0 is not a fixed port",
                "use the same port on both nodes, e.g. 3780 (the default)",
            );
        }
        match sync.driving_instance(config.instances.keys()) {
            Some(name) if config.instances.contains_key(name) => {}
            Some(name) => self.push(
                p.key("instance"),
                format!("no instance named {name:?}"),
                defined_hint("instances", &config.instances),
            ),
            None => self.push(
                p.key("instance"),
                if config.instances.is_empty() {
                    "conntrack_sync needs a VRRP instance: its transitions decide which node owns the flows".to_string()
                } else {
                    "several instances: which one holds the NAT listeners' VIP?".to_string()
                },
                "set instance = \"NAME\" (the instance whose VIP the NAT listeners use)",
            ),
        }
        for (key, path) in [("program", &sync.program), ("state_dir", &sync.state_dir)] {
            if !path.is_absolute() {
                self.push(
                    p.key(key),
                    format!("{} is not an absolute path", path.display()),
                    "give an absolute path",
                );
            }
        }
        // sockaddr_un holds 108 bytes with the terminating NUL.
        let socket = sync
            .state_dir
            .join(super::conntrack_sync::CONNTRACKD_SOCKET);
        if socket.as_os_str().len() > 107 {
            self.push(
                p.key("state_dir"),
                format!("{} is too long for a Unix socket path", socket.display()),
                "use a shorter directory, e.g. \"/run/ha-lb/conntrackd\"",
            );
        }
    }
}
