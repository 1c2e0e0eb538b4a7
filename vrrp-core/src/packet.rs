//! The VRRP advertisement on the wire: VRRPv3 (RFC 5798 §5) and VRRPv2 (RFC 3768 §5).
//!
//! Shaped like smoltcp's `wire` modules: [`Packet`] is a checked view over a byte buffer with
//! an accessor per field, and [`Advertisement`] is the high-level representation with
//! [`parse`](Advertisement::parse) and [`emit`](Advertisement::emit). Neither allocates.
//!
//! ```text
//!  VRRPv3                                   VRRPv2
//!  0       4       8              16              24             31
//! +-------+-------+---------------+---------------+---------------+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX    |
//! +-------+-------+---------------+---------------+---------------+
//! |(rsvd) |    Max Adver Int      |          Checksum             |   v3
//! | Auth Type     | Adver Int     |          Checksum             |   v2
//! +-------+-------+---------------+---------------+---------------+
//! |                  IPvX address(es) (4 or 16 bytes each)         |
//! +---------------------------------------------------------------+
//! |         Authentication Data (v2 only, 8 bytes)                 |
//! +---------------------------------------------------------------+
//! ```
//!
//! # Example
//!
//! ```
//! use std::net::IpAddr;
//! use vrrp_core::packet::{Advertisement, AddressList, Auth, ChecksumMode, IpContext, Version};
//!
//! let vips = AddressList::encode_v4(&["192.0.2.100".parse()?]);
//! let advert = Advertisement {
//!     version: Version::V3,
//!     vrid: 101,
//!     priority: 100,
//!     interval_cs: 100,
//!     auth: Auth::None,
//!     addresses: vips.as_list(),
//! };
//! let ctx = IpContext {
//!     src: "192.0.2.1".parse::<IpAddr>()?,
//!     dst: "224.0.0.18".parse::<IpAddr>()?,
//!     checksum: ChecksumMode::Rfc5798,
//! };
//! let mut buf = [0u8; 64];
//! let len = advert.emit(&mut buf, &ctx)?;
//! let back = Advertisement::decode(&buf[..len], &ctx)?;
//! assert_eq!(back, advert);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;

/// The IP protocol number of VRRP.
pub const IP_PROTOCOL: u8 = 112;
/// The IPv4 multicast group of VRRP, 224.0.0.18.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP, ff02::12.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL (IPv4) or hop limit (IPv6) that every advertisement is sent and received with.
pub const TTL: u8 = 255;
/// The length of the fixed VRRP header, before the addresses.
pub const HEADER_LEN: usize = 8;
/// The length of the VRRPv2 authentication data that follows the addresses.
pub const AUTH_DATA_LEN: usize = 8;
/// The only packet type defined: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// The largest VRRPv3 Max Adver Int, in centiseconds (12 bits).
pub const MAX_V3_INTERVAL_CS: u16 = 0x0fff;
/// The largest VRRPv2 Adver Int, in seconds (8 bits).
pub const MAX_V2_INTERVAL_S: u16 = 0xff;

mod field {
    pub(super) const VER_TYPE: usize = 0;
    pub(super) const VRID: usize = 1;
    pub(super) const PRIORITY: usize = 2;
    pub(super) const COUNT: usize = 3;
    /// v2: Auth Type.
    pub(super) const AUTH_TYPE: usize = 4;
    /// v2: Adver Int, in seconds.
    pub(super) const ADVER_INT: usize = 5;
    /// v3: 4 reserved bits and 12 bits of Max Adver Int.
    pub(super) const MAX_ADVER_INT: core::ops::Range<usize> = 4..6;
    pub(super) const CHECKSUM: core::ops::Range<usize> = 6..8;
}

/// The VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, advert interval in whole seconds, optional simple password.
    V2,
    /// VRRPv3, RFC 5798: IPv4 and IPv6, advert interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The number carried in the packet's version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version for a number of the version field, if it is one we speak.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// The address family of a virtual router: it decides the size of each address in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4: 4-byte addresses.
    Ipv4,
    /// IPv6: 16-byte addresses.
    Ipv6,
}

impl Family {
    /// The size of one address of this family, in bytes.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The VRRP multicast group of this family.
    pub const fn multicast_group(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(MULTICAST_V4),
            Family::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). VRRPv3 has none: its packets always carry `None`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth Type 0: no authentication.
    None,
    /// Auth Type 1: a simple text password of up to 8 bytes, zero-padded.
    Simple([u8; AUTH_DATA_LEN]),
}

impl Auth {
    /// Auth Type 0.
    pub const TYPE_NONE: u8 = 0;
    /// Auth Type 1, simple text password.
    pub const TYPE_SIMPLE: u8 = 1;
    /// Auth Type 2, IP Authentication Header (RFC 2338); removed by RFC 3768 and not supported.
    pub const TYPE_AH: u8 = 2;

    /// A simple password, zero-padded to 8 bytes.
    ///
    /// # Errors
    ///
    /// [`PacketError::PasswordTooLong`] when the password is longer than 8 bytes. (keepalived
    /// silently truncates it; a configuration layer that wants that can slice first.)
    pub fn simple(password: &[u8]) -> Result<Self, PacketError> {
        if password.len() > AUTH_DATA_LEN {
            return Err(PacketError::PasswordTooLong {
                len: password.len(),
            });
        }
        let mut data = [0u8; AUTH_DATA_LEN];
        data[..password.len()].copy_from_slice(password);
        Ok(Auth::Simple(data))
    }

    /// The Auth Type number of this authentication.
    pub const fn type_number(&self) -> u8 {
        match self {
            Auth::None => Self::TYPE_NONE,
            Auth::Simple(_) => Self::TYPE_SIMPLE,
        }
    }
}

impl fmt::Debug for Auth {
    // Never print a password into a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Simple(_) => f.write_str("Simple(..)"),
        }
    }
}

/// How the checksum of a VRRPv3 IPv4 packet is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// As RFC 5798 §5.2.8 says: VRRPv3 includes the IPv4/IPv6 pseudo-header.
    #[default]
    Rfc5798,
    /// VRRPv3 over IPv4 checksummed over the VRRP message only, like VRRPv2. Some peers do this:
    /// keepalived 2.2.8+ with `v3_checksum_as_v2` (which then verifies no received checksum),
    /// Cisco, FRR's `no vrrp N checksum-with-ipv4-pseudoheader`; Wireshark's
    /// `vrrp.v3_checksum_as_in_v2` preference decodes it. IPv6 and VRRPv2 are unaffected.
    V3WithoutPseudoHeader,
    /// VRRPv3 over IPv4 with the pseudo-header, but with the VRRP group 224.0.0.18 as its
    /// destination whatever the packet's real destination: keepalived before 1.3.6 did this for
    /// unicast adverts, and later versions do it with `old_unicast_checksum`. Identical to
    /// [`ChecksumMode::Rfc5798`] for multicast adverts; IPv6 and VRRPv2 are unaffected.
    V3MulticastPseudoHeader,
}

/// The IP layer around a VRRP message: the addresses its checksum covers, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpContext {
    /// The IP source address.
    pub src: IpAddr,
    /// The IP destination address: the multicast group, or a unicast peer.
    pub dst: IpAddr,
    /// How a VRRPv3 IPv4 checksum is computed.
    pub checksum: ChecksumMode,
}

impl IpContext {
    /// The address family of the packet, from its source address.
    pub const fn family(&self) -> Family {
        Family::of(&self.src)
    }
}

/// Every way a VRRP packet can be wrong, or fail to be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than the fixed 8-byte header.
    #[error("packet truncated: {len} bytes, the VRRP header alone is {HEADER_LEN}")]
    Truncated {
        /// The length received.
        len: usize,
    },
    /// The length does not match what the address count (and version) require.
    #[error("packet length {len} does not match {count} addresses: expected {expected} bytes")]
    LengthMismatch {
        /// The Count IPvX Addr field.
        count: u8,
        /// The length received.
        len: usize,
        /// The length the header implies.
        expected: usize,
    },
    /// A version field other than 2 or 3.
    #[error("unsupported VRRP version {0}")]
    BadVersion(u8),
    /// A type field other than 1 (ADVERTISEMENT).
    #[error("invalid VRRP packet type {0}")]
    BadType(u8),
    /// The checksum does not verify.
    #[error("bad checksum: packet has {found:#06x}, computed {computed:#06x}")]
    BadChecksum {
        /// The checksum carried in the packet.
        found: u16,
        /// The checksum computed over the packet (with the field as zero).
        computed: u16,
    },
    /// VRRPv2 Auth Type 2 (IP Authentication Header), obsoleted by RFC 3768.
    #[error("VRRPv2 authentication type 2 (IP AH) is not supported")]
    AuthAhUnsupported,
    /// A VRRPv2 Auth Type that no RFC defines.
    #[error("unknown VRRPv2 authentication type {0}")]
    BadAuthType(u8),
    /// A VRRPv3 advertisement was given authentication to write, or VRRPv2 was used over IPv6.
    #[error("{version} cannot be used with {what}")]
    VersionMismatch {
        /// The version of the packet.
        version: Version,
        /// What it cannot be used with.
        what: &'static str,
    },
    /// The source and destination addresses (or the addresses listed) are of different families.
    #[error("address family mismatch: {0}")]
    FamilyMismatch(&'static str),
    /// More than 255 addresses to list.
    #[error("{0} addresses do not fit the 8-bit count field")]
    TooManyAddresses(usize),
    /// The advertisement interval cannot be carried by this version.
    #[error("advert interval of {interval_cs} cs cannot be carried by {version}")]
    IntervalOutOfRange {
        /// The version of the packet.
        version: Version,
        /// The interval asked for, in centiseconds.
        interval_cs: u16,
    },
    /// A password longer than the 8 bytes of the authentication data.
    #[error("password of {len} bytes is longer than the 8 bytes VRRPv2 carries")]
    PasswordTooLong {
        /// The password's length.
        len: usize,
    },
    /// The output buffer cannot hold the packet.
    #[error("buffer of {len} bytes cannot hold a packet of {needed} bytes")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

/// The longest legal VRRP message: 255 IPv6 addresses (4,088 bytes). A driver's receive buffer
/// holds this plus the IP header its socket hands over (at most 60 bytes for IPv4).
pub const MAX_PACKET_LEN: usize = packet_len(Version::V3, Family::Ipv6, 255);

/// The length of a VRRP message with `count` addresses of `family`, for `version`.
pub const fn packet_len(version: Version, family: Family, count: usize) -> usize {
    let base = HEADER_LEN + count * family.addr_len();
    match version {
        Version::V2 => base + AUTH_DATA_LEN,
        Version::V3 => base,
    }
}

/// A read/write view over the bytes of a VRRP message (the IP payload).
///
/// [`Packet::new_checked`] ensures every accessor stays in bounds; [`Packet::new_unchecked`]
/// leaves that to the caller, and accessors then panic on a short buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T, family: Family) -> Self {
        Packet { buffer, family }
    }

    /// Wraps a buffer and checks that it holds the header, and exactly the addresses (and for
    /// VRRPv2 the authentication data) that its count field announces.
    ///
    /// The family comes from the IP layer: a VRRPv3 packet does not say it.
    ///
    /// # Errors
    ///
    /// [`PacketError::Truncated`], [`PacketError::BadVersion`] or
    /// [`PacketError::LengthMismatch`].
    pub fn new_checked(buffer: T, family: Family) -> Result<Self, PacketError> {
        let packet = Self::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length against the header, as [`Packet::new_checked`] does.
    ///
    /// # Errors
    ///
    /// As [`Packet::new_checked`].
    pub fn check_len(&self) -> Result<(), PacketError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(PacketError::Truncated { len: data.len() });
        }
        let version = self.version()?;
        let count = self.addr_count();
        let expected = packet_len(version, self.family, usize::from(count));
        if data.len() != expected {
            return Err(PacketError::LengthMismatch {
                count,
                len: data.len(),
                expected,
            });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The address family the view was made for.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The raw version field (the high nibble of the first byte).
    pub fn version_number(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The version, if it is one we speak.
    ///
    /// # Errors
    ///
    /// [`PacketError::BadVersion`].
    pub fn version(&self) -> Result<Version, PacketError> {
        let n = self.version_number();
        Version::from_number(n).ok_or(PacketError::BadVersion(n))
    }

    /// The type field (the low nibble of the first byte); 1 is ADVERTISEMENT.
    pub fn packet_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// The Virtual Router Identifier.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority: 0 means it stops being master, 255 that it owns the addresses.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The Count IPvX Addr field.
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// VRRPv2: the Auth Type field.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// VRRPv2: the Adver Int field, in seconds.
    pub fn adver_int_secs(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// VRRPv3: the 4 reserved bits before Max Adver Int.
    pub fn v3_reserved(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_ADVER_INT.start] >> 4
    }

    /// VRRPv3: the Max Adver Int field, in centiseconds (12 bits).
    pub fn max_adver_int_cs(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([
            d[field::MAX_ADVER_INT.start],
            d[field::MAX_ADVER_INT.start + 1],
        ]) & MAX_V3_INTERVAL_CS
    }

    /// The advertisement interval in centiseconds, whatever the version: VRRPv2's seconds are
    /// multiplied by 100.
    ///
    /// # Errors
    ///
    /// [`PacketError::BadVersion`].
    pub fn interval_cs(&self) -> Result<u16, PacketError> {
        Ok(match self.version()? {
            Version::V2 => u16::from(self.adver_int_secs()) * 100,
            Version::V3 => self.max_adver_int_cs(),
        })
    }

    /// The Checksum field.
    pub fn checksum(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::CHECKSUM.start], d[field::CHECKSUM.start + 1]])
    }

    /// The bytes of the address list.
    pub fn address_bytes(&self) -> &[u8] {
        let len = usize::from(self.addr_count()) * self.family.addr_len();
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + len]
    }

    /// The address list.
    pub fn addresses(&self) -> AddressList<'_> {
        AddressList {
            family: self.family,
            bytes: self.address_bytes(),
        }
    }

    /// VRRPv2: the 8 bytes of authentication data after the addresses.
    pub fn auth_data(&self) -> &[u8] {
        let start = HEADER_LEN + usize::from(self.addr_count()) * self.family.addr_len();
        &self.buffer.as_ref()[start..start + AUTH_DATA_LEN]
    }

    /// Computes the checksum the packet should carry in `ctx`, treating the field as zero.
    ///
    /// # Errors
    ///
    /// [`PacketError::BadVersion`], or [`PacketError::FamilyMismatch`] when the context's
    /// addresses are not both of the view's family.
    pub fn compute_checksum(&self, ctx: &IpContext) -> Result<u16, PacketError> {
        compute_checksum(self.buffer.as_ref(), self.version()?, self.family, ctx)
    }

    /// Checks the Checksum field.
    ///
    /// # Errors
    ///
    /// [`PacketError::BadChecksum`], or as [`Packet::compute_checksum`].
    pub fn verify_checksum(&self, ctx: &IpContext) -> Result<(), PacketError> {
        let computed = self.compute_checksum(ctx)?;
        let found = self.checksum();
        if computed == found {
            Ok(())
        } else {
            Err(PacketError::BadChecksum { found, computed })
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version and type fields.
    pub fn set_version_type(&mut self, version: Version, packet_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version.number() << 4) | (packet_type & 0x0f);
    }

    /// Sets the Virtual Router Identifier.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Sets the Count IPvX Addr field.
    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// VRRPv2: sets the Auth Type field.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// VRRPv2: sets the Adver Int field, in seconds.
    pub fn set_adver_int_secs(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    /// VRRPv3: sets Max Adver Int (12 bits of centiseconds) and zeroes the reserved bits.
    pub fn set_max_adver_int_cs(&mut self, cs: u16) {
        let bytes = (cs & MAX_V3_INTERVAL_CS).to_be_bytes();
        self.buffer.as_mut()[field::MAX_ADVER_INT].copy_from_slice(&bytes);
    }

    /// Sets the Checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// The bytes of the address list, to write into.
    pub fn address_bytes_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.addr_count()) * self.family.addr_len();
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + len]
    }

    /// VRRPv2: the authentication data, to write into.
    pub fn auth_data_mut(&mut self) -> &mut [u8] {
        let start = HEADER_LEN + usize::from(self.addr_count()) * self.family.addr_len();
        &mut self.buffer.as_mut()[start..start + AUTH_DATA_LEN]
    }

    /// Computes the checksum for `ctx` and writes it into the Checksum field.
    ///
    /// # Errors
    ///
    /// As [`Packet::compute_checksum`].
    pub fn fill_checksum(&mut self, ctx: &IpContext) -> Result<(), PacketError> {
        let sum = self.compute_checksum(ctx)?;
        self.set_checksum(sum);
        Ok(())
    }
}

fn compute_checksum(
    data: &[u8],
    version: Version,
    family: Family,
    ctx: &IpContext,
) -> Result<u16, PacketError> {
    if Family::of(&ctx.src) != family || Family::of(&ctx.dst) != family {
        return Err(PacketError::FamilyMismatch(
            "the IP addresses are not of the packet's family",
        ));
    }
    let with_pseudo = match (version, family, ctx.checksum) {
        (Version::V2, _, _) => false,
        (Version::V3, Family::Ipv4, ChecksumMode::V3WithoutPseudoHeader) => false,
        (Version::V3, _, _) => true,
    };
    // keepalived's old unicast checksum: the pseudo-header names the group, not the peer.
    let pseudo_dst = match (version, family, ctx.checksum) {
        (Version::V3, Family::Ipv4, ChecksumMode::V3MulticastPseudoHeader) => {
            IpAddr::V4(MULTICAST_V4)
        }
        _ => ctx.dst,
    };
    let acc = if with_pseudo {
        checksum::pseudo_header(ctx.src, pseudo_dst, data.len())
            .ok_or(PacketError::FamilyMismatch("source and destination differ"))?
    } else {
        0
    };
    // Sum around the checksum field rather than copying the packet to zero it.
    let acc = checksum::sum(acc, &data[..field::CHECKSUM.start]);
    let acc = checksum::sum(acc, &data[field::CHECKSUM.end..]);
    Ok(checksum::finish(acc))
}

/// A list of virtual addresses as it stands in a packet: 4 or 16 bytes each, network order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressList<'a> {
    family: Family,
    bytes: &'a [u8],
}

impl<'a> AddressList<'a> {
    /// A list over `bytes`, which must be a whole number of addresses of `family`.
    ///
    /// Returns `None` when the length is not a multiple of the address size or the list is
    /// longer than 255 addresses.
    pub fn from_bytes(family: Family, bytes: &'a [u8]) -> Option<Self> {
        let n = bytes.len() / family.addr_len();
        (bytes.len() % family.addr_len() == 0 && n <= 255).then_some(AddressList { family, bytes })
    }

    /// An empty list of `family`.
    pub const fn empty(family: Family) -> Self {
        AddressList { family, bytes: &[] }
    }

    /// The family of the addresses.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The number of addresses.
    pub const fn len(&self) -> usize {
        self.bytes.len() / self.family.addr_len()
    }

    /// Whether the list is empty.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The addresses, in packet order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = IpAddr> + 'a {
        let family = self.family;
        self.bytes
            .chunks_exact(family.addr_len())
            .map(move |chunk| match family {
                Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3])),
                Family::Ipv6 => {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(chunk);
                    IpAddr::V6(Ipv6Addr::from(octets))
                }
            })
    }

    /// Whether `addr` is in the list.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.iter().any(|a| a == *addr)
    }

    /// Encodes IPv4 addresses into an owned list.
    pub fn encode_v4(addrs: &[Ipv4Addr]) -> OwnedAddressList {
        OwnedAddressList {
            family: Family::Ipv4,
            bytes: Encoded::new(addrs.iter().flat_map(|a| a.octets()).collect()),
        }
    }

    /// Encodes IPv6 addresses into an owned list.
    pub fn encode_v6(addrs: &[Ipv6Addr]) -> OwnedAddressList {
        OwnedAddressList {
            family: Family::Ipv6,
            bytes: Encoded::new(addrs.iter().flat_map(|a| a.octets()).collect()),
        }
    }

    /// Encodes addresses of one family into an owned list.
    ///
    /// # Errors
    ///
    /// [`PacketError::FamilyMismatch`] when they are not all of `family`, and
    /// [`PacketError::TooManyAddresses`] past 255.
    pub fn encode(family: Family, addrs: &[IpAddr]) -> Result<OwnedAddressList, PacketError> {
        if addrs.len() > 255 {
            return Err(PacketError::TooManyAddresses(addrs.len()));
        }
        let mut bytes = Vec::with_capacity(addrs.len() * family.addr_len());
        for addr in addrs {
            match (family, addr) {
                (Family::Ipv4, IpAddr::V4(a)) => bytes.extend_from_slice(&a.octets()),
                (Family::Ipv6, IpAddr::V6(a)) => bytes.extend_from_slice(&a.octets()),
                _ => {
                    return Err(PacketError::FamilyMismatch(
                        "a virtual address is not of the router's family",
                    ))
                }
            }
        }
        Ok(OwnedAddressList {
            family,
            bytes: Encoded::new(bytes),
        })
    }
}

impl fmt::Debug for AddressList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An address list that owns its bytes: what a router keeps for the addresses it advertises,
/// encoded once rather than per packet.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OwnedAddressList {
    family: Family,
    bytes: Encoded,
}

impl OwnedAddressList {
    /// The borrowed list, to put in an [`Advertisement`].
    pub fn as_list(&self) -> AddressList<'_> {
        AddressList {
            family: self.family,
            bytes: self.bytes.as_slice(),
        }
    }
}

/// The most address bytes an [`OwnedAddressList`] keeps in place: one IPv6 or four IPv4
/// addresses.
const INLINE_ADDRESS_BYTES: usize = 16;

/// Encoded addresses: the common short list in place, so that a router comparing an advert's
/// list with its own (every advert) reads no memory but its own; a longer one on the heap.
/// A list is in place exactly when it fits, so equal lists compare equal.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Encoded {
    Inline {
        len: u8,
        bytes: [u8; INLINE_ADDRESS_BYTES],
    },
    Heap(Vec<u8>),
}

impl Encoded {
    fn new(bytes: Vec<u8>) -> Self {
        let mut inline = [0u8; INLINE_ADDRESS_BYTES];
        match (inline.get_mut(..bytes.len()), u8::try_from(bytes.len())) {
            (Some(place), Ok(len)) => {
                place.copy_from_slice(&bytes);
                Self::Inline { len, bytes: inline }
            }
            _ => Self::Heap(bytes),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Self::Heap(bytes) => bytes,
        }
    }
}

impl fmt::Debug for OwnedAddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_list().fmt(f)
    }
}

/// A VRRP advertisement: the high-level form of a [`Packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Advertisement<'a> {
    /// VRRPv2 or VRRPv3.
    pub version: Version,
    /// The Virtual Router Identifier, 1..=255.
    pub vrid: u8,
    /// The sender's priority.
    pub priority: u8,
    /// The advertisement interval in centiseconds. VRRPv3 carries 12 bits of centiseconds;
    /// VRRPv2 whole seconds, so it must then be a multiple of 100.
    pub interval_cs: u16,
    /// VRRPv2 authentication; always [`Auth::None`] for VRRPv3.
    pub auth: Auth,
    /// The virtual addresses.
    pub addresses: AddressList<'a>,
}

impl<'a> Advertisement<'a> {
    /// Reads the fields of a checked packet, without verifying its checksum.
    ///
    /// Reserved bits (VRRPv3) and the authentication data of a VRRPv2 packet without
    /// authentication are ignored, as the RFCs say.
    ///
    /// # Errors
    ///
    /// [`PacketError::BadVersion`], [`PacketError::BadType`], [`PacketError::AuthAhUnsupported`],
    /// [`PacketError::BadAuthType`], [`PacketError::VersionMismatch`] (VRRPv2 over IPv6).
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, PacketError> {
        let version = packet.version()?;
        if packet.packet_type() != TYPE_ADVERTISEMENT {
            return Err(PacketError::BadType(packet.packet_type()));
        }
        let view = Packet::new_unchecked(packet.buffer, packet.family);
        let auth = match version {
            Version::V3 => Auth::None,
            Version::V2 => {
                if packet.family != Family::Ipv4 {
                    return Err(PacketError::VersionMismatch {
                        version,
                        what: "IPv6",
                    });
                }
                match view.auth_type() {
                    Auth::TYPE_NONE => Auth::None,
                    Auth::TYPE_SIMPLE => {
                        let mut pw = [0u8; AUTH_DATA_LEN];
                        pw.copy_from_slice(view.auth_data());
                        Auth::Simple(pw)
                    }
                    Auth::TYPE_AH => return Err(PacketError::AuthAhUnsupported),
                    other => return Err(PacketError::BadAuthType(other)),
                }
            }
        };
        Ok(Advertisement {
            version,
            vrid: view.vrid(),
            priority: view.priority(),
            interval_cs: view.interval_cs()?,
            auth,
            addresses: AddressList {
                family: view.family,
                bytes: &view.buffer[HEADER_LEN..HEADER_LEN + view.address_bytes().len()],
            },
        })
    }

    /// Checks the length and checksum of a received VRRP message and parses it.
    ///
    /// # Errors
    ///
    /// Any [`PacketError`] that applies to received bytes.
    pub fn decode(bytes: &'a [u8], ctx: &IpContext) -> Result<Self, PacketError> {
        let packet = Packet::new_checked(bytes, ctx.family())?;
        packet.verify_checksum(ctx)?;
        Self::parse(&packet)
    }

    /// The family of the addresses.
    pub const fn family(&self) -> Family {
        self.addresses.family
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        packet_len(self.version, self.addresses.family, self.addresses.len())
    }

    /// Writes the packet, checksum included, at the start of `buf` and returns its length.
    ///
    /// # Errors
    ///
    /// [`PacketError::BufferTooSmall`], [`PacketError::IntervalOutOfRange`],
    /// [`PacketError::VersionMismatch`] (VRRPv2 over IPv6, VRRPv3 with a password),
    /// [`PacketError::TooManyAddresses`] or [`PacketError::FamilyMismatch`].
    pub fn emit(&self, buf: &mut [u8], ctx: &IpContext) -> Result<usize, PacketError> {
        let family = self.addresses.family;
        if ctx.family() != family {
            return Err(PacketError::FamilyMismatch(
                "the IP addresses are not of the advertised addresses' family",
            ));
        }
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| PacketError::TooManyAddresses(self.addresses.len()))?;
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(PacketError::BufferTooSmall {
                needed: len,
                len: buf.len(),
            });
        }
        let mut packet = Packet::new_unchecked(&mut buf[..len], family);
        packet.set_version_type(self.version, TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_addr_count(count);
        match self.version {
            Version::V3 => {
                if self.interval_cs > MAX_V3_INTERVAL_CS {
                    return Err(PacketError::IntervalOutOfRange {
                        version: self.version,
                        interval_cs: self.interval_cs,
                    });
                }
                if self.auth != Auth::None {
                    return Err(PacketError::VersionMismatch {
                        version: self.version,
                        what: "authentication",
                    });
                }
                packet.set_max_adver_int_cs(self.interval_cs);
            }
            Version::V2 => {
                if family != Family::Ipv4 {
                    return Err(PacketError::VersionMismatch {
                        version: self.version,
                        what: "IPv6",
                    });
                }
                let secs = self.interval_cs / 100;
                if self.interval_cs % 100 != 0 || secs > MAX_V2_INTERVAL_S {
                    return Err(PacketError::IntervalOutOfRange {
                        version: self.version,
                        interval_cs: self.interval_cs,
                    });
                }
                packet.set_auth_type(self.auth.type_number());
                packet.set_adver_int_secs(secs as u8);
            }
        }
        packet.set_checksum(0);
        packet
            .address_bytes_mut()
            .copy_from_slice(self.addresses.bytes);
        if self.version == Version::V2 {
            let data = match self.auth {
                Auth::None => [0u8; AUTH_DATA_LEN],
                Auth::Simple(pw) => pw,
            };
            packet.auth_data_mut().copy_from_slice(&data);
        }
        packet.fill_checksum(ctx)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ctx(src: &str, dst: &str) -> IpContext {
        IpContext {
            src: v4(src),
            dst: v4(dst),
            checksum: ChecksumMode::Rfc5798,
        }
    }

    #[test]
    fn v3_round_trip_v4() {
        let vips = AddressList::encode_v4(&["192.0.2.100".parse().unwrap()]);
        let adv = Advertisement {
            version: Version::V3,
            vrid: 101,
            priority: 100,
            interval_cs: 100,
            auth: Auth::None,
            addresses: vips.as_list(),
        };
        let c = ctx("192.0.2.1", "224.0.0.18");
        let mut buf = [0u8; 32];
        let n = adv.emit(&mut buf, &c).unwrap();
        assert_eq!(n, 12);
        assert_eq!(&buf[..6], &[0x31, 101, 100, 1, 0x00, 0x64]);
        assert_eq!(Advertisement::decode(&buf[..n], &c).unwrap(), adv);
    }

    #[test]
    fn v2_with_password_round_trip() {
        let vips = AddressList::encode_v4(&["192.0.2.100".parse().unwrap()]);
        let adv = Advertisement {
            version: Version::V2,
            vrid: 101,
            priority: 50,
            interval_cs: 100,
            auth: Auth::simple(b"123456").unwrap(),
            addresses: vips.as_list(),
        };
        let c = ctx("192.0.2.2", "192.0.2.1");
        let mut buf = [0u8; 32];
        let n = adv.emit(&mut buf, &c).unwrap();
        assert_eq!(n, 20);
        assert_eq!(&buf[..6], &[0x21, 101, 50, 1, 1, 1]);
        assert_eq!(&buf[12..20], b"123456\0\0");
        assert_eq!(Advertisement::decode(&buf[..n], &c).unwrap(), adv);
    }

    #[test]
    fn v3_pseudo_header_matters_unless_v2_style() {
        let vips = AddressList::encode_v4(&["192.0.2.100".parse().unwrap()]);
        let adv = Advertisement {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth: Auth::None,
            addresses: vips.as_list(),
        };
        let rfc = ctx("192.0.2.1", "224.0.0.18");
        let plain = IpContext {
            checksum: ChecksumMode::V3WithoutPseudoHeader,
            ..rfc
        };
        let mut a = [0u8; 12];
        let mut b = [0u8; 12];
        adv.emit(&mut a, &rfc).unwrap();
        adv.emit(&mut b, &plain).unwrap();
        assert_ne!(a, b);
        assert!(matches!(
            Advertisement::decode(&a, &plain),
            Err(PacketError::BadChecksum { .. })
        ));
        assert_eq!(Advertisement::decode(&b, &plain).unwrap(), adv);
        // A different source changes an RFC checksum but not a v2-style one.
        let other = ctx("192.0.2.9", "224.0.0.18");
        assert!(Advertisement::decode(&a, &other).is_err());
        let other_plain = IpContext {
            checksum: ChecksumMode::V3WithoutPseudoHeader,
            ..other
        };
        assert!(Advertisement::decode(&b, &other_plain).is_ok());
    }

    #[test]
    fn v3_ipv6_round_trip() {
        let vips = AddressList::encode_v6(&["2001:db8::100".parse().unwrap()]);
        let adv = Advertisement {
            version: Version::V3,
            vrid: 7,
            priority: 255,
            interval_cs: 5,
            auth: Auth::None,
            addresses: vips.as_list(),
        };
        let c = IpContext {
            src: "fe80::1".parse().unwrap(),
            dst: IpAddr::V6(MULTICAST_V6),
            checksum: ChecksumMode::Rfc5798,
        };
        let mut buf = [0u8; 64];
        let n = adv.emit(&mut buf, &c).unwrap();
        assert_eq!(n, 24);
        assert_eq!(Advertisement::decode(&buf[..n], &c).unwrap(), adv);
    }

    #[test]
    fn errors_are_typed() {
        let c = ctx("192.0.2.1", "224.0.0.18");
        assert_eq!(
            Advertisement::decode(&[0x31, 1, 100], &c),
            Err(PacketError::Truncated { len: 3 })
        );
        assert_eq!(
            Advertisement::decode(&[0x41, 1, 100, 0, 0, 100, 0, 0], &c),
            Err(PacketError::BadVersion(4))
        );
        assert!(matches!(
            Advertisement::decode(&[0x31, 1, 100, 2, 0, 100, 0, 0, 1, 2, 3, 4], &c),
            Err(PacketError::LengthMismatch {
                count: 2,
                len: 12,
                expected: 16
            })
        ));
        // Type 2, with a correct checksum, is still rejected.
        let mut buf = [0x32, 1, 100, 0, 0, 100, 0, 0];
        let mut p = Packet::new_unchecked(&mut buf[..], Family::Ipv4);
        p.fill_checksum(&c).unwrap();
        assert_eq!(
            Advertisement::decode(&buf, &c),
            Err(PacketError::BadType(2))
        );
        // VRRPv2 with AH.
        let mut buf = [0x21, 1, 100, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut p = Packet::new_unchecked(&mut buf[..], Family::Ipv4);
        p.fill_checksum(&c).unwrap();
        assert_eq!(
            Advertisement::decode(&buf, &c),
            Err(PacketError::AuthAhUnsupported)
        );
    }

    #[test]
    fn emit_rejects_what_the_version_cannot_carry() {
        let vips = AddressList::encode_v4(&["192.0.2.100".parse().unwrap()]);
        let mut adv = Advertisement {
            version: Version::V2,
            vrid: 1,
            priority: 100,
            interval_cs: 150,
            auth: Auth::None,
            addresses: vips.as_list(),
        };
        let c = ctx("192.0.2.1", "224.0.0.18");
        let mut buf = [0u8; 64];
        assert!(matches!(
            adv.emit(&mut buf, &c),
            Err(PacketError::IntervalOutOfRange { .. })
        ));
        adv.version = Version::V3;
        adv.interval_cs = 4096;
        assert!(matches!(
            adv.emit(&mut buf, &c),
            Err(PacketError::IntervalOutOfRange { .. })
        ));
        adv.interval_cs = 100;
        adv.auth = Auth::simple(b"x").unwrap();
        assert!(matches!(
            adv.emit(&mut buf, &c),
            Err(PacketError::VersionMismatch { .. })
        ));
        assert!(matches!(
            Auth::simple(b"123456789"),
            Err(PacketError::PasswordTooLong { len: 9 })
        ));
        adv.auth = Auth::None;
        assert!(matches!(
            adv.emit(&mut buf[..4], &c),
            Err(PacketError::BufferTooSmall { needed: 12, len: 4 })
        ));
    }
}
