//! `ha-lb check-config`: exit 0 with a summary for a valid file, exit 1 with the located error
//! for an invalid one.

use std::path::Path;
use std::process::Command;

fn ha_lb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ha-lb"))
}

#[test]
fn valid_file_prints_a_summary() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kube-apiserver.toml");
    let out = ha_lb().arg("check-config").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("instance apiserver: eth0 VRID 51 VRRPv3 priority 150"),
        "{stdout}"
    );
    assert!(
        stdout.contains("listener apiserver: 192.0.2.100:6443 -> pool apiservers"),
        "{stdout}"
    );
    assert!(stdout.contains("configuration is valid"), "{stdout}");
}

#[test]
fn nat_example_summary_names_the_mode_and_source() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nat-lb.toml");
    let out = ha_lb().arg("check-config").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("listener https: 192.0.2.200:443 -> pool web (nat, source vip)"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn invalid_file_exits_1_with_file_line_column_and_hint() {
    let dir = std::env::temp_dir().join(format!("ha-lb-config-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[instances.a]\ninterface = \"eth0\"\nvrid = 300\nvips = [\"192.0.2.1/24\"]\n",
    )
    .unwrap();
    let out = ha_lb().arg("check-config").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:8: error:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("VRID 300 is out of range"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_file_exits_1() {
    let out = ha_lb()
        .args(["check-config", "/nonexistent/ha-lb.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration"));
}
