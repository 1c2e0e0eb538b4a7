//! `[instances.NAME.garp]`: gratuitous ARP (IPv4) and unsolicited neighbour advertisements
//! (IPv6) sent when an instance becomes Master. Defaults are keepalived's.

use serde::{Deserialize, Serialize};

/// Default pause before the second burst after becoming Master (keepalived: 5 s).
pub const DEFAULT_MASTER_DELAY_MS: u64 = 5000;
/// Default number of announcements per burst (keepalived: 5).
pub const DEFAULT_MASTER_REPEAT: u32 = 5;

/// Announcement settings of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Garp {
    /// Pause before the second burst after becoming Master, ms; 0 = no second burst.
    /// Default 5000.
    #[serde(default = "default_master_delay_ms")]
    pub master_delay_ms: u64,
    /// Announcements per burst on becoming Master, 1..=255. Default 5.
    #[serde(default = "default_master_repeat")]
    pub master_repeat: u32,
    /// Re-announce every this many ms while Master; 0 = never. Default 0.
    #[serde(default)]
    pub master_refresh_ms: u64,
    /// Announcements per refresh, 1..=255. Default 1.
    #[serde(default = "default_one")]
    pub master_refresh_repeat: u32,
    /// A second burst this long after the one sent on hearing a lower priority while Master,
    /// ms; 0 = none. Default 5000.
    #[serde(default = "default_master_delay_ms")]
    pub lower_prio_delay_ms: u64,
    /// Announcements sent at once when, as Master, an advert of another Master is heard (lower
    /// or equal priority, or priority 0; at most one burst per advert interval, and one more
    /// at its end if another came within it), 0..=255; 0 = none. Default 5.
    #[serde(default = "default_master_repeat")]
    pub lower_prio_repeat: u32,
    /// Minimum gap between two gratuitous ARPs on the interface, ms. Default 0.
    #[serde(default)]
    pub interval_ms: u64,
    /// Minimum gap between two unsolicited neighbour advertisements on the interface, ms.
    /// Default 0.
    #[serde(default)]
    pub gna_interval_ms: u64,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay_ms: DEFAULT_MASTER_DELAY_MS,
            master_repeat: DEFAULT_MASTER_REPEAT,
            master_refresh_ms: 0,
            master_refresh_repeat: 1,
            lower_prio_delay_ms: DEFAULT_MASTER_DELAY_MS,
            lower_prio_repeat: DEFAULT_MASTER_REPEAT,
            interval_ms: 0,
            gna_interval_ms: 0,
        }
    }
}

impl Garp {
    /// `true` when every setting is the default, so the table need not be written out.
    pub fn is_default(&self) -> bool {
        *self == Garp::default()
    }
}

fn default_master_delay_ms() -> u64 {
    DEFAULT_MASTER_DELAY_MS
}

fn default_master_repeat() -> u32 {
    DEFAULT_MASTER_REPEAT
}

fn default_one() -> u32 {
    1
}
