//! Exec check: a program's exit code says healthy (keepalived's `vrrp_script`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::check::Check;
use crate::error::ConfigError;
use crate::failure::{Failure, Outcome};

/// Configuration of an [`ExecCheck`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments, run directly (no shell): `["/usr/bin/pgrep", "nginx"]`.
    /// With `shell = true`, a single element: the command line given to `/bin/sh -c`.
    pub command: Vec<String>,
    /// Run `command[0]` through `/bin/sh -c`. Off by default: no shell unless asked.
    #[serde(default)]
    pub shell: bool,
    /// Extra environment variables (the rest is inherited).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The working directory; inherited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
}

impl ExecConfig {
    /// Runs `program` with `args`, no shell.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> ExecConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut command = vec![program.into()];
        command.extend(args.into_iter().map(Into::into));
        ExecConfig {
            command,
            shell: false,
            env: BTreeMap::new(),
            working_dir: None,
        }
    }

    /// Runs `script` with `/bin/sh -c`.
    pub fn shell(script: impl Into<String>) -> ExecConfig {
        ExecConfig {
            command: vec![script.into()],
            shell: true,
            env: BTreeMap::new(),
            working_dir: None,
        }
    }
}

/// Runs a program in a process group of its own; exit 0 is healthy. When the check is dropped
/// before the program ends (its timeout expired), the whole group is killed with `SIGKILL`, so
/// a hung script and everything it started go away.
#[derive(Debug, Clone)]
pub struct ExecCheck {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    working_dir: Option<PathBuf>,
}

impl ExecCheck {
    /// Builds the check; a program given by path must exist and be executable.
    pub fn new(config: &ExecConfig) -> Result<ExecCheck, ConfigError> {
        let Some((first, rest)) = config.command.split_first() else {
            return Err(ConfigError::Invalid {
                field: "command",
                reason: "is empty; give the program and its arguments".to_owned(),
            });
        };
        if first.is_empty() {
            return Err(ConfigError::Invalid {
                field: "command",
                reason: "the program name is empty".to_owned(),
            });
        }
        let (program, args) = if config.shell {
            if !rest.is_empty() {
                return Err(ConfigError::Invalid {
                    field: "command",
                    reason: "with `shell = true`, give one command line, not a list of arguments"
                        .to_owned(),
                });
            }
            ("/bin/sh".to_owned(), vec!["-c".to_owned(), first.clone()])
        } else {
            if first.contains('/') {
                executable(Path::new(first))?;
            }
            (first.clone(), rest.to_vec())
        };
        if let Some(dir) = &config.working_dir {
            if !dir.is_dir() {
                return Err(ConfigError::Invalid {
                    field: "working_dir",
                    reason: format!("{dir:?} is not a directory"),
                });
            }
        }
        Ok(ExecCheck {
            program,
            args,
            env: config.env.clone(),
            working_dir: config.working_dir.clone(),
        })
    }
}

fn executable(path: &Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::ReadFile {
        what: "program",
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ConfigError::Invalid {
            field: "command",
            reason: format!("{path:?} is not an executable file (chmod +x?)"),
        });
    }
    Ok(())
}

/// Spawns, retrying briefly on `ETXTBSY`: a script that was just written may still be open for
/// writing in a child that another thread forked and that has not exec'd yet (a well-known
/// Linux race), which makes exec fail for a moment.
async fn spawn(command: &mut Command) -> std::io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// Kills the child's process group unless the child was reaped.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // The leader is not reaped yet, so the group id cannot have been reused. ESRCH
            // (the group already gone) is fine.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

#[async_trait]
impl Check for ExecCheck {
    async fn check(&self) -> Outcome {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let mut child = spawn(&mut command)
            .await
            .map_err(|e| Failure::Spawn(format!("{}: {e}", self.program)))?;
        let mut guard = GroupGuard {
            pgid: child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
        };
        let status = child.wait().await;
        // Reaped (or lost): from here on the group id may be reused, never kill it.
        guard.pgid = None;
        let status = status.map_err(|e| Failure::Spawn(format!("wait: {e}")))?;
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(Failure::ExitCode(code)),
            (None, Some(signal)) => Err(Failure::Signal(signal)),
            (None, None) => Err(Failure::Other(format!("program ended with {status}"))),
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("exec {}", self.program);
        for arg in &self.args {
            text.push(' ');
            text.push_str(arg);
        }
        text
    }
}
