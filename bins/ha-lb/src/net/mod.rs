//! The Linux side of VRRP: raw sockets, virtual addresses over netlink, gratuitous ARP and
//! unsolicited neighbour advertisements, link state, and the nftables rules of Accept_Mode.
//!
//! Everything here works in the network namespace of the thread that creates it, so it can be
//! driven from a thread moved into a namespace with `setns` (that is how the tests run it).
//! Privileges: CAP_NET_RAW for [`VrrpSocket`] and [`Announcer`], CAP_NET_ADMIN to change
//! addresses.

pub mod addresses;
pub mod announce;
pub mod conntrack;
pub mod dummy;
pub mod error;
pub mod firewall;
pub mod interface;
pub mod links;
pub mod local_route;
pub mod nat;
pub(crate) mod nftables;
pub mod rtnl;
pub mod vmac;
pub mod vrrp_socket;

pub use addresses::{AddressEntry, Addresses, IfAddr, VipOptions, VIP_ADDRESS_PROTOCOL};
pub use announce::Announcer;
pub use error::NetError;
pub use interface::Interface;
pub use links::{link_state, LinkEvent, LinkState, LinkWatcher};
pub use vrrp_socket::{
    Received, RecvBatch, VrrpSocket, VrrpSocketConfig, RECV_BATCH, RECV_BUFFER_LEN,
};
