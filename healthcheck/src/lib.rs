//! Active health checks with rise/fall thresholds.
//!
//! This crate is being built; see issue 3.
#![forbid(unsafe_code)]
