//! The `ha-lb` command line and what it reads and writes, in one test binary: configuration
//! errors and warnings (`check-config`), the shipped examples, `ha-lb kube`, the Debian
//! package's maintainer scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (docs/developing.md)

mod config_cli;
mod config_errors;
mod config_examples;
mod config_warnings;
mod conntrack_config;
mod deb_scripts;
mod kube_cli;
