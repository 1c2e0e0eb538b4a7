//! Debian's keepalived as the e2e tests run it: in a namespace, in the foreground, VRRP only,
//! with its pid files in the test's directory (never the system's), stopped by PID.
//!
//! Included by `tests/e2e/main.rs` with `#[path]`, as `netns.rs` is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test module uses a part

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::netns::{ChildGuard, Netns};

/// Starts `keepalived -n -l -D -P -f CONF` in `ns` (foreground, log to the console, detailed,
/// VRRP only), its pid files in `dir`, its console log to `log`; stopped (SIGTERM, then
/// SIGKILL after 5 s) when the guard drops.
pub fn start(ns: &Netns, conf: &Path, dir: &Path, log: impl Into<Stdio>) -> ChildGuard {
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    ChildGuard::spawn(
        ns.command("keepalived")
            .args(["-n", "-l", "-D", "-P", "-f"])
            .arg(conf)
            .args([
                "-p",
                &p("keepalived.pid"),
                "-r",
                &p("vrrp.pid"),
                "-c",
                &p("checkers.pid"),
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null()),
        Duration::from_secs(5),
    )
}
