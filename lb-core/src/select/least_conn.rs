//! Weighted least connections.

use std::sync::Arc;

use super::{PickContext, Picker, Selector};
use crate::backend::Backend;

/// Picks the backend with the fewest active connections relative to its weight
/// (`active / weight`); among equals, one is drawn at random in proportion to weight, so idle
/// pools still share by weight.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastConn;

impl Selector for LeastConn {
    fn name(&self) -> &str {
        "least-conn"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        Box::new(LeastConnPicker {
            weights: members.iter().map(|b| u64::from(b.weight())).collect(),
        })
    }
}

struct LeastConnPicker {
    weights: Vec<u64>,
}

impl Picker for LeastConnPicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let members = ctx.members();
        // Best so far: (index, active, weight); tied weight total for the weighted tie-break.
        let mut best: Option<(usize, u64, u64)> = None;
        let mut tied_weight = 0u64;
        for (i, &w) in self.weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            let Some(b) = members.get(i) else { continue };
            let active = b.active();
            match best {
                None => {
                    if ctx.is_available(i) {
                        best = Some((i, active, w));
                        tied_weight = w;
                    }
                }
                Some((_, ba, bw)) => {
                    // active/w against ba/bw without division; the (dearer) availability check
                    // only for a backend that could win.
                    let lhs = u128::from(active) * u128::from(bw);
                    let rhs = u128::from(ba) * u128::from(w);
                    if lhs > rhs || !ctx.is_available(i) {
                        continue;
                    }
                    if lhs < rhs {
                        best = Some((i, active, w));
                        tied_weight = w;
                    } else {
                        // Weighted reservoir sampling over the tied set.
                        tied_weight += w;
                        if fastrand::u64(..tied_weight) < w {
                            best = Some((i, active, w));
                        }
                    }
                }
            }
        }
        best.map(|(i, _, _)| i)
    }
}
