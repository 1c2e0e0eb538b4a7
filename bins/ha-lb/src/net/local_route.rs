//! Local routes without an address (`ip route add local 203.0.113.10/32 dev lo table local`):
//! the kernel still delivers packets for the address to this host's sockets, but no interface
//! holds it, so no routing daemon exports it (BIRD's `protocol direct` and FRR's connected
//! routes both come from interface addresses). An anycast VIP leaving the node gracefully goes
//! through this state: its route is withdrawn while the connections that the router still sends
//! during the withdrawal are served.
//!
//! The routes are tagged with protocol [`LOCAL_ROUTE_PROTOCOL`], so that what a stop cut short
//! left behind is recognised at the next start.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::error::Result;
use super::rtnl::{is_exists, is_not_found, Rtnl};

/// The routing protocol number ha-lb's local routes carry (`ip route` shows `proto 112`): the
/// same number as the VIPs' address tag.
pub const LOCAL_ROUTE_PROTOCOL: u8 = super::VIP_ADDRESS_PROTOCOL;

/// `RT_TABLE_LOCAL`.
const TABLE_LOCAL: u8 = 255;

fn message(addr: IpAddr, lo: u32) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    msg.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
    msg.header.table = TABLE_LOCAL;
    msg.header.protocol = RouteProtocol::Other(LOCAL_ROUTE_PROTOCOL);
    msg.header.scope = RouteScope::Host;
    msg.header.kind = RouteType::Local;
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(addr)));
    msg.attributes.push(RouteAttribute::Oif(lo));
    msg
}

/// Makes `addr` local through `lo` (interface index `lo`), next to any local route it already
/// has (that of an address, which may go meanwhile). Returns `false` when the route was
/// already there.
///
/// # Errors
///
/// [`super::NetError::Netlink`] (EPERM without CAP_NET_ADMIN), [`super::NetError::Io`].
pub fn add(addr: IpAddr, lo: u32) -> Result<bool> {
    let mut rtnl = Rtnl::new()?;
    match rtnl.request(
        "add a local route",
        RouteNetlinkMessage::NewRoute(message(addr, lo)),
        // Appended: the address's own local route (proto kernel, on the dummy interface) is
        // still there, and EXCL would refuse a second route to the same destination.
        NLM_F_CREATE | NLM_F_APPEND,
    ) {
        Ok(_) => Ok(true),
        Err(e) if is_exists(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the local route [`add`] made. Returns `false` when it was not there.
///
/// # Errors
///
/// As [`add`].
pub fn remove(addr: IpAddr, lo: u32) -> Result<bool> {
    let mut rtnl = Rtnl::new()?;
    match rtnl.request(
        "remove a local route",
        RouteNetlinkMessage::DelRoute(message(addr, lo)),
        0,
    ) {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The destinations of ha-lb's local routes (tagged [`LOCAL_ROUTE_PROTOCOL`]), both families.
///
/// # Errors
///
/// As [`add`].
pub fn list() -> Result<Vec<IpAddr>> {
    let mut rtnl = Rtnl::new()?;
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        let answers = rtnl.request(
            "list local routes",
            RouteNetlinkMessage::GetRoute(req),
            NLM_F_DUMP,
        )?;
        for m in answers {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.protocol != RouteProtocol::Other(LOCAL_ROUTE_PROTOCOL)
                || r.header.kind != RouteType::Local
            {
                continue;
            }
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(v4)) => {
                        out.push(IpAddr::V4(*v4));
                    }
                    RouteAttribute::Destination(RouteAddress::Inet6(v6)) => {
                        out.push(IpAddr::V6(*v6));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}
