//! What a worker tells its supervisor (one line on its stdout per event: `held NAME 1|0`,
//! `ready`, `reloading`, `alive`), or systemd directly when it runs without one
//! (`--no-supervisor`). The runtime reports through here; the supervisor reads the lines
//! ([`to_systemd`]) and acts on them (see [`crate::supervisor`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sd_notify;

/// Exit status of a worker that cannot start (bad configuration, missing privileges): the
/// supervisor does not restart it.
pub const EXIT_FATAL: i32 = 78;

static WORKER: AtomicBool = AtomicBool::new(false);

/// Makes this process a worker: it reports held instances on stdout, and dies with its parent.
pub fn become_worker() {
    WORKER.store(true, Ordering::SeqCst);
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        tracing::warn!(error = %e, "cannot set the parent-death signal");
    }
    // The parent may have died before the prctl: then we were re-parented.
    if nix::unistd::getppid() == Pid::from_raw(1) {
        tracing::error!("supervisor gone: exiting");
        std::process::exit(EXIT_FATAL);
    }
}

fn report(line: &str) {
    if WORKER.load(Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        // The supervisor reads these; if it is gone, nobody needs them.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Worker side: tells the supervisor whether `instance` is now held as Master.
pub fn report_held(instance: &str, master: bool) {
    report(&format!("held {instance} {}", u8::from(master)));
}

/// Tells the supervisor (worker) or systemd (`--no-supervisor`) that everything started:
/// instances and listeners are up. The supervisor passes it on to systemd as `READY=1`.
pub fn report_ready() {
    if WORKER.load(Ordering::SeqCst) {
        report("ready");
    } else {
        sd_notify::notify(READY);
    }
}

/// Like [`report_ready`], for the start of a SIGHUP reload (systemd's `RELOADING=1`).
pub fn report_reloading() {
    if WORKER.load(Ordering::SeqCst) {
        report("reloading");
    } else {
        sd_notify::notify(&sd_notify::reloading_message());
    }
}

/// Like [`report_ready`], from each turn of the worker's event loop at the watchdog's pace
/// (systemd's `WATCHDOG=1`): a hung worker stops sending them and systemd restarts the service.
pub fn report_alive() {
    if WORKER.load(Ordering::SeqCst) {
        report("alive");
    } else {
        sd_notify::notify("WATCHDOG=1");
    }
}

/// How often the event loop must call [`report_alive`]: half the systemd watchdog timeout
/// (`$WATCHDOG_USEC`), or `None` without a watchdog. A worker takes its supervisor's
/// (which removed it from the worker's environment when it was meant for nobody).
pub fn watchdog_interval() -> Option<Duration> {
    let pid = if WORKER.load(Ordering::SeqCst) {
        nix::unistd::getppid().as_raw().unsigned_abs()
    } else {
        std::process::id()
    };
    sd_notify::watchdog_timeout(pid).map(sd_notify::ping_interval)
}

pub(crate) const READY: &str = "READY=1\nSTATUS=running";

/// Supervisor side: what one line from the worker means to systemd.
pub fn to_systemd(line: &str) -> Option<String> {
    match line {
        "ready" => Some(READY.to_owned()),
        "reloading" => Some(sd_notify::reloading_message()),
        "alive" => Some("WATCHDOG=1".to_owned()),
        _ => None,
    }
}
