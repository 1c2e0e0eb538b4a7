//! `ha-lb run` without CAP_NET_RAW / CAP_NET_ADMIN stops at once with an error that says so
//! (the capabilities are dropped from the bounding set with `setpriv`, so this runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

fn example() -> String {
    format!(
        "{}/../../examples/active-standby-lb1.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run_without_caps(extra: &[&str]) -> Option<(bool, String, Duration)> {
    if Command::new("setpriv").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "setpriv (util-linux) is required in CI"
        );
        eprintln!("SKIPPED: no setpriv");
        return None;
    }
    let t0 = Instant::now();
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_raw,-net_admin", "--"])
        .arg(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["run", "--config", &example()])
        .args(extra)
        .output()
        .unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t0.elapsed(),
    ))
}

fn assert_refused(extra: &[&str]) {
    let Some((ok, stderr, took)) = run_without_caps(extra) else {
        return;
    };
    assert!(!ok, "ran without the capabilities: {stderr}");
    assert!(
        stderr.contains("CAP_NET_RAW") && stderr.contains("CAP_NET_ADMIN"),
        "the error does not name the capabilities: {stderr}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?} to refuse");
}

#[test]
fn run_refuses_without_capabilities() {
    let _serial = crate::netns::serial();
    assert_refused(&[]);
}

#[test]
fn worker_refuses_without_capabilities() {
    let _serial = crate::netns::serial();
    assert_refused(&["--no-supervisor"]);
}

/// A listener that cannot bind (an address this host does not have, without non-local bind):
/// the worker cannot start, the supervisor does not restart it in a loop, `run` exits with an
/// error naming the address. (An instance whose interface is missing does not stop `run`: it
/// waits in Fault, see e2e_failover's `missing_interface_at_start_is_waited_for`.)
#[test]
fn run_stops_when_a_listener_cannot_bind() {
    let _serial = crate::netns::serial();
    let dir = std::env::temp_dir().join(format!("halb-nobind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.toml");
    std::fs::write(
        &file,
        "[listeners.l]\nlisten = \"192.0.2.1:18080\"\npool = \"p\"\nnon_local_bind = false\n\n\
         [pools.p]\nbackends = [{ address = \"127.0.0.1:1\" }]\n",
    )
    .unwrap();
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("192.0.2.1:18080"), "{stderr}");
    assert_eq!(
        stderr.matches("worker started").count(),
        1,
        "restarted: {stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}
