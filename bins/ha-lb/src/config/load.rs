//! Reading a file: TOML syntax and types through serde, then [`validate`]; every problem is
//! placed at its line and column.

use std::path::Path;

use super::advice::advise;
use super::error::{ConfigError, Diagnostic, Location, Severity};
use super::key_path::KeyPath;
use super::source_map::SourceMap;
use super::validate::validate;
use super::Config;

/// Reads, parses and validates the configuration file at `path`. Touches nothing else.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Like [`load`], and also returns the warnings: things that are valid but probably not
/// meant (a check nothing uses, an admin endpoint open beyond this host, ...).
pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_with_warnings(&text, path)
}

/// Like [`parse`], and also returns the warnings, in file order.
pub fn parse_with_warnings(
    text: &str,
    file: &Path,
) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let config = parse(text, file)?;
    let map = SourceMap::new(text);
    let mut warnings: Vec<(usize, Diagnostic)> = advise(&config)
        .into_iter()
        .map(|p| {
            let offset = map.span_of(&p.path).start;
            (
                offset,
                diagnostic(
                    Severity::Warning,
                    &map,
                    file,
                    offset,
                    &p.path,
                    p.message,
                    p.hint,
                ),
            )
        })
        .collect();
    warnings.sort_by_key(|(offset, _)| *offset);
    Ok((config, warnings.into_iter().map(|(_, d)| d).collect()))
}

/// Parses and validates configuration `text`; `file` is the name used in diagnostics.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let map = SourceMap::new(text);
    let config: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let path = map.path_at(offset);
            let message = e.message().trim().to_string();
            let hint = serde_hint(&message, &path);
            let d = diagnostic(Severity::Error, &map, file, offset, &path, message, hint);
            return Err(ConfigError::Invalid {
                diagnostics: vec![d],
            });
        }
    };
    let problems = validate(&config);
    if problems.is_empty() {
        return Ok(config);
    }
    let mut diagnostics: Vec<(usize, Diagnostic)> = problems
        .into_iter()
        .map(|p| {
            let offset = map.span_of(&p.path).start;
            (
                offset,
                diagnostic(
                    Severity::Error,
                    &map,
                    file,
                    offset,
                    &p.path,
                    p.message,
                    p.hint,
                ),
            )
        })
        .collect();
    diagnostics.sort_by_key(|(offset, _)| *offset);
    Err(ConfigError::Invalid {
        diagnostics: diagnostics.into_iter().map(|(_, d)| d).collect(),
    })
}

fn diagnostic(
    severity: Severity,
    map: &SourceMap<'_>,
    file: &Path,
    offset: usize,
    path: &KeyPath,
    message: String,
    hint: String,
) -> Diagnostic {
    let (line, column, source_line) = map.position(offset);
    Diagnostic {
        severity,
        location: Location {
            file: file.to_path_buf(),
            line,
            column,
        },
        key: path.to_string(),
        message,
        hint,
        source_line,
    }
}

/// A hint for an error serde or the TOML parser reported, from its wording and section.
fn serde_hint(message: &str, path: &KeyPath) -> String {
    let section = match path.section() {
        Some(s) => format!("the `[{s}]` section of docs/config.md"),
        None => "docs/config.md".to_string(),
    };
    if message.contains("unknown field") {
        format!("check the spelling: the keys accepted here are listed above and in {section}")
    } else if message.contains("missing field") {
        format!("add the key: {section} lists the required keys")
    } else if message.contains("unknown variant") {
        "use one of the values listed above".to_string()
    } else if message.contains("invalid type") || message.contains("invalid value") {
        format!("the value has the wrong type or range: see {section}")
    } else if message.contains("invalid socket address") {
        "write address and port, e.g. \"192.0.2.10:6443\" or \"[2001:db8::10]:6443\"".to_string()
    } else if message.contains("invalid IP address") {
        "write an IPv4 or IPv6 address without port or prefix, e.g. \"192.0.2.11\"".to_string()
    } else {
        format!("fix the TOML syntax here (see {section})")
    }
}
