//! Weighted random.

use std::sync::Arc;

use super::weights::CumulativeWeights;
use super::{PickContext, Picker, Selector};
use crate::backend::Backend;

/// Draws a backend at random in proportion to its weight.
#[derive(Debug, Default, Clone, Copy)]
pub struct Random;

impl Selector for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn prepare(&self, members: &[Arc<Backend>]) -> Box<dyn Picker> {
        Box::new(RandomPicker {
            weights: CumulativeWeights::new(members),
        })
    }
}

struct RandomPicker {
    weights: CumulativeWeights,
}

/// Draws before falling back to a scan when backends are unavailable.
const DRAWS: usize = 4;

impl Picker for RandomPicker {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        for _ in 0..DRAWS {
            let i = self.weights.draw()?;
            if ctx.is_available(i) {
                return Some(i);
            }
        }
        let n = ctx.members().len() as u64;
        ctx.first_available_from(fastrand::u64(..n.max(1)) as usize)
    }
}
