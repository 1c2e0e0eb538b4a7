//! The Debian maintainer script `dist/debian/postinst`, run with a fake `systemctl` and a fake
//! `ha-lb` in place of the real ones: on upgrade a running service is restarted only when the
//! new binary's `check-config` accepts the file; a fresh install starts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Fake {
    dir: PathBuf,
}

impl Fake {
    /// A PATH directory with `systemctl` (logs its arguments; `is-active` answers `active`) and
    /// an `ha-lb` whose check-config exits `check_status`.
    fn new(tag: &str, active: bool, check_status: i32) -> Self {
        let dir = std::env::temp_dir().join(format!("halb-deb-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("run-systemd")).unwrap();
        let log = dir.join("calls");
        let script = |name: &str, body: String| {
            let p = dir.join("bin").join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            "systemctl",
            format!(
                "echo \"systemctl $*\" >> {log}\ncase \"$*\" in *is-active*) exit {};; esac\nexit 0",
                if active { 0 } else { 3 },
                log = log.display()
            ),
        );
        script(
            "ha-lb",
            format!(
                "echo \"ha-lb $*\" >> {log}\n[ {check_status} = 0 ] || echo 'bad.toml:1:1: error' >&2\nexit {check_status}",
                log = log.display()
            ),
        );
        Fake { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let postinst = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/debian/postinst");
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg(postinst)
            .args(args)
            .env("PATH", path)
            .env("HA_LB_POSTINST_BINARY", self.dir.join("bin/ha-lb"))
            .env("HA_LB_POSTINST_SYSTEMD_DIR", self.dir.join("run-systemd"))
            .output()
            .unwrap()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls")).unwrap_or_default()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn upgrade_restarts_only_after_check_config_passes() {
    let ok = Fake::new("ok", true, 0);
    let out = ok.run(&["configure", "0.0.9-1"]);
    assert!(out.status.success());
    let calls = ok.calls();
    let check = calls
        .find("ha-lb check-config /etc/ha-lb/ha-lb.toml")
        .unwrap();
    let restart = calls.find("systemctl restart ha-lb.service").unwrap();
    assert!(check < restart, "{calls}");

    let bad = Fake::new("bad", true, 1);
    let out = bad.run(&["configure", "0.0.9-1"]);
    assert!(out.status.success(), "the upgrade itself completes");
    let calls = bad.calls();
    assert!(calls.contains("ha-lb check-config"), "{calls}");
    assert!(
        !calls.contains("restart"),
        "restarted with a rejected file: {calls}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NOT restarting"), "{stderr}");
    assert!(
        stderr.contains("bad.toml:1:1"),
        "check-config's error is shown: {stderr}"
    );
}

#[test]
fn stopped_service_and_fresh_install_are_not_started() {
    let stopped = Fake::new("stopped", false, 0);
    assert!(stopped.run(&["configure", "0.0.9-1"]).status.success());
    assert!(!stopped.calls().contains("restart"), "{}", stopped.calls());

    let fresh = Fake::new("fresh", false, 0);
    let out = fresh.run(&["configure", ""]);
    assert!(out.status.success());
    let calls = fresh.calls();
    assert!(
        !calls.contains("restart") && !calls.contains(" start"),
        "{calls}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("systemctl enable --now ha-lb.service"));
}
