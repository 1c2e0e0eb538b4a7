//! The end-to-end tests, in one binary (one link step instead of one per file), a module per
//! theme. Most make their own hosts in network namespaces (the harness: `support/netns.rs`; the
//! two-node topology, its backends and measuring client: `support/{topo,backend,client}.rs`);
//! every test that times failovers in milliseconds holds [`netns::serial`], so it runs alone
//! and its timings are not disturbed by other tests; the interop tests with keepalived and
//! tshark (deadlines in seconds) hold [`netns::shared`] instead and run alongside each other
//! (CI runs them with a thread each).
//!
//! - failover, heal, privileges, balancer_only, examples, demo: `ha-lb run` on two nodes;
//! - bgp: anycast VIPs announced over BGP by BIRD / FRR to an ECMP router (docs/bgp.md);
//! - systemd, kube: the deployment paths (sd_notify, `ha-lb kube configs`);
//! - day2: runtime control (`ha-lb ctl`), connection logs, sandboxed scripts, nf_tables;
//! - interop_*: against Debian's keepalived and tshark;
//! - net_*: the Linux driver's pieces (sockets, addresses, announcements, links).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

#[path = "../support/backend.rs"]
mod backend;
#[path = "../support/client.rs"]
mod client;
#[path = "../support/keepalived.rs"]
mod keepalived;
#[path = "../support/netns.rs"]
mod netns;
#[path = "../support/topo.rs"]
mod topo;

mod balancer_only;
mod bgp;
mod conntrack;
mod day2;
mod demo;
mod examples;
mod failover;
mod heal;
mod interop_checksum;
mod interop_keepalived;
mod interop_tshark;
mod kube;
mod nat;
mod net_addresses;
mod net_announce;
mod net_keepalived;
mod net_links;
mod net_vrrp_socket;
mod privileges;
mod systemd;
