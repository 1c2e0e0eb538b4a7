//! `ha-lb import-keepalived`: reads a keepalived.conf and writes the equivalent ha-lb config.
//!
//! [`source`] reads the file and its `include`s into tokens ([`lexer`]), [`tree`] builds the
//! statement tree, `translate` maps it onto [`crate::config::Config`]. Every directive
//! that is not translated comes back as a [`Warning`] with its file and line.

mod error;
pub mod lexer;
pub mod source;
mod translate;
pub mod tree;
mod warning;

use std::path::{Path, PathBuf};

pub use error::ImportError;
pub use warning::Warning;

use crate::config::{self, Config};

/// The result of an import: the translated configuration and what was not translated.
#[derive(Debug, Clone)]
pub struct Import {
    /// The file that was imported.
    pub source: PathBuf,
    /// The ha-lb configuration.
    pub config: Config,
    /// Directives not translated, or translated with a caveat, in file order.
    pub warnings: Vec<Warning>,
}

/// Reads and translates the keepalived.conf at `path`, following its includes.
pub fn import_file(path: &Path) -> Result<Import, ImportError> {
    let mut warnings = Vec::new();
    let tokens = source::read_tokens(path, &mut warnings)?;
    let nodes = tree::parse(&tokens)?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let (config, warnings) = translate::Translator::new(base).run(&nodes, warnings);
    Ok(Import {
        source: path.to_path_buf(),
        config,
        warnings,
    })
}

/// Translates keepalived.conf `text` as if it were the file `path`: includes are relative to
/// its directory, warnings name it.
pub fn import_str(text: &str, path: &Path) -> Result<Import, ImportError> {
    let mut warnings = Vec::new();
    let tokens = source::text_tokens(text, path, &mut warnings)?;
    let nodes = tree::parse(&tokens)?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let (config, warnings) = translate::Translator::new(base).run(&nodes, warnings);
    Ok(Import {
        source: path.to_path_buf(),
        config,
        warnings,
    })
}

impl Import {
    /// The configuration as TOML, headed by comments naming the source and listing every
    /// warning. The text is validated as `ha-lb check-config` would; an invalid translation is
    /// an error that says why.
    pub fn to_toml(&self) -> Result<String, ImportError> {
        let body = toml::to_string(&self.config)?;
        let mut text = format!(
            "# ha-lb configuration translated by `ha-lb import-keepalived` from {}.\n\
             # Check it with `ha-lb check-config`; docs/config.md explains every key.\n",
            self.source.display()
        );
        if self.warnings.is_empty() {
            text.push_str("# Every directive was translated.\n");
        } else {
            text.push_str("# Not translated (see the warnings):\n");
            for w in &self.warnings {
                for line in w.to_string().lines() {
                    text.push_str("#   ");
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text.push('\n');
        text.push_str(&body);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let name = PathBuf::from(format!("<translation of {}>", self.source.display()));
        config::parse(&text, &name).map_err(ImportError::Invalid)?;
        Ok(text)
    }
}
