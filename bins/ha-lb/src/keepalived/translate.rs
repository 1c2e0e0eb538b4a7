//! Translates the statement tree of a keepalived.conf into an ha-lb [`Config`].
//!
//! Several passes, because keepalived lets an instance name a `vrrp_script` defined after it:
//! first `global_defs`, `vrrp_script`, `virtual_server_group` and `SSL`, then
//! `vrrp_track_process`, then `vrrp_instance`, `vrrp_sync_group` and `virtual_server` (LVS, in
//! [`lvs`]). Every statement either lands in the config or becomes a [`Warning`]
//! with its line.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::{
    Check, CheckKind, Config, Garp, Instance, Notify, SyncGroup, TrackCheck, TrackInterface, Vip,
};

use super::lexer::split_command;
use super::tree::Node;
use super::warning::Warning;

mod lvs;

/// keepalived's own default VRRP version when neither the instance nor `vrrp_version` says.
const KEEPALIVED_DEFAULT_VERSION: u32 = 2;

/// The hop limit keepalived 2.2.7 gives IPv6 unicast adverts (the system default, not 255).
const KEEPALIVED_V6_UNICAST_HOPS: u8 = 64;
/// keepalived's default `vrrp_script` interval, rise and fall.
const KEEPALIVED_SCRIPT_INTERVAL_MS: u64 = 1000;

/// GARP settings given globally (`vrrp_garp_*`) or per instance (`garp_*`); unset ones keep
/// the lower layer's value.
#[derive(Debug, Clone, Default)]
struct GarpOverrides {
    master_delay_ms: Option<u64>,
    master_repeat: Option<u32>,
    master_refresh_ms: Option<u64>,
    master_refresh_repeat: Option<u32>,
    lower_prio_delay_ms: Option<u64>,
    lower_prio_repeat: Option<u32>,
    interval_ms: Option<u64>,
    gna_interval_ms: Option<u64>,
}

impl GarpOverrides {
    fn apply(&self, g: &mut Garp) {
        let set = |dst: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut g.master_delay_ms, self.master_delay_ms);
        set(&mut g.master_refresh_ms, self.master_refresh_ms);
        set(&mut g.lower_prio_delay_ms, self.lower_prio_delay_ms);
        set(&mut g.interval_ms, self.interval_ms);
        set(&mut g.gna_interval_ms, self.gna_interval_ms);
        for (dst, v) in [
            (&mut g.master_repeat, self.master_repeat),
            (&mut g.master_refresh_repeat, self.master_refresh_repeat),
            (&mut g.lower_prio_repeat, self.lower_prio_repeat),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
    }
}

/// A `vrrp_script` or `vrrp_track_process`: the check it became and the weight instances
/// use unless they say otherwise.
#[derive(Debug, Clone)]
struct Script {
    check: String,
    weight: i32,
}

/// How often a translated `vrrp_track_process` looks for its process: keepalived watches
/// process events instead, so the check must be frequent to notice as fast.
const TRACK_PROCESS_INTERVAL_MS: u64 = 500;

/// The translation state.
pub(crate) struct Translator {
    config: Config,
    warnings: Vec<(usize, Warning)>,
    current: usize,
    version: Option<u32>,
    /// `global_defs { v3_checksum_as_v2 }`: the default of every instance.
    v3_checksum_as_v2: bool,
    garp: GarpOverrides,
    scripts: BTreeMap<String, Script>,
    processes: BTreeMap<String, Script>,
    /// `virtual_server_group`s by name, for the virtual servers that name them.
    vs_groups: BTreeMap<String, lvs::VsGroup>,
    /// The top-level `SSL` block: the client certificate of SSL_GET checks.
    ssl: lvs::SslDefaults,
    base_dir: PathBuf,
}

impl Translator {
    /// A translator for a file in `base_dir` (where a script missing at its absolute path is
    /// also looked for, to read what it does).
    pub(crate) fn new(base_dir: &Path) -> Self {
        Translator {
            config: Config::default(),
            warnings: Vec::new(),
            current: 0,
            version: None,
            v3_checksum_as_v2: false,
            garp: GarpOverrides::default(),
            scripts: BTreeMap::new(),
            processes: BTreeMap::new(),
            vs_groups: BTreeMap::new(),
            ssl: lvs::SslDefaults::default(),
            base_dir: base_dir.to_path_buf(),
        }
    }

    /// Translates the top-level statements; returns the config and the warnings in file order.
    pub(crate) fn run(
        mut self,
        nodes: &[Node],
        mut earlier: Vec<Warning>,
    ) -> (Config, Vec<Warning>) {
        for (i, node) in nodes.iter().enumerate() {
            self.current = i;
            match node.keyword.as_str() {
                "global_defs" => self.global_defs(node),
                "vrrp_script" => self.vrrp_script(node),
                // Before any virtual_server, which may name a group defined after it.
                "virtual_server_group" => self.virtual_server_group(node),
                "SSL" => self.ssl_block(node),
                _ => {}
            }
        }
        // After every script, so a process check never takes a script's name.
        for (i, node) in nodes.iter().enumerate() {
            self.current = i;
            if node.keyword == "vrrp_track_process" {
                self.vrrp_track_process(node);
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            self.current = i;
            match node.keyword.as_str() {
                "global_defs"
                | "vrrp_script"
                | "vrrp_track_process"
                | "virtual_server_group"
                | "SSL" => {}
                "vrrp_instance" => self.vrrp_instance(node),
                "vrrp_sync_group" => self.vrrp_sync_group(node),
                "virtual_server" => self.virtual_server(node),
                other => self.warn(node, format!("`{other}` is not translated")),
            }
        }
        self.warnings.sort_by_key(|(i, _)| *i);
        earlier.extend(self.warnings.into_iter().map(|(_, w)| w));
        (self.config, earlier)
    }

    fn warn(&mut self, node: &Node, message: impl Into<String>) {
        self.warnings.push((
            self.current,
            Warning {
                file: node.file.to_path_buf(),
                line: node.line,
                message: message.into(),
            },
        ));
    }

    fn not_translated(&mut self, node: &Node, context: &str) {
        self.warn(
            node,
            format!("`{}` in {context} is not translated", node.keyword),
        );
    }

    fn int(&mut self, node: &Node, min: i64, max: i64) -> Option<i64> {
        let raw = node.arg().unwrap_or("");
        match raw.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.warn(
                    node,
                    format!(
                        "`{} {raw}`: expected a whole number in {min}..={max}; ignored",
                        node.keyword
                    ),
                );
                None
            }
        }
    }

    fn uint<T: TryFrom<i64>>(&mut self, node: &Node, min: i64, max: i64) -> Option<T> {
        self.int(node, min, max).and_then(|v| T::try_from(v).ok())
    }

    /// A duration in (possibly fractional) seconds, as keepalived writes them, in milliseconds.
    fn seconds_ms(&mut self, node: &Node) -> Option<u64> {
        let raw = node.arg().unwrap_or("");
        match raw.parse::<f64>() {
            Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => {
                let ms = (v * 1000.0).round();
                if (ms - v * 1000.0).abs() > 1e-6 {
                    self.warn(node, format!("`{} {raw}` rounded to {ms} ms", node.keyword));
                }
                // The range check above keeps this within u64.
                Some(ms as u64)
            }
            _ => {
                self.warn(
                    node,
                    format!(
                        "`{} {raw}`: expected a number of seconds; ignored",
                        node.keyword
                    ),
                );
                None
            }
        }
    }

    /// A keepalived boolean argument (`check_true_false`): none means on; a word keepalived
    /// does not know is warned and leaves the setting as it was (`None`).
    fn flag(&mut self, node: &Node) -> Option<bool> {
        match node.arg() {
            None | Some("true" | "on" | "yes") => Some(true),
            Some("false" | "off" | "no") => Some(false),
            Some(other) => {
                self.warn(
                    node,
                    format!(
                        "`{} {other}`: expected nothing, true/on/yes or false/off/no; ignored",
                        node.keyword
                    ),
                );
                None
            }
        }
    }

    fn garp_statement(&mut self, node: &Node, key: &str, into: &mut GarpOverrides) -> bool {
        match key {
            "garp_master_delay" => into.master_delay_ms = self.seconds_ms(node),
            "garp_master_repeat" => into.master_repeat = self.uint(node, 1, 255),
            "garp_master_refresh" => into.master_refresh_ms = self.seconds_ms(node),
            "garp_master_refresh_repeat" => into.master_refresh_repeat = self.uint(node, 1, 255),
            "garp_lower_prio_delay" => into.lower_prio_delay_ms = self.seconds_ms(node),
            "garp_lower_prio_repeat" => into.lower_prio_repeat = self.uint(node, 0, 255),
            "garp_interval" => into.interval_ms = self.seconds_ms(node),
            "gna_interval" => into.gna_interval_ms = self.seconds_ms(node),
            _ => return false,
        }
        true
    }

    fn global_defs(&mut self, node: &Node) {
        let mut garp = std::mem::take(&mut self.garp);
        for child in node.block() {
            let key = child.keyword.as_str();
            match key {
                "router_id" => match child.arg() {
                    Some(id) => self.config.global.router_id = Some(id.to_string()),
                    None => self.warn(child, "`router_id` without a value; ignored"),
                },
                "vrrp_version" => self.version = self.uint(child, 2, 3),
                // keepalived 2.2.8+: the default of every vrrp_instance. Its global_defs parser
                // takes no value (any word turns it on), so neither does the translation.
                "v3_checksum_as_v2" => {
                    if let Some(arg) = child.arg().filter(|a| !matches!(*a, "true" | "on" | "yes")) {
                        self.warn(
                            child,
                            format!(
                                "`v3_checksum_as_v2 {arg}` in global_defs: keepalived ignores the value \
                                 there and turns the option on; so does the translation"
                            ),
                        );
                    }
                    self.v3_checksum_as_v2 = true;
                }
                k if k.starts_with("vrrp_garp_") || k == "vrrp_gna_interval" => {
                    let local = &k["vrrp_".len()..];
                    if !self.garp_statement(child, local, &mut garp) {
                        self.not_translated(child, "global_defs");
                    }
                }
                "notification_email" | "notification_email_from" | "smtp_server" | "smtp_connect_timeout" => {
                    self.warn(child, format!("`{key}` is not translated: ha-lb sends no mail; use notify commands"));
                }
                "script_user" => match user_group(&child.args) {
                    Some(u) => self.config.global.run_as = Some(u),
                    None => self.warn(child, "`script_user` without a name; ignored"),
                },
                // ha-lb always refuses, when it runs as root, programs that another user could
                // change: keepalived's script security is on without asking.
                "enable_script_security" => {}
                "lvs_sync_daemon" => self.lvs_sync_daemon(child),
                "vrrp_strict" => self.warn(
                    child,
                    "`vrrp_strict` is not translated: set accept_mode = false and leave out password per instance instead",
                ),
                _ => self.not_translated(child, "global_defs"),
            }
        }
        self.garp = garp;
    }

    fn vrrp_script(&mut self, node: &Node) {
        let Some(name) = node.arg().map(str::to_string) else {
            self.warn(node, "`vrrp_script` without a name is not translated");
            return;
        };
        let mut check = keepalived_check(CheckKind::Exec, KEEPALIVED_SCRIPT_INTERVAL_MS);
        let mut weight = 0;
        for child in node.block() {
            match child.keyword.as_str() {
                "script" => {
                    let argv = split_command(&child.args.join(" "));
                    if argv.is_empty() {
                        self.warn(child, "`script` without a command; ignored");
                    } else {
                        self.inspect_script(child, &argv[0]);
                        check.command = Some(argv);
                    }
                }
                "interval" => {
                    if let Some(ms) = self.seconds_ms(child) {
                        check.interval_ms = ms;
                    }
                }
                "timeout" => check.timeout_ms = self.seconds_ms(child),
                "rise" => check.rise = self.uint(child, 1, 100).unwrap_or(1),
                "fall" => check.fall = self.uint(child, 1, 100).unwrap_or(1),
                "weight" => {
                    weight = self.weight_args(child, &child.args);
                }
                "user" => match user_group(&child.args) {
                    Some(u) => check.run_as = Some(u),
                    None => self.warn(child, "`user` without a name; ignored"),
                },
                _ => self.not_translated(child, "vrrp_script"),
            }
        }
        if check.command.is_none() {
            self.warn(
                node,
                format!("vrrp_script {name} has no `script`; it is not translated"),
            );
            return;
        }
        self.config.checks.insert(name.clone(), check);
        self.scripts.insert(
            name.clone(),
            Script {
                check: name,
                weight,
            },
        );
    }

    /// `vrrp_track_process NAME { process PATH ... weight W }` becomes a process check.
    fn vrrp_track_process(&mut self, node: &Node) {
        let Some(name) = node.arg().map(str::to_string) else {
            self.warn(
                node,
                "`vrrp_track_process` without a name is not translated",
            );
            return;
        };
        let mut process: Option<String> = None;
        let mut weight = 0;
        for child in node.block() {
            match child.keyword.as_str() {
                "process" => {
                    let Some(path) = child.arg() else {
                        self.warn(child, "`process` without a name; ignored");
                        continue;
                    };
                    let base = path.rsplit('/').next().unwrap_or(path);
                    let mut comm = base.to_string();
                    if comm.len() > 15 {
                        let mut cut = 15;
                        while !comm.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        comm.truncate(cut);
                    }
                    if child.args.len() > 1 || comm != path {
                        self.warn(
                            child,
                            format!(
                                "`process {}` is matched by its name {comm:?} only (as /proc/PID/comm \
                                 shows it), not by its path or arguments",
                                child.args.join(" ")
                            ),
                        );
                    }
                    process = Some(comm);
                }
                "weight" => weight = self.weight_args(child, &child.args),
                "quorum" if child.arg() == Some("1") => {}
                "delay" | "fork_delay" | "terminate_delay" => self.warn(
                    child,
                    format!(
                        "`{}` is not translated: the check runs every {TRACK_PROCESS_INTERVAL_MS} ms \
                         with rise 1 and fall 1",
                        child.keyword
                    ),
                ),
                _ => self.not_translated(child, "vrrp_track_process"),
            }
        }
        let Some(process) = process else {
            self.warn(
                node,
                format!("vrrp_track_process {name} has no `process`; it is not translated"),
            );
            return;
        };
        let check_name = if self.config.checks.contains_key(&name) {
            format!("{name}-process")
        } else {
            name.clone()
        };
        let check = Check {
            process: Some(process),
            ..keepalived_check(CheckKind::Process, TRACK_PROCESS_INTERVAL_MS)
        };
        self.config.checks.insert(check_name.clone(), check);
        self.processes.insert(
            name,
            Script {
                check: check_name,
                weight,
            },
        );
    }

    /// Reads `weight N [reverse]` arguments.
    fn weight_args(&mut self, node: &Node, args: &[String]) -> i32 {
        let raw = args.first().map(String::as_str).unwrap_or("");
        let max = i32::from(vrrp_core::MAX_TRACK_WEIGHT);
        let weight = match raw.parse::<i32>() {
            Ok(w) if (-max..=max).contains(&w) => w,
            _ => {
                self.warn(
                    node,
                    format!(
                        "weight {raw:?} is not a number in -{max}..={max}; using 0 (fault while down)"
                    ),
                );
                0
            }
        };
        if args.get(1).is_some_and(|a| a == "reverse") {
            self.warn(
                node,
                "`reverse` weights are not translated: the weight applies as written",
            );
        }
        weight
    }

    /// Warns when a check script stops keepalived instead of failing, as the seed's
    /// nginx_check.sh does (`killall keepalived`): under ha-lb that changes nothing, the script
    /// exits 0 and the check never fails.
    fn inspect_script(&mut self, node: &Node, program: &str) {
        let path = Path::new(program);
        let text = std::fs::read_to_string(path).ok().or_else(|| {
            path.file_name()
                .and_then(|name| std::fs::read_to_string(self.base_dir.join(name)).ok())
        });
        let Some(text) = text else { return };
        let stops_keepalived = text.lines().any(|l| {
            let l = l.trim_start();
            !l.starts_with('#')
                && l.contains("keepalived")
                && (l.contains("kill") || l.contains("stop"))
        });
        if stops_keepalived {
            self.warn(
                node,
                format!(
                    "{program} stops keepalived instead of exiting non-zero: under ha-lb it stops nothing and \
                     the check always passes; use a process check (kind = \"process\", process = \"nginx\") \
                     or make the script exit 1 when the proxy is down"
                ),
            );
        }
    }

    fn notify_command(&mut self, node: &Node) -> Option<Vec<String>> {
        let argv = split_command(node.arg().unwrap_or(""));
        if argv.is_empty() {
            self.warn(
                node,
                format!("`{}` without a command; ignored", node.keyword),
            );
            return None;
        }
        if node.args.len() > 1 {
            self.warn(
                node,
                format!(
                    "`{}`: the user/group {:?} is not translated: ha-lb runs all the notify commands of \
                     an instance as one user (its `notify.run_as`, else `global.run_as`, else ha-lb's own); \
                     set that if they share one (and quote a command that has arguments)",
                    node.keyword,
                    node.args[1..].join(" ")
                ),
            );
        }
        Some(argv)
    }

    fn notify_statement(&mut self, node: &Node, notify: &mut Notify) -> bool {
        let slot = match node.keyword.as_str() {
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            "notify_stop" => &mut notify.stop,
            "notify" => &mut notify.any,
            _ => return false,
        };
        *slot = self.notify_command(node);
        true
    }

    fn vrrp_instance(&mut self, node: &Node) {
        let Some(name) = node.arg().map(str::to_string) else {
            self.warn(node, "`vrrp_instance` without a name is not translated");
            return;
        };
        // ha-lb's defaults, but keepalived's own default version until the block says.
        let mut inst = Instance::new("", 0);
        inst.version = KEEPALIVED_DEFAULT_VERSION;
        let mut version: Option<u32> = None;
        let mut password: Option<(String, Node)> = None;
        let mut garp = GarpOverrides::default();
        let mut seen_vrid = false;
        let mut old_checksum: Option<Node> = None;
        // The instance's own `v3_checksum_as_v2 [BOOL]` and where it is, over the global one.
        let mut v2_checksum: Option<(bool, Node)> = None;
        let mut nopreempt: Option<Node> = None;
        for child in node.block() {
            let key = child.keyword.as_str();
            if self.garp_statement(child, key, &mut garp)
                || self.notify_statement(child, &mut inst.notify)
            {
                continue;
            }
            match key {
                "state" => self.warn(
                    child,
                    format!(
                        "`state {}` is not translated: ha-lb starts every instance as Backup and lets the \
                         election (priority, then address) decide, as RFC 5798 does; only priority 255 \
                         starts as Master",
                        child.arg().unwrap_or("")
                    ),
                ),
                "interface" => match child.arg() {
                    Some(i) => inst.interface = i.to_string(),
                    None => self.warn(child, "`interface` without a name; ignored"),
                },
                "virtual_router_id" => {
                    if let Some(v) = self.uint(child, 1, 255) {
                        inst.vrid = v;
                        seen_vrid = true;
                    }
                }
                "priority" => {
                    if let Some(p) = self.uint::<u32>(child, 1, 255) {
                        inst.priority = p;
                        inst.address_owner = p == 255;
                    }
                }
                "advert_int" => {
                    if let Some(ms) = self.seconds_ms(child) {
                        inst.advert_interval_ms = ms;
                    }
                }
                "version" => version = self.uint(child, 2, 3),
                "nopreempt" => {
                    inst.preempt = false;
                    nopreempt = Some(child.clone());
                }
                "preempt" => {
                    inst.preempt = true;
                    nopreempt = None;
                }
                "preempt_delay" => {
                    if let Some(ms) = self.seconds_ms(child) {
                        inst.preempt_delay_ms = ms;
                    }
                }
                "accept" => inst.accept_mode = true,
                "no_accept" => inst.accept_mode = false,
                // `use_vmac [NAME]`: the VMAC interface, named as keepalived names it.
                "use_vmac" => {
                    inst.use_vmac = true;
                    inst.vmac_name = child.arg().map(str::to_owned);
                }
                "vmac_xmit_base" => inst.vmac_xmit_base = true,
                "v3_checksum_as_v2" => {
                    if let Some(on) = self.flag(child) {
                        v2_checksum = Some((on, child.clone()));
                    }
                }
                // `old_unicast_checksum [never]`: `never` only turns off keepalived's detection
                // of a peer's old checksum, which ha-lb does not do: the RFC checksum either way.
                "old_unicast_checksum" => match child.arg() {
                    None => old_checksum = Some(child.clone()),
                    Some("never") => old_checksum = None,
                    Some(other) => self.warn(
                        child,
                        format!("`old_unicast_checksum {other}`: expected nothing or `never`; ignored"),
                    ),
                },
                "unicast_src_ip" | "mcast_src_ip" => match child.arg().map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => inst.unicast_src = Some(ip),
                    _ => self.warn(child, format!("`{key}` needs an IP address; ignored")),
                },
                "unicast_peer" => self.unicast_peers(child, &mut inst),
                "authentication" => {
                    for a in child.block() {
                        match (a.keyword.as_str(), a.arg()) {
                            ("auth_type", Some("PASS")) => {}
                            ("auth_type", other) => self.warn(
                                a,
                                format!("auth_type {} is not supported (only PASS, as VRRPv2 password)", other.unwrap_or("")),
                            ),
                            ("auth_pass", Some(pw)) => password = Some((pw.to_string(), a.clone())),
                            _ => self.not_translated(a, "authentication"),
                        }
                    }
                }
                "virtual_ipaddress" => self.virtual_ipaddress(child, &mut inst),
                "track_script" => self.track_tracked(child, &mut inst, false),
                "track_process" => self.track_tracked(child, &mut inst, true),
                "track_interface" => self.track_interface(child, &mut inst),
                "virtual_ipaddress_excluded" => self.warn(
                    child,
                    "`virtual_ipaddress_excluded` is not translated: list those addresses in vips of an \
                     instance of their family",
                ),
                "lvs_sync_daemon_interface" => self.lvs_sync_daemon(child),
                "dont_track_primary" => self.warn(
                    child,
                    "`dont_track_primary` is not translated: ha-lb always puts an instance in Fault when its interface is down",
                ),
                _ => self.not_translated(child, "vrrp_instance"),
            }
        }
        if let Some(at) = nopreempt.filter(|_| inst.address_owner) {
            // keepalived resets it ("nopreempt is incompatible with priority 255"), and the
            // address owner always preempts in ha-lb too (RFC 5798 §6.4.2).
            inst.preempt = true;
            self.warn(
                &at,
                "`nopreempt` is not translated: the address owner (priority 255) always preempts \
                 (keepalived resets it too)",
            );
        }
        if !seen_vrid {
            self.warn(node, format!("vrrp_instance {name} has no virtual_router_id: the translation will not validate"));
        }
        if inst.interface.is_empty() {
            self.warn(
                node,
                format!("vrrp_instance {name} has no interface: the translation will not validate"),
            );
        }
        let v6 = inst.is_ipv6();
        inst.version = match version.or(self.version) {
            Some(2) if v6 => {
                self.warn(node, format!("vrrp_instance {name} has IPv6 VIPs: VRRPv2 cannot carry them, using version 3"));
                3
            }
            Some(v) => v,
            None if v6 => 3,
            None => KEEPALIVED_DEFAULT_VERSION,
        };
        if let Some((pw, at)) = password {
            if inst.version == 2 {
                let mut pw = pw;
                if pw.len() > 8 {
                    let mut cut = 8;
                    while !pw.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    pw.truncate(cut);
                    self.warn(&at, format!("auth_pass is longer than 8 bytes; keepalived sends only {pw:?}, so that is kept"));
                }
                inst.password = Some(pw);
            } else {
                self.warn(&at, "authentication is not translated: VRRPv3 has no authentication (keepalived ignores it too)");
            }
        }
        // keepalived applies v3_checksum_as_v2 to VRRPv3 over IPv4 only; set in global_defs it
        // is silently moot elsewhere, set in the instance it is worth a word.
        let v3_ipv4 = inst.version == 3 && !v6;
        match &v2_checksum {
            Some((true, at)) if !v3_ipv4 => self.warn(
                at,
                "`v3_checksum_as_v2` is not translated: it only changes VRRPv3 IPv4 checksums",
            ),
            Some((on, _)) => inst.v3_checksum_as_v2 = *on && v3_ipv4,
            None => inst.v3_checksum_as_v2 = self.v3_checksum_as_v2 && v3_ipv4,
        }
        if let Some(at) = old_checksum {
            if inst.v3_checksum_as_v2 {
                // keepalived leaves the pseudo-header out altogether then: the group address
                // old_unicast_checksum would put in it does not matter.
                self.warn(
                    &at,
                    "`old_unicast_checksum` is not translated: with v3_checksum_as_v2 the checksum has \
                     no pseudo-header at all (keepalived does the same)",
                );
            } else if v3_ipv4 {
                inst.old_unicast_checksum = true;
            } else {
                self.warn(
                    &at,
                    "`old_unicast_checksum` is not translated: it only changes VRRPv3 IPv4 checksums",
                );
            }
        }
        if v6 && inst.is_unicast() && inst.unicast_min_ttl == vrrp_core::packet::TTL {
            inst.unicast_min_ttl = KEEPALIVED_V6_UNICAST_HOPS;
            self.warn(
                node,
                format!(
                    "vrrp_instance {name}: keepalived sends IPv6 unicast adverts with hop limit \
                     {KEEPALIVED_V6_UNICAST_HOPS}, so unicast_min_ttl = {KEEPALIVED_V6_UNICAST_HOPS} \
                     (RFC 5798 wants 255: raise it once no peer runs keepalived)"
                ),
            );
        }
        self.garp.apply(&mut inst.garp);
        garp.apply(&mut inst.garp);
        self.config.instances.insert(name, inst);
    }

    fn unicast_peers(&mut self, node: &Node, inst: &mut Instance) {
        for peer in node.block() {
            match peer.keyword.parse::<IpAddr>() {
                Ok(ip) => inst.unicast_peers.push(ip),
                Err(_) => {
                    self.warn(
                        peer,
                        format!(
                            "unicast peer {:?} is not an IP address; ignored",
                            peer.keyword
                        ),
                    );
                    continue;
                }
            }
            let mut args = peer.args.iter();
            let mut other = Vec::new();
            while let Some(word) = args.next() {
                // keepalived checks a unicast advert's TTL only against a peer's min_ttl; ha-lb
                // has one floor per instance: the lowest peer's.
                if word == "min_ttl" {
                    match args.next().and_then(|v| v.parse::<u8>().ok()) {
                        Some(ttl) => inst.unicast_min_ttl = inst.unicast_min_ttl.min(ttl),
                        None => self.warn(peer, "min_ttl needs a value of 0..=255; ignored"),
                    }
                } else {
                    other.push(word.as_str());
                }
            }
            if !other.is_empty() {
                self.warn(
                    peer,
                    format!("peer options {:?} are not translated", other.join(" ")),
                );
            }
        }
    }

    fn virtual_ipaddress(&mut self, node: &Node, inst: &mut Instance) {
        for entry in node.block() {
            let mut vip: Vip = match entry.keyword.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.warn(
                        entry,
                        format!("virtual address {:?} not translated: {e}", entry.keyword),
                    );
                    continue;
                }
            };
            let mut args = entry.args.iter();
            while let Some(word) = args.next() {
                let value = args.clone().next().cloned();
                match (word.as_str(), value) {
                    ("dev", Some(v)) => {
                        vip.dev = Some(v);
                        args.next();
                    }
                    ("label", Some(v)) => {
                        vip.label = Some(v);
                        args.next();
                    }
                    ("brd" | "broadcast", Some(v)) => {
                        match v.parse() {
                            Ok(b) => vip.broadcast = Some(b),
                            Err(_) => self.warn(
                                entry,
                                format!("broadcast {v:?} is not an IPv4 address; ignored"),
                            ),
                        }
                        args.next();
                    }
                    ("scope", Some(v)) => {
                        self.warn(
                            entry,
                            format!("`scope {v}` is not translated: VIPs get global scope"),
                        );
                        args.next();
                    }
                    (other, _) => self.warn(
                        entry,
                        format!("virtual address option {other:?} is not translated"),
                    ),
                }
            }
            if let Some(first) = inst.vips.first() {
                if first.is_ipv6() != vip.is_ipv6() {
                    self.warn(
                        entry,
                        format!(
                            "{} is not of the family of {}: an ha-lb instance carries one family, so it is \
                             not translated; put it in a second instance",
                            vip.address, first.address
                        ),
                    );
                    continue;
                }
            }
            inst.vips.push(vip);
        }
    }

    /// `track_script { NAME [weight W] }` or `track_process { ... }`: entries of
    /// `track_checks`.
    fn track_tracked(&mut self, node: &Node, inst: &mut Instance, process: bool) {
        let (block, defined) = if process {
            ("track_process", "vrrp_track_process")
        } else {
            ("track_script", "vrrp_script")
        };
        for entry in node.block() {
            let name = entry.keyword.clone();
            let found = if process {
                self.processes.get(&name)
            } else {
                self.scripts.get(&name)
            };
            let Some(script) = found.cloned() else {
                self.warn(
                    entry,
                    format!("{block} {name:?} names no translated {defined}; not translated"),
                );
                continue;
            };
            let weight = match entry.args.first().map(String::as_str) {
                Some("weight") => self.weight_args(entry, &entry.args[1..]),
                Some(other) => {
                    self.warn(entry, format!("{block} option {other:?} is not translated"));
                    script.weight
                }
                None => script.weight,
            };
            inst.track_checks.push(TrackCheck {
                check: script.check,
                weight,
            });
        }
    }

    fn track_interface(&mut self, node: &Node, inst: &mut Instance) {
        for entry in node.block() {
            let weight = match entry.args.first().map(String::as_str) {
                Some("weight") => self.weight_args(entry, &entry.args[1..]),
                Some(other) => {
                    self.warn(
                        entry,
                        format!("track_interface option {other:?} is not translated"),
                    );
                    0
                }
                None => 0,
            };
            inst.track_interfaces.push(TrackInterface {
                interface: entry.keyword.clone(),
                weight,
            });
        }
    }

    fn vrrp_sync_group(&mut self, node: &Node) {
        let Some(name) = node.arg().map(str::to_string) else {
            self.warn(node, "`vrrp_sync_group` without a name is not translated");
            return;
        };
        let mut group = SyncGroup {
            instances: Vec::new(),
            notify: Notify::default(),
        };
        for child in node.block() {
            if self.notify_statement(child, &mut group.notify) {
                continue;
            }
            match child.keyword.as_str() {
                "group" => {
                    for member in child.block() {
                        group.instances.push(member.keyword.clone());
                        group.instances.extend(member.args.iter().cloned());
                    }
                }
                _ => self.not_translated(child, "vrrp_sync_group"),
            }
        }
        self.config.sync_groups.insert(name, group);
    }
}

/// A check as keepalived runs its scripts and tracked processes: every `interval_ms`, one result
/// decides (rise and fall 1), no other setting.
fn keepalived_check(kind: CheckKind, interval_ms: u64) -> Check {
    Check {
        kind,
        interval_ms,
        timeout_ms: None,
        rise: 1,
        fall: 1,
        address: None,
        path: None,
        host: None,
        method: None,
        headers: Default::default(),
        expect_status: None,
        expect_body: None,
        tls: None,
        command: None,
        run_as: None,
        process: None,
        pidfile: None,
    }
}

/// keepalived's `USER [GROUP]` as ha-lb's `user[:group]`.
fn user_group(args: &[String]) -> Option<String> {
    match args {
        [user] => Some(user.clone()),
        [user, group, ..] => Some(format!("{user}:{group}")),
        [] => None,
    }
}
