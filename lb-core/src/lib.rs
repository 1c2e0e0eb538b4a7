//! A pluggable, embeddable L4 TCP load balancer.
//!
//! This crate is being built; see issue 4.
