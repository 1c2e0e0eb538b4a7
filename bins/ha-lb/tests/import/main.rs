//! `ha-lb import-keepalived`, in one test binary: every translated keyword (`keywords`), LVS
//! virtual servers (`lvs`), the seed article's files (`seed`), and properties of the importer
//! over generated input (`props`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

mod data;
mod keywords;
mod lvs;
mod props;
mod seed;
