//! Typed configuration errors: every problem carries the file, line, column, the offending key
//! and a hint, so a user can fix the file without reading the source.

use std::fmt;
use std::path::PathBuf;

/// Where in a configuration file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as it was named to the loader.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes), so UTF-8 text lines up.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something in it is probably not what was meant.
    Warning,
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the problem is.
    pub location: Location,
    /// The dotted key it is about (`instances.VI_1.priority`), empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The text of the offending line, shown under the message.
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {severity}: ", self.location)?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        writeln!(f, "{}", self.message)?;
        let number = self.location.line.to_string();
        let pad = " ".repeat(number.len());
        let (excerpt, caret) = excerpt(&self.source_line, self.location.column);
        writeln!(f, "{pad} |")?;
        writeln!(f, "{number} | {excerpt}")?;
        writeln!(f, "{pad} | {}^", " ".repeat(caret))?;
        write!(f, "{pad} = hint: {}", self.hint)
    }
}

/// Longest source line shown whole under a diagnostic; longer ones are cut around the column.
const MAX_SHOWN: usize = 120;

/// The part of `line` to show and the caret's offset in it, for a 1-based character `column`.
fn excerpt(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1);
    if chars.len() <= MAX_SHOWN {
        return (line.to_string(), at);
    }
    let start = at
        .saturating_sub(MAX_SHOWN / 2)
        .min(chars.len().saturating_sub(MAX_SHOWN));
    let end = (start + MAX_SHOWN).min(chars.len());
    let mut out = String::new();
    let mut caret = at - start.min(at);
    if start > 0 {
        out.push_str("...");
        caret += 3;
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push_str("...");
    }
    (out, caret)
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration; every problem found is listed.
    #[error("{}", render(diagnostics))]
    Invalid {
        /// The problems, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// The problems found, empty when the file could not be read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { diagnostics } => diagnostics,
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&d.to_string());
    }
    if diagnostics.len() > 1 {
        out.push_str(&format!("\n\n{} problems found", diagnostics.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let (shown, caret) = excerpt(&line, 501);
        assert!(shown.starts_with("...") && shown.ends_with("..."));
        assert_eq!(shown.chars().nth(caret), Some('X'));
        assert!(shown.chars().count() <= MAX_SHOWN + 6);
        let (shown, caret) = excerpt("short = 1", 9);
        assert_eq!((shown.as_str(), caret), ("short = 1", 8));
        let (shown, caret) = excerpt(&"c".repeat(300), 1);
        assert_eq!(caret, 0);
        assert!(!shown.starts_with("..."));
    }
}
