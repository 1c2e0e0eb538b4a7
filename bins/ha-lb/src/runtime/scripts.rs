//! The programs ha-lb runs (exec checks, notify commands): with no capabilities, optionally
//! as another user, and, when ha-lb runs as root, only from files no other user can change
//! (keepalived's `script_user` and `enable_script_security`).
//!
//! A command does not run directly: it runs through `ha-lb sandbox [--run-as USER[:GROUP]]
//! -- PROGRAM ARGS...` (this same binary, `/proc/self/exe`), which drops every capability
//! (bounding set, ambient, inheritable, permitted, effective; `SECBIT_NOROOT` so that even uid
//! 0 gains none at exec; `no_new_privs` so that no setuid program gives any back), changes
//! user if asked, then execs the program. A check script can then neither add an address nor
//! open a raw socket, even though ha-lb can.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The hidden subcommand that drops privileges and execs a command.
pub const SANDBOX: &str = "sandbox";

/// `global.run_as` of the configuration running now (notify commands read it when they are
/// queued).
static GLOBAL_RUN_AS: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// Sets the global `run_as` (at start and on reload).
pub fn set_global_run_as(run_as: Option<String>) {
    *GLOBAL_RUN_AS.write().unwrap_or_else(|e| e.into_inner()) = run_as;
}

/// The global `run_as` in force.
pub fn global_run_as() -> Option<String> {
    GLOBAL_RUN_AS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// `argv` run through the sandbox, as `run_as` when given.
pub fn sandboxed(run_as: Option<&str>, argv: &[String]) -> Vec<String> {
    let mut out = vec!["/proc/self/exe".to_owned(), SANDBOX.to_owned()];
    if let Some(user) = run_as {
        out.push("--run-as".to_owned());
        out.push(user.to_owned());
    }
    out.push("--".to_owned());
    out.extend(argv.iter().cloned());
    out
}

/// A user (and group) to run as, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The group id: the one named, else the user's primary group.
    pub gid: u32,
}

/// Resolves `user[:group]` (names or numbers).
///
/// # Errors
///
/// A message naming the user or group that does not exist.
pub fn resolve(spec: &str) -> Result<RunAs, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup_user = |u: &str| -> Result<(u32, u32), String> {
        let found = match u.parse::<u32>() {
            Ok(n) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(n)),
            Err(_) => nix::unistd::User::from_name(u),
        };
        match found {
            Ok(Some(pw)) => Ok((pw.uid.as_raw(), pw.gid.as_raw())),
            // A number with no passwd entry is still a user id (containers).
            Ok(None) => u
                .parse::<u32>()
                .map(|n| (n, n))
                .map_err(|_| format!("run_as: no user {u:?}")),
            Err(e) => Err(format!("run_as: cannot look up user {u:?}: {e}")),
        }
    };
    let (uid, primary) = lookup_user(user)?;
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match nix::unistd::Group::from_name(g) {
                Ok(Some(gr)) => gr.gid.as_raw(),
                Ok(None) => return Err(format!("run_as: no group {g:?}")),
                Err(e) => return Err(format!("run_as: cannot look up group {g:?}: {e}")),
            },
        },
    };
    Ok(RunAs { uid, gid })
}

/// The `ha-lb sandbox` side: drops privileges, then execs `argv`; returns only on failure.
pub fn exec_sandboxed(run_as: Option<&str>, argv: &[String]) -> String {
    let Some((program, args)) = argv.split_first() else {
        return "no command to run".into();
    };
    let who = match run_as.map(resolve).transpose() {
        Ok(w) => w,
        Err(e) => return e,
    };
    // Root (with CAP_SETPCAP) empties the bounding set and locks SECBIT_NOROOT, so that an
    // exec as uid 0 gains nothing back; without CAP_SETPCAP there is nothing to take back.
    for cap in 0..64u32 {
        // Past the last capability the kernel knows: EINVAL, ignored.
        let _ = rustix::thread::remove_capability_from_bounding_set(
            rustix::thread::CapabilitySet::from_bits_retain(1 << cap),
        );
    }
    let _ = rustix::thread::set_capabilities_secure_bits(
        rustix::thread::CapabilitiesSecureBits::NO_ROOT
            | rustix::thread::CapabilitiesSecureBits::NO_ROOT_LOCKED,
    );
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(w) = who {
        // std sets the group, drops supplementary groups (as root) and the user, in order.
        cmd.gid(w.gid).uid(w.uid);
    }
    // Without a user change the sets are emptied here; with one, setuid must still be allowed
    // (CAP_SETUID), and the kernel empties them when uid 0 becomes another (keep-caps is off).
    if who.is_none() {
        if let Err(e) = clear_sets() {
            return format!("cannot drop capabilities: {e}");
        }
    }
    if let Err(e) = rustix::thread::clear_ambient_capability_set() {
        return format!("cannot clear ambient capabilities: {e}");
    }
    if let Err(e) = rustix::thread::set_no_new_privs(true) {
        return format!("cannot set no_new_privs: {e}");
    }
    let e = cmd.exec();
    format!("cannot run {program}: {e}")
}

fn clear_sets() -> rustix::io::Result<()> {
    let empty = rustix::thread::CapabilitySet::empty();
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: empty,
            permitted: empty,
            inheritable: empty,
        },
    )
}

/// The file `program` runs: itself with a `/`, else the first match on `PATH`.
fn locate(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Why `path` (or a directory above it) could be changed by a user other than root, if so:
/// owned by another user, or writable by a group other than root's or by anyone (a directory
/// with the sticky bit lets no one replace another's file, as /tmp).
pub fn insecure(path: &Path) -> Option<String> {
    let mut p = path.to_path_buf();
    if let Ok(real) = std::fs::canonicalize(&p) {
        p = real;
    }
    let mut at: Option<&Path> = Some(&p);
    while let Some(cur) = at {
        let Ok(meta) = std::fs::metadata(cur) else {
            return Some(format!("{} cannot be read", cur.display()));
        };
        let mode = meta.mode();
        let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
        if meta.uid() != 0 {
            return Some(format!(
                "{} is owned by uid {}, not root",
                cur.display(),
                meta.uid()
            ));
        }
        if mode & 0o020 != 0 && meta.gid() != 0 && !sticky_dir {
            return Some(format!(
                "{} is writable by group {}",
                cur.display(),
                meta.gid()
            ));
        }
        if mode & 0o002 != 0 && !sticky_dir {
            return Some(format!("{} is writable by everyone", cur.display()));
        }
        at = cur.parent();
    }
    None
}

/// Every program the configuration runs (exec checks, notify commands), with where it is set.
pub fn programs(config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, c) in &config.checks {
        if let Some(p) = c.command.as_ref().and_then(|c| c.first()) {
            out.push((format!("checks.{name}.command"), p.clone()));
        }
    }
    let mut notify = |at: String, n: &crate::config::Notify| {
        for (key, argv) in n.commands() {
            if let Some(p) = argv.first() {
                out.push((format!("{at}.notify.{key}"), p.clone()));
            }
        }
    };
    for (name, i) in &config.instances {
        notify(format!("instances.{name}"), &i.notify);
    }
    for (name, g) in &config.sync_groups {
        notify(format!("sync_groups.{name}"), &g.notify);
    }
    out
}

/// Before a configuration runs: every `run_as` names a user that exists, and, when ha-lb runs
/// as root, no program it runs can be changed by another user (keepalived's script security).
///
/// # Errors
///
/// A message naming the key and the file (or user).
pub fn verify(config: &Config) -> Result<(), String> {
    let mut users: Vec<(String, &str)> = Vec::new();
    if let Some(u) = &config.global.run_as {
        users.push(("global.run_as".into(), u));
    }
    for (name, c) in &config.checks {
        if let Some(u) = &c.run_as {
            users.push((format!("checks.{name}.run_as"), u));
        }
    }
    for (name, i) in &config.instances {
        if let Some(u) = &i.notify.run_as {
            users.push((format!("instances.{name}.notify.run_as"), u));
        }
    }
    for (name, g) in &config.sync_groups {
        if let Some(u) = &g.notify.run_as {
            users.push((format!("sync_groups.{name}.notify.run_as"), u));
        }
    }
    for (key, u) in users {
        resolve(u).map_err(|e| format!("{key}: {e}"))?;
    }
    // An exec check's program given by path must be there and executable (as healthcheck
    // checked before the sandbox stood in front of it): a typo is an error at load, not a
    // check that fails for ever.
    for (key, program) in programs(config) {
        if !key.starts_with("checks.") || !program.contains('/') {
            continue;
        }
        let runnable =
            std::fs::metadata(&program).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
        if !runnable {
            return Err(format!(
                "{key}: {program} is not an executable file (missing, or chmod +x?)"
            ));
        }
    }
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    for (key, program) in programs(config) {
        // A missing program fails when it runs (logged then), as before.
        let Some(file) = locate(&program) else {
            tracing::warn!(key = %key, program = %program, "program not found");
            continue;
        };
        if let Some(why) = insecure(&file) {
            return Err(format!(
                "{key}: refusing to run {} as root: {why}; a user who can change it could run \
                 anything as root (make it and its directories root's, not writable by others)",
                file.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxed_argv() {
        let argv = vec!["/bin/true".to_owned(), "-x".to_owned()];
        assert_eq!(
            sandboxed(Some("nobody:nogroup"), &argv),
            vec![
                "/proc/self/exe",
                "sandbox",
                "--run-as",
                "nobody:nogroup",
                "--",
                "/bin/true",
                "-x"
            ]
        );
        assert_eq!(sandboxed(None, &argv)[2], "--");
    }

    #[test]
    fn verify_names_a_missing_check_program_and_an_unknown_user() {
        let config = |command: &str, run_as: &str| -> Config {
            toml::from_str(&format!(
                "[checks.c]\nkind = \"exec\"\ncommand = [\"{command}\"]\nrun_as = \"{run_as}\"\n"
            ))
            .unwrap()
        };
        assert!(verify(&config("/bin/true", "root")).is_ok());
        let e = verify(&config("/nonexistent/check.sh", "root")).unwrap_err();
        assert!(
            e.contains("checks.c.command") && e.contains("/nonexistent/check.sh"),
            "{e}"
        );
        let e = verify(&config("/bin/true", "no-such-user-halb")).unwrap_err();
        assert!(
            e.contains("checks.c.run_as") && e.contains("no user"),
            "{e}"
        );
    }

    #[test]
    fn resolves_users_and_groups() {
        assert_eq!(resolve("root").unwrap(), RunAs { uid: 0, gid: 0 });
        assert_eq!(resolve("0:0").unwrap(), RunAs { uid: 0, gid: 0 });
        assert_eq!(
            resolve("4242").unwrap(),
            RunAs {
                uid: 4242,
                gid: 4242
            }
        );
        assert!(resolve("no-such-user-halb")
            .unwrap_err()
            .contains("no user"));
        assert!(resolve("root:no-such-group-halb")
            .unwrap_err()
            .contains("no group"));
    }

    #[test]
    fn files_others_can_change_are_insecure() {
        assert_eq!(insecure(Path::new("/bin/sh")), None);
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("halb-scripts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("check.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
        };
        chmod(&dir, 0o755);
        chmod(&script, 0o755);
        // /tmp is sticky: fine.
        assert_eq!(insecure(&script), None);
        chmod(&script, 0o757);
        assert!(insecure(&script).unwrap().contains("writable by everyone"));
        chmod(&script, 0o755);
        chmod(&dir, 0o777);
        assert!(insecure(&script).unwrap().contains("writable by everyone"));
        chmod(&dir, 0o755);
        std::os::unix::fs::chown(&script, Some(65534), None).unwrap();
        assert!(insecure(&script).unwrap().contains("owned by uid 65534"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
