//! Smooth weighted round robin, as in nginx (`ngx_http_upstream_get_peer`).

use std::sync::{Arc, Mutex};

use super::{PickContext, Picker, Selector};
use crate::backend::Backend;

/// Smooth weighted round robin: with weights 5, 1, 1 it yields a a b a c a a, spreading the
/// heavy backend's turns instead of bunching them. Unavailable backends are skipped and their
/// turns go to the others, as nginx does.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundRobin;

impl Selector for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        let weights = members.iter().map(|b| i64::from(b.weight())).collect();
        Box::new(RoundRobinPicker {
            weights,
            current: Mutex::new(vec![0; members.len()]),
        })
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
}
