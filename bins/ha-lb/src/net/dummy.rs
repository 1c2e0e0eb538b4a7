//! The dummy interface that holds anycast VIPs (`ha-lb0` by default): a routing daemon exports
//! the host routes of its addresses (BIRD's `protocol direct`, FRR's `redistribute
//! connected`), so an address there is a route announced, and an address removed is a route
//! withdrawn.
//!
//! A kernel without the dummy driver (some minimal VM kernels: `ip link add x type dummy` says
//! "Unknown device type") gets an `ifb` device instead, which behaves the same here: it holds
//! addresses, is up with carrier, answers no ARP and sends nothing by itself.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::error::{NetError, Result};
use super::rtnl::Rtnl;

/// The dummy interface [`ensure`] found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DummyLink {
    /// Its index.
    pub index: u32,
    /// Whether [`ensure`] made it (it did not exist).
    pub made: bool,
}

/// Makes the dummy interface `name` unless it exists, and brings it up. Made by ha-lb, it gets
/// no IPv6 link-local address (`addr_gen_mode` none): a routing daemon exporting the
/// interface's routes sees only the VIPs. One that exists (made by ha-lb earlier, or by the
/// operator) is kept as it is, only brought up.
///
/// # Errors
///
/// [`NetError::Decode`] when a link of that name exists and is not a dummy interface;
/// [`NetError::Netlink`] (EPERM without CAP_NET_ADMIN), [`NetError::Io`].
pub fn ensure(name: &str) -> Result<DummyLink> {
    let mut rtnl = Rtnl::new()?;
    let (index, made) = match find(&mut rtnl, name)? {
        Some((index, true)) => (index, false),
        Some((_, false)) => {
            return Err(NetError::Decode {
                op: "make the anycast dummy interface",
                detail: format!(
                    "{name} exists and is neither a dummy nor an ifb interface: name another one in `interface`"
                ),
            })
        }
        None => {
            match create(&mut rtnl, name, InfoKind::Dummy) {
                Err(e) if is_not_supported(&e) => {
                    tracing::warn!(interface = name, "this kernel has no dummy interfaces: making an ifb device instead");
                    create(&mut rtnl, name, InfoKind::Ifb)?;
                }
                other => other?,
            }
            let (index, _) = find(&mut rtnl, name)?.ok_or_else(|| NetError::Decode {
                op: "make the anycast dummy interface",
                detail: format!("{name} not found after it was made"),
            })?;
            // Best effort: a kernel without IPv6 has no such file.
            let _ = std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode"),
                "1",
            );
            (index, true)
        }
    };
    let mut up = LinkMessage::default();
    up.header.index = index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    rtnl.request(
        "bring the anycast dummy interface up",
        RouteNetlinkMessage::SetLink(up),
        0,
    )?;
    Ok(DummyLink { index, made })
}

fn create(rtnl: &mut Rtnl, name: &str, kind: InfoKind) -> Result<()> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]));
    rtnl.request(
        "make the anycast dummy interface",
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )?;
    Ok(())
}

/// EOPNOTSUPP: the kernel has no driver for that kind of link.
fn is_not_supported(err: &NetError) -> bool {
    matches!(err, NetError::Netlink { source, .. } if source.raw_os_error() == Some(nix::libc::EOPNOTSUPP))
}

/// The index of link `name` and whether it is a dummy (or ifb) interface, if it exists.
///
/// # Errors
///
/// [`NetError::Netlink`], [`NetError::Io`].
pub fn find_link(name: &str) -> Result<Option<(u32, bool)>> {
    find(&mut Rtnl::new()?, name)
}

fn find(rtnl: &mut Rtnl, name: &str) -> Result<Option<(u32, bool)>> {
    let answers = rtnl.request(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(answers.iter().find_map(|m| match m {
        RouteNetlinkMessage::NewLink(l)
            if l.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name)) =>
        {
            let dummy = l.attributes.iter().any(|a| {
                matches!(a, LinkAttribute::LinkInfo(infos)
                    if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Dummy | InfoKind::Ifb))))
            });
            Some((l.header.index, dummy))
        }
        _ => None,
    }))
}
