//! The errors of the Linux driver.

use std::io;

/// Everything the driver can fail at, with the operation it was doing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a netlink request.
    #[error("netlink {op}: {source}")]
    Netlink {
        /// The request.
        op: &'static str,
        /// The error the kernel answered, as an OS error.
        #[source]
        source: io::Error,
    },
    /// A netlink message could not be decoded.
    #[error("netlink {op}: cannot decode the kernel's answer: {detail}")]
    Decode {
        /// The request.
        op: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// No interface has that name.
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    /// The interface has no address to send VRRP from.
    #[error("interface {ifname} has no {what} address to send VRRP from")]
    NoSourceAddress {
        /// The interface.
        ifname: String,
        /// Which kind of address is missing ("IPv4", "IPv6 link-local").
        what: &'static str,
    },
    /// The interface has no Ethernet address to send gratuitous ARP / NA with.
    #[error("interface {0} has no Ethernet address")]
    NoLinkAddress(String),
    /// Addresses of different families were mixed.
    #[error("address family mismatch: {0}")]
    FamilyMismatch(&'static str),
    /// The nftables rules for Accept_Mode could not be applied.
    #[error("nftables: {0}")]
    Firewall(String),
    /// A received datagram is not a VRRP packet we can hand on (too short, bad IP header).
    #[error("malformed datagram: {0}")]
    Malformed(&'static str),
}

impl NetError {
    /// Wraps an OS error with the operation that failed.
    pub fn io(op: &'static str) -> impl FnOnce(io::Error) -> NetError {
        move |source| NetError::Io { op, source }
    }

    /// Whether the error is "the interface is gone or down" rather than a bug or a permission
    /// problem: a driver treats those as a link fault and retries.
    pub fn is_link_gone(&self) -> bool {
        let os = match self {
            NetError::Io { source, .. } | NetError::Netlink { source, .. } => source.raw_os_error(),
            NetError::NoSuchInterface(_) => return true,
            _ => None,
        };
        matches!(
            os,
            Some(nix::libc::ENODEV) | Some(nix::libc::ENXIO) | Some(nix::libc::ENETDOWN)
        )
    }
}

/// The driver's result type.
pub type Result<T> = std::result::Result<T, NetError>;
