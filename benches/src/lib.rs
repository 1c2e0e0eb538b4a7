//! Shared helpers for the ha-lb benchmarks.
//!
//! The benchmarks themselves live in `benches/benches/*.rs` (criterion) and the head-to-head
//! scripts in `benches/scripts/`.
