//! Backend selection: the public trait users implement, and the built-in algorithms.
//!
//! A [`Selector`] is told about membership: every time the set of eligible backends of a tier
//! (primaries or backups), their weights or states change, [`Selector::prepare`] is called with
//! the new members and returns a [`Picker`]. The picker is immutable apart from what it chooses
//! to keep in atomics or its own locks, and lives in the pool's lock-free snapshot, so the
//! per-connection path never waits on the control plane.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::backend::Backend;

mod least_conn;
mod maglev;
mod p2c;
mod random;
mod round_robin;
mod weights;

pub use least_conn::LeastConn;
pub use maglev::{Maglev, DEFAULT_MAGLEV_TABLE_SIZE};
pub use p2c::PowerOfTwo;
pub use random::Random;
pub use round_robin::RoundRobin;

/// A load-balancing algorithm. Implement it in your own crate to plug in your own policy.
pub trait Selector: Send + Sync + 'static {
    /// A short name for logs and stats.
    fn name(&self) -> &str;

    /// The membership hook: called with the backends of one tier each time membership, weights
    /// or states change (and once at start). `members` holds only backends whose state is up and
    /// whose weight is above 0; the returned picker serves that tier until the next change.
    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker>;
}

/// Chooses one backend per new connection, from the members given to [`Selector::prepare`].
pub trait Picker: Send + Sync + 'static {
    /// The index into `ctx.members()` of the backend to try, or `None` if none is available.
    ///
    /// It should return only indexes for which [`PickContext::is_available`] is true: backends
    /// may be ejected, full or already tried by this connection since `prepare`.
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize>;
}

/// What a picker knows about the connection to place.
pub struct PickContext<'a> {
    client: SocketAddr,
    members: &'a [Arc<Backend>],
    excluded: &'a [u64],
}

impl fmt::Debug for PickContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PickContext")
            .field("client", &self.client)
            .field("members", &self.members.len())
            .field("excluded", &self.excluded)
            .finish()
    }
}

impl<'a> PickContext<'a> {
    /// A context for `client` over `members`, with backends whose [`Backend::id`] is in
    /// `excluded` (already failed for this connection) treated as unavailable.
    pub fn new(client: SocketAddr, members: &'a [Arc<Backend>], excluded: &'a [u64]) -> Self {
        PickContext {
            client,
            members,
            excluded,
        }
    }

    /// The client's address.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// The tier's members, in the order given to `prepare`.
    pub fn members(&self) -> &'a [Arc<Backend>] {
        self.members
    }

    /// Whether member `index` may take this connection: up, not ejected, below its limit and
    /// not already tried by this connection.
    pub fn is_available(&self, index: usize) -> bool {
        match self.members.get(index) {
            Some(b) => b.is_available() && !self.excluded.contains(&b.id()),
            None => false,
        }
    }

    /// A stable 64-bit hash of the client's IP address (not its port): the key of
    /// source-address hashing.
    pub fn client_ip_hash(&self) -> u64 {
        hash_ip(self.client.ip())
    }

    /// The first available member at or after `start`, wrapping around; the fallback for
    /// pickers whose first choice is not available.
    pub fn first_available_from(&self, start: usize) -> Option<usize> {
        let n = self.members.len();
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.is_available(i))
    }
}

/// The algorithm of a pool: a built-in by name, or your own selector.
#[derive(Clone, Default)]
pub enum Algorithm {
    /// Smooth weighted round robin, as nginx's default.
    #[default]
    RoundRobin,
    /// Fewest active connections relative to weight; ties broken at random by weight.
    LeastConn,
    /// Power of two choices: two backends drawn by weight, the less loaded one wins.
    PowerOfTwo,
    /// Drawn at random in proportion to weight.
    Random,
    /// Source-address consistent hashing with a Maglev table of this (prime) size.
    Maglev {
        /// Table size, a prime well above the number of backends; 65537 by default.
        table_size: usize,
    },
    /// A selector of your own.
    Custom(Arc<dyn Selector>),
}

impl fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::RoundRobin => f.write_str("RoundRobin"),
            Algorithm::LeastConn => f.write_str("LeastConn"),
            Algorithm::PowerOfTwo => f.write_str("PowerOfTwo"),
            Algorithm::Random => f.write_str("Random"),
            Algorithm::Maglev { table_size } => write!(f, "Maglev({table_size})"),
            Algorithm::Custom(s) => write!(f, "Custom({})", s.name()),
        }
    }
}

impl Algorithm {
    /// Maglev with the default table size.
    pub fn maglev() -> Self {
        Algorithm::Maglev {
            table_size: DEFAULT_MAGLEV_TABLE_SIZE,
        }
    }

    /// The selector that implements it.
    pub fn selector(&self) -> Result<Arc<dyn Selector>, crate::Error> {
        Ok(match self {
            Algorithm::RoundRobin => Arc::new(RoundRobin),
            Algorithm::LeastConn => Arc::new(LeastConn),
            Algorithm::PowerOfTwo => Arc::new(PowerOfTwo),
            Algorithm::Random => Arc::new(Random),
            Algorithm::Maglev { table_size } => Arc::new(Maglev::new(*table_size)?),
            Algorithm::Custom(s) => Arc::clone(s),
        })
    }
}

/// 64-bit FNV-1a followed by a strong finaliser: stable across runs and releases, which
/// consistent hashing needs (std's hasher may change between Rust versions).
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// splitmix64's finaliser.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash_ip(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => stable_hash(&v4.octets()),
        IpAddr::V6(v6) => stable_hash(&v6.octets()),
    }
}
