//! The privilege check `run` makes first: VRRP needs CAP_NET_RAW (raw sockets, gratuitous ARP)
//! and CAP_NET_ADMIN (adding virtual addresses), and saying so at once beats failing later
//! with a bare EPERM.

use super::error::RuntimeError;

/// Bit of CAP_NET_ADMIN in the capability sets (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
/// Bit of CAP_NET_RAW.
const CAP_NET_RAW: u32 = 13;

/// The effective capability set of this process (capget(2), through rustix: no crate of its
/// own needed).
fn effective() -> Result<u64, RuntimeError> {
    rustix::thread::capabilities(None)
        .map(|c| c.effective.bits())
        .map_err(|e| {
            RuntimeError::Privileges(format!("cannot read this process's capabilities: {e}"))
        })
}

/// The names of the capabilities VRRP needs that `caps` lacks.
pub fn missing(caps: u64) -> Vec<&'static str> {
    [
        (CAP_NET_RAW, "CAP_NET_RAW"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| caps & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect()
}

/// Fails with a clear message when this process cannot run VRRP.
///
/// # Errors
///
/// [`RuntimeError::Privileges`] naming the missing capabilities.
pub fn require_vrrp() -> Result<(), RuntimeError> {
    let missing = missing(effective()?);
    if missing.is_empty() {
        return Ok(());
    }
    Err(RuntimeError::Privileges(format!(
        "missing {}: VRRP needs CAP_NET_RAW (raw sockets, gratuitous ARP) and CAP_NET_ADMIN \
         (virtual addresses); run as root, or grant them (systemd: \
         AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN CAP_NET_BIND_SERVICE; or \
         setcap cap_net_raw,cap_net_admin,cap_net_bind_service+ep on the binary)",
        missing.join(" and ")
    )))
}

/// Fails with a clear message when this process cannot change addresses and links
/// (anycast groups: the dummy interface and its VIPs).
///
/// # Errors
///
/// [`RuntimeError::Privileges`].
pub fn require_net_admin() -> Result<(), RuntimeError> {
    if effective()? & (1 << CAP_NET_ADMIN) != 0 {
        return Ok(());
    }
    Err(RuntimeError::Privileges(
        "missing CAP_NET_ADMIN: anycast groups need it (the dummy interface and its VIPs); run as \
         root, or grant it (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE)"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing() {
        assert_eq!(missing(0), vec!["CAP_NET_RAW", "CAP_NET_ADMIN"]);
        assert_eq!(missing(1 << CAP_NET_RAW), vec!["CAP_NET_ADMIN"]);
        assert!(missing((1 << CAP_NET_RAW) | (1 << CAP_NET_ADMIN)).is_empty());
    }
}
