//! The health monitors the configuration asks for, and their current states.
//!
//! A check with its own target (an `address`, or exec/process) runs once; a tcp/http/https
//! check without `address` is a template run once per backend that names it, at the backend's
//! address. Every transition is forwarded as a [`HealthEvent`] to the runtime, which sets the
//! balancer's backend states and the instances' tracked objects from it. On reload, monitors
//! whose definition did not change keep running (and keep their state).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use healthcheck::{
    CheckConfig, ExecConfig, HttpConfig, Monitor, MonitorConfig, ProcessConfig, State, StatusMatch,
    TcpConfig, TlsConfig,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::error::RuntimeError;
use crate::config::{self, CheckKind, Config};

/// Which monitor: a check, at its own target (`None`) or at a backend's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MonitorKey {
    /// The `[checks.NAME]`.
    pub check: String,
    /// The backend probed, for a template check.
    pub target: Option<SocketAddr>,
}

impl std::fmt::Display for MonitorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target {
            None => write!(f, "{}", self.check),
            Some(t) => write!(f, "{}@{t}", self.check),
        }
    }
}

/// A state change of one monitor.
#[derive(Debug, Clone)]
pub struct HealthEvent {
    /// The monitor.
    pub key: MonitorKey,
    /// Which incarnation of it (a reload that changes a check starts a new one).
    pub generation: u64,
    /// The new state.
    pub state: State,
    /// The transition as healthcheck describes it (with the failure that caused it).
    pub reason: String,
}

struct Entry {
    check: config::Check,
    generation: u64,
    monitor: Monitor,
}

/// The running monitors.
pub struct Health {
    monitors: BTreeMap<MonitorKey, Entry>,
    events: mpsc::UnboundedSender<HealthEvent>,
    next_generation: u64,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("monitors", &self.monitors.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether a check is probed at each backend's address rather than at its own.
pub fn is_template(check: &config::Check) -> bool {
    matches!(
        check.kind,
        CheckKind::Tcp | CheckKind::Http | CheckKind::Https
    ) && check.address.is_none()
}

/// The monitor that decides a backend's health, if any.
pub fn backend_key(config: &Config, backend: &config::Backend) -> Option<MonitorKey> {
    let name = backend.check.as_ref()?;
    let check = config.checks.get(name)?;
    Some(MonitorKey {
        check: name.clone(),
        target: is_template(check).then_some(backend.address),
    })
}

/// `check` with the global `run_as` when it has none (so that changing it restarts the check).
fn with_run_as(config: &Config, check: &config::Check) -> config::Check {
    let mut c = check.clone();
    if c.kind == CheckKind::Exec && c.run_as.is_none() {
        c.run_as.clone_from(&config.global.run_as);
    }
    c
}

/// Every monitor a configuration needs, with its check.
fn wanted(config: &Config) -> BTreeMap<MonitorKey, config::Check> {
    let mut out = BTreeMap::new();
    for (name, check) in &config.checks {
        if !is_template(check) {
            out.insert(
                MonitorKey {
                    check: name.clone(),
                    target: None,
                },
                with_run_as(config, check),
            );
        }
    }
    for pool in config.pools.values() {
        for b in &pool.backends {
            if let Some(key) = backend_key(config, b) {
                if let Some(check) = config.checks.get(&key.check) {
                    out.insert(key, with_run_as(config, check));
                }
            }
        }
    }
    out
}

/// The healthcheck configuration of `check` probed at `target` (or its own address).
pub fn check_config(check: &config::Check, target: Option<SocketAddr>) -> CheckConfig {
    let address = target.or(check.address);
    let addr_text = address.map(|a| a.to_string()).unwrap_or_default();
    match check.kind {
        CheckKind::Tcp => CheckConfig::Tcp(TcpConfig {
            address: addr_text,
            source: None,
        }),
        CheckKind::Http | CheckKind::Https => {
            let scheme = if check.kind == CheckKind::Https {
                "https"
            } else {
                "http"
            };
            let path = check.path.as_deref().unwrap_or("/");
            let mut http = HttpConfig::new(format!("{scheme}://{addr_text}{path}"));
            if let Some(m) = &check.method {
                http.method.clone_from(m);
            }
            http.host.clone_from(&check.host);
            http.headers.clone_from(&check.headers);
            if let Some(statuses) = &check.expect_status {
                http.expect_status = StatusMatch::Set(statuses.clone());
            }
            http.expect_body.clone_from(&check.expect_body);
            if let Some(tls) = &check.tls {
                http.tls = TlsConfig {
                    ca_file: tls.ca_file.clone(),
                    server_name: tls.server_name.clone(),
                    client_cert: tls.client_cert_file.clone(),
                    client_key: tls.client_key_file.clone(),
                    insecure_skip_verify: tls.insecure_skip_verify,
                };
            }
            CheckConfig::Http(http)
        }
        CheckKind::Exec => {
            // Through the sandbox: no capabilities, and the user of `run_as`.
            let command = super::scripts::sandboxed(
                check.run_as.as_deref(),
                &check.command.clone().unwrap_or_default(),
            );
            let mut args = command.into_iter();
            let program = args.next().unwrap_or_default();
            CheckConfig::Exec(ExecConfig::new(program, args))
        }
        CheckKind::Process => CheckConfig::Process(ProcessConfig {
            name: check.process.clone(),
            pidfile: check.pidfile.clone(),
        }),
    }
}

/// The rise/fall schedule of a check; the timeout is passed explicitly (default: the interval).
pub fn monitor_config(check: &config::Check) -> MonitorConfig {
    MonitorConfig {
        interval: Duration::from_millis(check.interval_ms),
        timeout: Duration::from_millis(check.effective_timeout_ms()),
        rise: check.rise,
        fall: check.fall,
        ..MonitorConfig::default()
    }
}

impl Health {
    /// No monitors yet; transitions will be sent on `events`.
    pub fn new(events: mpsc::UnboundedSender<HealthEvent>) -> Self {
        Health {
            monitors: BTreeMap::new(),
            events,
            next_generation: 1,
        }
    }

    /// Runs the monitors `config` needs: unchanged ones keep running, changed ones restart,
    /// unneeded ones stop. On error nothing changes. Must run within the tokio runtime.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Check`] when a check cannot be built.
    pub fn apply(&mut self, config: &Config) -> Result<(), RuntimeError> {
        let mut next = BTreeMap::new();
        let mut old = std::mem::take(&mut self.monitors);
        let mut started = Vec::new();
        for (key, check) in wanted(config) {
            match old.remove(&key) {
                Some(entry) if entry.check == check => {
                    next.insert(key, entry);
                }
                previous => match self.spawn(&key, &check) {
                    Ok(entry) => {
                        started.push(key.clone());
                        if let Some(p) = previous {
                            old.insert(key.clone(), p);
                        }
                        next.insert(key, entry);
                    }
                    Err(e) => {
                        // Put everything back as it was: the new monitors stop on drop.
                        for (k, e) in next {
                            if !started.contains(&k) {
                                old.insert(k, e);
                            }
                        }
                        if let Some(p) = previous {
                            old.insert(key, p);
                        }
                        self.monitors = old;
                        return Err(e);
                    }
                },
            }
        }
        for key in old.keys() {
            tracing::info!(monitor = %key, "health check stopped (no longer configured)");
        }
        for key in &started {
            tracing::info!(monitor = %key, "health check started");
        }
        self.monitors = next;
        Ok(())
    }

    fn spawn(&mut self, key: &MonitorKey, check: &config::Check) -> Result<Entry, RuntimeError> {
        let err = |source| RuntimeError::Check {
            check: key.check.clone(),
            source,
        };
        let built = check_config(check, key.target).build().map_err(err)?;
        let monitor =
            Monitor::spawn(key.to_string(), built, &monitor_config(check)).map_err(err)?;
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut sub = monitor.subscribe();
        let events = self.events.clone();
        let k = key.clone();
        tokio::spawn(async move {
            while let Some(t) = sub.transitions.recv().await {
                let event = HealthEvent {
                    key: k.clone(),
                    generation,
                    state: t.to,
                    reason: t.to_string(),
                };
                if events.send(event).is_err() {
                    break;
                }
            }
        });
        Ok(Entry {
            check: check.clone(),
            generation,
            monitor,
        })
    }

    /// Whether `event` comes from a monitor still running (not one a reload replaced).
    pub fn is_current(&self, event: &HealthEvent) -> bool {
        self.monitors
            .get(&event.key)
            .is_some_and(|e| e.generation == event.generation)
    }

    /// The state of a monitor (`None` when there is no such monitor).
    pub fn state(&self, key: &MonitorKey) -> Option<State> {
        self.monitors.get(key).map(|e| e.monitor.state())
    }

    /// Whether a backend may take traffic: no check, or its check not down (an unknown state,
    /// before the first result, counts as healthy so a start does not flap).
    pub fn backend_up(&self, config: &Config, backend: &config::Backend) -> bool {
        backend_key(config, backend)
            .and_then(|k| self.state(&k))
            .is_none_or(|s| s != State::Down)
    }

    /// Whether a check with its own target is not down.
    pub fn check_up(&self, check: &str) -> bool {
        self.state(&MonitorKey {
            check: check.to_owned(),
            target: None,
        })
        .is_none_or(|s| s != State::Down)
    }

    /// Every monitor's state.
    pub fn statuses(&self) -> Vec<crate::status::CheckStatus> {
        self.monitors
            .iter()
            .map(|(k, e)| crate::status::CheckStatus {
                check: k.check.clone(),
                target: k.target,
                state: e.monitor.state().to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> config::Check {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn template_checks_probe_each_backend() {
        let c = check("kind = \"tcp\"\ninterval_ms = 300");
        assert!(is_template(&c));
        let at: SocketAddr = "192.0.2.3:8080".parse().unwrap();
        match check_config(&c, Some(at)) {
            CheckConfig::Tcp(t) => assert_eq!(t.address, "192.0.2.3:8080"),
            other => panic!("{other:?}"),
        }
        // timeout_ms defaults to the interval, passed explicitly.
        let m = monitor_config(&c);
        assert_eq!(
            (m.interval, m.timeout),
            (Duration::from_millis(300), Duration::from_millis(300))
        );
    }

    #[test]
    fn https_check_url_tls_and_statuses() {
        let c = check(
            "kind = \"https\"\naddress = \"[2001:db8::1]:6443\"\npath = \"/readyz\"\n\
             expect_status = [200]\ntls = { ca_file = \"/etc/ca.crt\", server_name = \"api\" }",
        );
        assert!(!is_template(&c));
        match check_config(&c, None) {
            CheckConfig::Http(h) => {
                assert_eq!(h.url, "https://[2001:db8::1]:6443/readyz");
                assert_eq!(h.expect_status, StatusMatch::Set(vec![200]));
                assert_eq!(h.tls.server_name.as_deref(), Some("api"));
                assert_eq!(h.tls.ca_file, Some("/etc/ca.crt".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_and_process_checks() {
        let c = check("kind = \"exec\"\ncommand = [\"/bin/true\", \"-x\"]");
        match check_config(&c, None) {
            CheckConfig::Exec(e) => assert_eq!(
                e.command,
                vec!["/proc/self/exe", "sandbox", "--", "/bin/true", "-x"]
            ),
            other => panic!("{other:?}"),
        }
        let c = check("kind = \"process\"\nprocess = \"nginx\"");
        match check_config(&c, None) {
            CheckConfig::Process(p) => assert_eq!(p.name.as_deref(), Some("nginx")),
            other => panic!("{other:?}"),
        }
    }
}
