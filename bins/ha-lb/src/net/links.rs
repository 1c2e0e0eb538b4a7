//! Link state over route netlink: the state of one interface now, and a watcher that reports
//! every change (RTNLGRP_LINK), so a driver can put the instances of a downed link in Fault.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use super::error::{NetError, Result};
use super::rtnl::Rtnl;

/// The netlink multicast group of link changes.
const RTNLGRP_LINK: u32 = 1;

/// The state of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// The interface index.
    pub ifindex: u32,
    /// Its name, when the kernel said it.
    pub name: Option<String>,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Carrier present and operational (IFF_RUNNING: what `ip link` shows as LOWER_UP + UP).
    pub running: bool,
    /// The MTU, when the kernel said it.
    pub mtu: Option<u32>,
}

impl LinkState {
    /// Whether VRRP can run on the link: up and with carrier. Otherwise its instances are in
    /// Fault.
    pub const fn is_usable(&self) -> bool {
        self.admin_up && self.running
    }

    fn from_message(msg: &LinkMessage) -> Self {
        let flags = msg.header.flags;
        let name = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        let mtu = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        });
        LinkState {
            ifindex: msg.header.index,
            name,
            admin_up: flags.contains(LinkFlags::Up),
            running: flags.contains(LinkFlags::Running) && flags.contains(LinkFlags::LowerUp),
            mtu,
        }
    }
}

/// A change the kernel reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// An interface appeared or changed state.
    Changed(LinkState),
    /// An interface was removed.
    Removed {
        /// Its index.
        ifindex: u32,
    },
}

/// The current state of interface `ifindex`.
///
/// # Errors
///
/// [`NetError::Netlink`] (ENODEV when there is no such interface), [`NetError::Io`].
pub fn link_state(ifindex: u32) -> Result<LinkState> {
    let mut rtnl = Rtnl::new()?;
    let mut req = LinkMessage::default();
    req.header.index = ifindex;
    let answers = rtnl.request("get link", RouteNetlinkMessage::GetLink(req), 0)?;
    answers
        .iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) if l.header.index == ifindex => {
                Some(LinkState::from_message(l))
            }
            _ => None,
        })
        .ok_or_else(|| NetError::Decode {
            op: "get link",
            detail: format!("no answer for interface {ifindex}"),
        })
}

/// Reports link changes of the network namespace it was made in.
#[derive(Debug)]
pub struct LinkWatcher {
    socket: Socket,
    buf: Vec<u8>,
}

impl LinkWatcher {
    /// Subscribes to link changes. Subscribe before reading the current state with
    /// [`link_state`], so that no change falls between the two.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`].
    pub fn new() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetError::io("netlink socket"))?;
        socket
            .bind(&SocketAddr::new(0, 0))
            .map_err(NetError::io("netlink bind"))?;
        socket
            .add_membership(RTNLGRP_LINK)
            .map_err(NetError::io("join RTNLGRP_LINK"))?;
        Ok(LinkWatcher {
            socket,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Makes [`LinkWatcher::recv`] non-blocking, for an event loop.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`].
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.socket
            .set_non_blocking(nonblocking)
            .map_err(NetError::io("O_NONBLOCK"))
    }

    /// Bounds how long a blocking [`LinkWatcher::recv`] waits.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`].
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        let secs = nix::libc::time_t::try_from(timeout.as_secs()).unwrap_or(nix::libc::time_t::MAX);
        let tv = TimeVal::new(secs, nix::libc::suseconds_t::from(timeout.subsec_micros()));
        setsockopt(&self.socket, sockopt::ReceiveTimeout, &tv).map_err(|e| NetError::Io {
            op: "SO_RCVTIMEO",
            source: e.into(),
        })
    }

    /// Waits for the next batch of changes (one datagram may carry several).
    ///
    /// # Errors
    ///
    /// [`NetError::Io`] (EAGAIN on timeout or when non-blocking; ENOBUFS when changes were
    /// lost: read the state again with [`link_state`]), [`NetError::Decode`].
    pub fn recv(&mut self) -> Result<Vec<LinkEvent>> {
        self.buf.clear();
        let n = self
            .socket
            .recv(&mut self.buf, 0)
            .map_err(NetError::io("receive link change"))?;
        let data = &self.buf[..n.min(self.buf.len())];
        let mut events = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let msg =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..]).map_err(|e| {
                    NetError::Decode {
                        op: "link change",
                        detail: e.to_string(),
                    }
                })?;
            let len = msg.header.length as usize;
            if len == 0 {
                break;
            }
            at += (len + 3) & !3;
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    events.push(LinkEvent::Changed(LinkState::from_message(&l)));
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    events.push(LinkEvent::Removed {
                        ifindex: l.header.index,
                    });
                }
                _ => {}
            }
        }
        Ok(events)
    }
}

impl AsFd for LinkWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
