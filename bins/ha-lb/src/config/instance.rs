//! `[instances.NAME]`: one VRRP virtual router on one interface.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use vrrp_core::packet::ChecksumMode;

use super::garp::Garp;
use super::notify::Notify;
use super::track::{TrackCheck, TrackInterface, TrackPool};
use super::vip::Vip;

/// Default priority of a backup router (RFC 5798 section 5.2.4; keepalived's default too).
pub const DEFAULT_PRIORITY: u32 = 100;
/// Default VRRP version: 3 (RFC 5798), the only one that can carry IPv6 and sub-second adverts.
pub const DEFAULT_VERSION: u32 = 3;
/// Default advertisement interval: one second, as RFC 5798 and keepalived.
pub const DEFAULT_ADVERT_INTERVAL_MS: u64 = 1000;

/// One VRRP instance (virtual router).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// The interface adverts are sent on and VIPs are added to. Required.
    pub interface: String,
    /// Virtual router id, 1..=255; both nodes of a pair use the same. Required.
    pub vrid: u32,
    /// Priority, 1..=254 (255 only with `address_owner`). Default 100.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// This node owns the VIPs as real addresses (RFC 5798 priority 255). Default false.
    #[serde(default)]
    pub address_owner: bool,
    /// VRRP version, 2 (RFC 3768, IPv4 only, whole seconds) or 3 (RFC 5798). Default 3.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Advertisement interval in milliseconds. Default 1000.
    #[serde(default = "default_advert_interval_ms")]
    pub advert_interval_ms: u64,
    /// Take over from a lower-priority master. Default true.
    #[serde(default = "default_true")]
    pub preempt: bool,
    /// How long a Backup keeps a lower-priority Master after it first hears it, before taking
    /// over, in milliseconds (0..=3600000). Default 0. keepalived's `preempt_delay` starts at
    /// the same moment but takes over about a Master_Down_Interval later: see docs/config.md.
    #[serde(default)]
    pub preempt_delay_ms: u64,
    /// Accept packets addressed to the VIPs while Master even when not the address owner
    /// (RFC 5798 Accept_Mode). Default true: the balancer's own listeners serve on the VIPs,
    /// and keepalived outside `vrrp_strict` behaves the same.
    #[serde(default = "default_true")]
    pub accept_mode: bool,
    /// VRRPv3 over IPv4: compute the checksum without the IPv4 pseudo-header, like VRRPv2
    /// (keepalived 2.2.8+'s `v3_checksum_as_v2`, Wireshark's `v3_checksum_as_in_v2`, FRR's
    /// `no checksum-with-ipv4-pseudoheader`). Default false.
    #[serde(default)]
    pub v3_checksum_as_v2: bool,
    /// VRRPv3 over IPv4: put the group 224.0.0.18 in the checksum's pseudo-header even for
    /// unicast adverts, as keepalived with `old_unicast_checksum` (and before 1.3.6) does.
    /// Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub old_unicast_checksum: bool,
    /// Source address of adverts; default: the interface's primary address of the VIP family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_src: Option<IpAddr>,
    /// Send adverts to these peers instead of multicast. Default empty (multicast).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unicast_peers: Vec<IpAddr>,
    /// The lowest TTL / hop limit accepted on a unicast advert. Default 255 (RFC 5798 §7.1);
    /// 64 for keepalived 2.2.7 peers over IPv6, which send that.
    #[serde(
        default = "default_unicast_min_ttl",
        skip_serializing_if = "is_default_unicast_min_ttl"
    )]
    pub unicast_min_ttl: u8,
    /// VRRPv2 simple password (at most 8 bytes), keepalived's `auth_type PASS`. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The virtual addresses, all of one family. Required, at least one.
    pub vips: Vec<Vip>,
    /// Checks that move this instance's priority (or put it in Fault). Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_checks: Vec<TrackCheck>,
    /// Pools whose loss of every healthy backend moves this instance's priority. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_pools: Vec<TrackPool>,
    /// Interfaces whose link state moves this instance's priority. Default none (the
    /// instance's own interface is always tracked: link down is Fault).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interfaces: Vec<TrackInterface>,
    /// Commands run on state changes. Default none.
    #[serde(default, skip_serializing_if = "Notify::is_empty")]
    pub notify: Notify,
    /// Gratuitous ARP / unsolicited neighbour advertisement settings.
    #[serde(default, skip_serializing_if = "Garp::is_default")]
    pub garp: Garp,
    /// Virtual MAC (RFC 5798 §7.3, keepalived's `use_vmac`): a macvlan interface with MAC
    /// 00:00:5E:00:01:VRID (IPv6: 00:00:5E:00:02:VRID) on `interface` holds the VIPs (those
    /// without a `dev` of their own) and sends the adverts, so the VIPs' MAC never changes.
    /// Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_vmac: bool,
    /// The VMAC interface's name, at most 15 bytes. Default `vrrp.VRID` (`vrrp6.VRID` for
    /// IPv6), keepalived's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmac_name: Option<String>,
    /// With `use_vmac`: send adverts from `interface` (its own MAC) instead of the VMAC
    /// interface, keepalived's `vmac_xmit_base`. Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub vmac_xmit_base: bool,
}

impl Instance {
    /// `true` when the VIPs are IPv6 (validation makes every VIP of one family).
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(Vip::is_ipv6)
    }

    /// The VMAC interface's name when `use_vmac` is set.
    pub fn vmac(&self) -> Option<String> {
        if !self.use_vmac {
            return None;
        }
        let vrid = u8::try_from(self.vrid).unwrap_or(0);
        Some(
            self.vmac_name
                .clone()
                .unwrap_or_else(|| crate::net::vmac::default_name(vrid, self.is_ipv6())),
        )
    }

    /// `true` when adverts go to unicast peers rather than the VRRP multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// An instance on `interface` for `vrid` with every other key at its default (as a
    /// TOML table with only those two keys; `vips` empty, which validation refuses).
    pub fn new(interface: &str, vrid: u32) -> Self {
        Instance {
            interface: interface.to_owned(),
            vrid,
            priority: DEFAULT_PRIORITY,
            address_owner: false,
            version: DEFAULT_VERSION,
            advert_interval_ms: DEFAULT_ADVERT_INTERVAL_MS,
            preempt: true,
            preempt_delay_ms: 0,
            accept_mode: true,
            v3_checksum_as_v2: false,
            old_unicast_checksum: false,
            unicast_src: None,
            unicast_peers: Vec::new(),
            unicast_min_ttl: default_unicast_min_ttl(),
            password: None,
            vips: Vec::new(),
            track_checks: Vec::new(),
            track_pools: Vec::new(),
            track_interfaces: Vec::new(),
            notify: Notify::default(),
            garp: Garp::default(),
            use_vmac: false,
            vmac_name: None,
            vmac_xmit_base: false,
        }
    }

    /// How this instance computes and checks VRRPv3 IPv4 checksums (validation allows at most
    /// one of `v3_checksum_as_v2` and `old_unicast_checksum`).
    pub fn checksum_mode(&self) -> ChecksumMode {
        if self.v3_checksum_as_v2 {
            ChecksumMode::V3WithoutPseudoHeader
        } else if self.old_unicast_checksum {
            ChecksumMode::V3MulticastPseudoHeader
        } else {
            ChecksumMode::Rfc5798
        }
    }

    /// The length of this instance's advert as an IP packet: the VRRP message with every VIP
    /// and the IPv4 (20 bytes) or IPv6 (40 bytes) header.
    pub fn advert_ip_len(&self) -> usize {
        use vrrp_core::packet::{packet_len, Family, Version};
        let (family, header) = if self.is_ipv6() {
            (Family::Ipv6, 40)
        } else {
            (Family::Ipv4, 20)
        };
        let version = if self.version == 2 {
            Version::V2
        } else {
            Version::V3
        };
        packet_len(version, family, self.vips.len()) + header
    }
}

fn default_unicast_min_ttl() -> u8 {
    vrrp_core::packet::TTL
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_default_unicast_min_ttl(ttl: &u8) -> bool {
    *ttl == vrrp_core::packet::TTL
}

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}

fn default_version() -> u32 {
    DEFAULT_VERSION
}

fn default_advert_interval_ms() -> u64 {
    DEFAULT_ADVERT_INTERVAL_MS
}

pub(crate) fn default_true() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use vrrp_core::packet::ChecksumMode;

    use crate::config::{parse, ConfigError};

    fn instance(extra: &str, vips: &str, version: u32) -> String {
        format!(
            "[instances.A]\ninterface = \"eth0\"\nvrid = 5\nversion = {version}\n\
             unicast_peers = [\"{peer}\"]\nvips = [\"{vips}\"]\n{extra}\n",
            peer = if vips.contains(':') {
                "2001:db8::2"
            } else {
                "192.0.2.2"
            },
        )
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new("t.toml")) {
            Err(ConfigError::Invalid { diagnostics }) => {
                diagnostics.iter().map(|d| d.to_string()).collect()
            }
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn checksum_keys_choose_the_mode() {
        for (extra, mode) in [
            ("", ChecksumMode::Rfc5798),
            (
                "v3_checksum_as_v2 = true",
                ChecksumMode::V3WithoutPseudoHeader,
            ),
            (
                "old_unicast_checksum = true",
                ChecksumMode::V3MulticastPseudoHeader,
            ),
        ] {
            let config = parse(&instance(extra, "192.0.2.200", 3), Path::new("t.toml")).unwrap();
            assert_eq!(config.instances["A"].checksum_mode(), mode, "{extra}");
        }
    }

    #[test]
    fn old_unicast_checksum_is_vrrpv3_ipv4_only_and_alone() {
        let both = "old_unicast_checksum = true\nv3_checksum_as_v2 = true";
        let e = errors(&instance(both, "192.0.2.200", 3));
        assert!(
            e.iter().any(|e| e.contains("two different checksums")),
            "{e:?}"
        );
        let e = errors(&instance("old_unicast_checksum = true", "192.0.2.200", 2));
        assert!(
            e.iter().any(|e| e.contains("only to VRRPv3 over IPv4")),
            "{e:?}"
        );
        let e = errors(&instance("old_unicast_checksum = true", "2001:db8::100", 3));
        assert!(
            e.iter().any(|e| e.contains("only to VRRPv3 over IPv4")),
            "{e:?}"
        );
    }
}
