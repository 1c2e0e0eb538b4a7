//! The protocol's times (RFC 5798 §6.1, RFC 3768 §6.1) and the router's timers.
//!
//! Times are computed in nanoseconds from the centisecond interval, so nothing is ever
//! truncated to whole seconds (or even to centiseconds): Skew_Time for priority 100 and a 1 s
//! interval is 0.609375 s, as keepalived computes it, not 0.60 s.

use core::time::Duration;
use std::time::Instant;

use crate::packet::Version;

const NANOS_PER_CS: u64 = 10_000_000;

/// A centisecond interval as a [`Duration`].
pub const fn centis(cs: u16) -> Duration {
    Duration::from_nanos(cs as u64 * NANOS_PER_CS)
}

/// Skew_Time: how much later than the highest-priority Backup a lower one declares the master
/// down, so that the best Backup wins without a collision.
///
/// VRRPv3: `((256 - Priority) * Master_Adver_Interval) / 256`, the interval in centiseconds.
/// VRRPv2: `(256 - Priority) / 256` seconds, whatever the interval.
pub const fn skew_time(version: Version, priority: u8, master_adver_interval_cs: u16) -> Duration {
    let weight = 256 - priority as u64;
    let nanos = match version {
        Version::V3 => weight * master_adver_interval_cs as u64 * NANOS_PER_CS / 256,
        Version::V2 => weight * 1_000_000_000 / 256,
    };
    Duration::from_nanos(nanos)
}

/// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time`, after which a Backup that
/// heard nothing takes over.
pub const fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval_cs: u16,
) -> Duration {
    let three = Duration::from_nanos(3 * master_adver_interval_cs as u64 * NANOS_PER_CS);
    three.saturating_add(skew_time(version, priority, master_adver_interval_cs))
}

/// The next deadline of a periodic timer that was due at `due` and runs at `now`: one period
/// after `due`, so that late wake-ups do not add up to drift, unless that is already past
/// (the driver stalled for a period or more): then one period after `now`, so a stall ends
/// with one event, not a burst of the ones missed.
pub(crate) fn next_period(due: Instant, now: Instant, period: Duration) -> Instant {
    let next = due + period;
    if next > now {
        next
    } else {
        now + period
    }
}

/// The router's timers; `None` when stopped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    /// Master_Down_Timer (Backup).
    pub(crate) master_down: Option<Instant>,
    /// Adver_Timer (Master).
    pub(crate) adver: Option<Instant>,
    /// The end of `preempt_delay` (Backup hearing a lower-priority master).
    pub(crate) preempt: Option<Instant>,
    /// The second announcement burst (Master).
    pub(crate) garp_delay: Option<Instant>,
    /// The next refresh announcement (Master).
    pub(crate) garp_refresh: Option<Instant>,
    /// The burst owed to another Master heard within an advert interval of the last one
    /// (Master).
    pub(crate) garp_lower_prio: Option<Instant>,
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    MasterDown,
    Adver,
    Preempt,
    GarpDelay,
    GarpRefresh,
    GarpLowerPrio,
}

impl Timers {
    fn all(&self) -> [(Timer, Option<Instant>); 6] {
        [
            (Timer::MasterDown, self.master_down),
            (Timer::Adver, self.adver),
            (Timer::Preempt, self.preempt),
            (Timer::GarpDelay, self.garp_delay),
            (Timer::GarpRefresh, self.garp_refresh),
            (Timer::GarpLowerPrio, self.garp_lower_prio),
        ]
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.all().iter().filter_map(|(_, t)| *t).min()
    }

    /// The earliest timer due at `now` and its deadline, cleared; the caller acts on it.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<(Timer, Instant)> {
        let due = self
            .all()
            .into_iter()
            .filter_map(|(k, t)| t.filter(|t| *t <= now).map(|t| (k, t)))
            .min_by_key(|(_, t)| *t)?;
        *self.slot(due.0) = None;
        Some(due)
    }

    fn slot(&mut self, timer: Timer) -> &mut Option<Instant> {
        match timer {
            Timer::MasterDown => &mut self.master_down,
            Timer::Adver => &mut self.adver,
            Timer::Preempt => &mut self.preempt,
            Timer::GarpDelay => &mut self.garp_delay,
            Timer::GarpRefresh => &mut self.garp_refresh,
            Timer::GarpLowerPrio => &mut self.garp_lower_prio,
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Timers::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_times_to_the_nanosecond() {
        // (256-100)*100/256 cs = 60.9375 cs.
        assert_eq!(
            skew_time(Version::V3, 100, 100),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, 100),
            Duration::from_micros(3_609_375)
        );
        // A 20 ms interval keeps its sub-second skew.
        assert_eq!(
            master_down_interval(Version::V3, 200, 2),
            Duration::from_nanos(60_000_000 + 56 * 2 * 10_000_000 / 256)
        );
        assert_eq!(
            skew_time(Version::V3, 255, 100),
            Duration::from_nanos(3_906_250)
        );
    }

    #[test]
    fn v2_skew_ignores_interval() {
        assert_eq!(
            skew_time(Version::V2, 50, 100),
            Duration::from_nanos(206 * 1_000_000_000 / 256)
        );
        assert_eq!(
            skew_time(Version::V2, 50, 100),
            skew_time(Version::V2, 50, 300)
        );
        assert_eq!(
            master_down_interval(Version::V2, 50, 300),
            Duration::from_secs(9) + Duration::from_nanos(804_687_500)
        );
    }

    #[test]
    fn periods_follow_the_schedule_unless_a_whole_period_was_missed() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        // Woken 3 ms late: the next one stays on the schedule.
        assert_eq!(
            next_period(t0, t0 + Duration::from_millis(3), p),
            t0 + Duration::from_millis(10)
        );
        // Stalled 2 s: one period from now, not 200 catching up.
        let late = t0 + Duration::from_secs(2);
        assert_eq!(next_period(t0, late, p), late + p);
        assert_eq!(next_period(t0, t0 + p, p), t0 + p + p);
    }

    #[test]
    fn due_timers_come_earliest_first() {
        let t0 = Instant::now();
        let mut timers = Timers {
            adver: Some(t0 + Duration::from_secs(2)),
            garp_delay: Some(t0 + Duration::from_secs(1)),
            ..Timers::default()
        };
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.take_due(t0), None);
        let later = t0 + Duration::from_secs(3);
        assert_eq!(
            timers.take_due(later),
            Some((Timer::GarpDelay, t0 + Duration::from_secs(1)))
        );
        assert_eq!(
            timers.take_due(later),
            Some((Timer::Adver, t0 + Duration::from_secs(2)))
        );
        assert_eq!(timers.take_due(later), None);
        assert_eq!(timers.next(), None);
    }
}
