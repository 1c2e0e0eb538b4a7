//! Virtual MAC interfaces (RFC 5798 §7.3, keepalived's `use_vmac`): a macvlan on the
//! instance's interface whose MAC is the virtual router's, `00:00:5E:00:01:VRID` (IPv4) or
//! `00:00:5E:00:02:VRID` (IPv6). The VIPs live on it and its adverts leave from it, so the
//! VIPs' MAC never changes: neighbours need no ARP / ND update when the Master changes, the
//! switch learns the new port from the adverts.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::error::{NetError, Result};
use super::rtnl::{is_not_found, Rtnl};

/// The virtual router MAC of RFC 5798 §7.3.
pub const fn virtual_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// Whether `mac` is a VRRP virtual router MAC (either family).
pub fn is_virtual_mac(mac: &[u8]) -> bool {
    matches!(mac, [0x00, 0x00, 0x5e, 0x00, 0x01 | 0x02, _])
}

/// The name keepalived gives a VMAC interface: `vrrp.VRID` (`vrrp6.VRID` for IPv6, so that
/// both families of one VRID can have theirs).
pub fn default_name(vrid: u8, ipv6: bool) -> String {
    if ipv6 {
        format!("vrrp6.{vrid}")
    } else {
        format!("vrrp.{vrid}")
    }
}

/// A macvlan found on the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacLink {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// The index of the interface it sits on.
    pub parent: Option<u32>,
    /// Its MAC.
    pub mac: Vec<u8>,
}

/// Creates the macvlan `name` on interface `parent` with `mac`, in private mode (the VMACs of
/// one interface do not talk to each other, as keepalived makes them), and brings it up.
/// A link of that name left by a crashed run is deleted first, so the interface is always
/// fresh. Before it is up: no IPv6 address of its own (`addr_gen_mode` none: only what ha-lb
/// puts on it) and `arp_ignore = 1` on it and on the parent, so that each answers ARP only
/// for its own addresses: the VIPs with the virtual MAC, the node's address with the real
/// one; and `arp_announce = 2` on the parent. These sysctls of the parent stay after the
/// VMAC interface goes (they are right for a node that serves VIPs). Returns its index.
///
/// # Errors
///
/// [`NetError::Netlink`] (EEXIST when another kind of link has the name), [`NetError::Io`].
pub fn create(parent: u32, parent_name: &str, name: &str, mac: [u8; 6]) -> Result<u32> {
    let mut rtnl = Rtnl::new()?;
    delete_named(&mut rtnl, name)?;
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes.push(LinkAttribute::Link(parent));
    msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
            MacVlanMode::Private,
        )])),
    ]));
    rtnl.request(
        "create VMAC interface",
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )?;
    let link = find(&mut rtnl, name)?.ok_or_else(|| NetError::Decode {
        op: "create VMAC interface",
        detail: format!("{name} not found after it was made"),
    })?;
    // Best effort: a kernel without IPv6 has no such files.
    let _ = sysctl(&format!("net/ipv6/conf/{name}/addr_gen_mode"), "1");
    sysctl(&format!("net/ipv4/conf/{name}/arp_ignore"), "1")?;
    sysctl(&format!("net/ipv4/conf/{parent_name}/arp_ignore"), "1")?;
    // The parent's own ARP requests (the node resolving a client it answers from a VIP) give
    // the parent's address as sender, never a VIP: else they would point the client's entry
    // for the VIP at the parent's MAC.
    sysctl(&format!("net/ipv4/conf/{parent_name}/arp_announce"), "2")?;
    let mut up = LinkMessage::default();
    up.header.index = link.index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    rtnl.request(
        "bring the VMAC interface up",
        RouteNetlinkMessage::SetLink(up),
        0,
    )?;
    Ok(link.index)
}

/// Deletes the link `name` if it is a macvlan with a virtual router MAC; true if it was
/// there. Anything else of that name is left alone.
///
/// # Errors
///
/// [`NetError::Netlink`], [`NetError::Io`].
pub fn delete(name: &str) -> Result<bool> {
    delete_named(&mut Rtnl::new()?, name)
}

fn delete_named(rtnl: &mut Rtnl, name: &str) -> Result<bool> {
    let Some(link) = find(rtnl, name)? else {
        return Ok(false);
    };
    if !is_virtual_mac(&link.mac) {
        return Err(NetError::Decode {
            op: "delete VMAC interface",
            detail: format!(
                "{name} exists and is not a VMAC interface (MAC {}): rename one of them",
                mac_text(&link.mac)
            ),
        });
    }
    delete_index(rtnl, link.index)
}

fn delete_index(rtnl: &mut Rtnl, index: u32) -> Result<bool> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    match rtnl.request(
        "delete VMAC interface",
        RouteNetlinkMessage::DelLink(msg),
        0,
    ) {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) || is_no_device(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every macvlan with a virtual router MAC on interface `parent`.
///
/// # Errors
///
/// [`NetError::Netlink`], [`NetError::Io`].
pub fn list(parent: u32) -> Result<Vec<VmacLink>> {
    let mut rtnl = Rtnl::new()?;
    Ok(all(&mut rtnl)?
        .into_iter()
        .filter(|l| l.parent == Some(parent) && is_virtual_mac(&l.mac))
        .collect())
}

/// Deletes what a crashed run left on interface `parent`: every macvlan with a virtual router
/// MAC whose name is one of `names` or starts with `vrrp` (ha-lb's and keepalived's default
/// names). Returns the names deleted.
///
/// # Errors
///
/// [`NetError::Netlink`], [`NetError::Io`].
pub fn remove_stale(parent: u32, names: &[String]) -> Result<Vec<String>> {
    let mut rtnl = Rtnl::new()?;
    let mut removed = Vec::new();
    for link in all(&mut rtnl)? {
        let ours = names.contains(&link.name) || link.name.starts_with("vrrp");
        if link.parent == Some(parent)
            && is_virtual_mac(&link.mac)
            && ours
            && delete_index(&mut rtnl, link.index)?
        {
            removed.push(link.name);
        }
    }
    Ok(removed)
}

fn all(rtnl: &mut Rtnl) -> Result<Vec<VmacLink>> {
    let answers = rtnl.request(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(answers
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) if is_macvlan(l) => Some(from_message(l)),
            _ => None,
        })
        .collect())
}

fn find(rtnl: &mut Rtnl, name: &str) -> Result<Option<VmacLink>> {
    let answers = rtnl.request(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(answers.iter().find_map(|m| match m {
        RouteNetlinkMessage::NewLink(l) => {
            let link = from_message(l);
            (link.name == name).then_some(link)
        }
        _ => None,
    }))
}

fn is_macvlan(l: &LinkMessage) -> bool {
    l.attributes.iter().any(|a| {
        matches!(a, LinkAttribute::LinkInfo(infos)
            if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::MacVlan))))
    })
}

fn from_message(l: &LinkMessage) -> VmacLink {
    let mut link = VmacLink {
        name: String::new(),
        index: l.header.index,
        parent: None,
        mac: Vec::new(),
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Link(p) => link.parent = Some(*p),
            LinkAttribute::Address(m) => link.mac.clone_from(m),
            _ => {}
        }
    }
    link
}

fn is_no_device(err: &NetError) -> bool {
    matches!(err, NetError::Netlink { source, .. } if source.raw_os_error() == Some(nix::libc::ENODEV))
}

/// Writes a sysctl of the calling thread's network namespace.
fn sysctl(key: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value).map_err(|source| NetError::Io {
        op: "write a sysctl for the VMAC interface",
        source,
    })
}

/// `00:00:5e:00:01:33`.
pub fn mac_text(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_macs_follow_rfc_5798() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(255, true), [0, 0, 0x5e, 0, 2, 255]);
        assert!(is_virtual_mac(&virtual_mac(1, true)));
        assert!(!is_virtual_mac(&[0, 0, 0x5e, 0, 3, 1]));
        assert!(!is_virtual_mac(&[2, 0, 0, 0, 1, 1]));
        assert_eq!(default_name(51, false), "vrrp.51");
        assert_eq!(default_name(51, true), "vrrp6.51");
        assert_eq!(mac_text(&virtual_mac(51, false)), "00:00:5e:00:01:33");
    }
}
