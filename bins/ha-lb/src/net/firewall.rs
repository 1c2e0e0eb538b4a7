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
//! The rules are applied with the `nft` program (Debian package nftables), in the network
//! namespace of the calling process.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::error::{NetError, Result};

/// The table ha-lb owns; nothing else in the ruleset is touched.
pub const TABLE: &str = "ha_lb";

/// The nftables script that makes the table hold exactly `addresses` (and removes it when
/// there are none). Deleting after a declaration is the idiom for "replace if it exists",
/// and all of it is one transaction.
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
         \t\tip6 daddr @no_accept_v6 icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n\
         \t\tip6 daddr @no_accept_v6 drop\n\
         \t}}\n\
         }}\n",
        list(false),
        list(true),
    );
    s
}

/// Makes the kernel drop traffic to exactly these addresses (none: the table goes).
///
/// # Errors
///
/// [`NetError::Firewall`] when `nft` is missing or refuses the rules (its message included).
pub fn apply(addresses: &[IpAddr]) -> Result<()> {
    let script = ruleset(addresses);
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetError::Firewall(format!("cannot run nft (Debian package nftables): {e}"))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::Firewall(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Firewall(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Firewall(format!(
            "nft refused the rules ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
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
        let nd = s.find("nd-neighbor-solicit").unwrap();
        let drop6 = s.find("ip6 daddr @no_accept_v6 drop").unwrap();
        assert!(nd < drop6, "{s}");
    }

    #[test]
    fn a_family_without_addresses_has_an_empty_set() {
        let s = ruleset(&["192.0.2.100".parse().unwrap()]);
        assert_eq!(s.matches("elements").count(), 1, "{s}");
    }
}
