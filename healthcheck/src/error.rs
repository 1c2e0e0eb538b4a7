//! Configuration errors: a check or monitor that cannot be built says exactly why.

use std::path::PathBuf;

/// A configuration that cannot be turned into a check or a monitor.
///
/// Returned when a check or monitor is built, never while it runs, so that a bad configuration
/// is rejected up front and a running process keeps its old one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL of an HTTP check does not parse or lacks a part.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file named in the configuration cannot be read.
    #[error("cannot read {what} {path:?}: {source}")]
    ReadFile {
        /// What the file was meant to hold (e.g. "CA file").
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{what} {path:?} holds no {expected}")]
    EmptyPem {
        /// What the file was meant to hold (e.g. "client key").
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The PEM block that was looked for.
        expected: &'static str,
    },
    /// A PEM file is malformed.
    #[error("{what} {path:?} is not valid PEM: {reason}")]
    BadPem {
        /// What the file was meant to hold.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// No certificate could be loaded from the system's trust store.
    #[error(
        "no system root certificates found ({reason}); set `ca_file` or install ca-certificates"
    )]
    NoSystemRoots {
        /// What the loader said.
        reason: String,
    },
    /// The TLS settings are inconsistent or rejected by rustls.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A duration that must be positive is zero.
    #[error("`{field}` must be greater than zero")]
    ZeroDuration {
        /// The field's name.
        field: &'static str,
    },
    /// A threshold that must be at least 1 is 0.
    #[error("`{field}` must be at least 1 (got 0)")]
    ZeroThreshold {
        /// The field's name.
        field: &'static str,
    },
    /// Another field holds a value out of its range.
    #[error("`{field}`: {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// Why the value is rejected, with a hint.
        reason: String,
    },
}
