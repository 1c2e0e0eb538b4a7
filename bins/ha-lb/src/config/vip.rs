//! A virtual IP address of an instance: `"192.0.2.200/24"`, or a table when it needs a device,
//! a label or a broadcast address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One virtual address with its prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address itself.
    pub address: IpAddr,
    /// Prefix length; defaults to a host route (/32 or /128) when not written.
    pub prefix: u8,
    /// The interface to add it to; defaults to the instance's interface.
    pub dev: Option<String>,
    /// An IPv4 address label (`eth0:vip`), as `ip addr add ... label` takes.
    pub label: Option<String>,
    /// IPv4 broadcast address, as `ip addr add ... brd` takes.
    pub broadcast: Option<Ipv4Addr>,
}

impl Vip {
    /// A VIP with no device, label or broadcast override.
    pub fn new(address: IpAddr, prefix: u8) -> Self {
        Vip {
            address,
            prefix,
            dev: None,
            label: None,
            broadcast: None,
        }
    }

    /// `true` for an IPv6 address.
    pub fn is_ipv6(&self) -> bool {
        self.address.is_ipv6()
    }
}

/// Why a `"address/prefix"` string is not a VIP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipParseError {
    /// The part before `/` is not an IP address.
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    Address(String),
    /// The part after `/` is not a number in range for the family.
    #[error("prefix `{prefix}` is not valid for {family} (0..={max})")]
    Prefix {
        /// What was written.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The largest prefix for the family.
        max: u8,
    },
}

impl FromStr for Vip {
    type Err = VipParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = addr
            .parse()
            .map_err(|_| VipParseError::Address(addr.to_string()))?;
        let (family, max) = if address.is_ipv4() {
            ("IPv4", 32)
        } else {
            ("IPv6", 128)
        };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(VipParseError::Prefix {
                        prefix: p.to_string(),
                        family,
                        max,
                    })
                }
            },
        };
        Ok(Vip::new(address, prefix))
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The table form, read with unknown keys refused.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct VipTable {
    address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    broadcast: Option<Ipv4Addr>,
}

impl Serialize for Vip {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.dev.is_none() && self.label.is_none() && self.broadcast.is_none() {
            serializer.serialize_str(&self.to_string())
        } else {
            VipTable {
                address: self.to_string(),
                dev: self.dev.clone(),
                label: self.label.clone(),
                broadcast: self.broadcast,
            }
            .serialize(serializer)
        }
    }
}

struct VipVisitor;

impl<'de> Visitor<'de> for VipVisitor {
    type Value = Vip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            r#""address/prefix" or { address = "address/prefix", dev = "...", label = "..." }"#,
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vip, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vip, A::Error> {
        let table = VipTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let mut vip: Vip = table.address.parse().map_err(de::Error::custom)?;
        vip.dev = table.dev;
        vip.label = table.label;
        vip.broadcast = table.broadcast;
        Ok(vip)
    }
}

impl<'de> Deserialize<'de> for Vip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(VipVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_prefix() {
        let v: Vip = "192.0.2.200/24".parse().unwrap();
        assert_eq!(v.prefix, 24);
        assert_eq!(v.address, "192.0.2.200".parse::<IpAddr>().unwrap());
        let v: Vip = "2001:db8::1".parse().unwrap();
        assert_eq!(v.prefix, 128);
        let v: Vip = "192.0.2.1".parse().unwrap();
        assert_eq!(v.prefix, 32);
    }

    #[test]
    fn rejects_bad_prefix_and_address() {
        assert!(matches!(
            "192.0.2.1/33".parse::<Vip>(),
            Err(VipParseError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "2001:db8::1/129".parse::<Vip>(),
            Err(VipParseError::Prefix { .. })
        ));
        assert!(matches!(
            "192.0.2/24".parse::<Vip>(),
            Err(VipParseError::Address(_))
        ));
    }
}
