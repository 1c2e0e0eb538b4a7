//! Process check: a process with a given name, or the PID in a pidfile, is alive (Linux `/proc`).

use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::check::Check;
use crate::error::ConfigError;
use crate::failure::{Failure, Outcome};

/// The kernel keeps at most this many bytes of a process name (`/proc/PID/comm`).
const COMM_LEN: usize = 15;

/// Configuration of a [`ProcessCheck`]: exactly one of `name` and `pidfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// A process name as `ps -C` matches it (e.g. `nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A file holding the PID of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<PathBuf>,
}

/// Healthy while a live (not zombie) process matches.
#[derive(Debug, Clone)]
pub enum ProcessCheck {
    /// Some process has this name.
    Name(String),
    /// The PID in this file is alive.
    Pidfile(PathBuf),
}

impl ProcessCheck {
    /// Builds the check from exactly one of `name` and `pidfile`.
    pub fn new(config: &ProcessConfig) -> Result<ProcessCheck, ConfigError> {
        match (&config.name, &config.pidfile) {
            (Some(name), None) if name.is_empty() || name.contains('/') => {
                Err(ConfigError::Invalid {
                    field: "name",
                    reason: format!("{name:?} is not a process name (no path, not empty)"),
                })
            }
            (Some(name), None) => Ok(ProcessCheck::Name(name.clone())),
            (None, Some(path)) => Ok(ProcessCheck::Pidfile(path.clone())),
            _ => Err(ConfigError::Invalid {
                field: "name",
                reason: "give exactly one of `name` and `pidfile`".to_owned(),
            }),
        }
    }
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`, ...), if the process exists.
fn state_of(pid: &str) -> Option<char> {
    let stat = fs::read_to_string(Path::new("/proc").join(pid).join("stat")).ok()?;
    // "pid (comm) S ...": comm may itself hold ')' so look for the last one.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

fn alive(pid: &str) -> bool {
    matches!(state_of(pid), Some(s) if s != 'Z' && s != 'X' && s != 'x')
}

fn name_matches(pid: &str, name: &str) -> bool {
    let dir = Path::new("/proc").join(pid);
    let Ok(comm) = fs::read_to_string(dir.join("comm")) else {
        return false;
    };
    let comm = comm.trim_end_matches('\n');
    if name.len() <= COMM_LEN {
        return comm == name;
    }
    // A long name is truncated in comm; confirm with argv[0].
    if !name.as_bytes().starts_with(comm.as_bytes()) || comm.len() < COMM_LEN {
        return false;
    }
    let Ok(cmdline) = fs::read(dir.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    base == name.as_bytes()
}

fn find_by_name(name: &str) -> Outcome {
    let entries = fs::read_dir("/proc").map_err(|e| Failure::Io(format!("/proc: {e}")))?;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            continue;
        };
        if pid.bytes().all(|b| b.is_ascii_digit()) && name_matches(pid, name) && alive(pid) {
            return Ok(());
        }
    }
    Err(Failure::NoSuchProcess(name.to_owned()))
}

fn check_pidfile(path: &Path) -> Outcome {
    let text = fs::read_to_string(path).map_err(|e| Failure::Pidfile(format!("{path:?}: {e}")))?;
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Failure::Pidfile(format!("{path:?} does not hold a PID")))?;
    if alive(&pid.to_string()) {
        Ok(())
    } else {
        Err(Failure::DeadPid(pid))
    }
}

#[async_trait]
impl Check for ProcessCheck {
    async fn check(&self) -> Outcome {
        let this = self.clone();
        tokio::task::spawn_blocking(move || match &this {
            ProcessCheck::Name(name) => find_by_name(name),
            ProcessCheck::Pidfile(path) => check_pidfile(path),
        })
        .await
        .map_err(|e| Failure::Other(format!("process check task: {e}")))?
    }

    fn describe(&self) -> String {
        match self {
            ProcessCheck::Name(name) => format!("process {name}"),
            ProcessCheck::Pidfile(path) => format!("process pidfile {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive() {
        assert!(alive(&std::process::id().to_string()));
        assert!(!alive("0"));
    }

    #[test]
    fn exactly_one_selector() {
        assert!(ProcessCheck::new(&ProcessConfig::default()).is_err());
        let both = ProcessConfig {
            name: Some("nginx".into()),
            pidfile: Some("/run/nginx.pid".into()),
        };
        assert!(ProcessCheck::new(&both).is_err());
    }
}
