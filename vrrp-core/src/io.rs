//! What goes in and out of a router: received packets, and the actions it asks the driver for.

use core::fmt;
use core::net::IpAddr;

use crate::packet::PacketError;
use crate::state::{Reason, State};

/// A VRRP packet as the driver received it: the IP payload and the IP header fields the
/// protocol checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The IP source address: the sender's primary address.
    pub src: IpAddr,
    /// The IP destination: the multicast group, or this router's address (unicast).
    pub dst: IpAddr,
    /// The IPv4 TTL or the IPv6 hop limit.
    pub ttl: u8,
    /// The VRRP message (the IP payload).
    pub bytes: &'a [u8],
}

/// An advertisement to send: an IP packet with protocol 112.
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The source address: the router's primary address.
    pub src: IpAddr,
    /// The destination: the multicast group or one unicast peer.
    pub dst: IpAddr,
    /// The TTL or hop limit to send with: always 255.
    pub ttl: u8,
    /// The priority in the advert (0 when the master stops); handy for logs.
    pub priority: u8,
    /// The VRRP message, checksum included.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transmit")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("priority", &self.priority)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// An action the driver performs, drained with [`Router::poll_output`](crate::Router::poll_output).
/// New kinds of action may come in later versions: a driver ignores those it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send an advertisement.
    Transmit(Transmit),
    /// Configure the virtual addresses on the interface (becoming Master).
    AddAddresses(Vec<IpAddr>),
    /// Remove the virtual addresses from the interface (leaving Master).
    RemoveAddresses(Vec<IpAddr>),
    /// Announce the addresses: `repeat` gratuitous ARPs (IPv4) or unsolicited Neighbor
    /// Advertisements (IPv6) for each.
    Announce {
        /// The addresses to announce.
        addresses: Vec<IpAddr>,
        /// How many announcements of each.
        repeat: u32,
    },
    /// A router held back from Master ([`Router::set_master_hold`](crate::Router::set_master_hold))
    /// now wants Master (`true`), or no longer does (`false`: it heard a master, became Master
    /// or left Backup).
    WantsMaster(bool),
    /// The router changed state.
    StateChanged {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: Reason,
    },
}

/// Why a received packet was not used. Each is also counted in [`Stats`](crate::Stats).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The router is in Initialize or Fault and listens to nothing.
    #[error("not listening in state {0}")]
    NotListening(State),
    /// An advert whose TTL / hop limit is not 255: it crossed a router (RFC 5798 §7.1), or
    /// was forged off the LAN.
    #[error("TTL / hop limit {0} is not 255")]
    BadTtl(u8),
    /// A multicast router got an advert sent to another destination than the group (such as
    /// the host's own address): keepalived's "Expected multicast packet".
    #[error("advert sent to {0}, expected the VRRP multicast group")]
    ExpectedMulticast(IpAddr),
    /// A unicast router got an advert sent to the multicast group: keepalived's "Expected
    /// unicast packet".
    #[error("advert sent to {0}, expected a unicast advert")]
    ExpectedUnicast(IpAddr),
    /// A unicast router got an advert from an address that is not a configured peer.
    #[error("{0} is not a configured unicast peer")]
    UnknownPeer(IpAddr),
    /// Our own advert, looped back.
    #[error("our own advert, looped back")]
    OwnPacket,
    /// An advert of the other address family.
    #[error("packet of the wrong address family")]
    WrongFamily,
    /// The codec rejected it.
    #[error("malformed: {0}")]
    Malformed(#[from] PacketError),
    /// Another version than the router's.
    #[error("version {0} is not the router's")]
    WrongVersion(u8),
    /// Another VRID than the router's.
    #[error("VRID {0} is not the router's")]
    WrongVrid(u8),
    /// A VRRPv2 auth type other than the router's.
    #[error("VRRPv2 auth type {0} is not the router's")]
    AuthTypeMismatch(u8),
    /// A VRRPv2 password that does not match.
    #[error("VRRPv2 password does not match")]
    AuthFailure,
    /// A VRRPv2 interval other than the router's, or a VRRPv3 interval of 0.
    #[error("advert interval {0} cs is not acceptable")]
    BadInterval(u16),
    /// A VRRPv2 advert whose addresses are not the router's, from a router other than the
    /// address owner (RFC 3768 §7.1 says to drop it). VRRPv3 adverts with other addresses
    /// are counted and used.
    #[error("VRRPv2 address list differs from ours and the sender is not the address owner")]
    AddressListMismatch,
    /// A VRRPv3 advert with no address (RFC 5798 §5.2.5: the count is at least 1).
    #[error("VRRPv3 advert without any address")]
    NoAddresses,
}
