//! Notify commands (keepalived's `notify_master` & co): for one instance they run in order,
//! one at a time, from a queue, so a quick Backup -> Master -> Backup never runs two scripts at
//! once nor out of order; the VRRP loop never waits for them.

use std::process::Stdio;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vrrp_core::State;

use crate::config::Notify;

/// Longest a notify command may run before it is killed, so a hung script cannot block the
/// queue for ever.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The notify queue of one instance.
#[derive(Debug)]
pub struct Notifier {
    tx: Option<mpsc::UnboundedSender<Vec<String>>>,
    task: Option<JoinHandle<()>>,
}

/// The argument vectors to run when `name` (an `INSTANCE` or a `GROUP`: `kind`) enters
/// `state`, in order: the state's own command, then `any` with `KIND NAME STATE PRIORITY`
/// appended (keepalived's `notify`).
pub fn commands_for(
    notify: &Notify,
    kind: &str,
    name: &str,
    state: &str,
    priority: u8,
) -> Vec<Vec<String>> {
    let own = match state {
        "MASTER" => notify.master.clone(),
        "BACKUP" => notify.backup.clone(),
        "FAULT" => notify.fault.clone(),
        "STOP" => notify.stop.clone(),
        _ => None,
    };
    let any = notify.any.clone().map(|mut argv| {
        argv.extend([
            kind.to_owned(),
            name.to_owned(),
            state.to_owned(),
            priority.to_string(),
        ]);
        argv
    });
    let run_as = notify.run_as.clone().or_else(super::scripts::global_run_as);
    own.into_iter()
        .chain(any)
        .filter(|a| !a.is_empty())
        .map(|argv| super::scripts::sandboxed(run_as.as_deref(), &argv))
        .collect()
}

/// keepalived's name of a state in notify arguments.
pub fn state_word(state: State) -> Option<&'static str> {
    match state {
        State::Master => Some("MASTER"),
        State::Backup => Some("BACKUP"),
        State::Fault => Some("FAULT"),
        State::Initialize => None,
    }
}

impl Notifier {
    /// Starts the queue of `instance` (a task that runs one command at a time).
    pub fn start(instance: &str) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
        let name = instance.to_owned();
        let task = tokio::spawn(async move {
            while let Some(argv) = rx.recv().await {
                run(&name, &argv).await;
            }
        });
        Notifier {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Queues the commands.
    pub fn queue(&self, commands: Vec<Vec<String>>) {
        if let Some(tx) = &self.tx {
            for c in commands {
                let _ = tx.send(c);
            }
        }
    }

    /// Closes the queue and waits (up to `deadline`) for the queued commands to finish.
    pub async fn finish(mut self, deadline: Duration) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(deadline, task).await;
        }
    }
}

async fn run(instance: &str, argv: &[String]) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        // stdout is the worker's report channel to the supervisor: never hand it on.
        .stdout(Stdio::from(std::io::stderr()))
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(instance, command = ?argv, error = %e, "notify command cannot start");
            return;
        }
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => {
            tracing::info!(instance, command = ?argv, "notify command done");
        }
        Ok(Ok(out)) => {
            tracing::warn!(instance, command = ?argv, status = %out.status, "notify command failed");
        }
        Ok(Err(e)) => tracing::error!(instance, command = ?argv, error = %e, "notify command"),
        Err(_) => {
            tracing::error!(instance, command = ?argv, "notify command timed out and was killed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_then_any_with_keepalived_arguments() {
        let notify = Notify {
            master: Some(vec!["/bin/m".into()]),
            any: Some(vec!["/bin/any".into(), "x".into()]),
            ..Notify::default()
        };
        let c = commands_for(&notify, "INSTANCE", "VI_1", "MASTER", 150);
        assert_eq!(c[0], vec!["/proc/self/exe", "sandbox", "--", "/bin/m"]);
        assert_eq!(
            c[1][3..],
            ["/bin/any", "x", "INSTANCE", "VI_1", "MASTER", "150"]
        );
        let as_nobody = Notify {
            run_as: Some("nobody".into()),
            ..notify.clone()
        };
        let c = commands_for(&as_nobody, "INSTANCE", "VI_1", "MASTER", 150);
        assert_eq!(
            c[0][..4],
            ["/proc/self/exe", "sandbox", "--run-as", "nobody"]
        );
        assert_eq!(
            commands_for(&notify, "INSTANCE", "VI_1", "BACKUP", 150).len(),
            1
        );
    }

    #[tokio::test]
    async fn runs_in_order_one_at_a_time() {
        let dir = std::env::temp_dir().join(format!("halb-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let n = Notifier::start("t");
        for i in 0..5 {
            // Each appends its number after a short sleep: overlap or reordering would show.
            let script = format!("sleep 0.0{}; echo {i} >> {}", 5 - i, log.display());
            n.queue(vec![vec!["/bin/sh".into(), "-c".into(), script]]);
        }
        n.finish(Duration::from_secs(20)).await;
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "0\n1\n2\n3\n4\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
