//! nf_tables over netlink: the messages `nft` would send, built here on netlink-sys, sent as
//! one batch (one transaction: all of it or nothing) in the network namespace of the calling
//! thread. The `nft` program is not needed at run time. Used by [`super::firewall`]
//! (Accept_Mode) and [`super::nat`] (NAT listeners), each for its own table.

use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::error::{NetError, Result};

/// Constants of linux/netlink.h, linux/netfilter/nfnetlink.h and nf_tables.h.
pub(crate) mod nft {
    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLM_F_CREATE: u16 = 0x400;
    pub const NLM_F_APPEND: u16 = 0x800;
    pub const NLMSG_ERROR: u16 = 0x2;
    pub const NLA_F_NESTED: u16 = 0x8000;
    pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
    pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
    pub const NFNL_MSG_BATCH_END: u16 = 0x11;
    pub const NFPROTO_UNSPEC: u8 = 0;
    pub const NFPROTO_INET: u8 = 1;
    pub const NFPROTO_IPV4: u8 = 2;
    pub const NFPROTO_IPV6: u8 = 10;
    // Messages.
    pub const NEWTABLE: u16 = 0;
    pub const DELTABLE: u16 = 2;
    pub const NEWCHAIN: u16 = 3;
    pub const NEWRULE: u16 = 6;
    pub const NEWSET: u16 = 9;
    pub const NEWSETELEM: u16 = 12;
    // Attributes.
    pub const TABLE_NAME: u16 = 1;
    pub const CHAIN_TABLE: u16 = 1;
    pub const CHAIN_NAME: u16 = 3;
    pub const CHAIN_HOOK: u16 = 4;
    pub const CHAIN_POLICY: u16 = 5;
    pub const CHAIN_TYPE: u16 = 7;
    pub const HOOK_HOOKNUM: u16 = 1;
    pub const HOOK_PRIORITY: u16 = 2;
    pub const SET_TABLE: u16 = 1;
    pub const SET_NAME: u16 = 2;
    pub const SET_FLAGS: u16 = 3;
    pub const SET_KEY_TYPE: u16 = 4;
    pub const SET_KEY_LEN: u16 = 5;
    pub const SET_ID: u16 = 10;
    pub const SET_ELEM_LIST_TABLE: u16 = 1;
    pub const SET_ELEM_LIST_SET: u16 = 2;
    pub const SET_ELEM_LIST_ELEMENTS: u16 = 3;
    pub const SET_ELEM_LIST_SET_ID: u16 = 4;
    pub const SET_ELEM_KEY: u16 = 1;
    pub const LIST_ELEM: u16 = 1;
    pub const DATA_VALUE: u16 = 1;
    pub const DATA_VERDICT: u16 = 2;
    pub const VERDICT_CODE: u16 = 1;
    pub const RULE_TABLE: u16 = 1;
    pub const RULE_CHAIN: u16 = 2;
    pub const RULE_EXPRESSIONS: u16 = 4;
    pub const EXPR_NAME: u16 = 1;
    pub const EXPR_DATA: u16 = 2;
    pub const META_DREG: u16 = 1;
    pub const META_KEY: u16 = 2;
    pub const CMP_SREG: u16 = 1;
    pub const CMP_OP: u16 = 2;
    pub const CMP_DATA: u16 = 3;
    pub const PAYLOAD_DREG: u16 = 1;
    pub const PAYLOAD_BASE: u16 = 2;
    pub const PAYLOAD_OFFSET: u16 = 3;
    pub const PAYLOAD_LEN: u16 = 4;
    pub const LOOKUP_SET: u16 = 1;
    pub const LOOKUP_SREG: u16 = 2;
    pub const LOOKUP_SET_ID: u16 = 4;
    pub const IMMEDIATE_DREG: u16 = 1;
    pub const IMMEDIATE_DATA: u16 = 2;
    // NAT listeners (nf_tables.h).
    pub const SET_DATA_TYPE: u16 = 6;
    pub const SET_DATA_LEN: u16 = 7;
    pub const SET_MAP: u32 = 0x8;
    pub const SET_ELEM_DATA: u16 = 2;
    pub const LOOKUP_DREG: u16 = 3;
    pub const NG_DREG: u16 = 1;
    pub const NG_MODULUS: u16 = 2;
    pub const NG_TYPE: u16 = 3;
    pub const NG_INCREMENTAL: u32 = 0;
    pub const NG_RANDOM: u32 = 1;
    pub const HASH_SREG: u16 = 1;
    pub const HASH_DREG: u16 = 2;
    pub const HASH_LEN: u16 = 3;
    pub const HASH_MODULUS: u16 = 4;
    pub const HASH_SEED: u16 = 5;
    pub const HASH_TYPE: u16 = 7;
    pub const HASH_JENKINS: u32 = 0;
    pub const NAT_TYPE: u16 = 1;
    pub const NAT_FAMILY: u16 = 2;
    pub const NAT_REG_ADDR_MIN: u16 = 3;
    pub const NAT_REG_PROTO_MIN: u16 = 5;
    pub const NAT_SNAT: u32 = 0;
    pub const NAT_DNAT: u32 = 1;
    pub const CT_DREG: u16 = 1;
    pub const CT_KEY: u16 = 2;
    pub const CT_DIRECTION: u16 = 3;
    pub const CT_STATUS: u32 = 2;
    pub const CT_PROTO_DST: u32 = 12;
    pub const CT_DST_IP: u32 = 20;
    pub const CT_DST_IP6: u32 = 22;
    pub const CT_DIR_ORIGINAL: u8 = 0;
    /// IPS_DST_NAT of nf_conntrack_common.h: the flow's destination was rewritten.
    pub const IPS_DST_NAT: u32 = 0x20;
    pub const BITWISE_SREG: u16 = 1;
    pub const BITWISE_DREG: u16 = 2;
    pub const BITWISE_LEN: u16 = 3;
    pub const BITWISE_MASK: u16 = 4;
    pub const BITWISE_XOR: u16 = 5;
    pub const CMP_NEQ: u32 = 1;
    pub const NF_INET_PRE_ROUTING: u32 = 0;
    pub const NF_INET_LOCAL_OUT: u32 = 3;
    pub const NF_INET_POST_ROUTING: u32 = 4;
    /// The second 32-bit register: the port half of an address . port map value.
    pub const REG32_01: u32 = 9;
    pub const REG_2: u32 = 2;
    pub const IPPROTO_TCP: u8 = 6;
    /// nft's data types: an integer, a port, and the concatenation
    /// rule `(a << 6) | b` for `ipv4_addr . inet_service`.
    pub const TYPE_INTEGER: u32 = 4;
    pub const SET_USERDATA: u16 = 13;
    pub const TYPE_INET_SERVICE: u32 = 13;
    pub const CONCAT_BITS: u32 = 6;
    // Values.
    pub const NF_INET_LOCAL_IN: u32 = 1;
    pub const NF_DROP: u32 = 0;
    pub const NF_ACCEPT: u32 = 1;
    pub const REG_VERDICT: u32 = 0;
    pub const REG_1: u32 = 1;
    pub const META_NFPROTO: u32 = 15;
    pub const META_L4PROTO: u32 = 16;
    pub const CMP_EQ: u32 = 0;
    pub const PAYLOAD_NETWORK: u32 = 1;
    pub const PAYLOAD_TRANSPORT: u32 = 2;
    /// nft's data types of set keys.
    pub const TYPE_IPADDR: u32 = 7;
    pub const TYPE_IP6ADDR: u32 = 8;
    pub const IPPROTO_ICMPV6: u8 = 58;
    pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
    pub const ND_NEIGHBOR_ADVERT: u8 = 136;
}

/// Netlink attributes, written into a buffer (4-byte aligned, nested ones flagged).
#[derive(Debug, Clone, Default)]
pub(crate) struct Attrs(pub(crate) Vec<u8>);

impl Attrs {
    pub(crate) fn raw(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
        self
    }

    pub(crate) fn str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.raw(kind, &v)
    }

    /// A 32-bit value, in network order as nf_tables wants.
    pub(crate) fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.raw(kind, &value.to_be_bytes())
    }

    pub(crate) fn nest(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.raw(kind | nft::NLA_F_NESTED, &inner.0)
    }

    pub(crate) fn build(f: impl FnOnce(&mut Attrs)) -> Attrs {
        let mut a = Attrs::default();
        f(&mut a);
        a
    }
}

/// One expression of a rule: its name and its attributes.
pub(crate) fn expr(name: &str, data: &Attrs) -> Attrs {
    Attrs::build(|a| {
        a.str(nft::EXPR_NAME, name).nest(nft::EXPR_DATA, data);
    })
}

pub(crate) fn meta(key: u32) -> Attrs {
    expr(
        "meta",
        &Attrs::build(|a| {
            a.be32(nft::META_KEY, key).be32(nft::META_DREG, nft::REG_1);
        }),
    )
}

pub(crate) fn cmp_eq(value: &[u8]) -> Attrs {
    expr(
        "cmp",
        &Attrs::build(|a| {
            a.be32(nft::CMP_SREG, nft::REG_1)
                .be32(nft::CMP_OP, nft::CMP_EQ)
                .nest(
                    nft::CMP_DATA,
                    &Attrs::build(|d| {
                        d.raw(nft::DATA_VALUE, value);
                    }),
                );
        }),
    )
}

pub(crate) fn payload(base: u32, offset: u32, len: u32) -> Attrs {
    expr(
        "payload",
        &Attrs::build(|a| {
            a.be32(nft::PAYLOAD_DREG, nft::REG_1)
                .be32(nft::PAYLOAD_BASE, base)
                .be32(nft::PAYLOAD_OFFSET, offset)
                .be32(nft::PAYLOAD_LEN, len);
        }),
    )
}

pub(crate) fn lookup(set: &str, id: u32) -> Attrs {
    expr(
        "lookup",
        &Attrs::build(|a| {
            a.str(nft::LOOKUP_SET, set)
                .be32(nft::LOOKUP_SREG, nft::REG_1)
                .be32(nft::LOOKUP_SET_ID, id);
        }),
    )
}

pub(crate) fn verdict(code: u32) -> Attrs {
    let v = Attrs::build(|a| {
        a.be32(nft::VERDICT_CODE, code);
    });
    let data = Attrs::build(|a| {
        a.nest(nft::DATA_VERDICT, &v);
    });
    expr(
        "immediate",
        &Attrs::build(|a| {
            a.be32(nft::IMMEDIATE_DREG, nft::REG_VERDICT)
                .nest(nft::IMMEDIATE_DATA, &data);
        }),
    )
}

/// A batch of nf_tables messages, sent as one transaction.
pub(crate) struct Batch {
    pub(crate) buf: Vec<u8>,
    seq: u32,
    /// Messages that ask for an acknowledgement.
    pub(crate) acks: usize,
}

impl Batch {
    pub(crate) fn new() -> Self {
        let mut b = Batch {
            buf: Vec::new(),
            seq: 0,
            acks: 0,
        };
        b.message(
            nft::NFNL_MSG_BATCH_BEGIN,
            nft::NLM_F_REQUEST,
            nft::NFPROTO_UNSPEC,
            &Attrs::default(),
        );
        b
    }

    /// One message: netlink header, nfgenmsg (family, version 0, the subsystem as res_id for
    /// the batch markers), attributes.
    pub(crate) fn message(&mut self, kind: u16, flags: u16, family: u8, attrs: &Attrs) {
        self.seq += 1;
        let batch = kind == nft::NFNL_MSG_BATCH_BEGIN || kind == nft::NFNL_MSG_BATCH_END;
        let msg_type = if batch {
            kind
        } else {
            (nft::NFNL_SUBSYS_NFTABLES << 8) | kind
        };
        let len = u32::try_from(16 + 4 + attrs.0.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&msg_type.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        let res_id: u16 = if batch { nft::NFNL_SUBSYS_NFTABLES } else { 0 };
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.buf.extend_from_slice(&attrs.0);
        if flags & nft::NLM_F_ACK != 0 {
            self.acks += 1;
        }
    }

    /// A batch that first removes the `inet` table `name`, whatever it held: declared (made if
    /// missing, so that deleting it is no error), then deleted. [`Batch::add_table`] makes it
    /// again.
    pub(crate) fn clearing(name: &str) -> Self {
        let mut b = Batch::new();
        let table = Attrs::build(|a| {
            a.str(nft::TABLE_NAME, name);
        });
        b.add(nft::NEWTABLE, true, &table);
        b.add(nft::DELTABLE, false, &table);
        b
    }

    /// Makes the `inet` table `name`.
    pub(crate) fn add_table(&mut self, name: &str) {
        let table = Attrs::build(|a| {
            a.str(nft::TABLE_NAME, name);
        });
        self.add(nft::NEWTABLE, true, &table);
    }

    /// A rule at the end of `chain` of the `inet` table `table`: `exprs` in order.
    pub(crate) fn add_rule(&mut self, table: &str, chain: &str, exprs: &[Attrs]) {
        let mut list = Attrs::default();
        for e in exprs {
            list.nest(nft::LIST_ELEM, e);
        }
        let rule = Attrs::build(|a| {
            a.str(nft::RULE_TABLE, table)
                .str(nft::RULE_CHAIN, chain)
                .nest(nft::RULE_EXPRESSIONS, &list);
        });
        self.add(nft::NEWRULE, true, &rule);
    }

    /// One nf_tables message in the `inet` family, acknowledged; `create` for NEW* messages.
    pub(crate) fn add(&mut self, kind: u16, create: bool, attrs: &Attrs) {
        let mut flags = nft::NLM_F_REQUEST | nft::NLM_F_ACK;
        if create {
            flags |= nft::NLM_F_CREATE;
        }
        if kind == nft::NEWRULE {
            // At the end of the chain, in order (without it each goes first).
            flags |= nft::NLM_F_APPEND;
        }
        self.message(kind, flags, nft::NFPROTO_INET, attrs);
    }

    pub(crate) fn finish(mut self) -> Self {
        self.message(
            nft::NFNL_MSG_BATCH_END,
            nft::NLM_F_REQUEST,
            nft::NFPROTO_UNSPEC,
            &Attrs::default(),
        );
        self
    }
}

/// Sends `batch` and waits for the kernel's answer to each of its messages.
///
/// # Errors
///
/// [`NetError::Firewall`] when the socket cannot be used or the kernel refuses the batch (its
/// error, e.g. no nf_tables support, or no CAP_NET_ADMIN).
pub(crate) fn send(batch: &Batch) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| NetError::Firewall(format!("nf_tables {what}: {e}"));
    let socket = request_socket("nf_tables")?;
    socket
        .set_rx_buf_sz(1 << 20)
        .map_err(|e| fail("receive buffer", e))?;
    socket.send(&batch.buf, 0).map_err(|e| fail("send", e))?;
    // Every message asked for an acknowledgement; the first error aborts the whole batch.
    let mut acked = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while acked < batch.acks {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| fail("answer", e))?;
        for m in messages(&buf[..n]) {
            if m.kind == nft::NLMSG_ERROR {
                let code = m.error();
                if code != 0 {
                    return Err(NetError::Firewall(format!(
                        "the kernel refused the nf_tables rules: {}",
                        std::io::Error::from_raw_os_error(-code)
                    )));
                }
                acked += 1;
            }
        }
    }
    Ok(())
}

/// One netlink message of what the kernel sent: its type, and its bytes from the header on.
pub(crate) struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

impl Message<'_> {
    /// The errno of an `NLMSG_ERROR` message (0 for an acknowledgement); meaningless for others.
    pub fn error(&self) -> i32 {
        self.bytes
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .map_or(0, i32::from_ne_bytes)
    }
}

/// The netlink messages in `buf` (what one `recv` returned), in order, up to the first whose
/// length does not fit.
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let word = |i: usize| -> u32 {
            buf.get(at + i..at + i + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_ne_bytes)
        };
        let len = usize::try_from(word(0)).ok()?;
        if len < 16 || at + len > buf.len() {
            return None;
        }
        let message = Message {
            kind: u16::try_from(word(4) & 0xffff).unwrap_or(0),
            bytes: &buf[at..at + len],
        };
        at += (len + 3) & !3;
        Some(message)
    })
}

/// A netfilter netlink socket talking to the kernel (nf_tables batches, conntrack dumps and
/// deletes), with a receive timeout so that a kernel that never answers cannot hang the
/// caller. `user` names the caller in errors.
///
/// # Errors
///
/// [`NetError::Firewall`] naming the step that failed.
pub(crate) fn request_socket(user: &str) -> Result<Socket> {
    let fail = |what: &str, e: std::io::Error| NetError::Firewall(format!("{user} {what}: {e}"));
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| fail("socket", e))?;
    socket.bind_auto().map_err(|e| fail("bind", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| fail("connect", e))?;
    socket2::SockRef::from(&socket)
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| fail("timeout", e))?;
    Ok(socket)
}
