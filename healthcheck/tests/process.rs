//! Process checks against a real child process, by name and by pidfile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, pid_alive, TempDir};
use healthcheck::{run_with_timeout, ConfigError, Failure, ProcessCheck, ProcessConfig};

const TIMEOUT: Duration = Duration::from_secs(20);

async fn run(config: &ProcessConfig) -> Result<(), Failure> {
    run_with_timeout(&ProcessCheck::new(config).unwrap(), TIMEOUT).await
}

/// Copies `sleep` under `name` so that the child has a name no other process has.
fn sleeper(dir: &TempDir, name: &str) -> std::process::Child {
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap();
    let path = dir.path(name);
    std::fs::copy(sleep, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test thread may fork while this copy is still open for writing: exec then fails
    // with ETXTBSY until that child execs. Retry briefly.
    for _ in 0..50 {
        match Command::new(&path).arg("600").stdin(Stdio::null()).spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.unwrap(),
        }
    }
    panic!("{path:?} stayed busy");
}

/// Checks by name until found or 20 s pass: the kernel lets `spawn` return (vfork released)
/// a moment before it renames the child for its new program.
async fn found(name: &str) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let outcome = run(&by_name(name)).await;
        if outcome.is_ok() || tokio::time::Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn by_name(name: &str) -> ProcessConfig {
    ProcessConfig {
        name: Some(name.into()),
        pidfile: None,
    }
}

#[tokio::test]
async fn by_name_while_running_then_gone() {
    let dir = TempDir::new("proc-name");
    let name = format!("hcp{}", std::process::id() % 1_000_000);
    assert_eq!(
        run(&by_name(&name)).await,
        Err(Failure::NoSuchProcess(name.clone()))
    );

    let mut child = sleeper(&dir, &name);
    assert_eq!(found(&name).await, Ok(()));
    // A prefix of the name is another name.
    assert!(run(&by_name(&name[..name.len() - 1])).await.is_err());

    child.kill().unwrap();
    // Killed but not reaped: once the kernel made it a zombie, it is not alive.
    assert!(eventually(20, || !pid_alive(child.id())).await);
    let zombie = run(&by_name(&name)).await;
    child.wait().unwrap();
    assert_eq!(zombie, Err(Failure::NoSuchProcess(name.clone())));
    assert_eq!(
        run(&by_name(&name)).await,
        Err(Failure::NoSuchProcess(name))
    );
}

#[tokio::test]
async fn long_names_are_matched_beyond_the_kernel_limit() {
    let dir = TempDir::new("proc-long");
    let name = format!("healthcheck-long-name-{}", std::process::id());
    let mut child = sleeper(&dir, &name);
    assert_eq!(found(&name).await, Ok(()));
    // Same first 15 bytes, different name.
    let other = format!("{}-x", &name);
    assert!(run(&by_name(&other)).await.is_err());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(run(&by_name(&name)).await.is_err());
}

#[tokio::test]
async fn by_pidfile() {
    let dir = TempDir::new("proc-pid");
    let pidfile = dir.path("nginx.pid");
    let config = ProcessConfig {
        name: None,
        pidfile: Some(pidfile.clone()),
    };
    assert!(matches!(run(&config).await, Err(Failure::Pidfile(_))));
    std::fs::write(&pidfile, "garbage\n").unwrap();
    assert!(matches!(run(&config).await, Err(Failure::Pidfile(_))));

    let mut child = sleeper(&dir, "hc-pidfile");
    let pid = child.id();
    std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
    assert_eq!(run(&config).await, Ok(()));
    child.kill().unwrap();
    assert!(eventually(20, || !pid_alive(pid)).await);
    assert_eq!(
        run(&config).await,
        Err(Failure::DeadPid(pid as i32)),
        "zombie"
    );
    child.wait().unwrap();
    assert_eq!(run(&config).await, Err(Failure::DeadPid(pid as i32)));
}

#[test]
fn bad_process_config_is_rejected() {
    for config in [
        ProcessConfig::default(),
        by_name(""),
        by_name("/usr/sbin/nginx"),
        ProcessConfig {
            name: Some("nginx".into()),
            pidfile: Some("/run/nginx.pid".into()),
        },
    ] {
        assert!(
            matches!(ProcessCheck::new(&config), Err(ConfigError::Invalid { .. })),
            "{config:?}"
        );
    }
}
