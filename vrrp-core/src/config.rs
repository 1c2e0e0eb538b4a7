//! The configuration of one virtual router, and the typed errors of its validation.

use core::net::IpAddr;
use core::time::Duration;

use crate::packet::{Auth, ChecksumMode, Family, Version, MAX_V2_INTERVAL_S, MAX_V3_INTERVAL_CS};
use crate::track::TrackId;

/// The priority of the router that owns the virtual addresses (RFC 5798 §6.1).
pub const PRIORITY_OWNER: u8 = 255;
/// The default priority of a backup router (RFC 5798 §6.1).
pub const PRIORITY_DEFAULT: u8 = 100;
/// The priority a master sends when it stops being master (RFC 5798 §6.1).
pub const PRIORITY_STOP: u8 = 0;
/// The longest delay a [`RouterConfig`] takes (`preempt_delay` and the announcement delays
/// and period): one hour. keepalived stops at 1000 s for `preempt_delay`; an hour is more than
/// any use needs, and bounding it means `now + delay` cannot overflow an
/// [`Instant`](std::time::Instant), which would panic.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// keepalived's bound on a tracking weight: `-253..=253`, so that one object can move any
/// priority across the whole 1..=254 range but no further.
pub const MAX_TRACK_WEIGHT: i16 = 253;

/// A tracked object as configured: what keepalived calls a `track_script`, `track_interface`
/// or `track_file` entry, reduced to an identifier, a weight and a starting state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Track {
    /// How the driver names the object in [`Router::set_tracked`](crate::Router::set_tracked).
    pub id: TrackId,
    /// keepalived semantics: a positive weight is added to the priority while the object is
    /// up, a negative one subtracted while it is down; 0 puts the router in Fault while down.
    pub weight: i16,
    /// The state before the driver first reports one.
    pub up: bool,
}

impl Track {
    /// A tracked object, up until the driver says otherwise.
    pub const fn new(id: TrackId, weight: i16) -> Self {
        Track {
            id,
            weight,
            up: true,
        }
    }

    /// The same object, starting in state `up`.
    #[must_use]
    pub const fn starting(mut self, up: bool) -> Self {
        self.up = up;
        self
    }
}

/// Gratuitous ARP / unsolicited Neighbor Advertisement settings, named after keepalived's.
/// Start from [`AnnounceConfig::default`] (keepalived's defaults) and change fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AnnounceConfig {
    /// `garp_master_repeat`: how many announcements of each address per burst (0: none).
    pub master_repeat: u32,
    /// `garp_master_delay`: when the second burst follows becoming master; `None` (or zero)
    /// for none. At most [`MAX_DELAY`], as the two below.
    pub master_delay: Option<Duration>,
    /// `garp_master_refresh`: the period of refresh bursts while master; `None` (or zero) for
    /// none.
    pub refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`: how many announcements per refresh burst.
    pub refresh_repeat: u32,
    /// `garp_lower_prio_repeat`: how many announcements of each address a Master sends at once
    /// when it hears an advert of lower priority (0: none). Another router that briefly thought
    /// it was master (a lost advert, a partition healing) may have announced the addresses as
    /// its own; this takes the neighbours' caches back at once. At most one such burst per
    /// advert interval.
    pub lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: when a second such burst follows; `None` (or zero) for none.
    pub lower_prio_delay: Option<Duration>,
}

impl Default for AnnounceConfig {
    /// keepalived's defaults: 5 announcements, again 5 s later, no refresh; the same on hearing
    /// a lower priority while Master.
    fn default() -> Self {
        AnnounceConfig {
            master_repeat: 5,
            master_delay: Some(Duration::from_secs(5)),
            refresh: None,
            refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Some(Duration::from_secs(5)),
        }
    }
}

/// Everything that defines one virtual router: (VRID, family) on one interface.
///
/// Build one with [`RouterConfig::new`], adjust the public fields, then hand it to
/// [`Router::new`](crate::Router::new), which validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterConfig {
    /// The Virtual Router Identifier, 1..=255.
    pub vrid: u8,
    /// VRRPv3 (RFC 5798) or VRRPv2 (RFC 3768, IPv4 only).
    pub version: Version,
    /// The configured priority, 1..=255 (255: this router owns the addresses). Tracked objects
    /// move the effective priority around it.
    pub priority: u8,
    /// The Advertisement_Interval in centiseconds: 1..=4095 for VRRPv3, a whole number of
    /// seconds (100..=25500) for VRRPv2.
    pub advert_interval_cs: u16,
    /// This router's primary address on the interface: the source of its adverts, and the
    /// tie-breaker between equal priorities. Its family is the router's family.
    pub primary_address: IpAddr,
    /// The virtual addresses, all of the router's family, at least one.
    pub virtual_addresses: Vec<IpAddr>,
    /// Preempt_Mode: a higher-priority Backup takes over from a lower-priority Master.
    /// keepalived's `nopreempt` is `false`. Ignored at priority 255: the address owner always
    /// preempts.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: how long a Backup keeps a lower-priority master after it
    /// first hears it, before preempting it. At most [`MAX_DELAY`]. The router becomes Master
    /// when it ends; keepalived then still waits for Master_Down_Timer (about one
    /// Master_Down_Interval more).
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 5798 §6.1): whether a non-owner Master accepts packets addressed to the
    /// virtual addresses. The router only carries it; the driver applies it.
    pub accept_mode: bool,
    /// VRRPv2 authentication; must be [`Auth::None`] for VRRPv3.
    pub auth: Auth,
    /// Unicast peers: when non-empty, adverts go to each of them instead of the multicast group,
    /// and only adverts from them are accepted.
    pub unicast_peers: Vec<IpAddr>,
    /// The lowest TTL / hop limit accepted on a unicast advert: 255 (RFC 5798 §7.1, the
    /// default), so that no advert that crossed a router, or was forged off the LAN, is heard.
    /// Lower it only for a peer that sends less (keepalived 2.2.7 sends IPv6 unicast adverts
    /// with hop limit 64). Multicast adverts always need 255.
    pub unicast_min_ttl: u8,
    /// How VRRPv3 IPv4 checksums are computed (RFC 5798, without the pseudo-header, or
    /// keepalived's `old_unicast_checksum`).
    pub checksum: ChecksumMode,
    /// A Master answers a lower-priority advert with one of its own at once, so that a returning
    /// router learns a master exists (keepalived does this). RFC 5798 only discards it.
    pub answer_lower_priority: bool,
    /// Gratuitous ARP / unsolicited NA when becoming master.
    pub announce: AnnounceConfig,
    /// Tracked objects and their weights.
    pub tracks: Vec<Track>,
}

impl RouterConfig {
    /// A configuration with RFC 5798 defaults: priority 100, 1 s adverts, preempt on, no
    /// preempt delay, Accept_Mode off, no authentication, multicast, keepalived's announcement
    /// settings, nothing tracked.
    pub fn new(
        vrid: u8,
        version: Version,
        primary_address: IpAddr,
        virtual_addresses: Vec<IpAddr>,
    ) -> Self {
        RouterConfig {
            vrid,
            version,
            priority: PRIORITY_DEFAULT,
            advert_interval_cs: 100,
            primary_address,
            virtual_addresses,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            auth: Auth::None,
            unicast_peers: Vec::new(),
            unicast_min_ttl: crate::packet::TTL,
            checksum: ChecksumMode::Rfc5798,
            answer_lower_priority: true,
            announce: AnnounceConfig::default(),
            tracks: Vec::new(),
        }
    }

    /// The address family, from the primary address.
    pub const fn family(&self) -> Family {
        Family::of(&self.primary_address)
    }

    /// Checks every rule [`Router::new`](crate::Router::new) relies on.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::VridZero);
        }
        validate_priority(self.priority)?;
        validate_interval(self.version, self.advert_interval_cs)?;
        let family = self.family();
        match self.version {
            Version::V2 if family != Family::Ipv4 => return Err(ConfigError::V2RequiresIpv4),
            Version::V3 if self.auth != Auth::None => return Err(ConfigError::AuthRequiresV2),
            _ => {}
        }
        if self.virtual_addresses.is_empty() {
            return Err(ConfigError::NoVirtualAddresses);
        }
        if self.virtual_addresses.len() > 255 {
            return Err(ConfigError::TooManyVirtualAddresses(
                self.virtual_addresses.len(),
            ));
        }
        for addr in self.virtual_addresses.iter().chain(&self.unicast_peers) {
            if Family::of(addr) != family {
                return Err(ConfigError::FamilyMismatch {
                    address: *addr,
                    family,
                });
            }
        }
        let announce = &self.announce;
        for (what, delay) in [
            ("preempt_delay", Some(self.preempt_delay)),
            ("announce.master_delay", announce.master_delay),
            ("announce.refresh", announce.refresh),
            ("announce.lower_prio_delay", announce.lower_prio_delay),
        ] {
            if let Some(delay) = delay.filter(|d| *d > MAX_DELAY) {
                return Err(ConfigError::DelayTooLong { what, delay });
            }
        }
        if self.unicast_peers.contains(&self.primary_address) {
            return Err(ConfigError::PeerIsSelf(self.primary_address));
        }
        for (i, t) in self.tracks.iter().enumerate() {
            if !(-MAX_TRACK_WEIGHT..=MAX_TRACK_WEIGHT).contains(&t.weight) {
                return Err(ConfigError::WeightOutOfRange {
                    id: t.id,
                    weight: t.weight,
                });
            }
            if self.tracks[..i].iter().any(|o| o.id == t.id) {
                return Err(ConfigError::DuplicateTrack(t.id));
            }
        }
        Ok(())
    }
}

/// A priority the router may be configured with: 1..=255.
pub(crate) fn validate_priority(priority: u8) -> Result<(), ConfigError> {
    if priority == PRIORITY_STOP {
        Err(ConfigError::PriorityZero)
    } else {
        Ok(())
    }
}

fn validate_interval(version: Version, interval_cs: u16) -> Result<(), ConfigError> {
    let ok = match version {
        Version::V3 => (1..=MAX_V3_INTERVAL_CS).contains(&interval_cs),
        Version::V2 => {
            interval_cs % 100 == 0 && (1..=MAX_V2_INTERVAL_S).contains(&(interval_cs / 100))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::IntervalOutOfRange {
            version,
            interval_cs,
        })
    }
}

/// Why a [`RouterConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// VRID 0 does not exist.
    #[error("virtual router id must be 1..=255, not 0")]
    VridZero,
    /// Priority 0 is reserved for a master that stops.
    #[error("priority must be 1..=255: 0 is reserved for a master that stops (use 1..=254, or 255 for the address owner)")]
    PriorityZero,
    /// The advert interval cannot be carried by the version.
    #[error("advert interval of {interval_cs} cs is out of range for {version} (VRRPv3: 1..=4095 cs; VRRPv2: whole seconds 1..=255)")]
    IntervalOutOfRange {
        /// The version configured.
        version: Version,
        /// The interval configured, in centiseconds.
        interval_cs: u16,
    },
    /// VRRPv2 is IPv4 only.
    #[error("VRRPv2 is IPv4 only: use VRRPv3 for IPv6")]
    V2RequiresIpv4,
    /// Authentication exists only in VRRPv2.
    #[error("authentication is a VRRPv2 feature: VRRPv3 has none (RFC 5798 §9)")]
    AuthRequiresV2,
    /// A router needs an address to protect.
    #[error("no virtual addresses: a virtual router needs at least one")]
    NoVirtualAddresses,
    /// The count field is 8 bits.
    #[error("{0} virtual addresses do not fit one advert (at most 255)")]
    TooManyVirtualAddresses(usize),
    /// A virtual address or peer of another family than the primary address.
    #[error("{address} is not {family}, the family of the primary address")]
    FamilyMismatch {
        /// The offending address.
        address: IpAddr,
        /// The router's family.
        family: Family,
    },
    /// A delay longer than [`MAX_DELAY`].
    #[error("{what} of {delay:?} is longer than the one hour (MAX_DELAY) a router takes")]
    DelayTooLong {
        /// The field: `preempt_delay`, `announce.master_delay`, `announce.refresh` or
        /// `announce.lower_prio_delay`.
        what: &'static str,
        /// The delay configured.
        delay: Duration,
    },
    /// The router would send adverts to itself.
    #[error("unicast peer {0} is this router's own primary address")]
    PeerIsSelf(IpAddr),
    /// Two tracked objects with the same id.
    #[error("tracked object {0} is listed twice")]
    DuplicateTrack(TrackId),
    /// A weight outside keepalived's -253..=253.
    #[error("tracked object {id} has weight {weight}, outside -253..=253")]
    WeightOutOfRange {
        /// The object.
        id: TrackId,
        /// Its weight.
        weight: i16,
    },
    /// A [`Demux`](crate::Demux) already has a router for this (VRID, family).
    #[error("a virtual router {vrid} for {family} already exists on this interface")]
    DuplicateRouter {
        /// The VRID.
        vrid: u8,
        /// The family.
        family: Family,
    },
    /// [`Router::set_tracked`](crate::Router::set_tracked) named an object not configured.
    #[error("tracked object {0} is not configured")]
    UnknownTrack(TrackId),
}
