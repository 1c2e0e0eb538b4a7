//! systemd's notification protocol (`sd_notify(3)`), without libsystemd: one datagram per
//! message to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). Without that variable (not started by systemd with `Type=notify`) every call
//! does nothing, so ha-lb runs the same without systemd.
//!
//! Messages ha-lb sends: `READY=1` once instances and listeners are up; `RELOADING=1` (with
//! `MONOTONIC_USEC`) and `READY=1` around a SIGHUP reload; `WATCHDOG=1` from the worker's
//! event loop every half `WatchdogSec=`; `STOPPING=1` on SIGTERM; `STATUS=` lines.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go: the socket systemd named.
#[derive(Debug, Clone)]
pub struct Notifier {
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names; `None` when it is unset or empty.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_str()?;
        match Self::new(path) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(socket = path, error = %e, "NOTIFY_SOCKET unusable: no notifications to systemd");
                None
            }
        }
    }

    /// A notifier for the socket `path` (`@name`: Linux's abstract namespace).
    ///
    /// # Errors
    ///
    /// When the name is empty or too long for a unix socket address.
    pub fn new(path: &str) -> io::Result<Self> {
        let addr = if let Some(name) = path.strip_prefix('@') {
            <SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name.as_bytes())?
        } else if path.starts_with('/') {
            SocketAddr::from_pathname(path)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither an absolute path nor @abstract",
            ));
        };
        Ok(Notifier { addr })
    }

    /// Sends one message (`KEY=VALUE` lines).
    ///
    /// # Errors
    ///
    /// The socket's error (systemd gone, permission).
    pub fn send(&self, message: &str) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(message.as_bytes(), &self.addr)?;
        Ok(())
    }
}

/// Sends `message` to systemd when `$NOTIFY_SOCKET` is set; a failure is logged, never fatal.
pub fn notify(message: &str) {
    if let Some(n) = Notifier::from_env() {
        if let Err(e) = n.send(message) {
            tracing::warn!(error = %e, message, "cannot notify systemd");
        }
    }
}

/// `RELOADING=1` with the monotonic time systemd wants beside it (systemd ≥ 253).
pub fn reloading_message() -> String {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000
        })
        .unwrap_or(0);
    format!("RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading the configuration")
}

/// The watchdog timeout `$WATCHDOG_USEC` asks for, if it is meant for process `pid`
/// (`$WATCHDOG_PID` unset or equal to it).
pub fn watchdog_timeout(pid: u32) -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Ok(p) = std::env::var("WATCHDOG_PID") {
        if p.parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// How often to send `WATCHDOG=1` for a watchdog timeout: half of it, as sd_watchdog_enabled(3)
/// recommends.
pub fn ping_interval(timeout: Duration) -> Duration {
    (timeout / 2).max(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("halb-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        Notifier::new(path.to_str().unwrap())
            .unwrap()
            .send("READY=1")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();

        let name = format!("halb-notify-test-{}", std::process::id());
        let addr =
            <SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name.as_bytes())
                .unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(&format!("@{name}"))
            .unwrap()
            .send("WATCHDOG=1")
            .unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn relative_names_are_refused() {
        assert!(Notifier::new("notify").is_err());
        assert!(Notifier::new("").is_err());
    }

    #[test]
    fn reloading_carries_the_monotonic_time() {
        let m = reloading_message();
        let usec: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(m.starts_with("RELOADING=1\n"));
        assert!(usec > 0);
    }

    #[test]
    fn pings_twice_per_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }
}
