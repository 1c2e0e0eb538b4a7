//! A small synchronous route-netlink client: one request, its answers, its acknowledgement.
//!
//! Blocking on purpose: address and link requests are rare and answered at once by the kernel,
//! and a synchronous client works unchanged on a thread moved into another network namespace.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::error::{NetError, Result};

/// A route-netlink socket for requests, in the network namespace of the thread that made it.
#[derive(Debug)]
pub struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket (needs no privilege; changes need CAP_NET_ADMIN).
    ///
    /// # Errors
    ///
    /// [`NetError::Io`] when the socket cannot be made.
    pub fn new() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetError::io("netlink socket"))?;
        socket.bind_auto().map_err(NetError::io("netlink bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetError::io("netlink connect"))?;
        Ok(Rtnl {
            socket,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends `msg` with `flags` (plus REQUEST and ACK) and returns every message answered
    /// before the acknowledgement (or the end of a dump).
    ///
    /// # Errors
    ///
    /// [`NetError::Netlink`] with the kernel's error code, [`NetError::Io`] or
    /// [`NetError::Decode`].
    pub fn request(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket
            .send(&out, 0)
            .map_err(|source| NetError::Io { op, source })?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut answers = Vec::new();
        loop {
            self.buf.clear();
            let n = self
                .socket
                .recv(&mut self.buf, 0)
                .map_err(|source| NetError::Io { op, source })?;
            let mut at = 0;
            while at < n.min(self.buf.len()) {
                let bytes = &self.buf[at..n.min(self.buf.len())];
                let msg =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).map_err(|e| {
                        NetError::Decode {
                            op,
                            detail: e.to_string(),
                        }
                    })?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(NetError::Decode {
                        op,
                        detail: "zero-length message".into(),
                    });
                }
                // Netlink messages are 4-byte aligned in a datagram.
                at += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            // A zero code is the acknowledgement.
                            None => Ok(answers),
                            Some(_) => Err(NetError::Netlink {
                                op,
                                source: e.to_io(),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) if dump => return Ok(answers),
                    _ => {}
                }
            }
        }
    }
}

/// Whether a netlink error is the kernel's "no such thing" (deleting what is not there).
pub(crate) fn is_not_found(err: &NetError) -> bool {
    matches!(err, NetError::Netlink { source, .. }
        if matches!(source.raw_os_error(), Some(nix::libc::EADDRNOTAVAIL) | Some(nix::libc::ENOENT) | Some(nix::libc::ESRCH)))
}

/// Whether a netlink error is "already there" (adding what exists).
pub(crate) fn is_exists(err: &NetError) -> bool {
    matches!(err, NetError::Netlink { source, .. } if source.kind() == io::ErrorKind::AlreadyExists)
}
