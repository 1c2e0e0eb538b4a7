//! `ha-lb status`: fetches `/status` from a running node's admin endpoint and prints it as
//! tables.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::runtime::status::NodeStatus;

/// Why the status could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The endpoint did not answer.
    #[error("cannot reach the admin endpoint at {addr}: {source} (is ha-lb running with [admin] configured?)")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The answer was not a status document.
    #[error("unexpected answer from {addr}: {detail}")]
    Answer {
        /// Where.
        addr: SocketAddr,
        /// What was wrong.
        detail: String,
    },
}

/// GET `/status` from `addr` (HTTP/1.0, one request).
///
/// # Errors
///
/// [`StatusError`].
pub fn fetch(addr: SocketAddr) -> Result<NodeStatus, StatusError> {
    let connect = |source| StatusError::Connect { addr, source };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(connect)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(connect)?;
    s.write_all(b"GET /status HTTP/1.0\r\nHost: ha-lb\r\n\r\n")
        .map_err(connect)?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(connect)?;
    let answer = |detail: String| StatusError::Answer { addr, detail };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| answer("no HTTP header".into()))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(answer(head.lines().next().unwrap_or_default().to_owned()));
    }
    serde_json::from_str(body).map_err(|e| answer(e.to_string()))
}

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
            "\n{:<28} {:<28} {:>5} {:>7} {:>11} {:>14} {:>14}\n",
            "NAT LISTENER", "BACKEND", "SLOTS", "FLOWS", "ESTABLISHED", "BYTES_IN", "BYTES_OUT"
        ));
        for l in &s.nat {
            for b in &l.backends {
                out.push_str(&format!(
                    "{:<28} {:<28} {:>5} {:>7} {:>11} {:>14} {:>14}\n",
                    format!("{} ({})", l.listen, l.nat_source),
                    b.address,
                    b.slots,
                    b.flows,
                    b.established,
                    b.bytes_from_clients,
                    b.bytes_to_clients
                ));
            }
            if let Some(e) = &l.error {
                out.push_str(&format!("{:<28} flows unknown: {e}\n", l.listen));
            }
        }
    }
    out
}
