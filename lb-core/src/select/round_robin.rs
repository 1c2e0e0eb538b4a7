//! Smooth weighted round robin, as in nginx (`ngx_http_upstream_get_peer`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{PickContext, Picker, Selector};
use crate::backend::Backend;

/// Smooth weighted round robin: with weights 5, 1, 1 it yields a a b a c a a, spreading the
/// heavy backend's turns instead of bunching them.
///
/// Small pools (under 16 members) run nginx's algorithm live, O(n) per pick: unavailable
/// backends are skipped and their turns spread over the others, as nginx does. Larger pools
/// use the same sequence computed once per membership change and walked by an atomic cursor,
/// O(1) per pick and lock-free; an unavailable backend's turn then goes to the next one in the
/// sequence. Pools whose reduced weights sum above 2^16 use the live algorithm.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundRobin;

impl Selector for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        let weights: Vec<i64> = members.iter().map(|b| i64::from(b.weight())).collect();
        if members.len() >= SCHEDULE_MIN_MEMBERS {
            if let Some(schedule) = schedule(&weights) {
                return Box::new(SchedulePicker {
                    schedule,
                    cursor: AtomicUsize::new(0),
                });
            }
        }
        Box::new(RoundRobinPicker {
            current: Mutex::new(vec![0; members.len()]),
            weights,
        })
    }
}

/// Pools from this size on use the precomputed sequence.
const SCHEDULE_MIN_MEMBERS: usize = 16;
/// Longest sequence precomputed (after dividing weights by their GCD).
const SCHEDULE_MAX_LEN: i64 = 1 << 16;

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One full cycle of nginx's sequence (length = sum of weights / their GCD), or `None` if too
/// long.
fn schedule(weights: &[i64]) -> Option<Vec<u32>> {
    let g = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    if g == 0 {
        return None;
    }
    let reduced: Vec<i64> = weights.iter().map(|w| w / g).collect();
    let total: i64 = reduced.iter().sum();
    if total > SCHEDULE_MAX_LEN {
        return None;
    }
    let mut current = vec![0i64; reduced.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best: Option<(usize, i64)> = None;
        for (i, (c, &w)) in current.iter_mut().zip(&reduced).enumerate() {
            if w == 0 {
                continue;
            }
            *c += w;
            // Strictly greater: the first of equals wins, as in nginx.
            if best.is_none_or(|(_, v)| *c > v) {
                best = Some((i, *c));
            }
        }
        let (i, _) = best?;
        current[i] -= total;
        out.push(i as u32);
    }
    Some(out)
}

struct SchedulePicker {
    schedule: Vec<u32>,
    cursor: AtomicUsize,
}

impl Picker for SchedulePicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let len = self.schedule.len();
        if len == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % len;
        // Walk on past unavailable members; a bounded walk, then a scan.
        let probes = len.min(ctx.members().len() * 2);
        for k in 0..probes {
            let i = self.schedule[(start + k) % len] as usize;
            if ctx.is_available(i) {
                return Some(i);
            }
        }
        ctx.first_available_from(self.schedule[start] as usize)
    }
}

struct RoundRobinPicker {
    weights: Vec<i64>,
    /// nginx's `current_weight` per member. The lock is held for one O(n) pass; the algorithm
    /// is sequential by nature (each choice depends on the previous ones).
    current: Mutex<Vec<i64>>,
}

impl Picker for RoundRobinPicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let mut current = match self.current.lock() {
            Ok(g) => g,
            // A panic elsewhere cannot leave the weights invalid, only stale: carry on.
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, (&w, cur)) in self.weights.iter().zip(current.iter_mut()).enumerate() {
            if !ctx.is_available(i) {
                continue;
            }
            *cur += w;
            total += w;
            if best.is_none_or(|(_, v)| *cur > v) {
                best = Some((i, *cur));
            }
        }
        let (i, _) = best?;
        if let Some(c) = current.get_mut(i) {
            *c -= total;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendConfig;

    #[test]
    fn nginx_sequence_for_5_1_1() {
        let members: Vec<Arc<Backend>> = [5, 1, 1]
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let addr = format!("127.0.0.1:{}", 1000 + i).parse().unwrap();
                Arc::new(Backend::new(i as u64, &BackendConfig::new(addr).weight(w)))
            })
            .collect();
        let picker = RoundRobin.prepare(&members);
        let client = "127.0.0.1:1".parse().unwrap();
        let ctx = PickContext::new(client, &members, &[]);
        let seq: Vec<usize> = (0..7).map(|_| picker.pick(&ctx).unwrap()).collect();
        // nginx's documented order for weights 5, 1, 1: a a b a c a a.
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn large_pools_follow_the_same_sequence_without_the_lock() {
        let members: Vec<Arc<Backend>> = (0..40u32)
            .map(|i| {
                let addr = format!("127.0.0.1:{}", 2000 + i).parse().unwrap();
                let w = 2 * (1 + i % 7);
                Arc::new(Backend::new(
                    u64::from(i),
                    &BackendConfig::new(addr).weight(w),
                ))
            })
            .collect();
        let fast = RoundRobin.prepare(&members);
        let weights: Vec<i64> = members.iter().map(|b| i64::from(b.weight())).collect();
        let live = RoundRobinPicker {
            current: Mutex::new(vec![0; members.len()]),
            weights,
        };
        let client = "127.0.0.1:1".parse().unwrap();
        let ctx = PickContext::new(client, &members, &[]);
        // Weights share a factor 2: the cycle is the reduced sum, and repeats exactly.
        let cycle: usize = (0..40).map(|i| 1 + i % 7).sum();
        for _ in 0..cycle * 3 {
            assert_eq!(fast.pick(&ctx), live.pick(&ctx));
        }
        // An unavailable member's turns go to others.
        let excluded = [members[3].id()];
        let ctx = PickContext::new(client, &members, &excluded);
        assert!((0..cycle).all(|_| fast.pick(&ctx) != Some(3)));
    }
}
