//! A sans-IO VRRP engine: VRRPv3 (RFC 5798) and VRRPv2 (RFC 3768), for IPv4 and IPv6.
//!
//! The crate holds no sockets, reads no clock and spawns nothing: a driver hands it received
//! packets and the current time, and drains the actions it asks for. See the crate README for
//! how to embed it.
#![forbid(unsafe_code)]

mod checksum;
pub mod packet;
