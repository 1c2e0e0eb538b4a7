//! `ha-lb demo` builds its topology, shows both failovers, and leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::netns;

use std::process::Command;

#[test]
fn demo_shows_failover_and_cleans_up() {
    let _serial = crate::netns::serial();
    if !netns::Netns::available("demo_shows_failover_and_cleans_up") {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("halb-demo-{}-", child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    // "   247 ms  after: SIGKILL lb1's worker ..." lines, after the summary header.
    let outages: Vec<(u64, String)> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("outages the client saw"))
        .filter_map(|l| l.trim().split_once(" ms  after: "))
        .map(|(ms, what)| (ms.trim().parse().unwrap(), what.to_owned()))
        .collect();
    let outage = |what: &str| {
        outages
            .iter()
            .find(|(_, w)| w.starts_with(what))
            .map(|(ms, _)| *ms)
            .unwrap_or_else(|| panic!("no outage after {what}:\n{stdout}"))
    };
    // Worker crash: Skew_Time (121 ms) + margin, below Master_Down_Interval (721 ms), so the
    // supervisor's priority 0 must have worked; whole node: Master_Down_Interval + margin (as in
    // e2e_failover.rs: the 100 ms, and 100 ms more for a loaded machine).
    assert!(outage("SIGKILL lb1's worker") < 121 + 200, "{stdout}");
    assert!(outage("SIGKILL lb1 entirely") < 721 + 300, "{stdout}");
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "namespaces left behind"
    );
}
