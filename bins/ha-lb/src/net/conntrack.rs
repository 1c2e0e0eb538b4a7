//! The kernel's connection tracking table, read over ctnetlink (a dump, as `conntrack -L`
//! does): the flows NAT listeners sent to their backends, with their state and, when
//! `net.netfilter.nf_conntrack_acct` is on, their bytes.
//!
//! A flow of a NAT listener is an entry whose original destination is the listener's address
//! and port and whose reply source is the backend (the rewritten destination).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr as NlAddr};

use super::error::{NetError, Result};
use super::nftables::{messages, request_socket};

/// One TCP flow in the conntrack table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The client (the original source).
    pub original_src: SocketAddr,
    /// Where the client connected (the original destination).
    pub original_dst: SocketAddr,
    /// Where the reply comes from: after DNAT, the backend.
    pub reply_src: SocketAddr,
    /// The TCP state is ESTABLISHED.
    pub established: bool,
    /// The TCP state (nf_conntrack_tcp.h: 1 SYN_SENT ... 3 ESTABLISHED ... 7 TIME_WAIT, 8
    /// CLOSE), when the kernel said.
    pub tcp_state: Option<u8>,
    /// How long the flow lived, when `net.netfilter.nf_conntrack_timestamp` is on and it ended.
    pub duration: Option<Duration>,
    /// Bytes the client sent (0 without accounting).
    pub bytes_original: u64,
    /// Bytes sent back to the client (0 without accounting).
    pub bytes_reply: u64,
}

mod ct {
    pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
    pub const IPCTNL_MSG_CT_GET: u16 = 1;
    pub const IPCTNL_MSG_CT_DELETE: u16 = 2;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLA_F_NESTED: u16 = 0x8000;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
    pub const ENOENT: i32 = 2;
    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub const NLMSG_ERROR: u16 = 0x2;
    pub const NLMSG_DONE: u16 = 0x3;
    pub const CTA_TUPLE_ORIG: u16 = 1;
    pub const CTA_TUPLE_REPLY: u16 = 2;
    pub const CTA_PROTOINFO: u16 = 4;
    pub const CTA_COUNTERS_ORIG: u16 = 9;
    pub const CTA_COUNTERS_REPLY: u16 = 10;
    pub const CTA_TIMESTAMP: u16 = 20;
    pub const CTA_TIMESTAMP_START: u16 = 1;
    pub const CTA_TIMESTAMP_STOP: u16 = 2;
    /// nfnetlink's multicast group of ended flows.
    pub const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;
    pub const CTA_TUPLE_IP: u16 = 1;
    pub const CTA_TUPLE_PROTO: u16 = 2;
    pub const CTA_IP_V4_SRC: u16 = 1;
    pub const CTA_IP_V4_DST: u16 = 2;
    pub const CTA_IP_V6_SRC: u16 = 3;
    pub const CTA_IP_V6_DST: u16 = 4;
    pub const CTA_PROTO_NUM: u16 = 1;
    pub const CTA_PROTO_SRC_PORT: u16 = 2;
    pub const CTA_PROTO_DST_PORT: u16 = 3;
    pub const CTA_PROTOINFO_TCP: u16 = 1;
    pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;
    pub const CTA_COUNTERS_BYTES: u16 = 2;
    pub const TCP_CONNTRACK_ESTABLISHED: u8 = 3;
    pub const IPPROTO_TCP: u8 = 6;
}

/// The attributes of a netlink attribute list: (type without flags, value).
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or(&[]);
    }
    out
}

fn find<'a>(list: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    list.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// (source, destination, protocol) of a CTA_TUPLE_* value.
fn tuple(value: &[u8]) -> Option<(SocketAddr, SocketAddr, u8)> {
    let t = attrs(value);
    let ip = attrs(find(&t, ct::CTA_TUPLE_IP)?);
    let proto = attrs(find(&t, ct::CTA_TUPLE_PROTO)?);
    let v4 = |k| -> Option<IpAddr> {
        let b: [u8; 4] = find(&ip, k)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    };
    let v6 = |k| -> Option<IpAddr> {
        let b: [u8; 16] = find(&ip, k)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    };
    let (src, dst) = match (v4(ct::CTA_IP_V4_SRC), v4(ct::CTA_IP_V4_DST)) {
        (Some(s), Some(d)) => (s, d),
        _ => (v6(ct::CTA_IP_V6_SRC)?, v6(ct::CTA_IP_V6_DST)?),
    };
    let port = |k| -> Option<u16> {
        let b: [u8; 2] = find(&proto, k)?.try_into().ok()?;
        Some(u16::from_be_bytes(b))
    };
    let num = *find(&proto, ct::CTA_PROTO_NUM)?.first()?;
    Some((
        SocketAddr::new(src, port(ct::CTA_PROTO_SRC_PORT).unwrap_or(0)),
        SocketAddr::new(dst, port(ct::CTA_PROTO_DST_PORT).unwrap_or(0)),
        num,
    ))
}

fn bytes(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| find(&attrs(v), ct::CTA_COUNTERS_BYTES))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// One conntrack message's attributes (after the nfgenmsg) as a [`Flow`], if it is TCP.
fn flow(body: &[u8]) -> Option<Flow> {
    let a = attrs(body);
    let (original_src, original_dst, proto) = tuple(find(&a, ct::CTA_TUPLE_ORIG)?)?;
    let (reply_src, _, _) = tuple(find(&a, ct::CTA_TUPLE_REPLY)?)?;
    if proto != ct::IPPROTO_TCP {
        return None;
    }
    let state = find(&a, ct::CTA_PROTOINFO)
        .and_then(|p| find(&attrs(p), ct::CTA_PROTOINFO_TCP))
        .and_then(|t| find(&attrs(t), ct::CTA_PROTOINFO_TCP_STATE))
        .and_then(|s| s.first().copied());
    let stamp = |k| {
        find(&a, ct::CTA_TIMESTAMP)
            .and_then(|t| find(&attrs(t), k).and_then(|v| <[u8; 8]>::try_from(v).ok()))
            .map(u64::from_be_bytes)
    };
    let duration = match (
        stamp(ct::CTA_TIMESTAMP_START),
        stamp(ct::CTA_TIMESTAMP_STOP),
    ) {
        (Some(start), Some(stop)) if stop >= start => Some(Duration::from_nanos(stop - start)),
        _ => None,
    };
    Some(Flow {
        tcp_state: state,
        duration,
        original_src,
        original_dst,
        reply_src,
        established: state == Some(ct::TCP_CONNTRACK_ESTABLISHED),
        bytes_original: bytes(find(&a, ct::CTA_COUNTERS_ORIG)),
        bytes_reply: bytes(find(&a, ct::CTA_COUNTERS_REPLY)),
    })
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The IPCTNL_MSG_CT_DELETE message for `flow`, by its original tuple.
fn delete_message(flow: &Flow, seq: u32) -> Vec<u8> {
    let (src, dst, family) = if flow.original_src.is_ipv4() {
        (ct::CTA_IP_V4_SRC, ct::CTA_IP_V4_DST, ct::AF_INET)
    } else {
        (ct::CTA_IP_V6_SRC, ct::CTA_IP_V6_DST, ct::AF_INET6)
    };
    let mut ip = Vec::new();
    put_attr(&mut ip, src, &octets(flow.original_src.ip()));
    put_attr(&mut ip, dst, &octets(flow.original_dst.ip()));
    let mut proto = Vec::new();
    put_attr(&mut proto, ct::CTA_PROTO_NUM, &[ct::IPPROTO_TCP]);
    put_attr(
        &mut proto,
        ct::CTA_PROTO_SRC_PORT,
        &flow.original_src.port().to_be_bytes(),
    );
    put_attr(
        &mut proto,
        ct::CTA_PROTO_DST_PORT,
        &flow.original_dst.port().to_be_bytes(),
    );
    let mut tuple = Vec::new();
    put_attr(&mut tuple, ct::CTA_TUPLE_IP | ct::NLA_F_NESTED, &ip);
    put_attr(&mut tuple, ct::CTA_TUPLE_PROTO | ct::NLA_F_NESTED, &proto);
    let mut attrs = Vec::new();
    put_attr(&mut attrs, ct::CTA_TUPLE_ORIG | ct::NLA_F_NESTED, &tuple);
    let mut msg = Vec::with_capacity(20 + attrs.len());
    let len = u32::try_from(20 + attrs.len()).unwrap_or(u32::MAX);
    let msg_type = (ct::NFNL_SUBSYS_CTNETLINK << 8) | ct::IPCTNL_MSG_CT_DELETE;
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&msg_type.to_ne_bytes());
    msg.extend_from_slice(&(ct::NLM_F_REQUEST | ct::NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[family, 0, 0, 0]);
    msg.extend_from_slice(&attrs);
    msg
}

/// Deletes these flows from the conntrack table (the client's next packet then starts a new
/// flow, which the NAT rules send to a backend that does not know it: it answers with a
/// reset). A flow already gone is no error. Returns how many were deleted.
///
/// # Errors
///
/// [`NetError::Firewall`] when the socket cannot be used or the kernel refuses a deletion.
pub fn delete(flows: &[Flow]) -> Result<usize> {
    if flows.is_empty() {
        return Ok(0);
    }
    let fail = |what: &str, e: std::io::Error| NetError::Firewall(format!("conntrack {what}: {e}"));
    let socket = request_socket("conntrack")?;
    let mut deleted = 0;
    let mut buf = vec![0u8; 8192];
    for (i, f) in flows.iter().enumerate() {
        let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
        socket
            .send(&delete_message(f, seq), 0)
            .map_err(|e| fail("send", e))?;
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| fail("answer", e))?;
        let answer = messages(&buf[..n]).find(|m| m.kind == ct::NLMSG_ERROR);
        if let Some(m) = answer {
            match -m.error() {
                0 => deleted += 1,
                ct::ENOENT => {}
                code => {
                    return Err(NetError::Firewall(format!(
                        "the kernel refused to delete a conntrack entry: {}",
                        std::io::Error::from_raw_os_error(code)
                    )))
                }
            }
        }
    }
    Ok(deleted)
}

/// A subscription to the kernel's "flow ended" conntrack events, in the calling thread's
/// network namespace.
#[derive(Debug)]
pub struct Ends {
    socket: Socket,
    buf: Vec<u8>,
}

impl Ends {
    /// Subscribes (needs CAP_NET_ADMIN). [`Ends::recv`] waits at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`NetError::Firewall`] when the socket cannot be made or bound to the group.
    pub fn subscribe(timeout: Duration) -> Result<Ends> {
        let fail = |what: &str, e: std::io::Error| {
            NetError::Firewall(format!("conntrack events {what}: {e}"))
        };
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| fail("socket", e))?;
        socket
            .bind(&NlAddr::new(0, 1 << (ct::NFNLGRP_CONNTRACK_DESTROY - 1)))
            .map_err(|e| fail("bind", e))?;
        // Bursts of ended flows (a backend's flows at once): room for many.
        socket
            .set_rx_buf_sz(4 << 20)
            .map_err(|e| fail("receive buffer", e))?;
        socket2::SockRef::from(&socket)
            .set_read_timeout(Some(timeout))
            .map_err(|e| fail("timeout", e))?;
        Ok(Ends {
            socket,
            buf: vec![0u8; 256 * 1024],
        })
    }

    /// The TCP flows that ended since the last call (waits up to the timeout for the first;
    /// empty when none came).
    ///
    /// # Errors
    ///
    /// [`NetError::Firewall`] when receiving fails; `ENOBUFS` (events lost because the
    /// reader fell behind) is such an error, and the subscription goes on.
    pub fn recv(&mut self) -> Result<Vec<Flow>> {
        let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(NetError::Firewall(format!("conntrack events: {e}"))),
        };
        let mut out = Vec::new();
        let mut at = 0;
        while at + 20 <= n {
            let word = |i: usize| -> u32 {
                self.buf
                    .get(at + i..at + i + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_ne_bytes)
            };
            let len = word(0) as usize;
            let kind = (word(4) & 0xffff) as u16;
            if len < 20 || at + len > n {
                break;
            }
            if kind >> 8 == ct::NFNL_SUBSYS_CTNETLINK {
                if let Some(f) = self.buf.get(at + 20..at + len).and_then(flow) {
                    out.push(f);
                }
            }
            at += (len + 3) & !3;
        }
        Ok(out)
    }
}

/// The TCP flows of the conntrack table (both families) in the calling thread's network
/// namespace whose original destination `wanted` accepts.
///
/// # Errors
///
/// [`NetError::Firewall`] when the socket cannot be used or the kernel refuses the dump (no
/// conntrack support, no CAP_NET_ADMIN).
pub fn tcp_flows(wanted: impl Fn(SocketAddr) -> bool) -> Result<Vec<Flow>> {
    let fail = |what: &str, e: std::io::Error| NetError::Firewall(format!("conntrack {what}: {e}"));
    let socket = request_socket("conntrack")?;
    let mut req = Vec::with_capacity(20);
    let msg_type = (ct::NFNL_SUBSYS_CTNETLINK << 8) | ct::IPCTNL_MSG_CT_GET;
    req.extend_from_slice(&20u32.to_ne_bytes());
    req.extend_from_slice(&msg_type.to_ne_bytes());
    req.extend_from_slice(&(ct::NLM_F_REQUEST | ct::NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: every family (AF_UNSPEC), version 0, res_id 0.
    req.extend_from_slice(&[0, 0, 0, 0]);
    socket.send(&req, 0).map_err(|e| fail("send", e))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| fail("dump", e))?;
        for m in messages(&buf[..n]) {
            match m.kind {
                ct::NLMSG_DONE => return Ok(out),
                ct::NLMSG_ERROR => {
                    let code = m.error();
                    if code != 0 {
                        return Err(NetError::Firewall(format!(
                            "the kernel refused the conntrack dump: {}",
                            std::io::Error::from_raw_os_error(-code)
                        )));
                    }
                }
                _ => {
                    // Header (16), nfgenmsg (4), attributes.
                    if let Some(f) = m.bytes.get(20..).and_then(flow) {
                        if wanted(f.original_dst) {
                            out.push(f);
                        }
                    }
                }
            }
        }
        if n == 0 {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&u16::try_from(4 + value.len()).unwrap().to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | 0x8000, &parts.concat())
    }

    fn tuple_attr(kind: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        nested(
            kind,
            &[
                nested(
                    ct::CTA_TUPLE_IP,
                    &[attr(ct::CTA_IP_V4_SRC, &src), attr(ct::CTA_IP_V4_DST, &dst)],
                ),
                nested(
                    ct::CTA_TUPLE_PROTO,
                    &[
                        attr(ct::CTA_PROTO_NUM, &[6]),
                        attr(ct::CTA_PROTO_SRC_PORT, &sport.to_be_bytes()),
                        attr(ct::CTA_PROTO_DST_PORT, &dport.to_be_bytes()),
                    ],
                ),
            ],
        )
    }

    #[test]
    fn a_dnat_flow_is_read_with_state_and_bytes() {
        let body = [
            tuple_attr(
                ct::CTA_TUPLE_ORIG,
                [192, 0, 2, 6],
                [192, 0, 2, 100],
                40000,
                80,
            ),
            tuple_attr(
                ct::CTA_TUPLE_REPLY,
                [192, 0, 2, 3],
                [192, 0, 2, 1],
                8080,
                40000,
            ),
            nested(
                ct::CTA_PROTOINFO,
                &[nested(
                    ct::CTA_PROTOINFO_TCP,
                    &[attr(ct::CTA_PROTOINFO_TCP_STATE, &[3])],
                )],
            ),
            nested(
                ct::CTA_COUNTERS_ORIG,
                &[attr(ct::CTA_COUNTERS_BYTES, &120u64.to_be_bytes())],
            ),
            nested(
                ct::CTA_TIMESTAMP,
                &[
                    attr(ct::CTA_TIMESTAMP_START, &5_000_000_000u64.to_be_bytes()),
                    attr(ct::CTA_TIMESTAMP_STOP, &6_500_000_000u64.to_be_bytes()),
                ],
            ),
        ]
        .concat();
        let f = flow(&body).unwrap();
        assert_eq!(f.original_src, "192.0.2.6:40000".parse().unwrap());
        // Its deletion names the original tuple, with the family in the header.
        let m = delete_message(&f, 7);
        assert_eq!(
            m.len(),
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize
        );
        assert_eq!(m[16], ct::AF_INET);
        let tuple = attrs(&m[20..]);
        assert_eq!(tuple[0].0, ct::CTA_TUPLE_ORIG);
        assert_eq!(self::tuple(tuple[0].1).unwrap().1, f.original_dst);
        assert_eq!(f.original_dst, "192.0.2.100:80".parse().unwrap());
        assert_eq!(f.reply_src, "192.0.2.3:8080".parse().unwrap());
        assert!(f.established);
        assert_eq!(f.tcp_state, Some(3));
        assert_eq!(f.duration, Some(Duration::from_millis(1500)));
        assert_eq!((f.bytes_original, f.bytes_reply), (120, 0));
        // Truncated input: nothing, no panic.
        for cut in 0..body.len() {
            let _ = flow(&body[..cut]);
        }
    }
}
