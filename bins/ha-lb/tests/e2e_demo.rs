//! `ha-lb demo` builds its topology, shows both failovers, and leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/netns.rs"]
mod netns;

use std::process::Command;

#[test]
fn demo_shows_failover_and_cleans_up() {
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
    let outages: Vec<u64> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("outages the client saw"))
        .filter_map(|l| l.trim().split_once(" ms  after:"))
        .map(|(ms, _)| ms.trim().parse().unwrap())
        .collect();
    assert_eq!(outages.len(), 2, "two failovers expected:\n{stdout}");
    // Worker crash: Skew_Time (121 ms) + margin; whole node: Master_Down_Interval (721 ms)
    // + margin.
    assert!(outages[0] < 121 + 700, "{stdout}");
    assert!(outages[1] < 721 + 700, "{stdout}");
    assert!(
        outages[0] < outages[1],
        "the supervisor made no difference:\n{stdout}"
    );
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "namespaces left behind"
    );
}
