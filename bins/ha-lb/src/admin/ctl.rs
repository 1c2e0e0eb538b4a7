//! `ha-lb ctl`: the client of the admin endpoint's write requests (see [`super::control`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::control::percent_encode;

/// What `ha-lb ctl` asks for, before it becomes a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlAction {
    /// `backend POOL ADDRESS drain`.
    Drain,
    /// `backend POOL ADDRESS disable [--grace-ms N]`.
    Disable(Option<u64>),
    /// `backend POOL ADDRESS enable`.
    Enable,
    /// `backend POOL ADDRESS weight N`.
    Weight(u32),
}

/// The path and query of a backend request.
pub fn backend_path(pool: &str, backend: SocketAddr, action: &CtlAction) -> String {
    let base = format!(
        "/backends/{}/{}",
        percent_encode(pool),
        percent_encode(&backend.to_string())
    );
    match action {
        CtlAction::Drain => format!("{base}/drain"),
        CtlAction::Disable(None) => format!("{base}/disable"),
        CtlAction::Disable(Some(ms)) => format!("{base}/disable?grace_ms={ms}"),
        CtlAction::Enable => format!("{base}/enable"),
        CtlAction::Weight(n) => format!("{base}/weight/{n}"),
    }
}

/// The path of a maintenance request.
pub fn maintenance_path(instance: &str, on: bool) -> String {
    format!(
        "/instances/{}/maintenance/{}",
        percent_encode(instance),
        if on { "on" } else { "off" }
    )
}

/// The path of an anycast group's maintenance request.
pub fn anycast_maintenance_path(group: &str, on: bool) -> String {
    format!(
        "/anycast/{}/maintenance/{}",
        percent_encode(group),
        if on { "on" } else { "off" }
    )
}

/// POSTs `path` to the admin endpoint at `addr` (HTTP/1.0, one request) with the bearer
/// `token` if any; returns the answer's text when it is 200.
///
/// # Errors
///
/// The endpoint's refusal (its status line and text) or why it could not be reached.
pub fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<String, String> {
    let io = |e: std::io::Error| {
        format!("cannot reach the admin endpoint at {addr}: {e} (is ha-lb running with [admin] configured?)")
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: ha-lb\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .map_err(io)?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(io)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("unexpected answer from {addr}: no HTTP header"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
        Ok(body.trim_end().to_owned())
    } else {
        Err(format!("{status}: {}", body.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_the_parser() {
        use crate::admin::control::parse;
        use crate::runtime::balancer::BackendAction;
        use crate::runtime::control::Request;
        let b: SocketAddr = "[2001:db8::7]:6443".parse().unwrap();
        let path = backend_path("api server", b, &CtlAction::Disable(Some(100)));
        let (p, q) = path.split_once('?').unwrap();
        match parse(p, Some(q)).unwrap() {
            Request::Backend {
                pool,
                backend,
                action,
                grace,
            } => {
                assert_eq!(pool, "api server");
                assert_eq!(backend, b);
                assert_eq!(action, BackendAction::Disable);
                assert_eq!(grace, Some(Duration::from_millis(100)));
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(
            parse(&maintenance_path("VI_1", false), None).unwrap(),
            Request::Maintenance {
                instance: "VI_1".into(),
                on: false
            }
        );
    }
}
