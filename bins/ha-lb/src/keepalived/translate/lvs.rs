//! keepalived's LVS half: `virtual_server`, `virtual_server_group`, `real_server`,
//! `sorry_server` and the checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK) become
//! listeners in NAT mode, pools and health checks.
//!
//! keepalived's checker settings are inherited: the checker's own, else its real server's,
//! else its virtual server's, else the checker type's default ([`Timing`]). A checker marks its
//! real server down after `retry + 1` failures in a row and up after one success: ha-lb's
//! `fall = retry + 1`, `rise = 1`, every `delay_loop`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use crate::config::{
    Algorithm, Backend, Check, CheckKind, Listener, ListenerMode, NatSource, Pool, Tls,
};

use super::super::lexer::split_command;
use super::super::tree::Node;
use super::{keepalived_check, Translator};

/// keepalived's `delay_loop` when none is given (`KEEPALIVED_DEFAULT_DELAY`).
pub(super) const DEFAULT_DELAY_LOOP_MS: u64 = 60_000;
/// keepalived's `connect_timeout` when none is given.
pub(super) const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// The most addresses one `virtual_server_group` range may expand to: keepalived ranges
/// change the last byte (IPv4) or 16-bit group (IPv6) only; a bound keeps a typo from making
/// thousands of listeners.
const MAX_RANGE: u32 = 256;
/// ha-lb's largest backend weight; LVS weights go to 2^31 - 1.
const MAX_WEIGHT: u32 = 1000;
/// keepalived's default HTTP_GET / SSL_GET statuses: any 2xx (ha-lb's default also takes 3xx).
const DEFAULT_HTTP_STATUSES: std::ops::RangeInclusive<u16> = 200..=299;

/// The addresses of a `virtual_server_group`.
#[derive(Debug, Clone, Default)]
pub(super) struct VsGroup {
    addresses: Vec<SocketAddr>,
}

/// Checker settings that a virtual server passes to its real servers and a real server to
/// its checkers; `None` = not set at this level.
#[derive(Debug, Clone, Default)]
struct Timing {
    delay_loop_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    retry: Option<u32>,
    delay_before_retry_ms: Option<u64>,
    virtualhost: Option<String>,
}

impl Timing {
    /// This level's settings where set, else `base`'s.
    fn over(&self, base: &Timing) -> Timing {
        Timing {
            delay_loop_ms: self.delay_loop_ms.or(base.delay_loop_ms),
            connect_timeout_ms: self.connect_timeout_ms.or(base.connect_timeout_ms),
            retry: self.retry.or(base.retry),
            delay_before_retry_ms: self.delay_before_retry_ms.or(base.delay_before_retry_ms),
            virtualhost: self
                .virtualhost
                .clone()
                .or_else(|| base.virtualhost.clone()),
        }
    }
}

/// How keepalived forwards to real servers (`lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forwarding {
    Nat,
    Dr,
    Tun,
}

/// One `real_server` (or the `sorry_server`) as translated.
struct Real {
    backend: Backend,
    line: usize,
}

impl Translator {
    /// `virtual_server_group NAME { IP[-LAST] PORT ... fwmark N ... }`: remembered for the
    /// virtual servers that name it.
    pub(super) fn virtual_server_group(&mut self, node: &Node) {
        let Some(name) = node.arg().map(str::to_string) else {
            self.warn(
                node,
                "`virtual_server_group` without a name is not translated",
            );
            return;
        };
        let mut group = VsGroup::default();
        for entry in node.block() {
            if entry.keyword == "fwmark" {
                self.warn(
                    entry,
                    "`fwmark` entries of a virtual_server_group are not translated: a listener \
                     has an address and a port (list them instead)",
                );
                continue;
            }
            let port = match entry.args.first().map(|p| p.parse::<u16>()) {
                Some(Ok(p)) if p != 0 => p,
                _ => {
                    self.warn(
                        entry,
                        format!(
                            "virtual_server_group {name}: {:?} needs a port of 1..=65535 (ha-lb has \
                             no all-ports service); not translated",
                            entry.keyword
                        ),
                    );
                    continue;
                }
            };
            if entry.args.len() > 1 {
                self.warn(
                    entry,
                    format!(
                        "virtual_server_group {name}: options {:?} are not translated",
                        entry.args[1..].join(" ")
                    ),
                );
            }
            match expand_range(&entry.keyword) {
                Ok(ips) => group
                    .addresses
                    .extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port))),
                Err(why) => self.warn(
                    entry,
                    format!(
                        "virtual_server_group {name}: {:?} is not translated: {why}",
                        entry.keyword
                    ),
                ),
            }
        }
        if self.vs_groups.insert(name.clone(), group).is_some() {
            self.warn(
                node,
                format!("virtual_server_group {name} is defined twice: the last one is used"),
            );
        }
    }

    /// `virtual_server IP PORT { ... }` or `virtual_server group NAME { ... }`: a pool, with a
    /// listener in NAT mode on each address.
    pub(super) fn virtual_server(&mut self, node: &Node) {
        let (name, addresses): (String, Vec<SocketAddr>) = match node
            .args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()[..]
        {
            ["group", group] => match self.vs_groups.get(group) {
                Some(g) if !g.addresses.is_empty() => (format!("vsg-{group}"), g.addresses.clone()),
                Some(_) => {
                    self.warn(
                        node,
                        format!(
                            "virtual_server group {group}: the group has no address translated; \
                                 not translated"
                        ),
                    );
                    return;
                }
                None => {
                    self.warn(
                            node,
                            format!(
                                "virtual_server group {group}: no virtual_server_group {group}; not translated"
                            ),
                        );
                    return;
                }
            },
            ["fwmark", ..] => {
                self.warn(
                    node,
                    "`virtual_server fwmark` is not translated: a listener has an address and a \
                         port (write one virtual_server per address and port)",
                );
                return;
            }
            [ip, port] => match (ip.parse::<IpAddr>(), port.parse::<u16>()) {
                (Ok(ip), Ok(port)) if port != 0 => {
                    let addr = SocketAddr::new(ip, port);
                    (format!("vs-{ip}-{port}"), vec![addr])
                }
                _ => {
                    self.warn(
                        node,
                        format!(
                            "virtual_server {ip} {port}: expected an IP address and a port of \
                                 1..=65535; not translated"
                        ),
                    );
                    return;
                }
            },
            _ => {
                self.warn(
                    node,
                    format!(
                        "virtual_server {:?}: expected `IP PORT` or `group NAME` (ha-lb has no \
                             all-ports service); not translated",
                        node.args.join(" ")
                    ),
                );
                return;
            }
        };
        let taken: BTreeSet<SocketAddr> =
            self.config.listeners.values().map(|l| l.listen).collect();
        let (fresh, twice): (Vec<SocketAddr>, Vec<SocketAddr>) =
            addresses.into_iter().partition(|a| !taken.contains(a));
        for a in &twice {
            self.warn(
                node,
                format!(
                    "{a} is already the address of an earlier virtual_server; not translated again"
                ),
            );
        }
        let Some(v4) = fresh.first().map(SocketAddr::is_ipv4) else {
            return;
        };
        // A pool forwards within one family (NAT rewrites addresses, it does not translate
        // between IPv4 and IPv6); keepalived refuses a mix too.
        let (fresh, other): (Vec<SocketAddr>, Vec<SocketAddr>) =
            fresh.into_iter().partition(|a| a.is_ipv4() == v4);
        for a in &other {
            self.warn(
                node,
                format!(
                    "{a} is not of the family of {}: a virtual server forwards within one family; \
                     not translated",
                    fresh[0]
                ),
            );
        }

        let mut vs_timing = Timing::default();
        let mut algo: Option<(String, Node)> = None;
        let mut forwarding: Option<(Forwarding, Node)> = None;
        let mut persistence: Option<Node> = None;
        let mut reals: Vec<Real> = Vec::new();
        let mut sorry: Option<Real> = None;
        let mut checks: Vec<(String, Check)> = Vec::new();
        let mut real_nodes: Vec<&Node> = Vec::new();
        for child in node.block() {
            let key = child.keyword.as_str();
            match key {
                "delay_loop" => vs_timing.delay_loop_ms = self.positive_seconds(child),
                "connect_timeout" => vs_timing.connect_timeout_ms = self.positive_seconds(child),
                "retry" => vs_timing.retry = self.uint(child, 0, 99),
                "delay_before_retry" => {
                    vs_timing.delay_before_retry_ms = self.seconds_ms(child);
                }
                "virtualhost" => match child.arg() {
                    Some(h) => vs_timing.virtualhost = Some(h.to_string()),
                    None => self.warn(child, "`virtualhost` without a name; ignored"),
                },
                "lb_algo" | "lvs_sched" => match child.arg() {
                    Some(a) => algo = Some((a.to_string(), child.clone())),
                    None => self.warn(child, format!("`{key}` without a scheduler; ignored")),
                },
                "lb_kind" | "lvs_method" => {
                    if let Some(f) = self.forwarding(child) {
                        forwarding = Some((f, child.clone()));
                    }
                }
                "persistence_timeout" => persistence = Some(child.clone()),
                "protocol" => match child.arg() {
                    Some("TCP") => {}
                    other => {
                        self.warn(
                            child,
                            format!(
                                "virtual_server {name}: `protocol {}` is not translated: ha-lb balances \
                                 TCP only; the virtual server is left out",
                                other.unwrap_or("")
                            ),
                        );
                        return;
                    }
                },
                // ha-lb's default: a backend whose check fails takes no new connections and its
                // established ones go on, which is what `inhibit_on_failure` (weight 0 instead of
                // removal) gives in LVS.
                "inhibit_on_failure" => {}
                "sorry_server" => {
                    sorry = self.sorry_server(child, &fresh);
                }
                "real_server" => real_nodes.push(child),
                "persistence_granularity" | "persistence_engine" => self.warn(
                    child,
                    format!(
                        "`{key}` is not translated: source hashing maps each client address to a backend"
                    ),
                ),
                "ha_suspend" => self.warn(
                    child,
                    "`ha_suspend` is not translated: the NAT rules stay while the node is Backup (they \
                     only see traffic for addresses the node holds)",
                ),
                "alpha" | "omega" | "quorum" | "quorum_up" | "quorum_down" | "hysteresis" => {
                    self.warn(
                        child,
                        format!(
                            "`{key}` is not translated: a backend's first check result decides its \
                             state, and the pool serves while any backend is up (track the pool from \
                             an instance with track_pools to move the VIP when none is)"
                        ),
                    );
                }
                "sorry_server_inhibit" | "sorry_server_lvs_method" => self.warn(
                    child,
                    format!(
                        "`{key}` is not translated: the sorry server is a backup backend, forwarded \
                         like the others"
                    ),
                ),
                "warmup" => self.warn(
                    child,
                    "`warmup` is not translated: ha-lb runs each check's first probe at start",
                ),
                _ => self.not_translated(child, "virtual_server"),
            }
        }

        match &forwarding {
            Some((Forwarding::Dr | Forwarding::Tun, at)) => {
                let how = if forwarding.as_ref().map(|f| f.0) == Some(Forwarding::Dr) {
                    "DR"
                } else {
                    "TUN"
                };
                self.warn(
                    at,
                    format!(
                        "`lb_kind {how}` is imported as mode = \"nat\" with nat_source = \"masquerade\": \
                         ha-lb rewrites addresses instead of {}, so replies come back through the \
                         balancer and the real servers see its address; the VIP on their loopback \
                         and their arp_ignore settings are no longer needed",
                        if how == "DR" { "MAC addresses" } else { "tunnelling" }
                    ),
                );
            }
            Some((Forwarding::Nat, _)) | None => {}
        }

        for rs in real_nodes {
            if let Some((real, check)) = self.real_server(rs, &name, &fresh, &vs_timing) {
                if reals
                    .iter()
                    .any(|r| r.backend.address == real.backend.address)
                {
                    self.warn(
                        rs,
                        format!(
                            "real_server {} is listed twice in virtual_server {name}; the second is \
                             not translated",
                            real.backend.address
                        ),
                    );
                    continue;
                }
                let mut backend = real.backend;
                if let Some(check) = check {
                    backend.check = Some(self.add_vs_check(&name, check, &mut checks));
                }
                reals.push(Real {
                    backend,
                    line: real.line,
                });
            }
        }
        if reals.is_empty() {
            self.warn(
                node,
                format!(
                    "virtual_server {name} has no real_server translated; it is left out (ha-lb needs \
                     at least one backend)"
                ),
            );
            return;
        }

        let mut algorithm = self.algorithm(node, algo.as_ref(), &mut reals);
        if let Some(at) = persistence {
            if at.arg() == Some("0") {
                // keepalived: 0 is no persistence.
            } else {
                algorithm = Algorithm::Sourcehash;
                self.warn(
                    &at,
                    "`persistence_timeout` is imported as source hashing (algorithm = \"sourcehash\"): \
                     a client stays on its backend for as long as the set of healthy backends does \
                     not change, not for a time",
                );
            }
        }
        self.scale_weights(node, &mut reals);

        if let Some(s) = sorry {
            if reals.iter().any(|r| r.backend.address == s.backend.address) {
                self.warn_line(
                    node,
                    s.line,
                    format!(
                        "sorry_server {} is also a real_server; it is not added as a backup",
                        s.backend.address
                    ),
                );
            } else {
                reals.push(s);
            }
        }

        for (check_name, check) in checks {
            self.config.checks.insert(check_name, check);
        }
        self.config.pools.insert(
            name.clone(),
            Pool {
                algorithm,
                ..Pool::new(reals.into_iter().map(|r| r.backend).collect())
            },
        );
        // LVS-NAT's real servers route their replies back through the director and see the
        // client's address: `preserve`. DR and TUN replies bypassed the director; rewriting
        // the source makes them come back through it in any topology.
        let nat_source = match forwarding.map(|f| f.0) {
            Some(Forwarding::Nat) | None => NatSource::Preserve,
            Some(Forwarding::Dr | Forwarding::Tun) => NatSource::Masquerade,
        };
        let single = fresh.len() == 1 && !name.starts_with("vsg-");
        for addr in fresh {
            let listener_name = if single {
                name.clone()
            } else {
                format!("{name}-{}-{}", addr.ip(), addr.port())
            };
            self.config.listeners.insert(
                listener_name,
                Listener {
                    mode: ListenerMode::Nat,
                    nat_source: Some(nat_source),
                    ..Listener::new(addr, name.clone())
                },
            );
        }
    }

    /// A positive number of seconds (fractions allowed) in milliseconds; 0 is warned.
    fn positive_seconds(&mut self, node: &Node) -> Option<u64> {
        match self.seconds_ms(node) {
            Some(0) => {
                self.warn(
                    node,
                    format!(
                        "`{} 0`: expected more than 0 seconds; ignored",
                        node.keyword
                    ),
                );
                None
            }
            other => other,
        }
    }

    /// `lb_kind NAT|DR|TUN` (and `lvs_method`, whose TUN takes tunnel options).
    fn forwarding(&mut self, node: &Node) -> Option<Forwarding> {
        match node.arg() {
            Some("NAT") => Some(Forwarding::Nat),
            Some("DR") => Some(Forwarding::Dr),
            Some("TUN") => Some(Forwarding::Tun),
            other => {
                self.warn(
                    node,
                    format!(
                        "`{} {}`: expected NAT, DR or TUN; ignored",
                        node.keyword,
                        other.unwrap_or("")
                    ),
                );
                None
            }
        }
    }

    /// `sorry_server IP PORT`: a backup backend, used only while no real server is up.
    fn sorry_server(&mut self, node: &Node, vips: &[SocketAddr]) -> Option<Real> {
        let addr = self.server_address(node, vips)?;
        if node.args.len() > 2 {
            self.warn(
                node,
                format!(
                    "sorry_server options {:?} are not translated",
                    node.args[2..].join(" ")
                ),
            );
        }
        Some(Real {
            backend: Backend {
                backup: true,
                ..Backend::new(addr)
            },
            line: node.line,
        })
    }

    /// `real_server IP [PORT]` or `sorry_server IP [PORT]`: the address, with the virtual
    /// server's port when none is given (as keepalived does for DR).
    fn server_address(&mut self, node: &Node, vips: &[SocketAddr]) -> Option<SocketAddr> {
        let ip = node.arg().and_then(|a| a.parse::<IpAddr>().ok());
        let port = match node.args.get(1).map(|p| p.parse::<u16>()) {
            Some(Ok(p)) if p != 0 => Some(p),
            Some(_) => None,
            None => vips.first().map(SocketAddr::port),
        };
        match (ip, port) {
            (Some(ip), Some(port)) => {
                if vips.first().is_some_and(|v| v.is_ipv4() != ip.is_ipv4()) {
                    self.warn(
                        node,
                        format!(
                            "{} {ip}: not of the virtual server's address family; not translated",
                            node.keyword
                        ),
                    );
                    return None;
                }
                Some(SocketAddr::new(ip, port))
            }
            _ => {
                self.warn(
                    node,
                    format!(
                        "`{} {}`: expected an IP address and a port of 1..=65535; not translated",
                        node.keyword,
                        node.args.join(" ")
                    ),
                );
                None
            }
        }
    }

    /// One `real_server`: its backend and the check its first translated checker became.
    fn real_server(
        &mut self,
        node: &Node,
        vs: &str,
        vips: &[SocketAddr],
        vs_timing: &Timing,
    ) -> Option<(Real, Option<Check>)> {
        let addr = self.server_address(node, vips)?;
        let mut backend = Backend::new(addr);
        let mut timing = Timing::default();
        let mut checkers: Vec<&Node> = Vec::new();
        for child in node.block() {
            let key = child.keyword.as_str();
            match key {
                // Read as u64 so that LVS's larger weights can be scaled down afterwards.
                "weight" => {
                    if let Some(w) = self.uint::<u32>(child, 0, i64::from(i32::MAX)) {
                        backend.weight = w;
                    }
                }
                "delay_loop" => timing.delay_loop_ms = self.positive_seconds(child),
                "connect_timeout" => timing.connect_timeout_ms = self.positive_seconds(child),
                "retry" => timing.retry = self.uint(child, 0, 99),
                "delay_before_retry" => timing.delay_before_retry_ms = self.seconds_ms(child),
                "virtualhost" => match child.arg() {
                    Some(h) => timing.virtualhost = Some(h.to_string()),
                    None => self.warn(child, "`virtualhost` without a name; ignored"),
                },
                "inhibit_on_failure" => {}
                "lvs_method" => {
                    if let Some(f) = self.forwarding(child) {
                        if f != Forwarding::Nat {
                            self.warn(
                                child,
                                "`lvs_method` of a real server is not translated: the pool forwards \
                                 to every backend the same way (NAT)",
                            );
                        }
                    }
                }
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => checkers.push(child),
                "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "FILE_CHECK"
                | "BFD_CHECK" => self.warn(
                    child,
                    format!(
                        "`{key}` is not translated: ha-lb checks are tcp, http, https, exec and \
                         process (a MISC_CHECK-style exec check can run your own probe)"
                    ),
                ),
                "uthreshold" | "lthreshold" => self.warn(
                    child,
                    format!(
                        "`{key}` is not translated: a NAT-mode pool has no connection limit per \
                         backend"
                    ),
                ),
                "notify_up" | "notify_down" => self.warn(
                    child,
                    format!(
                        "`{key}` is not translated: ha-lb runs no command on a backend's state \
                         change (its metrics and `ha-lb status` show it)"
                    ),
                ),
                "alpha" => self.warn(
                    child,
                    "`alpha` is not translated: a backend's first check result decides its state",
                ),
                "warmup" => self.warn(
                    child,
                    "`warmup` is not translated: ha-lb runs each check's first probe at start",
                ),
                "smtp_alert" | "snmp_name" => self.warn(
                    child,
                    format!("`{key}` is not translated: ha-lb sends no mail or SNMP"),
                ),
                _ => self.not_translated(child, "real_server"),
            }
        }
        let timing = timing.over(vs_timing);
        let mut check = None;
        for checker in checkers {
            if check.is_some() {
                self.warn(
                    checker,
                    format!(
                        "`{}` is not translated: real_server {addr} of {vs} already has a check (an \
                         ha-lb backend has one; keepalived wants all of them up)",
                        checker.keyword
                    ),
                );
                continue;
            }
            check = self.checker(checker, addr, &timing);
        }
        Some((
            Real {
                backend,
                line: node.line,
            },
            check,
        ))
    }

    /// One checker block as an ha-lb check, or `None` (warned) when it cannot be.
    fn checker(&mut self, node: &Node, rs: SocketAddr, inherited: &Timing) -> Option<Check> {
        let (check, delay_before_retry_ms) = self.checker_body(node, rs, inherited)?;
        let retry = u64::from(check.fall - 1);
        let interval_ms = check.interval_ms;
        if retry > 0 && delay_before_retry_ms != interval_ms {
            let secs = |ms: u64| ms as f64 / 1000.0;
            self.warn(
                node,
                format!(
                    "{}: `retry {retry}` is fall = {} and the retries run every delay_loop ({} s), \
                     not after delay_before_retry ({} s): a dead server is down after up to {} s \
                     instead of {} s; lower interval_ms to detect faster",
                    node.keyword,
                    check.fall,
                    secs(interval_ms),
                    secs(delay_before_retry_ms),
                    secs(interval_ms * (retry + 1)),
                    secs(interval_ms + retry * delay_before_retry_ms),
                ),
            );
        }
        Some(check)
    }

    /// The check of a checker block and the delay_before_retry in force.
    fn checker_body(
        &mut self,
        node: &Node,
        rs: SocketAddr,
        inherited: &Timing,
    ) -> Option<(Check, u64)> {
        let kind = match node.keyword.as_str() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" => CheckKind::Http,
            "SSL_GET" => CheckKind::Https,
            _ => CheckKind::Exec,
        };
        let http = matches!(kind, CheckKind::Http | CheckKind::Https);
        let mut own = Timing::default();
        let mut connect_ip: Option<IpAddr> = None;
        let mut connect_port: Option<u16> = None;
        let mut urls: Vec<&Node> = Vec::new();
        let mut command: Option<Vec<String>> = None;
        let mut misc_timeout: Option<u64> = None;
        let mut run_as: Option<String> = None;
        let mut sni_name: Option<String> = None;
        let mut enable_sni = false;
        for child in node.block() {
            let key = child.keyword.as_str();
            match key {
                "connect_ip" if kind != CheckKind::Exec => {
                    match child.arg().map(str::parse::<IpAddr>) {
                        Some(Ok(ip)) => connect_ip = Some(ip),
                        _ => self.warn(child, "`connect_ip` needs an IP address; ignored"),
                    }
                }
                "connect_port" if kind != CheckKind::Exec => {
                    connect_port = self.uint(child, 1, 65535);
                }
                "connect_timeout" if kind != CheckKind::Exec => {
                    own.connect_timeout_ms = self.positive_seconds(child);
                }
                "retry" | "nb_get_retry" => own.retry = self.uint(child, 0, 99),
                "delay_before_retry" => own.delay_before_retry_ms = self.seconds_ms(child),
                "delay_loop" => own.delay_loop_ms = self.positive_seconds(child),
                "virtualhost" if http => match child.arg() {
                    Some(h) => own.virtualhost = Some(h.to_string()),
                    None => self.warn(child, "`virtualhost` without a name; ignored"),
                },
                "url" if http => urls.push(child),
                "sni_name" if kind == CheckKind::Https => match child.arg() {
                    Some(n) => sni_name = Some(n.to_string()),
                    None => self.warn(child, "`sni_name` without a name; ignored"),
                },
                "enable_sni" if kind == CheckKind::Https => enable_sni = true,
                "http_protocol" if http => self.warn(
                    child,
                    format!(
                        "`http_protocol {}` is not translated: ha-lb's check sends HTTP/1.1 with \
                         `Connection: close`",
                        child.args.join(" ")
                    ),
                ),
                "fast_recovery" | "tls_compliant" if http => {
                    self.warn(child, format!("`{key}` is not translated"))
                }
                "misc_path" if kind == CheckKind::Exec => {
                    let argv = split_command(&child.args.join(" "));
                    if argv.is_empty() {
                        self.warn(child, "`misc_path` without a command; ignored");
                    } else {
                        command = Some(argv);
                    }
                }
                "misc_timeout" if kind == CheckKind::Exec => {
                    misc_timeout = self.positive_seconds(child);
                }
                "misc_dynamic" if kind == CheckKind::Exec => self.warn(
                    child,
                    "`misc_dynamic` is not translated: the script's exit status is success (0) or \
                     failure (anything else); statuses 2 and up do not set the weight",
                ),
                "user" if kind == CheckKind::Exec => match super::user_group(&child.args) {
                    Some(u) => run_as = Some(u),
                    None => self.warn(child, "`user` without a name; ignored"),
                },
                "bindto" | "bind_port" | "bind_if" | "fwmark" => self.warn(
                    child,
                    format!(
                        "`{key}` is not translated: the check connects from the address and \
                         interface the routing table picks"
                    ),
                ),
                "warmup" => self.warn(
                    child,
                    "`warmup` is not translated: ha-lb runs each check's first probe at start",
                ),
                "alpha" => self.warn(
                    child,
                    "`alpha` is not translated: a backend's first check result decides its state",
                ),
                "log_all_failures" => self.warn(
                    child,
                    "`log_all_failures` is not translated: ha-lb logs each state change",
                ),
                _ => self.not_translated(child, &node.keyword),
            }
        }
        let timing = own.over(inherited);
        // keepalived's per-type defaults (check_api.c, check_http.c, check_misc.c).
        let (default_retry, default_delay_before_retry_ms) = match kind {
            CheckKind::Exec => (0, 1000),
            CheckKind::Http | CheckKind::Https => (1, 3000),
            _ => (1, 1000),
        };
        let interval_ms = timing.delay_loop_ms.unwrap_or(DEFAULT_DELAY_LOOP_MS);
        let retry = timing.retry.unwrap_or(default_retry);
        let delay_before_retry_ms = timing
            .delay_before_retry_ms
            .unwrap_or(default_delay_before_retry_ms);
        let mut check = keepalived_check(kind, interval_ms);
        check.fall = retry + 1;
        if kind == CheckKind::Exec {
            let Some(command) = command else {
                self.warn(
                    node,
                    format!("MISC_CHECK of real_server {rs} has no `misc_path`; not translated"),
                );
                return None;
            };
            self.inspect_script(node, &command[0]);
            check.command = Some(command);
            check.run_as = run_as;
            check.timeout_ms = misc_timeout;
            return Some((check, delay_before_retry_ms));
        }
        check.timeout_ms = Some(
            timing
                .connect_timeout_ms
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        );
        if connect_ip.is_some() || connect_port.is_some() {
            check.address = Some(SocketAddr::new(
                connect_ip.unwrap_or(rs.ip()),
                connect_port.unwrap_or(rs.port()),
            ));
        }
        if !http {
            return Some((check, delay_before_retry_ms));
        }
        let mut first: Option<(String, Vec<u16>, Option<String>)> = None;
        for url in urls {
            if first.is_some() {
                self.warn(
                    url,
                    format!(
                        "a second `url` of {} is not translated: an ha-lb check requests one path",
                        node.keyword
                    ),
                );
                continue;
            }
            first = self.url(url);
        }
        let Some((path, statuses, url_host)) = first else {
            self.warn(
                node,
                format!(
                    "{} of real_server {rs} has no `url` with a `path`; not translated (keepalived \
                     ignores it too)",
                    node.keyword
                ),
            );
            return None;
        };
        check.path = Some(path);
        check.expect_status = Some(statuses);
        check.host = url_host.or(timing.virtualhost.clone());
        if kind == CheckKind::Https {
            // keepalived's SSL_GET does not verify the server certificate.
            let server_name = sni_name.or_else(|| enable_sni.then(|| check.host.clone()).flatten());
            check.tls = Some(Tls {
                server_name,
                client_cert_file: self.ssl.certificate.clone(),
                client_key_file: self.ssl.key.clone(),
                insecure_skip_verify: true,
                ..Tls::default()
            });
            self.warn(
                node,
                "SSL_GET: the server certificate is not verified (keepalived does not verify it \
                 either): set tls.ca_file and remove insecure_skip_verify to verify it",
            );
        }
        Some((check, delay_before_retry_ms))
    }

    /// A `url { path P  status_code C...  digest D  virtualhost H }` block: path, statuses and
    /// host.
    fn url(&mut self, node: &Node) -> Option<(String, Vec<u16>, Option<String>)> {
        let mut path = None;
        let mut statuses: BTreeSet<u16> = BTreeSet::new();
        let mut host = None;
        for child in node.block() {
            let key = child.keyword.as_str();
            match key {
                "path" => match child.arg() {
                    Some(p) if p.starts_with('/') => path = Some(p.to_string()),
                    other => self.warn(
                        child,
                        format!(
                            "`path {}`: an ha-lb check path starts with `/`; ignored",
                            other.unwrap_or("")
                        ),
                    ),
                },
                "status_code" => {
                    for word in &child.args {
                        match status_range(word) {
                            Some(r) => statuses.extend(r),
                            None => self.warn(
                                child,
                                format!(
                                    "status_code {word:?}: expected a status or a range of 100..=599; ignored"
                                ),
                            ),
                        }
                    }
                }
                "virtualhost" => match child.arg() {
                    Some(h) => host = Some(h.to_string()),
                    None => self.warn(child, "`virtualhost` without a name; ignored"),
                },
                "digest" => self.warn(
                    child,
                    "`digest` is not translated: ha-lb does not hash the body; use expect_body = \
                     \"TEXT\" to match a string in it",
                ),
                k if k.starts_with("regex") => self.warn(
                    child,
                    format!(
                        "`{k}` is not translated: ha-lb matches a plain string in the body \
                         (expect_body), not a regular expression"
                    ),
                ),
                "tls_compliant" => self.warn(child, "`tls_compliant` is not translated"),
                _ => self.not_translated(child, "url"),
            }
        }
        let path = path?;
        if statuses.is_empty() {
            statuses.extend(DEFAULT_HTTP_STATUSES);
        }
        Some((path, statuses.into_iter().collect(), host))
    }

    /// `lb_algo`: what NAT mode can do. LVS `rr` ignores weights (all 1, 0 stays drained).
    fn algorithm(
        &mut self,
        vs: &Node,
        algo: Option<&(String, Node)>,
        reals: &mut [Real],
    ) -> Algorithm {
        let (name, at) = match algo {
            Some((name, at)) => (name.as_str(), at),
            // keepalived's default scheduler.
            None => ("wlc", vs),
        };
        match name {
            "rr" => {
                if reals.iter().any(|r| r.backend.weight > 1) {
                    self.warn(
                        at,
                        "`lb_algo rr` ignores weights: the backends are written with weight 1 \
                         (0 stays drained); use wrr to weigh them",
                    );
                    for r in reals.iter_mut().filter(|r| r.backend.weight > 1) {
                        r.backend.weight = 1;
                    }
                }
                Algorithm::Roundrobin
            }
            "wrr" => Algorithm::Roundrobin,
            "sh" => Algorithm::Sourcehash,
            "mh" => {
                self.warn(
                    at,
                    "`lb_algo mh` is imported as source hashing (algorithm = \"sourcehash\"): not \
                     consistent, a change of the healthy backends moves most clients (maglev \
                     hashing needs mode = \"proxy\" with algorithm = \"maglev\")",
                );
                Algorithm::Sourcehash
            }
            "lc" | "wlc" | "sed" | "nq" | "lblc" | "lblcr" => {
                let what = if algo.is_none() {
                    "no `lb_algo`: keepalived's default wlc".to_string()
                } else {
                    format!("`lb_algo {name}`")
                };
                self.warn(
                    at,
                    format!(
                        "{what} (least connections) is imported as weighted round robin: the \
                         kernel NAT data plane does not count connections; for least connections \
                         use mode = \"proxy\" with algorithm = \"leastconn\" (backends then see \
                         the balancer's address)"
                    ),
                );
                Algorithm::Roundrobin
            }
            other => {
                self.warn(
                    at,
                    format!(
                        "`lb_algo {other}` has no NAT-mode equivalent; imported as weighted round robin"
                    ),
                );
                Algorithm::Roundrobin
            }
        }
    }

    /// LVS weights go to 2^31 - 1, ha-lb's to 1000: scaled down together when any is larger,
    /// keeping the ratios (a non-zero weight stays at least 1).
    fn scale_weights(&mut self, vs: &Node, reals: &mut [Real]) {
        let max = reals.iter().map(|r| r.backend.weight).max().unwrap_or(0);
        if max <= MAX_WEIGHT {
            return;
        }
        for r in reals.iter_mut() {
            let w = u64::from(r.backend.weight) * u64::from(MAX_WEIGHT) / u64::from(max);
            r.backend.weight = if r.backend.weight == 0 {
                0
            } else {
                u32::try_from(w.max(1)).unwrap_or(MAX_WEIGHT)
            };
        }
        self.warn(
            vs,
            format!(
                "real_server weights above {MAX_WEIGHT} (ha-lb's largest) are scaled down by \
                 {max}/{MAX_WEIGHT}, keeping their ratios"
            ),
        );
    }

    /// A name for `check` in virtual server `vs`: an identical check already made for it is
    /// shared (one template check probes each backend at its own address).
    fn add_vs_check(
        &mut self,
        vs: &str,
        check: Check,
        checks: &mut Vec<(String, Check)>,
    ) -> String {
        if let Some((name, _)) = checks.iter().find(|(_, c)| *c == check) {
            return name.clone();
        }
        let name = match checks.len() {
            0 => format!("{vs}-check"),
            n => format!("{vs}-check-{}", n + 1),
        };
        checks.push((name.clone(), check));
        name
    }

    /// `lvs_sync_daemon IF ...` (global_defs) or `lvs_sync_daemon_interface IF` (an
    /// instance): IPVS's connection sync, whose ha-lb counterpart needs addresses keepalived
    /// does not give.
    pub(super) fn lvs_sync_daemon(&mut self, node: &Node) {
        let interface = node.arg().unwrap_or("IF");
        self.warn(
            node,
            format!(
                "`{}` (IPVS connection sync) is not translated: for connections that survive a \
                 failover add [conntrack_sync] with interface = \"{interface}\", this node's \
                 address on it as local and the peer's as peer, and nat_source = \"vip\" on the \
                 NAT listeners",
                node.keyword
            ),
        );
    }

    /// A warning at another line of `node`'s file.
    fn warn_line(&mut self, node: &Node, line: usize, message: String) {
        let at = Node {
            line,
            ..node.clone()
        };
        self.warn(&at, message);
    }
}

/// `SSL { password ca certificate key }`: client certificate of every SSL_GET check.
#[derive(Debug, Clone, Default)]
pub(super) struct SslDefaults {
    certificate: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
}

impl Translator {
    /// The top-level `SSL` block.
    pub(super) fn ssl_block(&mut self, node: &Node) {
        for child in node.block() {
            match (child.keyword.as_str(), child.arg()) {
                ("certificate", Some(p)) => self.ssl.certificate = Some(p.into()),
                ("key", Some(p)) => self.ssl.key = Some(p.into()),
                ("ca", Some(_)) => self.warn(
                    child,
                    "`ca` is not translated: keepalived does not verify SSL_GET servers with it; set \
                     tls.ca_file in the checks (and remove insecure_skip_verify) to verify",
                ),
                ("password", Some(_)) => self.warn(
                    child,
                    "`password` is not translated: ha-lb reads unencrypted PEM keys; decrypt the key \
                     (openssl pkey -in KEY -out KEY.plain)",
                ),
                _ => self.not_translated(child, "SSL"),
            }
        }
        if self.ssl.certificate.is_some() != self.ssl.key.is_some() {
            self.warn(
                node,
                "SSL: a client certificate needs both `certificate` and `key`; not translated",
            );
            self.ssl = SslDefaults::default();
        }
    }
}

/// `200` or `200-299` as statuses, if every one is in 100..=599.
fn status_range(word: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (lo, hi) = match word.split_once('-') {
        Some((lo, hi)) => (lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?),
        None => {
            let s = word.parse::<u16>().ok()?;
            (s, s)
        }
    };
    ((100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi).then_some(lo..=hi)
}

/// keepalived's group ranges: `192.0.2.10-20` (last byte) or `2001:db8::10-1f` (last group,
/// hexadecimal), or one address.
fn expand_range(text: &str) -> Result<Vec<IpAddr>, String> {
    let Some((first, last)) = text.rsplit_once('-') else {
        return text
            .parse::<IpAddr>()
            .map(|ip| vec![ip])
            .map_err(|_| "not an IP address".to_string());
    };
    let first: IpAddr = first
        .parse()
        .map_err(|_| "not an IP address range".to_string())?;
    let ips: Vec<IpAddr> = match first {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let end: u8 = last
                .parse()
                .map_err(|_| format!("range end {last:?} is not a byte"))?;
            if end < o[3] {
                return Err(format!("range end {end} is below the start {}", o[3]));
            }
            (o[3]..=end)
                .map(|b| IpAddr::from([o[0], o[1], o[2], b]))
                .collect()
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let end = u16::from_str_radix(last, 16)
                .map_err(|_| format!("range end {last:?} is not a hexadecimal group"))?;
            if end < s[7] || u32::from(end - s[7]) >= MAX_RANGE {
                return Err(format!(
                    "range end {last} is below the start or more than {MAX_RANGE} addresses after it"
                ));
            }
            (s[7]..=end)
                .map(|g| {
                    let mut seg = s;
                    seg[7] = g;
                    IpAddr::from(seg)
                })
                .collect()
        }
    };
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_on_the_last_byte_or_group() {
        let v4 = expand_range("192.0.2.10-12").unwrap_or_default();
        assert_eq!(v4.len(), 3);
        assert_eq!(v4[2], "192.0.2.12".parse::<IpAddr>().unwrap_or(v4[0]));
        let v6 = expand_range("2001:db8::a-c").unwrap_or_default();
        assert_eq!(v6.len(), 3);
        assert!(expand_range("192.0.2.10-9").is_err());
        assert!(expand_range("192.0.2.10-300").is_err());
        assert!(expand_range("2001:db8::1-ffff").is_err());
        assert_eq!(expand_range("192.0.2.1").map(|v| v.len()), Ok(1));
    }

    #[test]
    fn status_ranges() {
        assert_eq!(status_range("200"), Some(200..=200));
        assert_eq!(status_range("200-299"), Some(200..=299));
        assert_eq!(status_range("99"), None);
        assert_eq!(status_range("300-200"), None);
        assert_eq!(status_range("2xx"), None);
    }
}
