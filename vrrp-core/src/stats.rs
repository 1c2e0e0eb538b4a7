//! Counters, named after RFC 6527's VRRPv3 MIB (`vrrpv3Statistics*`, `vrrpv3Router*`) and,
//! for VRRPv2 authentication, RFC 2787's `vrrpStats*`.

use crate::state::NewMasterReason;

/// RFC 6527 `vrrpv3StatisticsProtoErrReason`: the last protocol error seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ProtoErrReason {
    /// `noError(0)`.
    #[default]
    NoError,
    /// `ipTtlError(1)`: TTL or hop limit not 255.
    IpTtlError,
    /// `versionError(2)`: a version other than the router's.
    VersionError,
    /// `checksumError(3)`.
    ChecksumError,
    /// `vrIdError(4)`: a VRID that is not the router's.
    VrIdError,
}

/// The counters of one virtual router. Each dropped packet increments exactly one error
/// counter; a VRRPv3 address-list mismatch is counted but the packet is still used (RFC 5798
/// §7.1), while a VRRPv2 one is dropped unless the address owner sent it (RFC 3768 §7.1).
///
/// With the `serde` feature it serializes field by field, and missing fields deserialize as
/// zero (so a reader may be older or newer than the writer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
#[non_exhaustive]
pub struct Stats {
    /// `vrrpv3StatisticsMasterTransitions`: times this router became Master.
    pub master_transitions: u64,
    /// `vrrpv3StatisticsNewMasterReason`: why it last became Master.
    pub new_master_reason: NewMasterReason,
    /// `vrrpv3StatisticsRcvdAdvertisements`: adverts received that passed validation.
    pub rcvd_advertisements: u64,
    /// `vrrpv3StatisticsAdvIntervalErrors`: VRRPv2 adverts with another interval (or VRRPv3
    /// adverts with an interval of 0).
    pub adv_interval_errors: u64,
    /// `vrrpv3StatisticsIpTtlErrors`: adverts (multicast or unicast) with a TTL / hop limit
    /// other than 255.
    pub ip_ttl_errors: u64,
    /// `vrrpv3StatisticsProtoErrReason`: the last protocol error.
    pub proto_err_reason: ProtoErrReason,
    /// `vrrpv3StatisticsRcvdPriZeroPackets`: adverts with priority 0 received.
    pub rcvd_pri_zero_packets: u64,
    /// `vrrpv3StatisticsSentPriZeroPackets`: adverts with priority 0 sent.
    pub sent_pri_zero_packets: u64,
    /// `vrrpv3StatisticsRcvdInvalidTypePackets`: packets whose type is not ADVERTISEMENT.
    pub rcvd_invalid_type_packets: u64,
    /// `vrrpv3StatisticsAddressListErrors`: adverts whose addresses differ from ours, in any
    /// order: VRRPv3 ones are used anyway, VRRPv2 ones dropped unless from the address owner;
    /// and dropped VRRPv3 adverts with no address at all.
    pub address_list_errors: u64,
    /// `vrrpv3StatisticsPacketLengthErrors`: packets too short or whose length disagrees with
    /// their address count.
    pub packet_length_errors: u64,
    /// `vrrpv3RouterChecksumErrors`: checksums that do not verify.
    pub checksum_errors: u64,
    /// `vrrpv3RouterVersionErrors`: unknown version, or not the router's version.
    pub version_errors: u64,
    /// `vrrpv3RouterVrIdErrors`: a VRID other than the router's.
    pub vrid_errors: u64,
    /// `vrrpStatsAuthFailures` (RFC 2787): a VRRPv2 password that does not match.
    pub auth_failures: u64,
    /// `vrrpStatsInvalidAuthType` (RFC 2787): an unknown or unsupported (AH) auth type.
    pub invalid_auth_type: u64,
    /// `vrrpStatsAuthTypeMismatch` (RFC 2787): an auth type other than the router's.
    pub auth_type_mismatch: u64,
    /// Ours: unicast adverts from an address that is not a configured peer.
    pub unknown_peer_errors: u64,
    /// Ours: adverts sent to a unicast address while the router runs multicast, or to the
    /// group while it runs unicast (keepalived: "Expected multicast / unicast packet").
    pub destination_errors: u64,
    /// Ours: packets of the other address family.
    pub family_errors: u64,
    /// Ours: our own adverts looped back to us.
    pub own_packets: u64,
    /// Ours: adverts sent (each unicast copy counts).
    pub sent_advertisements: u64,
    /// Ours: times a Master stepped down for its sync group
    /// ([`Router::handle_step_down`](crate::Router::handle_step_down)).
    pub step_downs: u64,
    /// Ours: times a Master heard another Master of higher priority (a partition healed) and
    /// sent one last advert at its own priority before stepping down, so that the winner
    /// re-announces the addresses.
    pub heal_adverts: u64,
    /// Ours: re-announcement bursts a Master sent because another Master spoke (a lower
    /// priority, or priority 0): keepalived's `garp_lower_prio_repeat` bursts.
    pub lower_prio_announcements: u64,
}
