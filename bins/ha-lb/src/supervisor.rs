//! Master-worker: `ha-lb run` is a small supervisor; the work (VRRP, checks, balancer) runs in
//! a child process, as keepalived and haproxy do.
//!
//! Why: a crash must not cost a full Master_Down_Interval. The worker tells the supervisor,
//! one line on its stdout per change, which instances it holds as Master (`held NAME 1|0`).
//! When the worker dies unexpectedly the supervisor at once sends priority-0 adverts for those
//! instances (the backup takes over after Skew_Time instead of Master_Down_Interval), removes
//! their VIPs, and restarts the worker. SIGTERM/SIGINT/SIGHUP are passed on to the worker; the
//! worker dies with the supervisor (PR_SET_PDEATHSIG).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};
use vrrp_core::packet::{AddressList, Advertisement, IpContext};

use crate::config::Config;
use crate::net::{Addresses, IfAddr, Interface, VrrpSocket, VrrpSocketConfig};
use crate::reporting::{to_systemd, EXIT_FATAL};
use crate::runtime::{self, RuntimeError};
use crate::sd_notify;

/// How the supervisor runs its worker.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file.
    pub config_path: PathBuf,
    /// The worker's command line (program and arguments).
    pub worker: Vec<String>,
}

/// Sends priority-0 adverts for the instances a dead worker held as Master and removes their
/// VIPs, so the backup takes over within Skew_Time.
pub fn release(config: &Config, held: &BTreeSet<String>) {
    for name in held {
        let Some(inst) = config.instances.get(name) else {
            continue;
        };
        match release_one(name, inst) {
            Ok(sent) => {
                tracing::warn!(instance = %name, adverts = sent, "released for the dead worker: priority 0 sent, VIPs removed")
            }
            Err(e) => {
                tracing::error!(instance = %name, error = %e, "cannot release for the dead worker")
            }
        }
    }
}

/// Removes the NAT listeners' nftables table a dead worker left: nobody follows the
/// backends' health any more (the restarted worker programs it again).
fn release_nat(config: &Config) {
    let nat = config
        .listeners
        .values()
        .any(|l| l.mode == crate::config::ListenerMode::Nat);
    if !nat {
        return;
    }
    match crate::net::nat::remove() {
        Ok(()) => tracing::warn!("NAT listeners' rules removed for the dead worker"),
        Err(e) => tracing::error!(error = %e, "cannot remove the dead worker's NAT rules"),
    }
}

fn release_one(name: &str, inst: &crate::config::Instance) -> Result<usize, RuntimeError> {
    let err = |source| RuntimeError::Instance {
        instance: name.to_owned(),
        source,
    };
    let iface = Interface::by_name(&inst.interface).map_err(err)?;
    let source = runtime::router_config::source_address(name, inst, &iface)?;
    // The advert a stopping master sends: priority 0, with the instance's VRID, interval,
    // authentication and VIPs, to the group or each unicast peer.
    let config = runtime::router_config::router_config(name, inst, source, Vec::new())?;
    let setting = |e: vrrp_core::packet::PacketError| RuntimeError::InstanceSetting {
        instance: name.to_owned(),
        message: e.to_string(),
    };
    let vips = AddressList::encode(config.family(), &config.virtual_addresses).map_err(setting)?;
    let advert = Advertisement {
        version: config.version,
        vrid: config.vrid,
        priority: vrrp_core::PRIORITY_STOP,
        interval_cs: config.advert_interval_cs,
        auth: config.auth,
        addresses: vips.as_list(),
    };
    let group = [config.family().multicast_group()];
    let destinations = if config.unicast_peers.is_empty() {
        &group[..]
    } else {
        &config.unicast_peers[..]
    };
    let socket = VrrpSocket::open(
        &iface,
        &VrrpSocketConfig {
            source,
            join_group: false,
        },
    )
    .map_err(err)?;
    let mut sent = 0;
    let mut buf = vec![0u8; advert.buffer_len()];
    for &dst in destinations {
        let ctx = IpContext {
            src: source,
            dst,
            checksum: config.checksum,
        };
        let len = advert.emit(&mut buf, &ctx).map_err(setting)?;
        if socket.send_to(&buf[..len], dst).is_ok() {
            sent += 1;
        }
    }
    // The VMAC interface goes with the VIPs on it; the restarted worker makes it again.
    if let Some(vmac) = inst.vmac() {
        crate::net::vmac::delete(&vmac).map_err(err)?;
    }
    let mut addresses = Addresses::new().map_err(err)?;
    for vip in &inst.vips {
        let ifindex = match &vip.dev {
            Some(dev) => Interface::by_name(dev).map_err(err)?.index(),
            None => iface.index(),
        };
        addresses
            .remove(ifindex, IfAddr::new(vip.address, vip.prefix))
            .map_err(err)?;
    }
    Ok(sent)
}

/// Restarts allowed in a row before the pause between them grows.
const QUICK_RESTARTS: u32 = 3;

/// Runs the worker until a stop signal; restarts it when it dies. Returns the exit code.
///
/// # Errors
///
/// [`RuntimeError`] when the configuration is invalid or signals cannot be handled.
pub async fn supervise(options: Options) -> Result<i32, RuntimeError> {
    let mut config = runtime::load(&options.config_path)?;
    if !config.instances.is_empty() {
        runtime::capabilities::require_vrrp()?;
    }
    if !config.anycast.is_empty() {
        runtime::capabilities::require_net_admin()?;
    }
    let mut term = signal(SignalKind::terminate()).map_err(RuntimeError::io("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(RuntimeError::io("SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(RuntimeError::io("SIGHUP handler"))?;
    let mut restarts: u32 = 0;
    let systemd = sd_notify::Notifier::from_env();
    // The worker's watchdog pings come through us: it gets the timeout only when it is ours.
    let watchdog = sd_notify::watchdog_timeout(std::process::id());
    loop {
        let Some((program, args)) = options.worker.split_first() else {
            return Ok(EXIT_FATAL);
        };
        let mut command = tokio::process::Command::new(program);
        command
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_PID");
        match watchdog {
            Some(t) => command.env("WATCHDOG_USEC", t.as_micros().to_string()),
            None => command.env_remove("WATCHDOG_USEC"),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(RuntimeError::io("start the worker"))?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw);
        tracing::info!(pid = ?pid, "worker started");
        let started = Instant::now();
        let held = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        let reader = child.stdout.take().map(|out| {
            let held = held.clone();
            let systemd = systemd.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let (Some(n), Some(message)) = (&systemd, to_systemd(&line)) {
                        if let Err(e) = n.send(&message) {
                            tracing::warn!(error = %e, "cannot notify systemd");
                        }
                    }
                    let mut words = line.split_whitespace();
                    if let (Some("held"), Some(name), Some(flag)) =
                        (words.next(), words.next(), words.next())
                    {
                        let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
                        if flag == "1" {
                            h.insert(name.to_owned());
                        } else {
                            h.remove(name);
                        }
                    }
                }
            })
        });
        let forward = |sig: Signal| {
            if let Some(pid) = pid {
                let _ = kill(pid, sig);
            }
        };
        let mut stopping = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = term.recv() => { stopping = true; sd_notify::notify("STOPPING=1"); forward(Signal::SIGTERM); }
                _ = int.recv() => { stopping = true; sd_notify::notify("STOPPING=1"); forward(Signal::SIGTERM); }
                _ = hup.recv() => {
                    match runtime::load(&options.config_path) {
                        Ok(c) => config = c,
                        Err(e) => tracing::error!("supervisor keeps the running configuration: {e}"),
                    }
                    forward(Signal::SIGHUP);
                }
            }
        };
        // Read what the worker said up to its death (its stdout is closed now).
        if let Some(r) = reader {
            let _ = tokio::time::timeout(Duration::from_millis(200), r).await;
        }
        let held = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
        let status = status.map_err(RuntimeError::io("wait for the worker"))?;
        if stopping {
            tracing::info!(%status, "worker stopped");
            if !held.is_empty() {
                release(&config, &held);
            }
            // The worker withdrew them; a worker killed while stopping did not.
            runtime::anycast::release(&config);
            release_nat(&config);
            return Ok(status.code().unwrap_or(1));
        }
        if status.code() == Some(EXIT_FATAL) {
            tracing::error!(%status, "worker cannot run: not restarting it");
            release_nat(&config);
            return Ok(1);
        }
        tracing::error!(%status, held = ?held, "worker died: releasing its VIPs and restarting it");
        // Anycast routes first: their listeners are gone with the worker.
        runtime::anycast::release(&config);
        release(&config, &held);
        release_nat(&config);
        // Quick restarts, then slower ones if it keeps dying at once.
        if started.elapsed() > Duration::from_secs(30) {
            restarts = 0;
        }
        restarts += 1;
        let pause = if restarts <= QUICK_RESTARTS {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = term.recv() => return Ok(0),
            _ = int.recv() => return Ok(0),
        }
    }
}
