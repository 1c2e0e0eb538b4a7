//! A small, fast per-thread pseudo-random generator for selection (not for cryptography).

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState is seeded from the OS once per thread; good enough to decorrelate workers.
    RandomState::new().hash_one(0x5eed_u64) | 1
}

/// A uniformly distributed 64-bit value (xorshift64*).
pub fn next_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A value in `0..n` (n > 0), by multiply-shift to avoid a division.
pub fn below(n: u64) -> u64 {
    ((u128::from(next_u64()) * u128::from(n)) >> 64) as u64
}
