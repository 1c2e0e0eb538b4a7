//! Warnings of the importer: a directive it did not translate (or translated with a change),
//! with the file and line it is on, so nothing is dropped silently.

use std::fmt;
use std::path::PathBuf;

/// One directive not translated, or translated with a caveat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file it is in (an included file names itself).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What happened and what to do instead.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: {}",
            self.file.display(),
            self.line,
            self.message
        )
    }
}
