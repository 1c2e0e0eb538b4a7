//! `ha-lb status`: the status document as text tables.

use super::NodeStatus;

/// The status as text tables.
pub fn render(s: &NodeStatus) -> String {
    let mut out = format!("node {}\n\n", s.router_id);
    out.push_str(&format!(
        "{:<16} {:<10} {:>4} {:<22} {:>8} {:>12} {:<24} {}\n",
        "INSTANCE", "INTERFACE", "VRID", "STATE", "PRIORITY", "TRANSITIONS", "VIPS", "REASON"
    ));
    for i in &s.instances {
        // A member its sync group holds back shows it: "Backup*".
        let mut state = if i.sync_held && i.wants_master {
            format!("{}*", i.state)
        } else {
            i.state.clone()
        };
        if i.maintenance {
            state.push_str(" (maintenance)");
        }
        out.push_str(&format!(
            "{:<16} {:<10} {:>4} {:<22} {:>8} {:>12} {:<24} {}\n",
            i.name,
            i.interface,
            i.vrid,
            state,
            format!("{}/{}", i.priority, i.base_priority),
            i.counters.master_transitions,
            i.vips.join(","),
            i.reason
        ));
    }
    if !s.anycast.is_empty() {
        out.push_str(&format!(
            "\n{:<16} {:<10} {:<10} {:<24} {}\n",
            "ANYCAST", "INTERFACE", "STATE", "VIPS", "REASON"
        ));
        for a in &s.anycast {
            out.push_str(&format!(
                "{:<16} {:<10} {:<10} {:<24} {}\n",
                a.name,
                a.interface,
                if a.announced {
                    "announced"
                } else {
                    "withdrawn"
                },
                a.vips.join(","),
                a.reason
            ));
        }
    }
    out.push_str(&format!("\n{:<16} {:<28} {}\n", "CHECK", "TARGET", "STATE"));
    for c in &s.checks {
        let target = c
            .target
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!("{:<16} {:<28} {}\n", c.check, target, c.state));
    }
    out.push_str(&format!(
        "\n{:<16} {:<28} {:<12} {:>6} {:>7} {:>12} {:>10} {}\n",
        "POOL", "BACKEND", "STATE", "WEIGHT", "ACTIVE", "CONNECTIONS", "ERRORS", "ADMIN"
    ));
    for p in &s.pools {
        for b in &p.backends {
            let state = if b.ejected {
                format!("{} ejected", b.state)
            } else {
                b.state.clone()
            };
            out.push_str(&format!(
                "{:<16} {:<28} {:<12} {:>6} {:>7} {:>12} {:>10} {}\n",
                p.name,
                b.address,
                state,
                b.weight,
                b.active,
                b.connections,
                b.connect_errors,
                b.admin.as_deref().unwrap_or("-")
            ));
        }
    }
    out.push_str(&format!(
        "\n{:<28} {:<16} {:>9} {:>7} {:>10}\n",
        "LISTENER", "POOL", "ACCEPTED", "ACTIVE", "NO_BACKEND"
    ));
    for l in &s.listeners {
        out.push_str(&format!(
            "{:<28} {:<16} {:>9} {:>7} {:>10}\n",
            l.listen, l.pool, l.accepted, l.active, l.no_backend
        ));
    }
    if !s.nat.is_empty() {
        out.push_str(&format!(
            "\n{:<28} {:<28} {:>5} {:>7} {:>11} {:>11} {:>14} {:>14}\n",
            "NAT LISTENER",
            "BACKEND",
            "SLOTS",
            "OPEN",
            "ESTABLISHED",
            "FLOWS",
            "BYTES_IN",
            "BYTES_OUT"
        ));
        for l in &s.nat {
            for b in &l.backends {
                out.push_str(&format!(
                    "{:<28} {:<28} {:>5} {:>7} {:>11} {:>11} {:>14} {:>14}\n",
                    format!("{} ({})", l.listen, l.nat_source),
                    b.address,
                    b.slots,
                    b.flows,
                    b.established,
                    b.flows_total,
                    b.bytes_from_clients_total,
                    b.bytes_to_clients_total
                ));
            }
            if let Some(e) = &l.error {
                out.push_str(&format!("{:<28} flows unknown: {e}\n", l.listen));
            }
        }
    }
    out
}
