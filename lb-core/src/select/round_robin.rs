//! Smooth weighted round robin, as in nginx (`ngx_http_upstream_get_peer`), served lock-free
//! from a sequence computed once per snapshot.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{mix64, PickContext, Picker, Selector};
use crate::backend::Backend;

/// Smooth weighted round robin: with weights 5, 1, 1 it yields a a b a c a a, spreading the
/// heavy backend's turns instead of bunching them.
///
/// The per-connection path takes no lock at any pool size. [`Selector::prepare`] runs on every
/// change of membership, weight or state (down, drain, maintenance), over the backends eligible
/// then, and computes one full cycle of nginx's sequence for them; a pick is one atomic
/// increment of a cursor into that cycle. So while the pool is unchanged the picks are exactly
/// nginx's, in nginx's order, and every backend gets exactly its weight's share of each cycle,
/// however many threads pick concurrently (the cursor hands out each turn once). A backend that
/// goes down or is drained leaves the next snapshot, and the others share the cycle in exact
/// proportion to their weights, as nginx's live skip gives over a cycle.
///
/// Exclusions that do not change the snapshot (a backend at its connection limit, taken out for
/// a while by passive health, or already tried by this connection) are handled at pick time: a
/// turn that falls on such a backend is dropped and the pick takes the next turn from the
/// shared cursor, so the other backends keep their exact shares; after a few dropped turns in a
/// row (a heavy backend's run) it draws turns at pseudo-random positions of the cycle instead,
/// which land on each backend in proportion to its weight, and finally draws among the
/// available members by weight in one scan. Those fallbacks are proportional on average, not
/// exact.
///
/// Memory: the cycle is the sum of the weights divided by their greatest common divisor. Above
/// 2^16 turns the weights are scaled down to a 2^16-turn cycle (largest remainders, and at
/// least one turn for every backend), so memory stays at 4 bytes × max(2^16, backends) per tier
/// and each backend's share is within 1/65,536 of its exact share (a backend whose exact share
/// is below that gets one turn per cycle).
///
/// Building the cycle runs on the control plane. nginx's loop costs O(turns × backends); up to
/// 2^24 of those steps (about 15 ms) it is used as is. Beyond (thousands of backends), the
/// cycle is built in O(turns × log backends) instead: backend `i`'s `k`-th turn is placed at
/// (2k + 1) / 2w_i of the cycle, and turns are taken in that order (ties by position). Each
/// backend still gets exactly its weight's turns per cycle, evenly spread, but the order is
/// not nginx's turn for turn.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundRobin;

impl Selector for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        let weights: Vec<u64> = members.iter().map(|b| u64::from(b.weight())).collect();
        Box::new(SchedulePicker {
            schedule: schedule(&cycle_weights(&weights)),
            cursor: AtomicUsize::new(0),
        })
    }
}

/// Longest cycle kept, in turns (4 bytes each).
const MAX_CYCLE: u64 = 1 << 16;
/// Turns taken from the shared cursor before falling back to random positions.
const CURSOR_TRIES: usize = 8;
/// Random positions probed before scanning the members.
const RANDOM_TRIES: u64 = 8;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The weights of one cycle: divided by their GCD, then scaled down to [`MAX_CYCLE`] turns if
/// still above it. Zero weights stay zero.
fn cycle_weights(weights: &[u64]) -> Vec<u64> {
    let g = weights.iter().copied().fold(0, gcd);
    if g == 0 {
        return weights.to_vec();
    }
    let reduced: Vec<u64> = weights.iter().map(|w| w / g).collect();
    // At most 2^32 × members: no overflow in u128 below.
    let total: u128 = reduced.iter().map(|&w| u128::from(w)).sum();
    if total <= u128::from(MAX_CYCLE) {
        return reduced;
    }
    // Largest-remainder apportionment of MAX_CYCLE turns, each positive weight kept at ≥ 1.
    let target = u128::from(MAX_CYCLE);
    let mut scaled = Vec::with_capacity(reduced.len());
    let mut remainders = Vec::with_capacity(reduced.len());
    let mut given: u128 = 0;
    for (i, &w) in reduced.iter().enumerate() {
        let exact = u128::from(w) * target;
        let floor = exact / total;
        let turns = if w > 0 { floor.max(1) } else { 0 };
        given += turns;
        scaled.push(turns as u64);
        if w > 0 && floor >= 1 {
            remainders.push((exact % total, i));
        }
    }
    if given < target {
        // Largest remainders first; equal ones by position, so the result is deterministic.
        remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in remainders.iter().take((target - given) as usize) {
            scaled[i] += 1;
        }
    }
    let g = scaled.iter().copied().fold(0, gcd);
    scaled.iter().map(|w| w / g.max(1)).collect()
}

/// Most steps of nginx's O(turns × backends) loop spent building one cycle.
const MAX_NGINX_STEPS: u128 = 1 << 24;

/// One full cycle over `weights` (length: their sum): nginx's sequence when it is cheap enough
/// to compute, else the evenly spread one.
fn schedule(weights: &[u64]) -> Vec<u32> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total * weights.len() as u128 <= MAX_NGINX_STEPS {
        nginx_schedule(weights)
    } else {
        spread_schedule(weights)
    }
}

/// A turn of [`spread_schedule`]: backend `i`'s turn at (2k + 1) / 2w of the cycle, kept as
/// the fraction `num / den` so that comparisons are exact.
#[derive(PartialEq, Eq)]
struct Turn {
    num: u64,
    den: u64,
    i: u32,
}

impl Ord for Turn {
    /// Reversed, so that [`BinaryHeap`] pops the earliest turn (then the lowest position).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = u128::from(self.num) * u128::from(other.den);
        let b = u128::from(other.num) * u128::from(self.den);
        b.cmp(&a).then(other.i.cmp(&self.i))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One cycle with every backend's turns evenly spread, in O(turns × log backends).
fn spread_schedule(weights: &[u64]) -> Vec<u32> {
    let total: u64 = weights.iter().sum();
    let mut heap: BinaryHeap<Turn> = weights
        .iter()
        .enumerate()
        .filter(|(_, &w)| w > 0)
        .map(|(i, &w)| Turn {
            num: 1,
            den: 2 * w,
            i: i as u32,
        })
        .collect();
    let mut out = Vec::with_capacity(total as usize);
    while let Some(t) = heap.pop() {
        out.push(t.i);
        // The next turn, if this backend has one left in the cycle: (2k + 1) < 2w.
        if t.num + 2 < t.den {
            heap.push(Turn {
                num: t.num + 2,
                ..t
            });
        }
    }
    out
}

/// One full cycle of nginx's smooth weighted round robin over `weights` (length: their sum).
fn nginx_schedule(weights: &[u64]) -> Vec<u32> {
    let total: u64 = weights.iter().sum();
    let total_i = total as i64;
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best: Option<(usize, i64)> = None;
        for (i, (c, &w)) in current.iter_mut().zip(weights).enumerate() {
            if w == 0 {
                continue;
            }
            *c += w as i64;
            // Strictly greater: the first of equals wins, as in nginx.
            if best.is_none_or(|(_, v)| *c > v) {
                best = Some((i, *c));
            }
        }
        let Some((i, _)) = best else { break };
        current[i] -= total_i;
        out.push(i as u32);
    }
    out
}

/// A cycle of turns and the shared cursor into it.
struct SchedulePicker {
    schedule: Vec<u32>,
    /// The next turn. It wraps at `usize::MAX`, which on 32-bit targets breaks one cycle every
    /// 2^32 picks; nothing else depends on it.
    cursor: AtomicUsize,
}

impl Picker for SchedulePicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let len = self.schedule.len();
        if len == 0 {
            return None;
        }
        let turn = |t: usize| self.schedule[t % len] as usize;
        let mut last = 0;
        for _ in 0..CURSOR_TRIES {
            last = self.cursor.fetch_add(1, Ordering::Relaxed);
            let i = turn(last);
            if ctx.is_available(i) {
                return Some(i);
            }
        }
        // A long run of unavailable turns: a uniformly drawn turn lands on each backend in
        // proportion to its weight, so the others still share in proportion.
        let seed = mix64(last as u64);
        for k in 0..RANDOM_TRIES {
            let r = mix64(seed.wrapping_add(k));
            let i = turn((r % len as u64) as usize);
            if ctx.is_available(i) {
                return Some(i);
            }
        }
        weighted_scan(ctx, seed)
    }
}

/// One pass over the members keeping each available one with probability weight / (weight of
/// the available ones seen so far): a draw in proportion to weight among the available ones.
fn weighted_scan(ctx: &PickContext<'_>, seed: u64) -> Option<usize> {
    let mut seen = 0u64;
    let mut chosen = None;
    for (i, b) in ctx.members().iter().enumerate() {
        if !ctx.is_available(i) {
            continue;
        }
        let w = u64::from(b.weight()).max(1);
        seen += w;
        if mix64(seed ^ i as u64) % seen < w {
            chosen = Some(i);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendConfig;

    fn members(weights: &[u32]) -> Vec<Arc<Backend>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let addr = format!("127.0.0.1:{}", 1000 + i).parse().unwrap();
                Arc::new(Backend::new(i as u64, &BackendConfig::new(addr).weight(w)))
            })
            .collect()
    }

    /// nginx's algorithm run live, as the reference.
    fn nginx(weights: &[i64], current: &mut [i64], available: impl Fn(usize) -> bool) -> usize {
        let mut total = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, (&w, c)) in weights.iter().zip(current.iter_mut()).enumerate() {
            if !available(i) {
                continue;
            }
            *c += w;
            total += w;
            if best.is_none_or(|(_, v)| *c > v) {
                best = Some((i, *c));
            }
        }
        let (i, _) = best.unwrap();
        current[i] -= total;
        i
    }

    fn counts(picks: impl IntoIterator<Item = usize>, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for i in picks {
            c[i] += 1;
        }
        c
    }

    #[test]
    fn nginx_sequence_for_5_1_1() {
        let members = members(&[5, 1, 1]);
        let picker = RoundRobin.prepare(&members);
        let client = "127.0.0.1:1".parse().unwrap();
        let ctx = PickContext::new(client, &members, &[]);
        let seq: Vec<usize> = (0..14).map(|_| picker.pick(&ctx).unwrap()).collect();
        // nginx's documented order for weights 5, 1, 1: a a b a c a a, and again.
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn follows_nginx_live_for_small_and_large_pools() {
        for n in [2u32, 3, 7, 15, 16, 40] {
            let ws: Vec<u32> = (0..n).map(|i| 2 * (1 + i % 7)).collect();
            let members = members(&ws);
            let picker = RoundRobin.prepare(&members);
            let weights: Vec<i64> = ws.iter().map(|&w| i64::from(w)).collect();
            let mut current = vec![0; ws.len()];
            let client = "127.0.0.1:1".parse().unwrap();
            let ctx = PickContext::new(client, &members, &[]);
            // Weights share a factor 2: the cycle is the reduced sum, and repeats exactly.
            let cycle: usize = ws.iter().map(|&w| w as usize / 2).sum();
            for _ in 0..cycle * 3 {
                assert_eq!(
                    picker.pick(&ctx),
                    Some(nginx(&weights, &mut current, |_| true))
                );
            }
        }
    }

    #[test]
    fn distribution_follows_weights() {
        let members = members(&[1, 2, 3, 4]);
        let picker = RoundRobin.prepare(&members);
        let client = "127.0.0.1:1".parse().unwrap();
        let ctx = PickContext::new(client, &members, &[]);
        let c = counts((0..10_000).map(|_| picker.pick(&ctx).unwrap()), 4);
        // 10,000 is a whole number of cycles of 10: exact.
        assert_eq!(c, vec![1000, 2000, 3000, 4000]);
    }

    #[test]
    fn a_member_down_leaves_the_others_their_exact_ratio() {
        // The pool rebuilds the picker when a state changes, over the eligible members only.
        let p = crate::Pool::new(crate::PoolConfig::new(
            "p",
            vec![
                BackendConfig::new("127.0.0.1:1001".parse().unwrap()).weight(3),
                BackendConfig::new("127.0.0.1:1002".parse().unwrap()).weight(2),
                BackendConfig::new("127.0.0.1:1003".parse().unwrap()).weight(5),
            ],
        ))
        .unwrap();
        p.set_state("127.0.0.1:1003".parse().unwrap(), crate::BackendState::Down)
            .unwrap();
        let client = "127.0.0.1:1".parse().unwrap();
        let mut c = [0usize; 3];
        // Two whole cycles of the 3 + 2 weights left.
        for _ in 0..10 {
            let b = p.load().select(client, &[]).unwrap();
            c[(b.addr().port() - 1001) as usize] += 1;
            b.release();
        }
        assert_eq!(c, [6, 4, 0]);
        // And in nginx's order for 3, 2: a b a b a.
        let seq: Vec<u16> = (0..5)
            .map(|_| {
                let b = p.load().select(client, &[]).unwrap();
                b.release();
                b.addr().port() - 1001
            })
            .collect();
        assert_eq!(seq, vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn a_full_member_leaves_the_others_their_exact_ratio() {
        // Weights 4, 2, 1: member 0 at its limit; its turns are dropped, the others keep 2:1.
        let mut members = members(&[4, 2, 1]);
        let addr = members[0].addr();
        members[0] = Arc::new(Backend::new(
            0,
            &BackendConfig::new(addr).weight(4).max_connections(1),
        ));
        assert!(members[0].try_acquire());
        let picker = RoundRobin.prepare(&members);
        let client = "127.0.0.1:1".parse().unwrap();
        let ctx = PickContext::new(client, &members, &[]);
        // 3 picks use one cycle of 7 turns: 300 picks are 100 cycles.
        let c = counts((0..300).map(|_| picker.pick(&ctx).unwrap()), 3);
        assert_eq!(c, vec![0, 200, 100]);
    }

    #[test]
    fn excluded_and_unavailable_members_are_never_picked() {
        let members = members(&[1000, 1, 1]);
        let picker = RoundRobin.prepare(&members);
        let client = "127.0.0.1:1".parse().unwrap();
        // A heavy member excluded: its long runs fall back to random turns, then a weighted scan.
        let excluded = [members[0].id()];
        let ctx = PickContext::new(client, &members, &excluded);
        let c = counts((0..2000).map(|_| picker.pick(&ctx).unwrap()), 3);
        assert_eq!(c[0], 0);
        // The light two still share about evenly.
        assert!(c[1] > 600 && c[2] > 600, "{c:?}");
        let all: Vec<u64> = members.iter().map(|b| b.id()).collect();
        let ctx = PickContext::new(client, &members, &all);
        assert_eq!(picker.pick(&ctx), None);
    }

    #[test]
    fn concurrent_picks_are_exact_over_whole_cycles() {
        let members = Arc::new(members(&[5, 3, 1, 1]));
        let picker: Arc<dyn Picker> = Arc::from(RoundRobin.prepare(&members));
        let threads = 4;
        let per_thread = 10 * 2500; // 4 × 25,000 picks: 10,000 cycles of 10.
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let members = Arc::clone(&members);
                let picker = Arc::clone(&picker);
                std::thread::spawn(move || {
                    let client = "127.0.0.1:1".parse().unwrap();
                    let ctx = PickContext::new(client, &members, &[]);
                    counts((0..per_thread).map(|_| picker.pick(&ctx).unwrap()), 4)
                })
            })
            .collect();
        let mut total = vec![0; 4];
        for h in handles {
            for (t, c) in total.iter_mut().zip(h.join().unwrap()) {
                *t += c;
            }
        }
        assert_eq!(total, vec![50_000, 30_000, 10_000, 10_000]);
    }

    #[test]
    fn large_pools_get_an_evenly_spread_cycle_with_exact_counts() {
        // 20,000 backends, weights 1 to 10: far above nginx's loop budget.
        let ws: Vec<u64> = (0..20_000u64).map(|i| 1 + i % 10).collect();
        assert!(
            ws.iter().sum::<u64>() as u128 * ws.len() as u128 > MAX_NGINX_STEPS,
            "the test must exercise the spread cycle"
        );
        let seq = schedule(&ws);
        assert_eq!(seq.len() as u64, ws.iter().sum::<u64>());
        let c = counts(seq.iter().map(|&i| i as usize), ws.len());
        assert!(c.iter().zip(&ws).all(|(&c, &w)| c as u64 == w));
        // Evenly spread: a weight-10 backend's turns are a tenth of the cycle (11,000 turns)
        // apart, give or take where it falls among the backends whose turns share the same
        // point (2,000 of weight 10, and others at some points): seen 8,002 to 14,000.
        let positions: Vec<usize> = (0..seq.len()).filter(|&p| seq[p] == 9).collect();
        assert_eq!(positions.len(), 10);
        let tenth = seq.len() / 10;
        for w in positions.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap.abs_diff(tenth) <= 4_000, "{gap} vs {tenth}");
        }
        // On small input the spread cycle has the same counts as nginx's.
        let small = [5u64, 1, 1];
        let c = counts(spread_schedule(&small).iter().map(|&i| i as usize), 3);
        assert_eq!(c, vec![5, 1, 1]);
        assert_eq!(spread_schedule(&[2, 0, 1]), vec![0, 2, 0]);
    }

    #[test]
    fn huge_weight_sums_are_scaled_to_a_bounded_cycle() {
        // Coprime weights summing far above 2^16.
        let ws = [1_000_003u64, 500_001, 7, 0];
        let scaled = cycle_weights(&ws);
        let sum: u64 = scaled.iter().sum();
        assert!(sum <= MAX_CYCLE + 4, "{scaled:?}");
        assert_eq!(scaled[3], 0);
        assert_eq!(scaled[2], 1);
        let exact0 = ws[0] as f64 / ws.iter().sum::<u64>() as f64;
        let got0 = scaled[0] as f64 / sum as f64;
        assert!((exact0 - got0).abs() < 2.0 / MAX_CYCLE as f64);
        assert_eq!(schedule(&scaled).len() as u64, sum);
        // Within the bound, only the GCD is taken out.
        assert_eq!(cycle_weights(&[6, 4, 0]), vec![3, 2, 0]);
        assert_eq!(cycle_weights(&[0, 0]), vec![0, 0]);
        // Through the picker: u32::MAX weights, one light member, all picked.
        let members = members(&[u32::MAX, u32::MAX - 1, 1]);
        let picker = RoundRobin.prepare(&members);
        let client = "127.0.0.1:1".parse().unwrap();
        let ctx = PickContext::new(client, &members, &[]);
        let c = counts(
            (0..MAX_CYCLE as usize).map(|_| picker.pick(&ctx).unwrap()),
            3,
        );
        assert!(c.iter().all(|&x| x > 0), "{c:?}");
    }
}
