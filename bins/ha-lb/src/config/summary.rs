//! A short human summary of a valid configuration, printed by `ha-lb check-config`.

use std::fmt::Write as _;

use super::Config;

impl Config {
    /// One line per instance, anycast group, sync group, check, pool and listener, and the admin endpoint.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(id) = &self.global.router_id {
            let _ = writeln!(out, "router_id {id}");
        }
        for (name, i) in &self.instances {
            let vips: Vec<String> = i.vips.iter().map(|v| v.to_string()).collect();
            let transport = if i.is_unicast() {
                format!("unicast to {} peer(s)", i.unicast_peers.len())
            } else {
                "multicast".to_string()
            };
            let _ = write!(
                out,
                "instance {name}: {} VRID {} VRRPv{} priority {} advert {} ms, {transport}, preempt {}, VIPs {}",
                i.interface,
                i.vrid,
                i.version,
                i.priority,
                i.advert_interval_ms,
                if i.preempt { "on" } else { "off" },
                vips.join(" ")
            );
            let tracks: Vec<String> = i
                .track_checks
                .iter()
                .map(|t| format!("check {} ({:+})", t.check, t.weight))
                .chain(
                    i.track_pools
                        .iter()
                        .map(|t| format!("pool {} ({:+})", t.pool, t.weight)),
                )
                .chain(
                    i.track_interfaces
                        .iter()
                        .map(|t| format!("interface {} ({:+})", t.interface, t.weight)),
                )
                .collect();
            if !tracks.is_empty() {
                let _ = write!(out, "; tracks {}", tracks.join(", "));
            }
            out.push('\n');
        }
        for (name, a) in &self.anycast {
            let vips: Vec<String> = a.vips.iter().map(|v| v.address.to_string()).collect();
            let tracks: Vec<String> = a
                .track_checks
                .iter()
                .map(|c| format!("check {c}"))
                .chain(a.track_pools.iter().map(|p| format!("pool {p}")))
                .chain(a.track_interfaces.iter().map(|i| format!("interface {i}")))
                .collect();
            let _ = writeln!(
                out,
                "anycast {name}: VIPs {} on {} while healthy ({}); withdraw wait {} ms",
                vips.join(" "),
                a.interface,
                if tracks.is_empty() {
                    "tracks nothing".to_owned()
                } else {
                    format!("tracks {}", tracks.join(", "))
                },
                a.withdraw_wait_ms
            );
        }
        for (name, g) in &self.sync_groups {
            let _ = writeln!(out, "sync group {name}: {}", g.instances.join(", "));
        }
        for (name, c) in &self.checks {
            let _ = writeln!(
                out,
                "check {name}: {} every {} ms, timeout {} ms, rise {} fall {}",
                c.kind.as_str(),
                c.interval_ms,
                c.effective_timeout_ms(),
                c.rise,
                c.fall
            );
        }
        for (name, p) in &self.pools {
            let _ = writeln!(
                out,
                "pool {name}: {} over {} backend(s)",
                p.algorithm.as_str(),
                p.backends.len()
            );
        }
        for (name, l) in &self.listeners {
            match l.mode {
                super::ListenerMode::Proxy => {
                    let _ = writeln!(out, "listener {name}: {} -> pool {}", l.listen, l.pool);
                }
                super::ListenerMode::Nat => {
                    let _ = writeln!(
                        out,
                        "listener {name}: {} -> pool {} (nat, source {})",
                        l.listen,
                        l.pool,
                        l.effective_nat_source().as_str()
                    );
                }
            }
        }
        if let Some(c) = &self.conntrack_sync {
            let _ = writeln!(
                out,
                "conntrack sync: conntrackd FTFW on {} from {} to {} port {}, driven by instance {}",
                c.interface,
                c.local,
                c.peer,
                c.port,
                c.driving_instance(self.instances.keys()).unwrap_or("?")
            );
        }
        match &self.admin {
            Some(a) => {
                let _ = writeln!(out, "admin endpoint: http://{}", a.listen);
            }
            None => out.push_str("admin endpoint: off\n"),
        }
        out
    }
}
