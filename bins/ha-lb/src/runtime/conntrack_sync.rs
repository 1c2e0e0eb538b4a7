//! `[conntrack_sync]` at run time: ha-lb writes conntrackd's configuration, starts the daemon
//! (or keeps the one an earlier worker of this node started with the same configuration) and
//! drives it on the instance's transitions, as keepalived's `primary-backup.sh` does.
//!
//! conntrackd runs in FTFW mode with its external cache disabled: the states the peer sends
//! are written into this node's kernel table as they come, so the node that takes the VIP
//! already holds every flow's translation when the first packet of the flow reaches it; a
//! commit after the transition would leave a window in which a packet creates a new, wrongly
//! translated entry (a TCP reset for the client). On becoming Master conntrackd takes the
//! flows as its own and sends them to the peer (`-c`, `-f`, `-R`, `-B`); on becoming Backup it
//! asks the Master for a full resync (`-n`). `-t` (shorten the kernel timers) is not used:
//! without an external cache it would flush the synced states.
//!
//! conntrackd does not copy TCP sequence windows: a node taking over a flow would find the
//! packets outside the window its entry last saw and mark them invalid (not translated). ha-lb
//! sets `net.netfilter.nf_conntrack_tcp_be_liberal = 1` in its network namespace, as the
//! conntrack-tools documentation advises for such setups.
//!
//! The daemon lives apart from ha-lb's processes (it detaches), so a killed worker leaves it
//! running and the restarted worker keeps it; a graceful stop kills it (`-k`). ha-lb asks it
//! every few seconds whether it runs, and starts a daemon that died again.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vrrp_core::State;

use crate::config::{self, ConntrackSync, CONNTRACKD_CONF, CONNTRACKD_LOCK, CONNTRACKD_SOCKET};

/// Longest a conntrackd client command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a starting daemon may take to answer on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the daemon is asked whether it runs (`conntrackd -s`, a short-lived client).
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Why conntrackd could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// The state directory or the configuration file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The program could not be run.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The daemon did not start (its own message, if it wrote one).
    #[error("conntrackd did not start: {0}")]
    NotStarted(String),
}

/// conntrackd's configuration for `sync`: FTFW over UDP unicast on the sync link, the
/// external cache disabled, TCP states only, the node's own sync address ignored.
pub fn render(sync: &ConntrackSync) -> String {
    let dir = &sync.state_dir;
    let (v, local_key, peer_key, loopback) = if sync.local.is_ipv4() {
        (
            "IPv4",
            "IPv4_address",
            "IPv4_Destination_Address",
            "127.0.0.1",
        )
    } else {
        ("IPv6", "IPv6_address", "IPv6_Destination_Address", "::1")
    };
    format!(
        "# Written by ha-lb from [conntrack_sync]; rewritten at each start and reload.\n\
         Sync {{\n\
         \tMode FTFW {{\n\
         \t\tDisableExternalCache on\n\
         \t\tResendQueueSize 131072\n\
         \t}}\n\
         \tUDP {{\n\
         \t\t{local_key} {local}\n\
         \t\t{peer_key} {peer}\n\
         \t\tPort {port}\n\
         \t\tInterface {interface}\n\
         \t\tSndSocketBuffer 1249280\n\
         \t\tRcvSocketBuffer 1249280\n\
         \t\tChecksum on\n\
         \t}}\n\
         }}\n\
         General {{\n\
         \tHashSize 32768\n\
         \tHashLimit 131072\n\
         \tLogFile {log}\n\
         \tSyslog off\n\
         \tLockFile {lock}\n\
         \tUNIX {{\n\
         \t\tPath {socket}\n\
         \t}}\n\
         \tNetlinkBufferSize 2097152\n\
         \tNetlinkBufferSizeMaxGrowth 8388608\n\
         \tFilter From Userspace {{\n\
         \t\tProtocol Accept {{\n\
         \t\t\tTCP\n\
         \t\t}}\n\
         \t\tAddress Ignore {{\n\
         \t\t\t{v}_address {loopback}\n\
         \t\t\t{v}_address {local}\n\
         \t\t}}\n\
         \t}}\n\
         }}\n",
        local = sync.local,
        peer = sync.peer,
        port = sync.port,
        interface = sync.interface,
        log = dir.join("conntrackd.log").display(),
        lock = dir.join(CONNTRACKD_LOCK).display(),
        socket = dir.join(CONNTRACKD_SOCKET).display(),
    )
}

/// The conntrackd client commands for a transition of the driving instance, in order.
pub fn commands_for(state: State) -> &'static [&'static str] {
    match state {
        // Commit what the external cache holds (nothing, it is off: kept for a daemon
        // configured otherwise), make the kernel's flows our own, send them all to the peer.
        State::Master => &["-c", "-f", "-R", "-B"],
        // The Master sends everything it has: written into our kernel table.
        State::Backup => &["-n"],
        _ => &[],
    }
}

/// The running sync: the daemon's configuration and the queue of client commands.
#[derive(Debug, Default)]
pub struct Conntrack {
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    sync: ConntrackSync,
    instance: String,
    tx: mpsc::UnboundedSender<&'static [&'static str]>,
    task: JoinHandle<()>,
}

impl Conntrack {
    /// Starts, keeps, restarts or stops conntrackd for `config` (start and reload).
    ///
    /// # Errors
    ///
    /// [`ConntrackError`] when the daemon cannot be started; the old one (if any) is gone.
    pub async fn apply(&mut self, config: &config::Config) -> Result<(), ConntrackError> {
        let wanted = config.conntrack_sync.as_ref().and_then(|s| {
            s.driving_instance(config.instances.keys())
                .map(|i| (s.clone(), i.to_owned()))
        });
        match (&mut self.running, wanted) {
            (Some(r), Some((sync, instance))) if r.sync == sync => {
                r.instance = instance;
                Ok(())
            }
            (_, None) => {
                self.stop().await;
                Ok(())
            }
            (_, Some((sync, instance))) => {
                self.stop().await;
                ensure_daemon(&sync).await?;
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(drive(sync.clone(), rx));
                tracing::info!(
                    interface = %sync.interface,
                    local = %sync.local,
                    peer = %sync.peer,
                    %instance,
                    "conntrack sync: conntrackd running"
                );
                self.running = Some(Running {
                    sync,
                    instance,
                    tx,
                    task,
                });
                Ok(())
            }
        }
    }

    /// A transition of `instance` to `state`: its conntrackd commands are queued.
    pub fn state_changed(&self, instance: &str, state: State) {
        let Some(r) = &self.running else { return };
        if r.instance != instance {
            return;
        }
        let commands = commands_for(state);
        if !commands.is_empty() {
            let _ = r.tx.send(commands);
        }
    }

    /// Graceful stop: the queued commands run, then the daemon is told to exit.
    pub async fn stop(&mut self) {
        let Some(r) = self.running.take() else { return };
        drop(r.tx);
        let _ = r.task.await;
        match client(&r.sync, "-k").await {
            Ok(()) => tracing::info!("conntrack sync: conntrackd stopped"),
            Err(e) => tracing::warn!(error = %e, "conntrack sync: conntrackd -k failed"),
        }
    }
}

/// Runs the queued command lists one at a time, in order, and watches the daemon: one that
/// died is started again within [`WATCH_EVERY`] and given the commands of the instance's
/// current state (a restarted Backup asks the Master for everything, a restarted Master
/// sends everything it has), so the peer's flows are not missing at the next handover. A
/// transition that finds the daemon dead starts it first (as `primary-backup.sh` does).
async fn drive(sync: ConntrackSync, mut rx: mpsc::UnboundedReceiver<&'static [&'static str]>) {
    let mut watch = tokio::time::interval(WATCH_EVERY);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: the daemon was just started.
    watch.tick().await;
    let mut last: Option<&'static [&'static str]> = None;
    loop {
        let commands = tokio::select! {
            commands = rx.recv() => {
                let Some(commands) = commands else { return };
                last = Some(commands);
                match revive(&sync, "does not answer").await {
                    Daemon::Down => continue,
                    Daemon::Answered | Daemon::Restarted => commands,
                }
            }
            _ = watch.tick() => match (revive(&sync, "died").await, last) {
                (Daemon::Restarted, Some(commands)) => commands,
                _ => continue,
            },
        };
        for flag in commands {
            match client(&sync, flag).await {
                Ok(()) => tracing::debug!(flag, "conntrackd command done"),
                Err(e) => tracing::warn!(flag, error = %e, "conntrackd command failed"),
            }
        }
    }
}

/// What [`revive`] found.
enum Daemon {
    Answered,
    /// It did not answer and was started again.
    Restarted,
    /// It did not answer and could not be started (tried again at the next watch).
    Down,
}

/// Asks the daemon whether it runs, and starts it again if it does not answer (`dead` says
/// so in the log).
async fn revive(sync: &ConntrackSync, dead: &str) -> Daemon {
    if answers(sync).await {
        return Daemon::Answered;
    }
    tracing::warn!("conntrack sync: conntrackd {dead}: starting it again");
    match ensure_daemon(sync).await {
        Ok(()) => Daemon::Restarted,
        Err(e) => {
            tracing::error!(error = %e, "conntrack sync: conntrackd not running (tried again in {WATCH_EVERY:?})");
            Daemon::Down
        }
    }
}

/// Runs `conntrackd -C CONF FLAG` against the daemon.
async fn client(sync: &ConntrackSync, flag: &str) -> Result<(), String> {
    let conf = sync.state_dir.join(CONNTRACKD_CONF);
    let out = tokio::process::Command::new(&sync.program)
        .arg("-C")
        .arg(&conf)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(COMMAND_TIMEOUT, out).await {
        Err(_) => Err(format!("no answer within {COMMAND_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(o)) if o.status.success() => Ok(()),
        Ok(Ok(o)) => Err(format!(
            "{}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// Whether a daemon answers on the control socket of `sync`'s configuration.
async fn answers(sync: &ConntrackSync) -> bool {
    sync.state_dir.join(CONNTRACKD_SOCKET).exists() && client(sync, "-s").await.is_ok()
}

/// The sysctl that stops conntrack from marking taken-over TCP packets invalid.
const TCP_BE_LIBERAL: &str = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal";

/// Writes the configuration and makes sure a daemon with it runs: one that answers with the
/// same configuration on disk is kept (a restarted worker), otherwise it is restarted.
async fn ensure_daemon(sync: &ConntrackSync) -> Result<(), ConntrackError> {
    let dir = &sync.state_dir;
    match std::fs::read_to_string(TCP_BE_LIBERAL) {
        Ok(v) if v.trim() == "1" => {}
        _ => match std::fs::write(TCP_BE_LIBERAL, "1") {
            Ok(()) => {
                tracing::info!("conntrack sync: net.netfilter.nf_conntrack_tcp_be_liberal set to 1")
            }
            Err(e) => {
                tracing::warn!(error = %e, "conntrack sync: cannot set nf_conntrack_tcp_be_liberal: flows taken over may be dropped")
            }
        },
    }
    std::fs::create_dir_all(dir).map_err(|source| ConntrackError::Write {
        path: dir.clone(),
        source,
    })?;
    let conf = dir.join(CONNTRACKD_CONF);
    let text = render(sync);
    let same = std::fs::read_to_string(&conf).is_ok_and(|t| t == text);
    if same && answers(sync).await {
        tracing::info!("conntrack sync: keeping the running conntrackd");
        return Ok(());
    }
    if answers(sync).await {
        // Told to exit with its own (old) configuration's socket, which is the same path.
        let _ = client(sync, "-k").await;
        wait_gone(&dir.join(CONNTRACKD_LOCK)).await;
    }
    std::fs::write(&conf, &text).map_err(|source| ConntrackError::Write {
        path: conf.clone(),
        source,
    })?;
    // Nobody answers: a lock file left by a killed daemon would stop the new one.
    let _ = std::fs::remove_file(dir.join(CONNTRACKD_LOCK));
    let _ = std::fs::remove_file(dir.join(CONNTRACKD_SOCKET));
    let out = tokio::process::Command::new(&sync.program)
        .arg("-C")
        .arg(&conf)
        .arg("-d")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|source| ConntrackError::Spawn {
            program: sync.program.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(ConntrackError::NotStarted(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if answers(sync).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.join("conntrackd.log")).unwrap_or_default();
    Err(ConntrackError::NotStarted(format!(
        "no answer on {} within {START_TIMEOUT:?}; its log: {}",
        dir.join(CONNTRACKD_SOCKET).display(),
        log.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
    )))
}

/// Waits (a little) for a killed daemon to remove its lock file.
async fn wait_gone(lock: &Path) {
    for _ in 0..40 {
        if !lock.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(local: &str, peer: &str) -> ConntrackSync {
        ConntrackSync {
            interface: "eth1".into(),
            local: local
                .parse()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            peer: peer.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            instance: None,
            port: 3780,
            program: config::DEFAULT_CONNTRACKD.into(),
            state_dir: "/run/x".into(),
        }
    }

    #[test]
    fn ipv4_configuration() {
        let text = render(&sync("198.51.100.1", "198.51.100.2"));
        for line in [
            "Mode FTFW {",
            "DisableExternalCache on",
            "IPv4_address 198.51.100.1",
            "IPv4_Destination_Address 198.51.100.2",
            "Port 3780",
            "Interface eth1",
            "LockFile /run/x/conntrackd.lock",
            "Path /run/x/conntrackd.ctl",
            "IPv4_address 127.0.0.1",
        ] {
            assert!(text.lines().any(|l| l.trim() == line), "{line}\n{text}");
        }
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn ipv6_configuration() {
        let text = render(&sync("2001:db8::1", "2001:db8::2"));
        assert!(text.contains("IPv6_address 2001:db8::1"));
        assert!(text.contains("IPv6_Destination_Address 2001:db8::2"));
        assert!(text.contains("IPv6_address ::1"));
        assert!(!text.contains("IPv4"));
    }

    #[test]
    fn transitions_map_to_primary_backup_commands() {
        assert_eq!(commands_for(State::Master), ["-c", "-f", "-R", "-B"]);
        assert_eq!(commands_for(State::Backup), ["-n"]);
        assert!(commands_for(State::Fault).is_empty());
        assert!(commands_for(State::Initialize).is_empty());
    }
}
