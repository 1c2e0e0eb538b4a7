//! An interface by name: its index and its link-layer address.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;
use nix::sys::socket::{LinkAddr, SockaddrLike};

use super::error::{NetError, Result};

/// A network interface, looked up in the calling thread's network namespace.
#[derive(Debug, Clone)]
pub struct Interface {
    name: String,
    index: u32,
    link: Option<LinkAddr>,
}

impl Interface {
    /// Looks an interface up by name.
    ///
    /// # Errors
    ///
    /// [`NetError::NoSuchInterface`], or [`NetError::Io`] when the interfaces cannot be listed.
    pub fn by_name(name: &str) -> Result<Self> {
        let index = if_nametoindex(name).map_err(|_| NetError::NoSuchInterface(name.into()))?;
        let link = getifaddrs()
            .map_err(|e| NetError::Io {
                op: "getifaddrs",
                source: e.into(),
            })?
            .filter(|ifa| ifa.interface_name == name)
            .find_map(|ifa| ifa.address.and_then(|a| a.as_link_addr().copied()));
        Ok(Interface {
            name: name.to_owned(),
            index,
            link,
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's index.
    pub const fn index(&self) -> u32 {
        self.index
    }

    /// The interface's MAC address, if it has an Ethernet-like one.
    pub fn mac(&self) -> Option<[u8; 6]> {
        self.link
            .as_ref()
            .filter(|l| l.halen() == 6)
            .and_then(LinkAddr::addr)
    }

    /// The AF_PACKET address of the interface, to send frames out of it.
    pub(crate) fn link_addr(&self) -> Option<&LinkAddr> {
        self.link.as_ref().filter(|l| l.len() > 0)
    }
}
