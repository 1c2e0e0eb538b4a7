//! Errors of the importer: files that cannot be read, syntax keepalived would refuse too, and a
//! translation that does not make a valid ha-lb configuration.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Why a keepalived.conf could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file (the main one or an included one) could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Braces do not match, or includes nest too deep.
    #[error("{}:{line}: error: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The translated configuration is not valid (for example an instance without
    /// `virtual_router_id`); the diagnostics point into the generated TOML.
    #[error("the translated configuration is not valid:\n{0}")]
    Invalid(#[source] ConfigError),
    /// The configuration could not be written as TOML.
    #[error("cannot write the configuration as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
}
