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

use super::error::Result;
use super::nftables::{cmp_eq, lookup, meta, nft, payload, send, verdict, Attrs, Batch};

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

/// The batch that makes the table hold exactly `addresses` (see [`ruleset`]).
fn batch(addresses: &[IpAddr]) -> Batch {
    let mut b = Batch::clearing(TABLE);
    if addresses.is_empty() {
        return b.finish();
    }
    b.add_table(TABLE);
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
        b.add_rule(TABLE, "input", &exprs);
    }
    b.finish()
}

/// Makes the kernel drop traffic to exactly these addresses (none: the table goes), in one
/// nf_tables transaction over netlink (no `nft` program).
///
/// # Errors
///
/// [`super::NetError::Firewall`] when the socket cannot be used or the kernel refuses the batch (its
/// error, e.g. no nf_tables support, or no CAP_NET_ADMIN).
pub fn apply(addresses: &[IpAddr]) -> Result<()> {
    send(&batch(addresses))
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
