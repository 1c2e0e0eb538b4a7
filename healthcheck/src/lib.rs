//! Active health checks with rise/fall thresholds, embeddable in any tokio program.
//!
//! - **Checks** ([`Check`]): [`TcpCheck`] (connect), [`HttpCheck`] (HTTP/HTTPS with hyper and
//!   rustls: CA file or system roots, SNI, client certificate, `insecure_skip_verify`),
//!   [`ExecCheck`] (a program's exit code, its process group killed on timeout) and
//!   [`ProcessCheck`] (a process by name or pidfile). Each failure is a typed [`Failure`].
//! - **Monitor** ([`Monitor`]): one per target; rise/fall, initial state, haproxy's
//!   `fastinter`/`downinter`, jitter, passive input from the data path; publishes the state
//!   and a lossless, ordered stream of [`Transition`]s.
//! - **Core** ([`Tracker`]): the sans-IO rise/fall and scheduling logic the monitor runs,
//!   testable without a clock.
//!
//! Everything is built from plain, serde-friendly configuration ([`CheckConfig`],
//! [`MonitorConfig`]); a bad configuration is rejected when built, with a [`ConfigError`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use healthcheck::{CheckConfig, Monitor, MonitorConfig, State, TcpConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let check = CheckConfig::Tcp(TcpConfig {
//!     address: listener.local_addr()?.to_string(),
//!     source: None,
//! })
//! .build()?;
//! let config = MonitorConfig {
//!     interval: Duration::from_millis(50),
//!     rise: 1,
//!     fall: 1,
//!     ..MonitorConfig::default()
//! };
//! let monitor = Monitor::spawn("backend-1", check, &config)?;
//! let mut sub = monitor.subscribe();
//!
//! // The first result settles the unknown initial state.
//! let up = sub.transitions.recv().await.ok_or("monitor stopped")?;
//! assert_eq!((up.from, up.to), (State::Unknown, State::Up));
//!
//! // Close the listener: the next check is refused.
//! drop(listener);
//! let down = sub.transitions.recv().await.ok_or("monitor stopped")?;
//! assert_eq!(down.to, State::Down);
//! println!("{down}"); // up -> down (1 failure(s) in a row, last: connection refused)
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod check;
mod config;
pub mod duration;
mod error;
mod exec;
mod failure;
mod http;
mod monitor;
mod process;
mod state;
mod status;
mod tcp;
mod tls;
mod tracker;

pub use check::{run_with_timeout, Check};
pub use config::{CheckConfig, MonitorConfig};
pub use error::ConfigError;
pub use exec::{ExecCheck, ExecConfig};
pub use failure::{Failure, Outcome};
pub use http::{HttpCheck, HttpConfig};
pub use monitor::{Monitor, PassiveReporter, Subscription};
pub use process::{ProcessCheck, ProcessConfig};
pub use state::{Reason, Source, State, Transition};
pub use status::StatusMatch;
pub use tcp::{TcpCheck, TcpConfig};
pub use tls::TlsConfig;
pub use tracker::{Snapshot, Tracker};
