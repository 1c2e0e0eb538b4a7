//! Plain configuration structs (serde-friendly) from which checks and monitors are built.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::Check;
use crate::duration::{serde_duration, serde_opt_duration};
use crate::error::ConfigError;
use crate::exec::{ExecCheck, ExecConfig};
use crate::http::{HttpCheck, HttpConfig};
use crate::process::{ProcessCheck, ProcessConfig};
use crate::state::State;
use crate::tcp::{TcpCheck, TcpConfig};

/// Which check to run, tagged by `type` in a configuration file:
///
/// ```toml
/// type = "http"
/// url = "https://127.0.0.1:6443/readyz"
/// tls = { ca_file = "/etc/kubernetes/pki/ca.crt" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CheckConfig {
    /// A [`TcpCheck`].
    Tcp(TcpConfig),
    /// An [`HttpCheck`] (HTTP or HTTPS, by the URL's scheme).
    Http(HttpConfig),
    /// An [`ExecCheck`].
    Exec(ExecConfig),
    /// A [`ProcessCheck`].
    Process(ProcessConfig),
}

impl CheckConfig {
    /// Builds the check, validating everything (URLs, files, commands) now.
    pub fn build(&self) -> Result<Arc<dyn Check>, ConfigError> {
        Ok(match self {
            CheckConfig::Tcp(c) => Arc::new(TcpCheck::new(c)?),
            CheckConfig::Http(c) => Arc::new(HttpCheck::new(c)?),
            CheckConfig::Exec(c) => Arc::new(ExecCheck::new(c)?),
            CheckConfig::Process(c) => Arc::new(ProcessCheck::new(c)?),
        })
    }
}

/// How often a target is checked and how many results in a row change its state.
///
/// Scheduling follows haproxy: `interval` while the state is settled, `fastinter` while a
/// transition is pending (some results of the other kind in a row, or no result yet), and
/// `downinter` while settled down. Each delay counts from the end of the previous check and is
/// spread by `jitter`.
///
/// Deserializing validates too (see [`MonitorConfig::validate`]), so that a parser that tracks
/// positions (e.g. `toml`) reports a zero interval or a rise of 0 with its line and column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MonitorFields")]
pub struct MonitorConfig {
    /// Delay between checks while the state is settled; 2 s by default.
    #[serde(default = "default_interval", with = "serde_duration")]
    pub interval: Duration,
    /// Longest a check may take before it counts as failed; 1 s by default.
    #[serde(default = "default_timeout", with = "serde_duration")]
    pub timeout: Duration,
    /// Successes in a row that bring a down target up; 2 by default.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Failures in a row that bring an up target down; 3 by default.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// The state before the first result; `unknown` by default, which the first result
    /// settles at once (a success makes it up, a failure down).
    #[serde(default = "default_initial")]
    pub initial: State,
    /// Delay while a transition is pending; `interval` when absent.
    #[serde(
        default,
        with = "serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub fastinter: Option<Duration>,
    /// Delay while settled down; `interval` when absent.
    #[serde(
        default,
        with = "serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub downinter: Option<Duration>,
    /// Spread, as a fraction from 0 to 0.5: each delay is drawn uniformly within ±`jitter` of
    /// itself, and the first check within `jitter`×`interval` of the start, so that checks of
    /// many targets started together spread out. 0 by default.
    #[serde(default)]
    pub jitter: f64,
}

/// The fields of [`MonitorConfig`] as read, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorFields {
    #[serde(default = "default_interval", with = "serde_duration")]
    interval: Duration,
    #[serde(default = "default_timeout", with = "serde_duration")]
    timeout: Duration,
    #[serde(default = "default_rise")]
    rise: u32,
    #[serde(default = "default_fall")]
    fall: u32,
    #[serde(default = "default_initial")]
    initial: State,
    #[serde(default, with = "serde_opt_duration")]
    fastinter: Option<Duration>,
    #[serde(default, with = "serde_opt_duration")]
    downinter: Option<Duration>,
    #[serde(default)]
    jitter: f64,
}

impl TryFrom<MonitorFields> for MonitorConfig {
    type Error = ConfigError;

    fn try_from(f: MonitorFields) -> Result<MonitorConfig, ConfigError> {
        let config = MonitorConfig {
            interval: f.interval,
            timeout: f.timeout,
            rise: f.rise,
            fall: f.fall,
            initial: f.initial,
            fastinter: f.fastinter,
            downinter: f.downinter,
            jitter: f.jitter,
        };
        config.validate()?;
        Ok(config)
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_rise() -> u32 {
    2
}

fn default_fall() -> u32 {
    3
}

fn default_initial() -> State {
    State::Unknown
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            interval: default_interval(),
            timeout: default_timeout(),
            rise: default_rise(),
            fall: default_fall(),
            initial: default_initial(),
            fastinter: None,
            downinter: None,
            jitter: 0.0,
        }
    }
}

impl MonitorConfig {
    /// The same settings, checking every `interval`.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Rejects zero durations, zero thresholds and a jitter outside 0..=0.5.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let durations = [
            ("interval", Some(self.interval)),
            ("timeout", Some(self.timeout)),
            ("fastinter", self.fastinter),
            ("downinter", self.downinter),
        ];
        for (field, value) in durations {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if self.rise == 0 {
            return Err(ConfigError::ZeroThreshold { field: "rise" });
        }
        if self.fall == 0 {
            return Err(ConfigError::ZeroThreshold { field: "fall" });
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(ConfigError::Invalid {
                field: "jitter",
                reason: format!("{} is not a fraction from 0 to 0.5 (e.g. 0.1)", self.jitter),
            });
        }
        Ok(())
    }

    /// The delay while a transition is pending.
    pub fn fastinter(&self) -> Duration {
        self.fastinter.unwrap_or(self.interval)
    }

    /// The delay while settled down.
    pub fn downinter(&self) -> Duration {
        self.downinter.unwrap_or(self.interval)
    }
}
