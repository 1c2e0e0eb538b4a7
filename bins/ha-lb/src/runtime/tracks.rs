//! What an instance tracks, as the runtime names it: each tracked check, pool or interface of
//! the configuration becomes one vrrp-core [`TrackId`] with keepalived's weight semantics
//! (negative: lowers the priority while down; positive: raises it while up; 0: Fault while
//! down).

use vrrp_core::{Track, TrackId};

use crate::config::Instance;

/// The thing behind one tracked object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrackSource {
    /// A `[checks.NAME]` with its own address (or exec/process): up unless its monitor says down.
    Check(String),
    /// A `[pools.NAME]`: up while at least one backend is healthy.
    Pool(String),
    /// An interface: up while its link is up with carrier.
    Interface(String),
    /// A sync group (weight 0): down while another member is in Fault for a cause of its
    /// own, so that the whole group goes to Fault together, as keepalived's `vrrp_sync_group`.
    SyncGroup(String),
    /// A health signal of a program that embeds the driver ([`crate::failover`]).
    External(String),
}

impl std::fmt::Display for TrackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackSource::Check(n) => write!(f, "check {n}"),
            TrackSource::Pool(n) => write!(f, "pool {n}"),
            TrackSource::Interface(n) => write!(f, "interface {n}"),
            TrackSource::SyncGroup(n) => write!(f, "sync group {n}"),
            TrackSource::External(n) => write!(f, "{n}"),
        }
    }
}

/// One tracked object of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// The id given to vrrp-core.
    pub id: TrackId,
    /// What it follows.
    pub source: TrackSource,
    /// keepalived's weight.
    pub weight: i16,
}

/// The tracked objects of an instance, numbered in configuration order, then its sync group
/// (if any) with weight 0.
pub fn tracked(instance: &Instance, sync_group: Option<&str>) -> Vec<Tracked> {
    let checks = instance
        .track_checks
        .iter()
        .map(|t| (TrackSource::Check(t.check.clone()), t.weight));
    let pools = instance
        .track_pools
        .iter()
        .map(|t| (TrackSource::Pool(t.pool.clone()), t.weight));
    let interfaces = instance
        .track_interfaces
        .iter()
        .map(|t| (TrackSource::Interface(t.interface.clone()), t.weight));
    let group = sync_group.map(|g| (TrackSource::SyncGroup(g.to_owned()), 0));
    checks
        .chain(pools)
        .chain(interfaces)
        .chain(group)
        .zip(1u32..)
        .map(|((source, weight), id)| Tracked {
            id: TrackId(id),
            source,
            // Validation bounds weights to -253..=253.
            weight: i16::try_from(weight.clamp(-253, 253)).unwrap_or(0),
        })
        .collect()
}

/// The vrrp-core tracks, each starting in the state `is_up` gives.
pub fn router_tracks(tracked: &[Tracked], is_up: impl Fn(&TrackSource) -> bool) -> Vec<Track> {
    tracked
        .iter()
        .map(|t| Track::new(t.id, t.weight).starting(is_up(&t.source)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_in_order_with_weights() {
        let text = r#"
            interface = "eth0"
            vrid = 1
            vips = ["192.0.2.100/24"]
            track_checks = [{ check = "api", weight = -10 }]
            track_pools = [{ pool = "web", weight = -60 }]
            track_interfaces = [{ interface = "eth1" }]
        "#;
        let instance: Instance = toml::from_str(text).unwrap();
        let t = tracked(&instance, Some("g"));
        assert_eq!(t.len(), 4);
        assert_eq!(
            (&t[3].source, t[3].weight),
            (&TrackSource::SyncGroup("g".into()), 0)
        );
        assert_eq!(t[0].source, TrackSource::Check("api".into()));
        assert_eq!((t[1].id, t[1].weight), (TrackId(2), -60));
        assert_eq!((t[2].id, t[2].weight), (TrackId(3), 0));
        let tracks = router_tracks(&t, |s| !matches!(s, TrackSource::Pool(_)));
        assert!(tracks[0].up && !tracks[1].up && tracks[2].up);
    }
}
