//! The raw IP socket VRRP adverts travel on (IP protocol 112), one per interface and family.
//!
//! What it guarantees, as RFC 5798 §5.1 and keepalived do:
//! - sent with TTL / hop limit 255, from a chosen source address (IP_PKTINFO / IPV6_PKTINFO on
//!   each send rather than `bind`, because a raw socket bound to a unicast address would drop
//!   the adverts sent to the multicast group), out of the chosen interface; a unicast-only
//!   socket is bound to its source address, so that it receives no group traffic;
//! - the group 224.0.0.18 / ff02::12 joined on that interface (unless unicast only), our own
//!   multicast not looped back;
//! - received with the source, destination and TTL / hop limit the checks of RFC 5798 §7.1
//!   need: for IPv4 from the IP header, which a raw socket hands over with the payload; for IPv6
//!   from the IPV6_HOPLIMIT and IPV6_PKTINFO control messages; with the kernel's arrival time
//!   (`SO_TIMESTAMPNS`), and with truncation reported (`MSG_TRUNC`) rather than a cut advert
//!   passed on as whole.
//!
//! It knows nothing about VRRP beyond the protocol number and the groups: it moves
//! `(src, dst, ttl, payload)` between the wire and vrrp-core.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime};

use nix::libc;
use nix::sys::socket::{
    recvmmsg, recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    MultiHeaders, RecvMsg, SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use vrrp_core::packet::{Family, IP_PROTOCOL, MULTICAST_V4, MULTICAST_V6, TTL};

use super::error::{NetError, Result};
use super::interface::Interface;

/// How to open a [`VrrpSocket`].
#[derive(Debug, Clone)]
pub struct VrrpSocketConfig {
    /// The address adverts are sent from: the interface's primary IPv4 address (or the
    /// configured unicast source), or its IPv6 link-local address. Its family is the socket's.
    pub source: IpAddr,
    /// Join the VRRP multicast group on the interface. Off for unicast-only instances: the
    /// socket is then bound to `source` and receives only what is sent to it.
    pub join_group: bool,
}

/// One received datagram, located in the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The IP source address.
    pub src: IpAddr,
    /// The IP destination address: the group, or our unicast address.
    pub dst: IpAddr,
    /// The TTL (IPv4) or hop limit (IPv6) it arrived with.
    pub ttl: u8,
    /// Where the VRRP message (the IP payload) is in the buffer given to `recv` (or in the
    /// datagram [`RecvBatch::get`] returns with it).
    pub payload: Range<usize>,
    /// The datagram was longer than the buffer: `payload` is only its start, never to be
    /// decoded (no legal advert is cut by a buffer of [`RECV_BUFFER_LEN`]).
    pub truncated: bool,
    /// When the kernel received it (`SO_TIMESTAMPNS`), if it said: a driver that reads late
    /// hands the router the arrival time, not the time it got round to reading.
    pub at: Option<SystemTime>,
}

/// A raw VRRP socket bound to one interface, for one address family.
#[derive(Debug)]
pub struct VrrpSocket {
    socket: Socket,
    family: Family,
    ifindex: u32,
    source: IpAddr,
}

impl VrrpSocket {
    /// Opens the socket on `interface` (needs CAP_NET_RAW).
    ///
    /// # Errors
    ///
    /// [`NetError::Io`] naming the step that failed (EPERM without CAP_NET_RAW).
    pub fn open(interface: &Interface, config: &VrrpSocketConfig) -> Result<Self> {
        let ifindex = interface.index();
        let family = Family::of(&config.source);
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let socket = Socket::new(
            domain,
            Type::RAW,
            Some(Protocol::from(i32::from(IP_PROTOCOL))),
        )
        .map_err(NetError::io("open raw VRRP socket"))?;
        // Only this interface's adverts, and ours go out of it whatever the routes say.
        socket
            .bind_device(Some(interface.name().as_bytes()))
            .map_err(NetError::io("SO_BINDTODEVICE"))?;
        // Arrival times, so that adverts read late are not taken as late (RFC 5798 timers).
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(|e| NetError::Io {
            op: "SO_TIMESTAMPNS",
            source: e.into(),
        })?;
        let ttl = u32::from(TTL);
        match config.source {
            IpAddr::V4(src) => {
                socket.set_ttl_v4(ttl).map_err(NetError::io("IP_TTL"))?;
                socket
                    .set_multicast_ttl_v4(ttl)
                    .map_err(NetError::io("IP_MULTICAST_TTL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .map_err(NetError::io("IP_MULTICAST_LOOP"))?;
                // Sends name the interface in IP_PKTINFO anyway, so this is only a default.
                // The kernel refuses it on an interface that does not hold the source address
                // (a VMAC interface, which holds only VIPs): then the default stays unset.
                let _ = socket.set_multicast_if_v4(&src);
                // Only the groups this socket joined, not every group of the host.
                socket
                    .set_multicast_all_v4(false)
                    .map_err(NetError::io("IP_MULTICAST_ALL"))?;
                if config.join_group {
                    socket
                        .join_multicast_v4_n(
                            &MULTICAST_V4,
                            &InterfaceIndexOrAddress::Index(ifindex),
                        )
                        .map_err(NetError::io("join 224.0.0.18"))?;
                }
            }
            IpAddr::V6(_) => {
                socket
                    .set_unicast_hops_v6(ttl)
                    .map_err(NetError::io("IPV6_UNICAST_HOPS"))?;
                socket
                    .set_multicast_hops_v6(ttl)
                    .map_err(NetError::io("IPV6_MULTICAST_HOPS"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .map_err(NetError::io("IPV6_MULTICAST_LOOP"))?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .map_err(NetError::io("IPV6_MULTICAST_IF"))?;
                // Only the groups this socket joined, not every group of the host.
                socket
                    .set_multicast_all_v6(false)
                    .map_err(NetError::io("IPV6_MULTICAST_ALL"))?;
                socket
                    .set_recv_hoplimit_v6(true)
                    .map_err(NetError::io("IPV6_RECVHOPLIMIT"))?;
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(|e| {
                    NetError::Io {
                        op: "IPV6_RECVPKTINFO",
                        source: e.into(),
                    }
                })?;
                if config.join_group {
                    socket
                        .join_multicast_v6(&MULTICAST_V6, ifindex)
                        .map_err(NetError::io("join ff02::12"))?;
                }
            }
        }
        if !config.join_group {
            // Unicast only: receive only what is sent to our address. (An unbound IPv6 raw
            // socket gets every group's traffic whatever IPV6_MULTICAST_ALL says.)
            let local = match config.source {
                IpAddr::V4(a) => SockAddr::from(SocketAddrV4::new(a, 0)),
                IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, 0, 0, ifindex)),
            };
            socket
                .bind(&local)
                .map_err(NetError::io("bind to the unicast source address"))?;
        }
        Ok(VrrpSocket {
            socket,
            family,
            ifindex,
            source: config.source,
        })
    }

    /// The socket's address family.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The address adverts are sent from; vrrp-core needs it for the checksum.
    pub const fn source(&self) -> IpAddr {
        self.source
    }

    /// The interface index.
    pub const fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Makes `recv` and `send_to` non-blocking, for an event loop.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`].
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.socket
            .set_nonblocking(nonblocking)
            .map_err(NetError::io("O_NONBLOCK"))
    }

    /// Bounds how long a blocking `recv` waits (`None`: forever).
    ///
    /// # Errors
    ///
    /// [`NetError::Io`].
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.socket
            .set_read_timeout(timeout)
            .map_err(NetError::io("SO_RCVTIMEO"))
    }

    /// Sends a VRRP message to `dst` (the group or a unicast peer).
    ///
    /// # Errors
    ///
    /// [`NetError::FamilyMismatch`], or [`NetError::Io`] (EAGAIN when non-blocking and full;
    /// ENETDOWN / ENXIO when the link is gone: see [`NetError::is_link_gone`]).
    pub fn send_to(&self, payload: &[u8], dst: IpAddr) -> Result<()> {
        self.send_from(payload, self.source, dst)
    }

    /// Sends a VRRP message to `dst` from `source` (instances sharing the socket may each
    /// have their own source address).
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to); [`NetError::FamilyMismatch`] when `source` or `dst` is
    /// not of the socket's family.
    pub fn send_from(&self, payload: &[u8], source: IpAddr, dst: IpAddr) -> Result<()> {
        let iov = [IoSlice::new(payload)];
        let fd = self.socket.as_raw_fd();
        let sent = match (source, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as libc::c_int,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&to),
                )
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                // Link-scoped destinations (ff02::12, fe80::) need the interface as scope.
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&to),
                )
            }
            _ => {
                return Err(NetError::FamilyMismatch(
                    "destination not of the socket's family",
                ))
            }
        };
        sent.map(|_| ()).map_err(|e| NetError::Io {
            op: "send VRRP advert",
            source: e.into(),
        })
    }

    /// Receives one datagram into `buf`, which should hold [`RECV_BUFFER_LEN`] bytes: then no
    /// legal advert is ever cut, and a longer datagram comes back with `truncated` set.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`] (EAGAIN / timeout when nothing came), [`NetError::Malformed`] for a
    /// datagram whose IPv4 header does not hold together or that lacks the IPv6 control
    /// messages (counted and dropped by the caller).
    pub fn recv(&self, buf: &mut [u8]) -> Result<Received> {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, libc::timespec);
        let header = {
            let mut iov = [IoSliceMut::new(buf)];
            let msg = recvmsg::<SockaddrStorage>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            )
            .map_err(|e| NetError::Io {
                op: "receive VRRP advert",
                source: e.into(),
            })?;
            Header::of(&msg)
        };
        self.received(header?, buf)
    }

    /// Reads the datagrams queued on the socket, at most [`RECV_BATCH`], in one system call
    /// (`recvmmsg`), without waiting: each is then in `batch` ([`RecvBatch::get`]), as
    /// [`recv`](Self::recv) would have returned it. Returns how many were read; fewer than
    /// [`RECV_BATCH`] means the queue was empty when the call returned.
    ///
    /// # Errors
    ///
    /// [`NetError::Io`]: EAGAIN when nothing was queued; a datagram that does not hold
    /// together is not an error of the call but of its entry in `batch`.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> Result<usize> {
        batch.headers.clear();
        {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
                RECV_BATCH,
                Some(nix::cmsg_space!(
                    libc::in6_pktinfo,
                    libc::c_int,
                    libc::timespec
                )),
            );
            let mut slots = batch.data.chunks_exact_mut(RECV_BUFFER_LEN);
            let mut iovs: [[IoSliceMut<'_>; 1]; RECV_BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or_default())]);
            let msgs = recvmmsg(
                self.socket.as_raw_fd(),
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(|e| NetError::Io {
                op: "receive VRRP adverts",
                source: e.into(),
            })?;
            batch.headers.extend(msgs.map(|m| Header::of(&m)));
        }
        let count = batch.headers.len();
        batch.received.clear();
        for (header, slot) in batch
            .headers
            .drain(..)
            .zip(batch.data.chunks_exact(RECV_BUFFER_LEN))
        {
            batch
                .received
                .push(header.and_then(|h| self.received(h, slot)));
        }
        Ok(count)
    }

    /// A datagram from what the kernel said about it and its bytes in `buf`.
    fn received(&self, header: Header, buf: &[u8]) -> Result<Received> {
        let Header {
            len: n,
            truncated,
            src,
            mut dst,
            mut hops,
            mut at,
        } = header;
        let mut payload = 0..n;
        let src = match self.family {
            Family::Ipv4 => {
                // The IP header comes with the payload: addresses and TTL are read from it.
                let header = parse_ipv4(buf.get(..n).unwrap_or(buf), truncated)?;
                dst = Some(header.dst);
                hops = Some(header.ttl);
                at = at.or(header.at);
                payload = header.payload;
                header.src
            }
            Family::Ipv6 => src.ok_or(NetError::Malformed("no source address"))?,
        };
        let dst = dst.ok_or(NetError::Malformed("no IPV6_PKTINFO control message"))?;
        let ttl = hops.ok_or(NetError::Malformed("no IPV6_HOPLIMIT control message"))?;
        Ok(Received {
            src,
            dst,
            ttl,
            payload,
            truncated,
            at,
        })
    }
}

/// What the kernel said about one datagram: its length, the IPv6 source and the control
/// messages (the IPv4 addresses are in the datagram itself).
#[derive(Debug, Clone, Copy)]
struct Header {
    len: usize,
    truncated: bool,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    hops: Option<u8>,
    at: Option<SystemTime>,
}

impl Header {
    fn of(msg: &RecvMsg<'_, '_, SockaddrStorage>) -> Result<Self> {
        let src = msg
            .address
            .and_then(|a| a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())));
        let (mut dst, mut hops, mut at) = (None, None, None);
        for c in msg.cmsgs().map_err(|e| NetError::Io {
            op: "receive VRRP advert (control messages)",
            source: e.into(),
        })? {
            match c {
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                ControlMessageOwned::Ipv6HopLimit(h) => hops = u8::try_from(h).ok(),
                ControlMessageOwned::ScmTimestampns(ts) => at = system_time(ts),
                _ => {}
            }
        }
        Ok(Self {
            len: msg.bytes,
            truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
            src,
            dst,
            hops,
            at,
        })
    }
}

/// How many datagrams [`VrrpSocket::recv_batch`] reads at most in one call: 32, so that a
/// Master's round of adverts for a few dozen instances, which arrives together, is read in
/// one call (with 16, a Backup of 20 instances made a second call for every round, which
/// found the queue empty).
pub const RECV_BATCH: usize = 32;

/// The buffers [`VrrpSocket::recv_batch`] reads into, kept from call to call: room for
/// [`RECV_BATCH`] datagrams of [`RECV_BUFFER_LEN`] bytes and what was read.
#[derive(Debug)]
pub struct RecvBatch {
    data: Vec<u8>,
    headers: Vec<Result<Header>>,
    received: Vec<Result<Received>>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            data: vec![0; RECV_BATCH * RECV_BUFFER_LEN],
            headers: Vec::with_capacity(RECV_BATCH),
            received: Vec::with_capacity(RECV_BATCH),
        }
    }
}

impl RecvBatch {
    /// The `i`-th datagram of the last read (`i` below what it returned): as
    /// [`VrrpSocket::recv`] returns it (its `payload` indexes the bytes given with it), or why
    /// it was dropped.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<(&Result<Received>, &[u8])> {
        let received = self.received.get(i)?;
        let start = i * RECV_BUFFER_LEN;
        Some((received, self.data.get(start..start + RECV_BUFFER_LEN)?))
    }
}

/// A receive buffer that holds the longest legal advert and the longest IPv4 header.
pub const RECV_BUFFER_LEN: usize = vrrp_core::packet::MAX_PACKET_LEN + 60;

/// The kernel's receive timestamp (`SO_TIMESTAMPNS`, the real-time clock) as a `SystemTime`.
fn system_time(ts: nix::sys::time::TimeSpec) -> Option<SystemTime> {
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u32::try_from(ts.tv_nsec()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

impl AsFd for VrrpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Splits what an IPv4 raw socket returns (the IP header, then the payload). A `truncated`
/// datagram was cut by the receive buffer: its header is checked but its total length may
/// exceed what was read, and the payload is what was read of it.
///
/// # Errors
///
/// [`NetError::Malformed`] when the header is short, not IPv4, not protocol 112, or its
/// lengths do not fit the datagram.
pub fn parse_ipv4(datagram: &[u8], truncated: bool) -> Result<Received> {
    if datagram.len() < 20 {
        return Err(NetError::Malformed("shorter than an IPv4 header"));
    }
    if datagram[0] >> 4 != 4 {
        return Err(NetError::Malformed("not IPv4"));
    }
    let ihl = usize::from(datagram[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let total = if truncated {
        total.min(datagram.len())
    } else {
        total
    };
    if ihl < 20 || total < ihl || total > datagram.len() {
        return Err(NetError::Malformed("IPv4 header lengths do not fit"));
    }
    if datagram[9] != IP_PROTOCOL {
        return Err(NetError::Malformed("not IP protocol 112"));
    }
    let addr = |at: usize| {
        IpAddr::V4(Ipv4Addr::new(
            datagram[at],
            datagram[at + 1],
            datagram[at + 2],
            datagram[at + 3],
        ))
    };
    Ok(Received {
        src: addr(12),
        dst: addr(16),
        ttl: datagram[8],
        payload: ihl..total,
        truncated,
        at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_is_split_off() {
        // A VRRPv3 advert from keepalived (vrrp-core/tests/data), with its IP header.
        let mut d = vec![
            0x45, 0xc0, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0xff, 0x70, 0x00, 0x00, 192, 0, 2, 1,
            224, 0, 0, 18,
        ];
        d.extend_from_slice(&[0x31, 102, 100, 1, 0x00, 0x64, 0x04, 0xda, 192, 0, 2, 201]);
        d.extend_from_slice(&[0; 4]); // trailing bytes past the IP total length are ignored
        let r = parse_ipv4(&d, false).unwrap();
        assert_eq!(r.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.dst, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!(r.ttl, 255);
        assert_eq!(r.payload, 20..32);
    }

    #[test]
    fn broken_ipv4_headers_are_errors() {
        assert!(parse_ipv4(&[0x45; 10], false).is_err());
        let mut d = vec![0u8; 28];
        d[0] = 0x45;
        d[3] = 60; // total length past the datagram
        d[9] = 112;
        assert!(parse_ipv4(&d, false).is_err());
        d[3] = 28;
        d[9] = 6; // TCP
        assert!(parse_ipv4(&d, false).is_err());
        d[9] = 112;
        d[0] = 0x44; // IHL 16 bytes
        assert!(parse_ipv4(&d, false).is_err());
    }
}
