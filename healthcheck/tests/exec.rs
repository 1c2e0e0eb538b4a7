//! Exec checks with real programs: exit codes, signals, and a hung script killed with its
//! children.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{eventually, path_str, pid_alive, TempDir};
use healthcheck::{run_with_timeout, Check, ConfigError, ExecCheck, ExecConfig, Failure};

const TIMEOUT: Duration = Duration::from_secs(20);

async fn run(config: &ExecConfig) -> Result<(), Failure> {
    run_with_timeout(&ExecCheck::new(config).unwrap(), TIMEOUT).await
}

fn script(dir: &TempDir, name: &str, body: &str) -> String {
    let path = dir.write(name, format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path_str(&path)
}

#[tokio::test]
async fn exit_codes() {
    let dir = TempDir::new("exec-codes");
    let ok = script(&dir, "ok.sh", "exit 0");
    let bad = script(&dir, "bad.sh", "exit 1");
    assert_eq!(
        run(&ExecConfig::new(ok, Vec::<String>::new())).await,
        Ok(())
    );
    assert_eq!(
        run(&ExecConfig::new(bad, Vec::<String>::new())).await,
        Err(Failure::ExitCode(1))
    );
    assert_eq!(
        run(&ExecConfig::new("/bin/sh", ["-c", "exit 2"])).await,
        Err(Failure::ExitCode(2))
    );
}

#[tokio::test]
async fn arguments_reach_the_program_without_a_shell() {
    // Without a shell, `;` and `$` are plain bytes of one argument.
    let config = ExecConfig::new(
        "/bin/sh",
        ["-c", "test \"$1\" = 'a;b $HOME'", "sh", "a;b $HOME"],
    );
    assert_eq!(run(&config).await, Ok(()));
    // With a shell, the command line is interpreted.
    assert_eq!(
        run(&ExecConfig::shell("true && exit 3")).await,
        Err(Failure::ExitCode(3))
    );
}

#[tokio::test]
async fn environment_and_working_dir() {
    let dir = TempDir::new("exec-env");
    let mut config = ExecConfig::shell("test \"$HC_TEST\" = yes && test -f marker");
    config.env.insert("HC_TEST".into(), "yes".into());
    config.working_dir = Some(dir.0.clone());
    assert_eq!(run(&config).await, Err(Failure::ExitCode(1)));
    dir.write("marker", "");
    assert_eq!(run(&config).await, Ok(()));
}

#[tokio::test]
async fn killed_by_a_signal() {
    assert_eq!(
        run(&ExecConfig::shell("kill -TERM $$")).await,
        Err(Failure::Signal(15))
    );
}

#[tokio::test]
async fn missing_program_on_path_fails_to_spawn() {
    let err = run(&ExecConfig::new("no-such-program-hc", Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Spawn(_)), "{err:?}");
}

#[tokio::test]
async fn hung_script_is_killed_with_its_children() {
    let dir = TempDir::new("exec-hang");
    let pids = dir.path("pids");
    // The script starts a child in the background, records both PIDs and hangs.
    let hang = script(
        &dir,
        "hang.sh",
        &format!(
            "sleep 600 &\necho \"$$ $!\" > {}.tmp\nmv {0}.tmp {0}\nsleep 600",
            path_str(&pids)
        ),
    );
    let check = ExecCheck::new(&ExecConfig::new(hang, Vec::<String>::new())).unwrap();
    // Long enough for a loaded machine to start the script and its child.
    let timeout = Duration::from_secs(5);
    let outcome = run_with_timeout(&check, timeout).await;
    assert_eq!(outcome, Err(Failure::TimedOut(timeout)));

    let text =
        std::fs::read_to_string(&pids).expect("the script recorded its PIDs before the timeout");
    let recorded: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(recorded.len(), 2);
    assert!(
        eventually(20, || recorded.iter().all(|p| !pid_alive(*p))).await,
        "script and its child still alive: {recorded:?}"
    );
}

#[test]
fn bad_exec_config_is_rejected() {
    let empty = ExecConfig {
        command: vec![],
        ..ExecConfig::shell("")
    };
    assert!(matches!(
        ExecCheck::new(&empty),
        Err(ConfigError::Invalid {
            field: "command",
            ..
        })
    ));
    let err =
        ExecCheck::new(&ExecConfig::new("/no/such/check.sh", Vec::<String>::new())).unwrap_err();
    assert!(err.to_string().contains("/no/such/check.sh"), "{err}");

    let dir = TempDir::new("exec-bad");
    let not_exec = dir.write("plain.sh", "exit 0\n");
    let err =
        ExecCheck::new(&ExecConfig::new(path_str(&not_exec), Vec::<String>::new())).unwrap_err();
    assert!(err.to_string().contains("chmod"), "{err}");

    let mut shell_with_args = ExecConfig::shell("exit 0");
    shell_with_args.command.push("extra".into());
    assert!(ExecCheck::new(&shell_with_args).is_err());
}

#[test]
fn describe_shows_the_command() {
    let check = ExecCheck::new(&ExecConfig::new("pgrep", ["-x", "nginx"])).unwrap();
    assert_eq!(check.describe(), "exec pgrep -x nginx");
}
