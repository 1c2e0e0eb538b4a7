//! Maglev consistent hashing on the client address (Eisenbud et al., NSDI 2016, section 3.4).

use std::sync::Arc;

use super::{mix64, stable_hash, PickContext, Picker, Selector};
use crate::backend::Backend;
use crate::Error;

/// The table size used unless told otherwise: a prime, as the algorithm needs.
pub const DEFAULT_MAGLEV_TABLE_SIZE: usize = 65537;

/// Source-address consistent hashing with a Maglev lookup table.
///
/// Each client IP maps to a table slot; slots are filled by each backend's own permutation of
/// the table (seeded by a hash of its address), in turns proportional to weight. Removing one of
/// N backends moves about 1/N of the clients; the others keep their backend. If a client's
/// backend is unavailable (ejected, full, or already failed for this connection), the next slots
/// are tried, so that client's fallback is also stable.
#[derive(Debug, Clone, Copy)]
pub struct Maglev {
    table_size: usize,
}

impl Maglev {
    /// A Maglev selector with a table of `table_size` slots, which must be a prime.
    pub fn new(table_size: usize) -> Result<Self, Error> {
        if !is_prime(table_size) {
            return Err(Error::Invalid(format!(
                "Maglev table size {table_size} is not a prime (try 65537)"
            )));
        }
        Ok(Maglev { table_size })
    }

    /// The table size.
    pub fn table_size(&self) -> usize {
        self.table_size
    }
}

impl Default for Maglev {
    fn default() -> Self {
        Maglev {
            table_size: DEFAULT_MAGLEV_TABLE_SIZE,
        }
    }
}

fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2usize;
    while d.saturating_mul(d) <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

impl Selector for Maglev {
    fn name(&self) -> &str {
        "maglev"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        Box::new(MaglevPicker {
            table: build_table(members, self.table_size),
        })
    }
}

const EMPTY: u32 = u32::MAX;

/// Fills the lookup table; `members` hold weight > 0 (the pool guarantees it).
pub(crate) fn build_table(members: &[Arc<Backend>], m: usize) -> Vec<u32> {
    let n = members.len();
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let m64 = m as u64;
    // Each backend's permutation: position = (offset + j * skip) mod M, walked incrementally.
    let mut pos: Vec<u64> = Vec::with_capacity(n);
    let mut skip: Vec<u64> = Vec::with_capacity(n);
    for b in members {
        let h = stable_hash(b.addr().to_string().as_bytes());
        pos.push(h % m64);
        skip.push(mix64(h ^ 0x9e37_79b9_7f4a_7c15) % (m64 - 1).max(1) + 1);
    }
    let weights: Vec<u64> = members
        .iter()
        .map(|b| u64::from(b.weight()).max(1))
        .collect();
    let max_w = weights.iter().copied().max().unwrap_or(1);
    let mut table = vec![EMPTY; m];
    let mut filled = 0usize;
    let mut round = 0u64;
    while filled < m {
        for i in 0..n {
            // Backend i takes a turn this round if its weighted credit crosses an integer:
            // the heaviest every round, one of half its weight every other round.
            let w = weights[i];
            if (round + 1) * w / max_w == round * w / max_w {
                continue;
            }
            loop {
                let c = pos[i] as usize;
                pos[i] = (pos[i] + skip[i]) % m64;
                if table[c] == EMPTY {
                    table[c] = i as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break;
            }
        }
        round += 1;
    }
    table
}

struct MaglevPicker {
    table: Vec<u32>,
}

impl Picker for MaglevPicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let m = self.table.len();
        if m == 0 {
            return None;
        }
        let h = (ctx.client_ip_hash() % m as u64) as usize;
        // Probe the following slots: they are spread over all backends, so a few suffice
        // unless most are out; then fall back to a scan.
        let probes = m.min(ctx.members().len().saturating_mul(8) + 64);
        for k in 0..probes {
            let i = self.table[(h + k) % m] as usize;
            if ctx.is_available(i) {
                return Some(i);
            }
        }
        ctx.first_available_from(h % ctx.members().len().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendConfig;
    use std::net::{Ipv4Addr, SocketAddr};

    fn members(weights: &[u32]) -> Vec<Arc<Backend>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let addr: SocketAddr = format!("10.0.{}.{}:6443", i / 250, i % 250 + 1)
                    .parse()
                    .unwrap();
                Arc::new(Backend::new(i as u64, &BackendConfig::new(addr).weight(w)))
            })
            .collect()
    }

    fn assign(members: &[Arc<Backend>], keys: u32) -> Vec<SocketAddr> {
        let picker = Maglev::default().prepare(members);
        (0..keys)
            .map(|k| {
                let client = SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + k * 7919), 40000));
                let ctx = PickContext::new(client, members, &[]);
                members[picker.pick(&ctx).unwrap()].addr()
            })
            .collect()
    }

    #[test]
    fn rejects_non_prime_sizes() {
        assert!(Maglev::new(65536).is_err());
        assert!(Maglev::new(1).is_err());
        assert!(Maglev::new(65537).is_ok());
        assert!(Maglev::new(251).is_ok());
    }

    #[test]
    fn table_shares_follow_weights() {
        let m = members(&[1, 2, 3, 4]);
        let table = build_table(&m, DEFAULT_MAGLEV_TABLE_SIZE);
        assert!(table.iter().all(|&e| e != EMPTY));
        let mut counts = [0usize; 4];
        for &e in &table {
            counts[e as usize] += 1;
        }
        let total: usize = counts.iter().sum();
        for (i, &c) in counts.iter().enumerate() {
            let want = (i + 1) as f64 / 10.0;
            let got = c as f64 / total as f64;
            assert!(
                (got - want).abs() < 0.02,
                "backend {i}: share {got:.3}, want {want:.3}"
            );
        }
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        for n in [5usize, 10, 50] {
            let all = members(&vec![1; n]);
            let before = assign(&all, 100_000);
            // Remove the third backend.
            let removed = all[2].addr();
            let rest: Vec<_> = all
                .iter()
                .filter(|b| b.addr() != removed)
                .cloned()
                .collect();
            let after = assign(&rest, 100_000);
            let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            let on_removed = before.iter().filter(|&&a| a == removed).count();
            let frac = moved as f64 / before.len() as f64;
            let ideal = 1.0 / n as f64;
            // Every key of the removed backend must move; few others may.
            assert!(moved >= on_removed);
            assert!(
                frac < ideal * 1.25 + 0.01 && frac > ideal * 0.75,
                "n={n}: moved {frac:.4}, ideal {ideal:.4}"
            );
        }
    }

    #[test]
    fn unavailable_backend_falls_back_stably() {
        let m = members(&[1, 1, 1]);
        let picker = Maglev::default().prepare(&m);
        let client = SocketAddr::from(([192, 0, 2, 10], 1234));
        let first = picker.pick(&PickContext::new(client, &m, &[])).unwrap();
        let excluded = [m[first].id()];
        let second = picker
            .pick(&PickContext::new(client, &m, &excluded))
            .unwrap();
        assert_ne!(first, second);
        let again = picker
            .pick(&PickContext::new(client, &m, &excluded))
            .unwrap();
        assert_eq!(second, again);
    }
}
