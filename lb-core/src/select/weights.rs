//! Weighted random draws shared by the random and power-of-two pickers.

use std::sync::Arc;

use crate::backend::Backend;

/// Cumulative weights, for a draw in O(log n).
pub(crate) struct CumulativeWeights {
    cumulative: Vec<u64>,
}

impl CumulativeWeights {
    pub(crate) fn new(members: &[Arc<Backend>]) -> Self {
        let mut total = 0u64;
        let cumulative = members
            .iter()
            .map(|b| {
                total += u64::from(b.weight());
                total
            })
            .collect();
        CumulativeWeights { cumulative }
    }

    /// A member index drawn in proportion to weight (None if there are no members).
    pub(crate) fn draw(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if total == 0 {
            return None;
        }
        let x = fastrand::u64(..total);
        Some(self.cumulative.partition_point(|&c| c <= x))
    }
}
