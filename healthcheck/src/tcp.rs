//! TCP check: the target accepts a connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};

use crate::check::Check;
use crate::error::ConfigError;
use crate::failure::{Failure, Outcome};

/// Configuration of a [`TcpCheck`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// The address to connect to, `host:port` (a host name is resolved at each check).
    pub address: String,
    /// The local address to connect from, e.g. to test a path through one interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
}

/// Connects to a TCP address and closes the connection at once.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    target: Target,
    source: Option<IpAddr>,
}

/// Where to connect: a literal socket address is parsed once; a name is resolved each time so
/// that DNS changes are followed.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Addr(SocketAddr),
    Name(String),
}

impl Target {
    pub(crate) fn parse(text: &str, field: &'static str) -> Result<Target, ConfigError> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Target::Addr(addr));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Target::Name(text.to_owned()))
            }
            _ => Err(ConfigError::Invalid {
                field,
                reason: format!("{text:?} is not host:port (e.g. \"127.0.0.1:6443\")"),
            }),
        }
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, Failure> {
        match self {
            Target::Addr(a) => Ok(vec![*a]),
            Target::Name(n) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host(n.as_str())
                    .await
                    .map_err(|e| Failure::Resolve(format!("{n}: {e}")))?
                    .collect();
                if addrs.is_empty() {
                    return Err(Failure::Resolve(format!("{n}: no addresses")));
                }
                Ok(addrs)
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Name(n) => write!(f, "{n}"),
        }
    }
}

/// Connects to the first address of `target` that answers, from `source` if given.
pub(crate) async fn connect(target: &Target, source: Option<IpAddr>) -> Result<TcpStream, Failure> {
    if let Target::Addr(addr) = target {
        return connect_one(*addr, source)
            .await
            .map_err(|e| Failure::from_io(&e));
    }
    let mut last = None;
    for addr in target.resolve().await? {
        match connect_one(addr, source).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(Failure::from_io(&e)),
        }
    }
    // `resolve` never returns an empty list, so `last` is set; stay total anyway.
    Err(last.unwrap_or_else(|| Failure::Resolve(format!("{target}: no addresses"))))
}

async fn connect_one(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

impl TcpCheck {
    /// Builds the check, rejecting an address that is not `host:port`.
    pub fn new(config: &TcpConfig) -> Result<TcpCheck, ConfigError> {
        Ok(TcpCheck {
            target: Target::parse(&config.address, "address")?,
            source: config.source,
        })
    }
}

#[async_trait]
impl Check for TcpCheck {
    async fn check(&self) -> Outcome {
        let stream = connect(&self.target, self.source).await?;
        // Close with a reset, as haproxy does: no FIN exchange, no TIME_WAIT left on our side
        // at one probe per interval, and the target's application never sees the probe.
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.target)
    }
}
