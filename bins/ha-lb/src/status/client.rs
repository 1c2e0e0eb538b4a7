//! Fetching `/status` from a running node's admin endpoint.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::NodeStatus;

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
