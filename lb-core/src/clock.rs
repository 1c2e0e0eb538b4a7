//! A coarse monotonic clock in milliseconds, so backend state fits in one atomic.

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the first call in this process, starting at 1 so 0 can mean "never".
pub(crate) fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}
