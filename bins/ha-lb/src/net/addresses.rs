//! Virtual addresses on an interface, over route netlink (RTM_NEWADDR / RTM_DELADDR / GETADDR).
//!
//! VIPs are tagged with [`VIP_ADDRESS_PROTOCOL`] in `IFA_PROTO` (Linux 5.18+; ignored by older
//! kernels), so the ones a crashed run left behind can be found even when the configuration
//! changed since. IPv6 VIPs are added with `IFA_F_NODAD`: a VIP must answer at once, and the
//! master is by definition the only holder.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
    AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::error::{NetError, Result};
use super::rtnl::{is_exists, is_not_found, Rtnl};

/// The `IFA_PROTO` value ha-lb tags its virtual addresses with (VRRP's IP protocol number).
pub const VIP_ADDRESS_PROTOCOL: u8 = vrrp_core::packet::IP_PROTOCOL;

/// An address with its prefix length, as configured on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (e.g. 24, or 32 for a host address).
    pub prefix_len: u8,
}

impl IfAddr {
    /// An address with a prefix length.
    pub const fn new(addr: IpAddr, prefix_len: u8) -> Self {
        IfAddr { addr, prefix_len }
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// How a virtual address is added beyond its address and prefix: `ip addr add ... label L brd B`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipOptions {
    /// The IPv4 address label (`eth0:vip`; by convention the interface name, a colon and a
    /// suffix, as `ip` insists).
    pub label: Option<String>,
    /// The IPv4 broadcast address.
    pub broadcast: Option<std::net::Ipv4Addr>,
}

/// One address found on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    /// The address and its prefix.
    pub addr: IfAddr,
    /// The interface index.
    pub ifindex: u32,
    /// Whether it is link-local scope (fe80::/10, 169.254/16 as the kernel scopes them).
    pub link_scope: bool,
    /// Whether IPv6 duplicate address detection has not finished (not usable as a source yet).
    pub tentative: bool,
    /// Whether ha-lb tagged it as a virtual address (`IFA_PROTO` = [`VIP_ADDRESS_PROTOCOL`]).
    pub is_vip: bool,
}

/// Adds, removes and lists addresses. Holds one netlink socket.
#[derive(Debug)]
pub struct Addresses {
    rtnl: Rtnl,
}

fn family_of(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn message(ifindex: u32, a: IfAddr, vip: Option<&VipOptions>) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family_of(&a.addr);
    msg.header.prefix_len = a.prefix_len;
    msg.header.index = ifindex;
    msg.header.scope = AddressScope::Universe;
    let mut flags = AddressFlags::empty();
    if a.addr.is_ipv6() && vip.is_some() {
        flags |= AddressFlags::Nodad;
        msg.header.flags = AddressHeaderFlags::Nodad;
    }
    // IFA_ADDRESS is the peer on point-to-point links and the same address elsewhere.
    msg.attributes.push(AddressAttribute::Local(a.addr));
    msg.attributes.push(AddressAttribute::Address(a.addr));
    if let Some(options) = vip {
        msg.attributes.push(AddressAttribute::Flags(flags));
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                VIP_ADDRESS_PROTOCOL,
            )));
        if let Some(label) = &options.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        if let Some(brd) = options.broadcast {
            msg.attributes.push(AddressAttribute::Broadcast(brd));
        }
    }
    msg
}

fn entry(msg: &AddressMessage) -> Option<AddressEntry> {
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
    let mut proto = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => flags = *f,
            AddressAttribute::Protocol(p) => proto = Some(u8::from(*p)),
            _ => {}
        }
    }
    // IPv4 reports the interface's own address in IFA_LOCAL; IPv6 only has IFA_ADDRESS.
    let addr = local.or(address)?;
    Some(AddressEntry {
        addr: IfAddr::new(addr, msg.header.prefix_len),
        ifindex: msg.header.index,
        link_scope: msg.header.scope == AddressScope::Link,
        tentative: flags.contains(AddressFlags::Tentative),
        is_vip: proto == Some(VIP_ADDRESS_PROTOCOL),
    })
}

impl Addresses {
    /// Opens the netlink socket, in the calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`].
    pub fn new() -> Result<Self> {
        Ok(Addresses { rtnl: Rtnl::new()? })
    }

    /// Every address on interface `ifindex` (both families).
    ///
    /// # Errors
    ///
    /// [`NetError::Netlink`], [`NetError::Io`], [`NetError::Decode`].
    pub fn list(&mut self, ifindex: u32) -> Result<Vec<AddressEntry>> {
        let mut req = AddressMessage::default();
        req.header.index = ifindex;
        let answers = self.rtnl.request(
            "list addresses",
            RouteNetlinkMessage::GetAddress(req),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == ifindex => entry(a),
                _ => None,
            })
            .collect())
    }

    /// Adds a virtual address to `ifindex`, tagged as ha-lb's (IPv6 without DAD).
    ///
    /// Returns `false` when it was already there (then it is left as it is).
    ///
    /// # Errors
    ///
    /// [`NetError::Netlink`] (e.g. EPERM without CAP_NET_ADMIN, ENODEV), [`NetError::Io`].
    pub fn add_vip(&mut self, ifindex: u32, vip: IfAddr) -> Result<bool> {
        self.add_vip_with(ifindex, vip, &VipOptions::default())
    }

    /// As [`Addresses::add_vip`], with an address label and a broadcast address.
    ///
    /// # Errors
    ///
    /// As [`Addresses::add_vip`].
    pub fn add_vip_with(
        &mut self,
        ifindex: u32,
        vip: IfAddr,
        options: &VipOptions,
    ) -> Result<bool> {
        let msg = message(ifindex, vip, Some(options));
        match self.rtnl.request(
            "add address",
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(true),
            Err(e) if is_exists(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes an address from `ifindex`. Returns `false` when it was not there.
    ///
    /// # Errors
    ///
    /// [`NetError::Netlink`], [`NetError::Io`].
    pub fn remove(&mut self, ifindex: u32, addr: IfAddr) -> Result<bool> {
        let msg = message(ifindex, addr, None);
        match self
            .rtnl
            .request("remove address", RouteNetlinkMessage::DelAddress(msg), 0)
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes, before an instance starts in Backup, the virtual addresses a crashed earlier
    /// run left on `ifindex`: every address of `configured` that is present (whatever its
    /// prefix), and every address tagged as ha-lb's. Returns what was removed.
    ///
    /// Do not list in `configured` the addresses an address owner (priority 255) really owns:
    /// untagged, they cannot be told from a VIP left by another tool, and would be removed.
    ///
    /// # Errors
    ///
    /// As [`Addresses::list`] and [`Addresses::remove`].
    pub fn remove_stale(&mut self, ifindex: u32, configured: &[IpAddr]) -> Result<Vec<IfAddr>> {
        let mut removed = Vec::new();
        for e in self.list(ifindex)? {
            if (e.is_vip || configured.contains(&e.addr.addr)) && self.remove(ifindex, e.addr)? {
                removed.push(e.addr);
            }
        }
        Ok(removed)
    }

    /// The address VRRP is sent from on `ifindex`: for IPv4 the first address that is not a
    /// VIP (the interface's primary), for IPv6 the link-local address (RFC 5798 §5.1.2.1).
    /// Tentative IPv6 addresses are skipped: the kernel cannot send from them yet.
    ///
    /// # Errors
    ///
    /// As [`Addresses::list`]; `Ok(None)` when there is none (yet).
    pub fn vrrp_source(&mut self, ifindex: u32, ipv6: bool) -> Result<Option<IpAddr>> {
        let entries = self.list(ifindex)?;
        Ok(entries
            .iter()
            .find(|e| match e.addr.addr {
                IpAddr::V4(_) => !ipv6 && !e.is_vip,
                IpAddr::V6(a) => ipv6 && !e.tentative && (a.segments()[0] & 0xffc0) == 0xfe80,
            })
            .map(|e| e.addr.addr))
    }
}

/// Checks that a VIP's prefix length fits its family.
///
/// # Errors
///
/// [`NetError::FamilyMismatch`] when it does not.
pub fn check_prefix(vip: IfAddr) -> Result<()> {
    let max = if vip.addr.is_ipv4() { 32 } else { 128 };
    if vip.prefix_len > max {
        return Err(NetError::FamilyMismatch(
            "prefix length longer than the address",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_vips_skip_dad_and_are_tagged() {
        let m = message(
            3,
            IfAddr::new("2001:db8::100".parse().unwrap(), 64),
            Some(&VipOptions::default()),
        );
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert_eq!(m.header.index, 3);
        assert!(m
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        let e = entry(&m).unwrap();
        assert!(e.is_vip);
        assert_eq!(e.addr.to_string(), "2001:db8::100/64");
    }

    #[test]
    fn plain_addresses_are_not_vips() {
        let m = message(3, IfAddr::new("192.0.2.1".parse().unwrap(), 24), None);
        let e = entry(&m).unwrap();
        assert!(!e.is_vip);
        assert!(check_prefix(IfAddr::new("192.0.2.1".parse().unwrap(), 33)).is_err());
    }

    #[test]
    fn vip_label_and_broadcast_are_carried() {
        let options = VipOptions {
            label: Some("eth0:vip".into()),
            broadcast: Some("192.0.2.255".parse().unwrap()),
        };
        let m = message(
            3,
            IfAddr::new("192.0.2.100".parse().unwrap(), 24),
            Some(&options),
        );
        assert!(m
            .attributes
            .contains(&AddressAttribute::Label("eth0:vip".into())));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Broadcast("192.0.2.255".parse().unwrap())));
    }
}
