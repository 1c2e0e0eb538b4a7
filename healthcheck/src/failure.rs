//! Why a check failed, typed so that logs and metrics can say why.

use std::fmt;
use std::io;
use std::time::Duration;

/// The outcome of one check: `Ok(())` is healthy, `Err` says why not.
pub type Outcome = Result<(), Failure>;

/// Why a check (or a passive observation) found the target unhealthy.
///
/// Every variant carries enough to be logged on its own; [`Failure::kind`] gives a short, stable
/// label for metrics (a bounded set, unlike the messages).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The check did not finish within its timeout.
    TimedOut(Duration),
    /// The peer actively refused the TCP connection (RST).
    Refused,
    /// No route to the host or network.
    Unreachable(String),
    /// The host name did not resolve.
    Resolve(String),
    /// Another socket error while connecting, sending or receiving.
    Io(String),
    /// The TLS handshake failed (bad certificate, unknown CA, protocol error, ...).
    Tls(String),
    /// The HTTP exchange failed below the status line (malformed response, closed early).
    Http(String),
    /// The server answered with a status that is not expected.
    Status(u16),
    /// The response body did not contain the expected text.
    BodyMismatch,
    /// The program exited with a non-zero code.
    ExitCode(i32),
    /// The program was killed by a signal it did not expect (not our timeout kill).
    Signal(i32),
    /// The program could not be started.
    Spawn(String),
    /// No process with the given name is running.
    NoSuchProcess(String),
    /// The pidfile could not be read or does not hold a PID.
    Pidfile(String),
    /// The PID in the pidfile does not belong to a live process.
    DeadPid(i32),
    /// A failure reported by the data path (see [`crate::PassiveReporter`]).
    Passive(String),
    /// A failure reported by a custom [`crate::Check`] that fits no other variant.
    Other(String),
}

impl Failure {
    /// A short, stable label for the kind of failure, fit for a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::TimedOut(_) => "timeout",
            Failure::Refused => "refused",
            Failure::Unreachable(_) => "unreachable",
            Failure::Resolve(_) => "resolve",
            Failure::Io(_) => "io",
            Failure::Tls(_) => "tls",
            Failure::Http(_) => "http",
            Failure::Status(_) => "status",
            Failure::BodyMismatch => "body",
            Failure::ExitCode(_) => "exit_code",
            Failure::Signal(_) => "signal",
            Failure::Spawn(_) => "spawn",
            Failure::NoSuchProcess(_) => "no_process",
            Failure::Pidfile(_) => "pidfile",
            Failure::DeadPid(_) => "dead_pid",
            Failure::Passive(_) => "passive",
            Failure::Other(_) => "other",
        }
    }

    /// Maps a socket error to the most telling variant.
    pub fn from_io(err: &io::Error) -> Failure {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Failure::Refused,
            io::ErrorKind::TimedOut => Failure::TimedOut(Duration::ZERO),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                Failure::Unreachable(err.to_string())
            }
            _ => Failure::Io(err.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TimedOut(d) if d.is_zero() => write!(f, "timed out"),
            Failure::TimedOut(d) => write!(f, "timed out after {d:?}"),
            Failure::Refused => write!(f, "connection refused"),
            Failure::Unreachable(m) => write!(f, "unreachable: {m}"),
            Failure::Resolve(m) => write!(f, "cannot resolve: {m}"),
            Failure::Io(m) => write!(f, "i/o error: {m}"),
            Failure::Tls(m) => write!(f, "TLS error: {m}"),
            Failure::Http(m) => write!(f, "HTTP error: {m}"),
            Failure::Status(s) => write!(f, "unexpected status {s}"),
            Failure::BodyMismatch => write!(f, "response body does not contain the expected text"),
            Failure::ExitCode(c) => write!(f, "exit code {c}"),
            Failure::Signal(s) => write!(f, "killed by signal {s}"),
            Failure::Spawn(m) => write!(f, "cannot start program: {m}"),
            Failure::NoSuchProcess(n) => write!(f, "no process named {n:?}"),
            Failure::Pidfile(m) => write!(f, "bad pidfile: {m}"),
            Failure::DeadPid(p) => write!(f, "process {p} is not running"),
            Failure::Passive(m) => write!(f, "passive: {m}"),
            Failure::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_typed_reasons() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::from_io(&refused), Failure::Refused);
        let other = io::Error::other("boom");
        assert_eq!(Failure::from_io(&other).kind(), "io");
    }

    #[test]
    fn display_names_the_reason() {
        assert_eq!(Failure::Status(503).to_string(), "unexpected status 503");
        assert_eq!(Failure::ExitCode(2).to_string(), "exit code 2");
        assert_eq!(
            Failure::TimedOut(Duration::from_secs(2)).to_string(),
            "timed out after 2s"
        );
    }
}
