//! Telling the LAN where a virtual address now lives: gratuitous ARP for IPv4 (sent as a raw
//! Ethernet frame on an AF_PACKET socket) and unsolicited Neighbor Advertisements for IPv6
//! (RFC 4861 §7.2.6: to all-nodes ff02::1, Override flag set, hop limit 255, from the
//! link-local address, with the Target Link-Layer Address option).
//!
//! The frames are built by pure functions ([`garp_frame`], [`unsolicited_na`]) so their bytes
//! are tested without a network.

use std::io::IoSlice;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{sendmsg, sendto, ControlMessage, MsgFlags, SockaddrIn6};
use socket2::{Domain, Protocol, Socket, Type};

use super::error::{NetError, Result};
use super::interface::Interface;

/// The Ethernet type of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// The length of a gratuitous ARP frame, padded to Ethernet's 60-byte minimum (without FCS).
pub const GARP_FRAME_LEN: usize = 60;
/// ICMPv6 type Neighbor Advertisement.
pub const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// The length of an unsolicited NA with one Target Link-Layer Address option.
pub const NA_LEN: usize = 32;
/// IPv6 all-nodes, where unsolicited NAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A gratuitous ARP request announcing `ip` at `mac`, broadcast (as keepalived and the Linux
/// kernel send them: sender and target protocol address both `ip`).
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let arp = &mut f[14..42];
    arp[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    arp[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    arp[4] = 6;
    arp[5] = 4;
    arp[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&ip.octets());
    arp[18..24].copy_from_slice(&[0xff; 6]);
    arp[24..28].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited Neighbor Advertisement for `target` at `mac`, Override set, Solicited clear.
/// The checksum is left zero: the kernel fills it in for ICMPv6 raw sockets.
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr, router: bool) -> [u8; NA_LEN] {
    let mut m = [0u8; NA_LEN];
    m[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
    m[4] = 0x20 | if router { 0x80 } else { 0 }; // R S O
    m[8..24].copy_from_slice(&target.octets());
    m[24] = 2; // Target Link-Layer Address
    m[25] = 1; // in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// Sends gratuitous ARPs and unsolicited NAs out of one interface (needs CAP_NET_RAW).
#[derive(Debug)]
pub struct Announcer {
    interface: Interface,
    mac: [u8; 6],
    packet: Socket,
    icmp6: Option<Socket>,
}

impl Announcer {
    /// Opens the sockets for `interface`. The ICMPv6 one is skipped when the host has no IPv6
    /// (then [`Announcer::neighbor_advertisement`] fails).
    ///
    /// # Errors
    ///
    /// [`NetError::NoLinkAddress`] when the interface has no MAC, [`NetError::Io`].
    pub fn open(interface: &Interface) -> Result<Self> {
        let mac = interface
            .mac()
            .ok_or_else(|| NetError::NoLinkAddress(interface.name().into()))?;
        // Protocol 0: a send-only packet socket, it receives nothing.
        let packet = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(NetError::io("open AF_PACKET socket"))?;
        let icmp6 = match Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)) {
            Ok(s) => {
                s.set_multicast_hops_v6(255)
                    .map_err(NetError::io("IPV6_MULTICAST_HOPS"))?;
                s.set_multicast_if_v6(interface.index())
                    .map_err(NetError::io("IPV6_MULTICAST_IF"))?;
                s.set_multicast_loop_v6(false)
                    .map_err(NetError::io("IPV6_MULTICAST_LOOP"))?;
                s.bind_device(Some(interface.name().as_bytes()))
                    .map_err(NetError::io("SO_BINDTODEVICE"))?;
                Some(s)
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
            Err(e) => {
                return Err(NetError::Io {
                    op: "open ICMPv6 socket",
                    source: e,
                })
            }
        };
        Ok(Announcer {
            interface: interface.clone(),
            mac,
            packet,
            icmp6,
        })
    }

    /// The MAC address announced.
    pub const fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Broadcasts one gratuitous ARP for `ip`.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`] (ENETDOWN when the link is down).
    pub fn gratuitous_arp(&self, ip: Ipv4Addr) -> Result<()> {
        let link = self
            .interface
            .link_addr()
            .ok_or_else(|| NetError::NoLinkAddress(self.interface.name().into()))?;
        let frame = garp_frame(self.mac, ip);
        sendto(self.packet.as_raw_fd(), &frame, link, MsgFlags::empty())
            .map(|_| ())
            .map_err(|e| NetError::Io {
                op: "send gratuitous ARP",
                source: e.into(),
            })
    }

    /// Sends one unsolicited Neighbor Advertisement for `target` to ff02::1, from `source`
    /// (the interface's link-local address). `router` sets the R flag (when this node routes).
    ///
    /// # Errors
    ///
    /// [`NetError::Io`]; EAFNOSUPPORT when the host has no IPv6.
    pub fn neighbor_advertisement(
        &self,
        target: Ipv6Addr,
        source: Ipv6Addr,
        router: bool,
    ) -> Result<()> {
        let socket = self.icmp6.as_ref().ok_or_else(|| NetError::Io {
            op: "send neighbor advertisement",
            source: std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT),
        })?;
        let na = unsolicited_na(self.mac, target, router);
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: source.octets(),
            },
            ipi6_ifindex: self.interface.index(),
        };
        let to = SockaddrIn6::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.interface.index()));
        sendmsg(
            socket.as_raw_fd(),
            &[IoSlice::new(&na)],
            &[ControlMessage::Ipv6PacketInfo(&info)],
            MsgFlags::empty(),
            Some(&to),
        )
        .map(|_| ())
        .map_err(|e| NetError::Io {
            op: "send neighbor advertisement",
            source: e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    #[test]
    fn garp_is_a_broadcast_arp_request_for_itself() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 200));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &[192, 0, 2, 200]);
        assert_eq!(&f[38..42], &[192, 0, 2, 200]);
        assert!(f[42..].iter().all(|b| *b == 0));
    }

    #[test]
    fn na_has_override_and_the_mac() {
        let t: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let m = unsolicited_na(MAC, t, false);
        assert_eq!(m[0], 136);
        assert_eq!(m[4], 0x20);
        assert_eq!(&m[8..24], &t.octets());
        assert_eq!(&m[24..26], &[2, 1]);
        assert_eq!(&m[26..32], &MAC);
        assert_eq!(unsolicited_na(MAC, t, true)[4], 0xa0);
    }
}
