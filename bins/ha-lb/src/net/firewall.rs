//! RFC 5798 Accept_Mode = false: an nftables table that drops packets addressed to the VIPs
//! of such instances, so that a Master which does not own its addresses routes for them but
//! does not answer on them (keepalived's `no_accept`, which it enforces the same way).
//!
//! One table, `inet ha_lb`, holds a set per family and an input chain. It is replaced as a
//! whole in one nftables transaction, so a reload never leaves a window without the rules.
//! Address resolution is left alone: ARP is not filtered by an `inet` table, and IPv6
//! neighbour solicitations and advertisements for a VIP are accepted before the drop, so
//! neighbours still find the Master (the RFC requires it to answer for the VIPs).
//!
//! The rules are sent to the kernel as one nf_tables netlink batch (the messages `nft` would
//! send, built here on netlink-sys), in the network namespace of the calling thread: the `nft`
//! program is not needed at run time. [`ruleset`] is the same table in `nft` syntax, for
//! people and for the test that compares the two.

use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::error::{NetError, Result};

/// The table ha-lb owns; nothing else in the ruleset is touched.
pub const TABLE: &str = "ha_lb";

/// The nftables script that makes the table hold exactly `addresses` (and removes it when
/// there are none): what [`apply`] sends over netlink, in `nft -f` syntax. Deleting after a
/// declaration is the idiom for "replace if it exists", and all of it is one transaction.
pub fn ruleset(addresses: &[IpAddr]) -> String {
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    if addresses.is_empty() {
        return s;
    }
    let list = |v6: bool| {
        let items: Vec<String> = addresses
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(ToString::to_string)
            .collect();
        if items.is_empty() {
            String::new()
        } else {
            format!("\t\telements = {{ {} }}\n", items.join(", "))
        }
    };
    s += &format!(
        "table inet {TABLE} {{\n\
         \tset no_accept_v4 {{\n\t\ttype ipv4_addr\n{}\t}}\n\
         \tset no_accept_v6 {{\n\t\ttype ipv6_addr\n{}\t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter - 1; policy accept;\n\
         \t\tip daddr @no_accept_v4 drop\n\
         \t\tip6 daddr @no_accept_v6 icmpv6 type nd-neighbor-solicit accept\n\
         \t\tip6 daddr @no_accept_v6 icmpv6 type nd-neighbor-advert accept\n\
         \t\tip6 daddr @no_accept_v6 drop\n\
         \t}}\n\
         }}\n",
        list(false),
        list(true),
    );
    s
}

/// Constants of linux/netlink.h, linux/netfilter/nfnetlink.h and nf_tables.h.
mod nft {
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
struct Attrs(Vec<u8>);

impl Attrs {
    fn raw(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
        self
    }

    fn str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.raw(kind, &v)
    }

    /// A 32-bit value, in network order as nf_tables wants.
    fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.raw(kind, &value.to_be_bytes())
    }

    fn nest(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.raw(kind | nft::NLA_F_NESTED, &inner.0)
    }

    fn build(f: impl FnOnce(&mut Attrs)) -> Attrs {
        let mut a = Attrs::default();
        f(&mut a);
        a
    }
}

/// One expression of a rule: its name and its attributes.
fn expr(name: &str, data: &Attrs) -> Attrs {
    Attrs::build(|a| {
        a.str(nft::EXPR_NAME, name).nest(nft::EXPR_DATA, data);
    })
}

fn meta(key: u32) -> Attrs {
    expr(
        "meta",
        &Attrs::build(|a| {
            a.be32(nft::META_KEY, key).be32(nft::META_DREG, nft::REG_1);
        }),
    )
}

fn cmp_eq(value: &[u8]) -> Attrs {
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

fn payload(base: u32, offset: u32, len: u32) -> Attrs {
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

fn lookup(set: &str, id: u32) -> Attrs {
    expr(
        "lookup",
        &Attrs::build(|a| {
            a.str(nft::LOOKUP_SET, set)
                .be32(nft::LOOKUP_SREG, nft::REG_1)
                .be32(nft::LOOKUP_SET_ID, id);
        }),
    )
}

fn verdict(code: u32) -> Attrs {
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

/// `ip daddr @no_accept_v4` / `ip6 daddr @no_accept_v6`: the family, then the destination
/// address looked up in the set.
fn daddr_in(v6: bool) -> Vec<Attrs> {
    let (proto, offset, len, set, id) = if v6 {
        (nft::NFPROTO_IPV6, 24, 16, "no_accept_v6", 2)
    } else {
        (nft::NFPROTO_IPV4, 16, 4, "no_accept_v4", 1)
    };
    vec![
        meta(nft::META_NFPROTO),
        cmp_eq(&[proto]),
        payload(nft::PAYLOAD_NETWORK, offset, len),
        lookup(set, id),
    ]
}

/// `icmpv6 type TYPE`.
fn icmpv6_type(t: u8) -> Vec<Attrs> {
    vec![
        meta(nft::META_L4PROTO),
        cmp_eq(&[nft::IPPROTO_ICMPV6]),
        payload(nft::PAYLOAD_TRANSPORT, 0, 1),
        cmp_eq(&[t]),
    ]
}

/// A batch of nf_tables messages, sent as one transaction.
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Messages that ask for an acknowledgement.
    acks: usize,
}

impl Batch {
    fn new() -> Self {
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
    fn message(&mut self, kind: u16, flags: u16, family: u8, attrs: &Attrs) {
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

    fn add(&mut self, kind: u16, create: bool, attrs: &Attrs) {
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

    fn finish(mut self) -> Self {
        self.message(
            nft::NFNL_MSG_BATCH_END,
            nft::NLM_F_REQUEST,
            nft::NFPROTO_UNSPEC,
            &Attrs::default(),
        );
        self
    }
}

/// The batch that makes the table hold exactly `addresses` (see [`ruleset`]).
fn batch(addresses: &[IpAddr]) -> Batch {
    let table = |a: &mut Attrs| {
        a.str(nft::TABLE_NAME, TABLE);
    };
    let mut b = Batch::new();
    // Declared (made if missing), then deleted: whatever was there goes.
    b.add(nft::NEWTABLE, true, &Attrs::build(table));
    b.add(nft::DELTABLE, false, &Attrs::build(table));
    if addresses.is_empty() {
        return b.finish();
    }
    b.add(nft::NEWTABLE, true, &Attrs::build(table));
    for (v6, name, id, key_type, key_len) in [
        (false, "no_accept_v4", 1u32, nft::TYPE_IPADDR, 4u32),
        (true, "no_accept_v6", 2, nft::TYPE_IP6ADDR, 16),
    ] {
        b.add(
            nft::NEWSET,
            true,
            &Attrs::build(|a| {
                a.str(nft::SET_TABLE, TABLE)
                    .str(nft::SET_NAME, name)
                    .be32(nft::SET_FLAGS, 0)
                    .be32(nft::SET_KEY_TYPE, key_type)
                    .be32(nft::SET_KEY_LEN, key_len)
                    .be32(nft::SET_ID, id);
            }),
        );
        let mut elements = Attrs::default();
        for addr in addresses.iter().filter(|a| a.is_ipv6() == v6) {
            let bytes = match addr {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            let key = Attrs::build(|k| {
                k.raw(nft::DATA_VALUE, &bytes);
            });
            let elem = Attrs::build(|e| {
                e.nest(nft::SET_ELEM_KEY, &key);
            });
            elements.nest(nft::LIST_ELEM, &elem);
        }
        if !elements.0.is_empty() {
            b.add(
                nft::NEWSETELEM,
                true,
                &Attrs::build(|a| {
                    a.str(nft::SET_ELEM_LIST_TABLE, TABLE)
                        .str(nft::SET_ELEM_LIST_SET, name)
                        .be32(nft::SET_ELEM_LIST_SET_ID, id)
                        .nest(nft::SET_ELEM_LIST_ELEMENTS, &elements);
                }),
            );
        }
    }
    let hook = Attrs::build(|h| {
        // priority filter - 1: before the usual filter chains.
        h.be32(nft::HOOK_HOOKNUM, nft::NF_INET_LOCAL_IN)
            .raw(nft::HOOK_PRIORITY, &(-1i32).to_be_bytes());
    });
    b.add(
        nft::NEWCHAIN,
        true,
        &Attrs::build(|a| {
            a.str(nft::CHAIN_TABLE, TABLE)
                .str(nft::CHAIN_NAME, "input")
                .nest(nft::CHAIN_HOOK, &hook)
                .be32(nft::CHAIN_POLICY, nft::NF_ACCEPT)
                .str(nft::CHAIN_TYPE, "filter");
        }),
    );
    let rules: [Vec<Attrs>; 4] = [
        [daddr_in(false), vec![verdict(nft::NF_DROP)]].concat(),
        [
            daddr_in(true),
            icmpv6_type(nft::ND_NEIGHBOR_SOLICIT),
            vec![verdict(nft::NF_ACCEPT)],
        ]
        .concat(),
        [
            daddr_in(true),
            icmpv6_type(nft::ND_NEIGHBOR_ADVERT),
            vec![verdict(nft::NF_ACCEPT)],
        ]
        .concat(),
        [daddr_in(true), vec![verdict(nft::NF_DROP)]].concat(),
    ];
    for exprs in rules {
        let mut list = Attrs::default();
        for e in &exprs {
            list.nest(nft::LIST_ELEM, e);
        }
        b.add(
            nft::NEWRULE,
            true,
            &Attrs::build(|a| {
                a.str(nft::RULE_TABLE, TABLE)
                    .str(nft::RULE_CHAIN, "input")
                    .nest(nft::RULE_EXPRESSIONS, &list);
            }),
        );
    }
    b.finish()
}

/// Makes the kernel drop traffic to exactly these addresses (none: the table goes), in one
/// nf_tables transaction over netlink (no `nft` program).
///
/// # Errors
///
/// [`NetError::Firewall`] when the socket cannot be used or the kernel refuses the batch (its
/// error, e.g. no nf_tables support, or no CAP_NET_ADMIN).
pub fn apply(addresses: &[IpAddr]) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| NetError::Firewall(format!("nf_tables {what}: {e}"));
    let batch = batch(addresses);
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| fail("socket", e))?;
    socket.bind_auto().map_err(|e| fail("bind", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| fail("connect", e))?;
    socket
        .set_rx_buf_sz(1 << 20)
        .map_err(|e| fail("receive buffer", e))?;
    set_recv_timeout(&socket, Duration::from_secs(2)).map_err(|e| fail("timeout", e))?;
    socket.send(&batch.buf, 0).map_err(|e| fail("send", e))?;
    // Every message asked for an acknowledgement; the first error aborts the whole batch.
    let mut acked = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while acked < batch.acks {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| fail("answer", e))?;
        let mut at = 0;
        while at + 16 <= n {
            let word = |i: usize| -> u32 {
                buf.get(at + i..at + i + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_ne_bytes)
            };
            let len = word(0) as usize;
            let kind = (word(4) & 0xffff) as u16;
            if len < 16 {
                break;
            }
            if kind == nft::NLMSG_ERROR {
                let code = word(16) as i32;
                if code != 0 {
                    return Err(NetError::Firewall(format!(
                        "the kernel refused the nf_tables rules: {}",
                        std::io::Error::from_raw_os_error(-code)
                    )));
                }
                acked += 1;
            }
            at += (len + 3) & !3;
        }
    }
    Ok(())
}

/// A receive timeout, so that a kernel that never answers cannot hang the caller.
fn set_recv_timeout(socket: &Socket, timeout: Duration) -> std::io::Result<()> {
    socket2::SockRef::from(socket).set_read_timeout(Some(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_address_removes_the_table_only() {
        assert_eq!(ruleset(&[]), "table inet ha_lb\ndelete table inet ha_lb\n");
    }

    #[test]
    fn addresses_go_to_the_set_of_their_family() {
        let s = ruleset(&[
            "192.0.2.100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
            "192.0.2.101".parse().unwrap(),
        ]);
        assert!(s.contains("elements = { 192.0.2.100, 192.0.2.101 }"), "{s}");
        assert!(s.contains("elements = { 2001:db8::100 }"), "{s}");
        // Replaced as a whole: the old table is deleted in the same transaction.
        assert!(s.starts_with("table inet ha_lb\ndelete table inet ha_lb\ntable inet ha_lb {"));
        // Neighbour discovery is accepted before the drop.
        let nd = s.find("nd-neighbor-advert").unwrap();
        let drop6 = s.find("ip6 daddr @no_accept_v6 drop").unwrap();
        assert!(nd < drop6, "{s}");
    }

    #[test]
    fn a_family_without_addresses_has_an_empty_set() {
        let s = ruleset(&["192.0.2.100".parse().unwrap()]);
        assert_eq!(s.matches("elements").count(), 1, "{s}");
    }
}
