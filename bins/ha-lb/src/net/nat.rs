//! NAT listeners: nftables DNAT of a listener's address and port to its pool's backends, and
//! the chosen source NAT, so that the kernel forwards every packet (no userspace per packet).
//!
//! One table, `inet ha_lb_nat`, owned by this module alone (Accept_Mode's `inet ha_lb` is
//! [`super::firewall`]'s). Per listener with a backend to go to:
//!
//! - a map `backends_N` from a slot number to `address . port`, a backend repeated once per
//!   unit of its (reduced) weight, interleaved as smooth weighted round robin does;
//! - a rule in `prerouting` (clients from elsewhere) and in `output` (clients on this node):
//!   `ip daddr VIP tcp dport PORT dnat ip to <slot> map @backends_N`, the slot from
//!   `numgen inc` (round robin), `numgen random` or `jhash ip saddr` (source hash);
//! - for `masquerade` and `vip`, a rule in `postrouting` that rewrites the source of the flows
//!   that rule sent (`ct status dnat ct original ip daddr VIP ... ct original proto-dst PORT`).
//!
//! A listener without a healthy backend has no rule: its SYNs reach the node itself, where
//! nothing listens on the port, and the kernel answers with a reset.
//!
//! The table is replaced as a whole in one transaction (declare, delete, make again), so a
//! health change or a reload never leaves a window without rules. Established flows are not
//! affected: their translation lives in their conntrack entry, not in the rules, so a flow
//! whose backend is still configured goes on after any change.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::error::Result;
use super::nftables::{cmp_eq, expr, meta, nft, payload, send, Attrs, Batch};

/// The table ha-lb's NAT listeners live in; nothing else in the ruleset is touched.
pub const TABLE: &str = "ha_lb_nat";

/// Most map slots per listener: weights are reduced by their greatest common divisor, and
/// scaled down to this many when still above it (a backend keeps at least one slot).
pub const MAX_SLOTS: u32 = 1024;

/// How a NAT listener picks the backend of a new flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// `numgen inc`: the slots in turn.
    RoundRobin,
    /// `numgen random`.
    Random,
    /// `jhash` of the client address, with a seed fixed per listener address (the same on
    /// every node, so a client keeps its backend across a failover).
    SourceHash,
}

/// The source address backends see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snat {
    /// `masquerade`: the address of the interface towards the backend.
    Masquerade,
    /// `snat to ADDRESS` (the listener's address, i.e. the VIP).
    To(IpAddr),
    /// The client's own address.
    Preserve,
}

/// One NAT listener as the kernel is to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatListener {
    /// Address and port clients connect to.
    pub listen: SocketAddr,
    /// How a backend is picked.
    pub pick: Pick,
    /// Source NAT.
    pub snat: Snat,
    /// The map's slots in order: each backend repeated by weight (see [`slots`]). Empty: no
    /// backend to go to, so no rule.
    pub slots: Vec<SocketAddr>,
}

/// What `nft` stores with a map declared `typeof numgen inc mod 2 : ip daddr . tcp dport`
/// (libnftnl's set user data: key and data byte order, then the typeof expressions), so that
/// `nft list` shows the map as its script declares it. The key's expression only names the
/// key's type (a 32-bit number, whatever fills it: numgen or jhash). Host-order values, as
/// nft writes them on this (little-endian) machine. [`typeof_udata`] patches the IPv6 form.
const TYPEOF_V4: [u8; 100] = [
    0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x1a, 0x00, 0x04,
    0x17, 0x00, 0x00, 0x00, 0x01, 0x12, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x00,
    0x00, 0x00, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x04, 0x34, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00,
    0x01, 0x2c, 0x00, 0x14, 0x00, 0x04, 0x07, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x04, 0x0c, 0x00,
    0x00, 0x00, 0x01, 0x04, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x14, 0x00, 0x04, 0x07, 0x00, 0x00, 0x00,
    0x01, 0x0c, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x00, 0x00, 0x00, 0x06, 0x04,
    0x00, 0x00, 0x00, 0x00,
];

/// [`TYPEOF_V4`], or its `ip6 daddr` form (the payload expression's protocol and field).
fn typeof_udata(v6: bool) -> Vec<u8> {
    let mut u = TYPEOF_V4.to_vec();
    if v6 {
        u[62] = 0x0d;
        u[68] = 0x09;
    }
    u
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The slots of a map for backends with these weights (0 = none): weights reduced by their
/// greatest common divisor (and scaled to at most [`MAX_SLOTS`]), then interleaved by smooth
/// weighted round robin, so that `numgen inc` never sends a burst to one backend.
pub fn slots(backends: &[(SocketAddr, u32)]) -> Vec<SocketAddr> {
    let live: Vec<(SocketAddr, u32)> = backends.iter().copied().filter(|b| b.1 > 0).collect();
    let g = live.iter().fold(0, |g, b| gcd(g, b.1));
    if g == 0 {
        return Vec::new();
    }
    let mut weights: Vec<u64> = live.iter().map(|b| u64::from(b.1 / g)).collect();
    let total: u64 = weights.iter().sum();
    if total > u64::from(MAX_SLOTS) {
        for w in &mut weights {
            *w = (*w * u64::from(MAX_SLOTS) / total).max(1);
        }
    }
    let total: u64 = weights.iter().sum();
    let mut current: Vec<i64> = vec![0; weights.len()];
    let mut out = Vec::new();
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += i64::try_from(*w).unwrap_or(i64::MAX);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= i64::try_from(total).unwrap_or(i64::MAX);
        out.push(live[best].0);
    }
    out
}

/// The jhash seed of a listener: fixed by its address, so all nodes hash alike.
fn seed(listen: SocketAddr) -> u32 {
    // FNV-1a over the text of the address: stable across builds and nodes.
    listen.to_string().bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// `ip` or `ip6`, as nft writes the family in a rule.
fn family_word(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// `address . port` in nft syntax.
fn element(b: SocketAddr) -> String {
    format!("{} . {}", b.ip(), b.port())
}

/// The nftables script [`apply`] sends over netlink, in `nft -f` syntax (for people, and for
/// the tests that compare it with `nft list ruleset`).
pub fn ruleset(listeners: &[NatListener]) -> String {
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    if listeners.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table inet {TABLE} {{");
    for (i, l) in listeners.iter().enumerate() {
        if l.slots.is_empty() {
            continue;
        }
        let ip = family_word(l.listen.ip());
        let elements: Vec<String> = l
            .slots
            .iter()
            .enumerate()
            .map(|(n, b)| format!("{n} : {}", element(*b)))
            .collect();
        let _ = write!(
            s,
            "\tmap backends_{i} {{\n\t\ttypeof numgen inc mod 2 : {ip} daddr . tcp dport\n\t\telements = {{ {} }}\n\t}}\n",
            elements.join(", ")
        );
    }
    let dnat: Vec<String> = listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.slots.is_empty())
        .map(|(i, l)| {
            let ip = family_word(l.listen.ip());
            let n = l.slots.len();
            let key = match l.pick {
                Pick::RoundRobin => format!("numgen inc mod {n}"),
                Pick::Random => format!("numgen random mod {n}"),
                Pick::SourceHash => {
                    format!("jhash {ip} saddr mod {n} seed {:#x}", seed(l.listen))
                }
            };
            format!(
                "\t\t{ip} daddr {} tcp dport {} dnat {ip} to {key} map @backends_{i}\n",
                l.listen.ip(),
                l.listen.port()
            )
        })
        .collect();
    for (chain, hook) in [
        ("prerouting", "type nat hook prerouting priority dstnat"),
        ("output", "type nat hook output priority -100"),
    ] {
        let _ = write!(
            s,
            "\tchain {chain} {{\n\t\t{hook}; policy accept;\n{}\t}}\n",
            dnat.concat()
        );
    }
    let _ = write!(
        s,
        "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    );
    for l in listeners.iter().filter(|l| !l.slots.is_empty()) {
        let ip = family_word(l.listen.ip());
        let action = match l.snat {
            Snat::Preserve => continue,
            Snat::Masquerade => "masquerade".to_owned(),
            Snat::To(a) => format!("snat {ip} to {a}"),
        };
        let _ = writeln!(
            s,
            "\t\tct status dnat ct original {ip} daddr {} meta l4proto tcp ct original proto-dst {} {action}",
            l.listen.ip(),
            l.listen.port()
        );
    }
    s += "\t}\n}\n";
    s
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn payload_to(dreg: u32, base: u32, offset: u32, len: u32) -> Attrs {
    expr(
        "payload",
        &Attrs::build(|a| {
            a.be32(nft::PAYLOAD_DREG, dreg)
                .be32(nft::PAYLOAD_BASE, base)
                .be32(nft::PAYLOAD_OFFSET, offset)
                .be32(nft::PAYLOAD_LEN, len);
        }),
    )
}

/// `ip daddr A tcp dport P` (or ip6).
fn matches_listen(listen: SocketAddr) -> Vec<Attrs> {
    let (proto, offset, len) = if listen.is_ipv4() {
        (nft::NFPROTO_IPV4, 16, 4)
    } else {
        (nft::NFPROTO_IPV6, 24, 16)
    };
    vec![
        meta(nft::META_NFPROTO),
        cmp_eq(&[proto]),
        payload(nft::PAYLOAD_NETWORK, offset, len),
        cmp_eq(&octets(listen.ip())),
        meta(nft::META_L4PROTO),
        cmp_eq(&[nft::IPPROTO_TCP]),
        payload(nft::PAYLOAD_TRANSPORT, 2, 2),
        cmp_eq(&listen.port().to_be_bytes()),
    ]
}

fn ct(key: u32) -> Attrs {
    expr(
        "ct",
        &Attrs::build(|a| {
            a.be32(nft::CT_DREG, nft::REG_1)
                .be32(nft::CT_KEY, key)
                .raw(nft::CT_DIRECTION, &[nft::CT_DIR_ORIGINAL]);
        }),
    )
}

/// `ct status dnat ct original ip daddr A meta l4proto tcp ct original proto-dst P`.
fn matches_dnat_flow(listen: SocketAddr) -> Vec<Attrs> {
    let status = expr(
        "ct",
        &Attrs::build(|a| {
            a.be32(nft::CT_DREG, nft::REG_1)
                .be32(nft::CT_KEY, nft::CT_STATUS);
        }),
    );
    let data = |v: &[u8]| {
        Attrs::build(|d| {
            d.raw(nft::DATA_VALUE, v);
        })
    };
    let bitwise = expr(
        "bitwise",
        &Attrs::build(|a| {
            a.be32(nft::BITWISE_SREG, nft::REG_1)
                .be32(nft::BITWISE_DREG, nft::REG_1)
                .be32(nft::BITWISE_LEN, 4)
                .nest(nft::BITWISE_MASK, &data(&nft::IPS_DST_NAT.to_ne_bytes()))
                .nest(nft::BITWISE_XOR, &data(&0u32.to_ne_bytes()));
        }),
    );
    let neq_zero = expr(
        "cmp",
        &Attrs::build(|a| {
            a.be32(nft::CMP_SREG, nft::REG_1)
                .be32(nft::CMP_OP, nft::CMP_NEQ)
                .nest(nft::CMP_DATA, &data(&0u32.to_ne_bytes()));
        }),
    );
    let dst = if listen.is_ipv4() {
        nft::CT_DST_IP
    } else {
        nft::CT_DST_IP6
    };
    vec![
        status,
        bitwise,
        neq_zero,
        ct(dst),
        cmp_eq(&octets(listen.ip())),
        meta(nft::META_L4PROTO),
        cmp_eq(&[nft::IPPROTO_TCP]),
        ct(nft::CT_PROTO_DST),
        cmp_eq(&listen.port().to_be_bytes()),
    ]
}

fn family(addr: IpAddr) -> u32 {
    u32::from(if addr.is_ipv4() {
        nft::NFPROTO_IPV4
    } else {
        nft::NFPROTO_IPV6
    })
}

/// `dnat ip to <slot> map @backends_N`: the slot into register 1, looked up in the map into
/// registers 1 (address) and the next one (port), and the NAT from them.
fn dnat(l: &NatListener, set: &str, set_id: u32) -> Vec<Attrs> {
    let modulus = u32::try_from(l.slots.len()).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    match l.pick {
        Pick::RoundRobin | Pick::Random => {
            let kind = if l.pick == Pick::Random {
                nft::NG_RANDOM
            } else {
                nft::NG_INCREMENTAL
            };
            out.push(expr(
                "numgen",
                &Attrs::build(|a| {
                    a.be32(nft::NG_DREG, nft::REG_1)
                        .be32(nft::NG_MODULUS, modulus)
                        .be32(nft::NG_TYPE, kind);
                }),
            ));
        }
        Pick::SourceHash => {
            let (offset, len) = if l.listen.is_ipv4() { (12, 4) } else { (8, 16) };
            out.push(payload_to(nft::REG_2, nft::PAYLOAD_NETWORK, offset, len));
            out.push(expr(
                "hash",
                &Attrs::build(|a| {
                    a.be32(nft::HASH_SREG, nft::REG_2)
                        .be32(nft::HASH_DREG, nft::REG_1)
                        .be32(nft::HASH_LEN, len)
                        .be32(nft::HASH_MODULUS, modulus)
                        .be32(nft::HASH_SEED, seed(l.listen))
                        .be32(nft::HASH_TYPE, nft::HASH_JENKINS);
                }),
            ));
        }
    }
    out.push(expr(
        "lookup",
        &Attrs::build(|a| {
            a.str(nft::LOOKUP_SET, set)
                .be32(nft::LOOKUP_SREG, nft::REG_1)
                .be32(nft::LOOKUP_DREG, nft::REG_1)
                .be32(nft::LOOKUP_SET_ID, set_id);
        }),
    ));
    let proto_reg = if l.listen.is_ipv4() {
        nft::REG32_01
    } else {
        nft::REG_2
    };
    out.push(expr(
        "nat",
        &Attrs::build(|a| {
            a.be32(nft::NAT_TYPE, nft::NAT_DNAT)
                .be32(nft::NAT_FAMILY, family(l.listen.ip()))
                .be32(nft::NAT_REG_ADDR_MIN, nft::REG_1)
                .be32(nft::NAT_REG_PROTO_MIN, proto_reg);
        }),
    ));
    out
}

fn snat(l: &NatListener) -> Option<Vec<Attrs>> {
    match l.snat {
        Snat::Preserve => None,
        Snat::Masquerade => Some(vec![expr("masq", &Attrs::default())]),
        Snat::To(addr) => {
            let value = Attrs::build(|d| {
                d.raw(nft::DATA_VALUE, &octets(addr));
            });
            Some(vec![
                expr(
                    "immediate",
                    &Attrs::build(|a| {
                        a.be32(nft::IMMEDIATE_DREG, nft::REG_1)
                            .nest(nft::IMMEDIATE_DATA, &value);
                    }),
                ),
                expr(
                    "nat",
                    &Attrs::build(|a| {
                        a.be32(nft::NAT_TYPE, nft::NAT_SNAT)
                            .be32(nft::NAT_FAMILY, family(addr))
                            .be32(nft::NAT_REG_ADDR_MIN, nft::REG_1);
                    }),
                ),
            ])
        }
    }
}

/// The batch that makes the table hold exactly `listeners` (see [`ruleset`]).
fn batch(listeners: &[NatListener]) -> Batch {
    let mut b = Batch::clearing(TABLE);
    if listeners.is_empty() {
        return b.finish();
    }
    b.add_table(TABLE);
    let mut ids = Vec::new();
    for (i, l) in listeners.iter().enumerate() {
        let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        ids.push(id);
        if l.slots.is_empty() {
            continue;
        }
        let name = format!("backends_{i}");
        let (addr_type, addr_len) = if l.listen.is_ipv4() {
            (nft::TYPE_IPADDR, 4)
        } else {
            (nft::TYPE_IP6ADDR, 16)
        };
        b.add(
            nft::NEWSET,
            true,
            &Attrs::build(|a| {
                a.str(nft::SET_TABLE, TABLE)
                    .str(nft::SET_NAME, &name)
                    .be32(nft::SET_FLAGS, nft::SET_MAP)
                    .be32(nft::SET_KEY_TYPE, nft::TYPE_INTEGER)
                    .be32(nft::SET_KEY_LEN, 4)
                    .be32(
                        nft::SET_DATA_TYPE,
                        (addr_type << nft::CONCAT_BITS) | nft::TYPE_INET_SERVICE,
                    )
                    .be32(nft::SET_DATA_LEN, addr_len + 4)
                    .be32(nft::SET_ID, id)
                    .raw(nft::SET_USERDATA, &typeof_udata(!l.listen.is_ipv4()));
            }),
        );
        let mut elements = Attrs::default();
        for (n, backend) in l.slots.iter().enumerate() {
            let slot = u32::try_from(n).unwrap_or(u32::MAX);
            let key = Attrs::build(|k| {
                // The slot as numgen and jhash leave it in the register: host order.
                k.raw(nft::DATA_VALUE, &slot.to_ne_bytes());
            });
            let mut value = octets(backend.ip());
            // The port in network order, padded to its 32-bit register.
            value.extend_from_slice(&backend.port().to_be_bytes());
            value.extend_from_slice(&[0, 0]);
            let data = Attrs::build(|d| {
                d.raw(nft::DATA_VALUE, &value);
            });
            elements.nest(
                nft::LIST_ELEM,
                &Attrs::build(|e| {
                    e.nest(nft::SET_ELEM_KEY, &key)
                        .nest(nft::SET_ELEM_DATA, &data);
                }),
            );
        }
        b.add(
            nft::NEWSETELEM,
            true,
            &Attrs::build(|a| {
                a.str(nft::SET_ELEM_LIST_TABLE, TABLE)
                    .str(nft::SET_ELEM_LIST_SET, &name)
                    .be32(nft::SET_ELEM_LIST_SET_ID, id)
                    .nest(nft::SET_ELEM_LIST_ELEMENTS, &elements);
            }),
        );
    }
    for (chain, hooknum, priority) in [
        ("prerouting", nft::NF_INET_PRE_ROUTING, -100i32),
        ("output", nft::NF_INET_LOCAL_OUT, -100),
        ("postrouting", nft::NF_INET_POST_ROUTING, 100),
    ] {
        let hook = Attrs::build(|h| {
            h.be32(nft::HOOK_HOOKNUM, hooknum)
                .raw(nft::HOOK_PRIORITY, &priority.to_be_bytes());
        });
        b.add(
            nft::NEWCHAIN,
            true,
            &Attrs::build(|a| {
                a.str(nft::CHAIN_TABLE, TABLE)
                    .str(nft::CHAIN_NAME, chain)
                    .nest(nft::CHAIN_HOOK, &hook)
                    .be32(nft::CHAIN_POLICY, nft::NF_ACCEPT)
                    .str(nft::CHAIN_TYPE, "nat");
            }),
        );
    }
    for chain in ["prerouting", "output"] {
        for (i, l) in listeners.iter().enumerate() {
            if l.slots.is_empty() {
                continue;
            }
            let name = format!("backends_{i}");
            let exprs = [matches_listen(l.listen), dnat(l, &name, ids[i])].concat();
            b.add_rule(TABLE, chain, &exprs);
        }
    }
    for l in listeners.iter().filter(|l| !l.slots.is_empty()) {
        if let Some(action) = snat(l) {
            b.add_rule(
                TABLE,
                "postrouting",
                &[matches_dnat_flow(l.listen), action].concat(),
            );
        }
    }
    b.finish()
}

/// Makes the kernel balance exactly these listeners (none: the table goes), in one
/// nf_tables transaction over netlink (no `nft` program).
///
/// # Errors
///
/// [`super::NetError::Firewall`] when the socket cannot be used or the kernel refuses the
/// batch (e.g. no nf_tables NAT support, or no CAP_NET_ADMIN).
pub fn apply(listeners: &[NatListener]) -> Result<()> {
    send(&batch(listeners))
}

/// Removes the table (and so every rule of every NAT listener), if it is there.
///
/// # Errors
///
/// As [`apply`].
pub fn remove() -> Result<()> {
    apply(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn weights_are_reduced_and_interleaved() {
        let (x, y, z) = (
            a("198.51.100.1:80"),
            a("198.51.100.2:80"),
            a("198.51.100.3:80"),
        );
        assert_eq!(slots(&[(x, 10), (y, 10)]), [x, y]);
        let s = slots(&[(x, 3), (y, 1), (z, 0)]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().filter(|b| **b == x).count(), 3);
        assert!(!s.contains(&z), "weight 0 takes nothing");
        // Smooth: never the light backend twice in a row, never 3 x in a row.
        assert_eq!(s, [x, x, y, x]);
        assert!(slots(&[(x, 0)]).is_empty());
        assert!(slots(&[]).is_empty());
        // Many heavy backends: at most MAX_SLOTS, each at least one slot.
        let many: Vec<(SocketAddr, u32)> = (1..=200u16)
            .map(|i| (a(&format!("198.51.100.1:{i}")), 1000 - u32::from(i)))
            .chain([(a("198.51.100.2:1"), 1)])
            .collect();
        let s = slots(&many);
        assert!(s.len() <= MAX_SLOTS as usize + many.len(), "{}", s.len());
        assert!(s.contains(&a("198.51.100.2:1")));
    }

    #[test]
    fn ruleset_has_one_map_and_rules_per_listener_with_backends() {
        let listeners = [
            NatListener {
                listen: a("192.0.2.100:80"),
                pick: Pick::RoundRobin,
                snat: Snat::Masquerade,
                slots: vec![a("198.51.100.1:8080"), a("198.51.100.2:8080")],
            },
            NatListener {
                listen: a("192.0.2.101:443"),
                pick: Pick::SourceHash,
                snat: Snat::To("192.0.2.101".parse().unwrap()),
                slots: vec![],
            },
            NatListener {
                listen: a("[2001:db8::100]:80"),
                pick: Pick::Random,
                snat: Snat::Preserve,
                slots: vec![a("[2001:db8::1]:80")],
            },
        ];
        let s = ruleset(&listeners);
        assert!(
            s.starts_with("table inet ha_lb_nat\ndelete table inet ha_lb_nat\n"),
            "{s}"
        );
        assert!(
            s.contains("elements = { 0 : 198.51.100.1 . 8080, 1 : 198.51.100.2 . 8080 }"),
            "{s}"
        );
        assert!(
            s.contains(
                "ip daddr 192.0.2.100 tcp dport 80 dnat ip to numgen inc mod 2 map @backends_0"
            ),
            "{s}"
        );
        assert!(
            s.contains("dnat ip6 to numgen random mod 1 map @backends_2"),
            "{s}"
        );
        // No backend: no map and no rule for it.
        assert!(!s.contains("backends_1"), "{s}");
        assert!(!s.contains("192.0.2.101"), "{s}");
        // Local clients too.
        assert_eq!(s.matches("map @backends_0").count(), 2, "{s}");
        assert!(s.contains("ct original proto-dst 80 masquerade"), "{s}");
        // preserve: no source NAT.
        assert_eq!(s.matches("ct status dnat").count(), 1, "{s}");
        assert_eq!(
            ruleset(&[]),
            "table inet ha_lb_nat\ndelete table inet ha_lb_nat\n"
        );
    }

    #[test]
    fn the_hash_seed_is_fixed_by_the_listener() {
        assert_eq!(seed(a("192.0.2.1:80")), seed(a("192.0.2.1:80")));
        assert_ne!(seed(a("192.0.2.1:80")), seed(a("192.0.2.1:81")));
    }
}
