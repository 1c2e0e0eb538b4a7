//! `[instances.NAME]`: one VRRP virtual router on one interface.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

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
    /// Wait this long after start before preempting, in milliseconds. Default 0.
    #[serde(default)]
    pub preempt_delay_ms: u64,
    /// Accept packets addressed to the VIPs while Master even when not the address owner
    /// (RFC 5798 Accept_Mode). Default true: the balancer's own listeners serve on the VIPs,
    /// and keepalived outside `vrrp_strict` behaves the same.
    #[serde(default = "default_true")]
    pub accept_mode: bool,
    /// VRRPv3 over IPv4: compute the checksum without the IPv4 pseudo-header, as older
    /// keepalived with `v3_checksum_as_v2` does. Default false.
    #[serde(default)]
    pub v3_checksum_as_v2: bool,
    /// Source address of adverts; default: the interface's primary address of the VIP family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_src: Option<IpAddr>,
    /// Send adverts to these peers instead of multicast. Default empty (multicast).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unicast_peers: Vec<IpAddr>,
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
}

impl Instance {
    /// `true` when the VIPs are IPv6 (validation makes every VIP of one family).
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(Vip::is_ipv6)
    }

    /// `true` when adverts go to unicast peers rather than the VRRP multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }
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
