//! Warnings about a valid configuration: things that work but are probably not what was meant.
//! `ha-lb check-config` prints them; they never make a file invalid.

use std::collections::BTreeSet;

use super::key_path::KeyPath;
use super::listener::{ListenerMode, DEFAULT_IDLE_TIMEOUT_MS};
use super::pool::{
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_FAIL_TIMEOUT_MS, DEFAULT_MAX_FAILS, DEFAULT_RETRIES,
};
use super::validate::Problem;
use super::{Config, Listener};

/// Finds the warnings of a configuration that [`super::validate`] accepted.
pub fn advise(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut used_checks: BTreeSet<&str> = BTreeSet::new();
    for inst in config.instances.values() {
        used_checks.extend(inst.track_checks.iter().map(|t| t.check.as_str()));
    }
    for a in config.anycast.values() {
        used_checks.extend(a.track_checks.iter().map(String::as_str));
    }
    for pool in config.pools.values() {
        used_checks.extend(pool.backends.iter().filter_map(|b| b.check.as_deref()));
    }
    for name in config.checks.keys() {
        if !used_checks.contains(name.as_str()) {
            out.push(Problem {
                path: KeyPath::root().key("checks").key(name),
                message: format!(
                    "check {name:?} is used by no instance, no anycast group and no backend; it will not run"
                ),
                hint: "track it from an instance or an anycast group (track_checks) or a backend (check), or remove it"
                    .into(),
            });
        }
    }
    let used_pools: BTreeSet<&str> = config.listeners.values().map(|l| l.pool.as_str()).collect();
    for name in config.pools.keys() {
        if !used_pools.contains(name.as_str()) {
            out.push(Problem {
                path: KeyPath::root().key("pools").key(name),
                message: format!("pool {name:?} is used by no listener"),
                hint: "add a [listeners.NAME] with pool = this name, or remove the pool".into(),
            });
        }
    }
    for (iname, inst) in &config.instances {
        if inst.address_owner && !inst.preempt {
            out.push(Problem {
                path: KeyPath::root().key("instances").key(iname).key("preempt"),
                message: "preempt = false is ignored for the address owner: it always takes the VIPs \
                          back (RFC 5798; keepalived resets nopreempt at priority 255 too)"
                    .into(),
                hint: "remove preempt = false, or address_owner (with a priority of 1..=254) to let a \
                       lower-priority Master keep the VIPs"
                    .into(),
            });
        }
        for (i, t) in inst.track_pools.iter().enumerate() {
            let Some(pool) = config.pools.get(&t.pool) else {
                continue;
            };
            if pool.backends.iter().all(|b| b.check.is_none()) {
                out.push(Problem {
                    path: KeyPath::root().key("instances").key(iname).key("track_pools").index(i),
                    message: format!(
                        "pool {:?} has no backend with a check: it is only seen down through failed connects",
                        t.pool
                    ),
                    hint: "give the backends a `check` so a dead backend is noticed without client traffic".into(),
                });
            }
        }
    }
    for (aname, a) in &config.anycast {
        if a.track_checks.is_empty() && a.track_pools.is_empty() {
            out.push(Problem {
                path: KeyPath::root().key("anycast").key(aname),
                message: format!("anycast group {aname:?} tracks no check and no pool: it is announced as long as ha-lb runs, whether anything serves or not"),
                hint: "add track_pools = [\"POOL\"] (the pool its listeners forward to) or track_checks".into(),
            });
        }
        for (i, pool) in a.track_pools.iter().enumerate() {
            if config
                .pools
                .get(pool)
                .is_some_and(|p| p.backends.iter().all(|b| b.check.is_none()))
            {
                out.push(Problem {
                    path: KeyPath::root().key("anycast").key(aname).key("track_pools").index(i),
                    message: format!("pool {pool:?} has no backend with a check: it is only seen down through failed connects"),
                    hint: "give the backends a `check` so a dead backend is noticed without client traffic".into(),
                });
            }
        }
        let served = config
            .listeners
            .values()
            .any(|l| a.vips.iter().any(|v| v.address == l.listen.ip()));
        if !served {
            out.push(Problem {
                path: KeyPath::root().key("anycast").key(aname).key("vips"),
                message: format!("no listener serves on the VIPs of anycast group {aname:?}"),
                hint: "add a [listeners.NAME] with listen = \"VIP:PORT\", unless another program serves on them".into(),
            });
        }
    }
    nat_advice(config, &mut out);
    conntrack_advice(config, &mut out);
    if let Some(admin) = &config.admin {
        if !admin.listen.ip().is_loopback() {
            out.push(Problem {
                path: KeyPath::root().key("admin").key("listen"),
                message: format!("the admin endpoint on {} is reachable from other hosts", admin.listen),
                hint: "/metrics and /status have no authentication: keep them on 127.0.0.1 or firewall the port".into(),
            });
        }
    }
    out
}

/// Settings that a NAT listener (the kernel forwards, no connect of ha-lb's own) does not
/// use: set on such a listener, or on a pool that only NAT listeners use, they are warned
/// about with the key.
fn nat_advice(config: &Config, out: &mut Vec<Problem>) {
    let nat = |l: &Listener| l.mode == ListenerMode::Nat;
    let mut warn = |path: KeyPath, message: String, hint: &str| {
        out.push(Problem {
            path,
            message,
            hint: hint.into(),
        });
    };
    for (name, l) in config.listeners.iter().filter(|(_, l)| nat(l)) {
        let p = KeyPath::root().key("listeners").key(name);
        if l.idle_timeout_ms != DEFAULT_IDLE_TIMEOUT_MS {
            warn(
                p.key("idle_timeout_ms"),
                "idle_timeout_ms is not used by a NAT listener: the kernel's conntrack timeouts end idle flows".into(),
                "remove it; set net.netfilter.nf_conntrack_tcp_timeout_established to change how long an idle TCP flow lives",
            );
        }
        if !l.non_local_bind {
            warn(
                p.key("non_local_bind"),
                "non_local_bind is not used by a NAT listener: nothing is bound, the kernel rewrites packets to the address whenever they reach this node".into(),
                "remove non_local_bind",
            );
        }
    }
    for (pname, pool) in &config.pools {
        let mut users = config.listeners.values().filter(|l| l.pool == *pname);
        let first = users.next();
        if !first.is_some_and(nat) || !users.all(nat) {
            continue;
        }
        let p = KeyPath::root().key("pools").key(pname);
        let mut unused = |key: &str, set: bool, what: &str| {
            if set {
                warn(
                    p.key(key),
                    format!("{key} is not used in NAT mode: {what}, and pool {pname:?} serves only NAT listeners"),
                    "remove it; in NAT mode only checks take a backend out",
                );
            }
        };
        unused(
            "retries",
            pool.retries != DEFAULT_RETRIES,
            "the kernel sends each connection to one backend and never retries another",
        );
        unused(
            "connect_timeout_ms",
            pool.connect_timeout_ms != DEFAULT_CONNECT_TIMEOUT_MS,
            "the client's own connect runs through to the backend",
        );
        unused(
            "max_fails",
            pool.max_fails != DEFAULT_MAX_FAILS,
            "there is no passive health (ha-lb sees no failed connect)",
        );
        unused(
            "fail_timeout_ms",
            pool.fail_timeout_ms != DEFAULT_FAIL_TIMEOUT_MS,
            "there is no passive health (ha-lb sees no failed connect)",
        );
        unused(
            "slow_start_ms",
            pool.slow_start_ms != 0,
            "a backend coming up gets its full weight at once",
        );
    }
}

/// `[conntrack_sync]` helps NAT listeners with `nat_source = "vip"` only: without one it
/// syncs flows nothing takes over.
fn conntrack_advice(config: &Config, out: &mut Vec<Problem>) {
    if config.conntrack_sync.is_none() {
        return;
    }
    let vip = config
        .listeners
        .values()
        .any(|l| l.mode == ListenerMode::Nat && l.nat_source == Some(super::NatSource::Vip));
    if !vip {
        out.push(Problem {
            path: KeyPath::root().key("conntrack_sync"),
            message: "no NAT listener has nat_source = \"vip\": the synced flows do not survive a \
                      failover (their replies go to the node that forwarded them first)"
                .into(),
            hint: "set mode = \"nat\" and nat_source = \"vip\" on the listeners on the VIP, or remove [conntrack_sync]"
                .into(),
        });
    }
}
