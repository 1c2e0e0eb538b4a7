//! Power of two choices.

use std::sync::Arc;

use super::weights::CumulativeWeights;
use super::{PickContext, Picker, Selector};
use crate::backend::Backend;

/// Draws two backends in proportion to weight and takes the one with fewer active connections
/// relative to its weight: near least-connections quality at O(1) cost.
#[derive(Debug, Default, Clone, Copy)]
pub struct PowerOfTwo;

impl Selector for PowerOfTwo {
    fn name(&self) -> &str {
        "p2c"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        Box::new(PowerOfTwoPicker {
            weights: CumulativeWeights::new(members),
        })
    }
}

struct PowerOfTwoPicker {
    weights: CumulativeWeights,
}

/// Draws per choice before falling back to a scan.
const DRAWS: usize = 4;

impl PowerOfTwoPicker {
    fn draw(&self, ctx: &PickContext<'_>) -> Option<usize> {
        (0..DRAWS)
            .filter_map(|_| self.weights.draw())
            .find(|&i| ctx.is_available(i))
    }
}

impl Picker for PowerOfTwoPicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let members = ctx.members();
        let Some(a) = self.draw(ctx) else {
            let n = members.len() as u64;
            return ctx.first_available_from(fastrand::u64(..n.max(1)) as usize);
        };
        let Some(b) = self.draw(ctx) else {
            return Some(a);
        };
        let (Some(ba), Some(bb)) = (members.get(a), members.get(b)) else {
            return Some(a);
        };
        // Compare active / weight without division; on a tie keep the first draw, so an idle
        // pool still shares in proportion to weight.
        let la = u128::from(ba.active()) * u128::from(bb.weight());
        let lb = u128::from(bb.active()) * u128::from(ba.weight());
        Some(if lb < la { b } else { a })
    }
}
