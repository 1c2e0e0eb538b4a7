//! Reads a keepalived.conf and every file it `include`s into one token stream.
//!
//! `include PATTERN...` is replaced by the tokens of the files the glob patterns match, in
//! sorted order, relative to the directory of the file that includes them (as keepalived
//! does). A pattern that matches nothing is a warning, a cycle or a nesting deeper than
//! [`MAX_INCLUDE_DEPTH`] is an error. Bytes that are not UTF-8 (comments in another encoding)
//! are replaced rather than refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ImportError;
use super::lexer::{lex_line, Token, TokenKind};
use super::warning::Warning;

/// How deep includes may nest; keepalived allows a few levels, and a cycle must end.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// A token with the file it came from.
#[derive(Debug, Clone)]
pub struct SourcedToken {
    /// The token.
    pub token: Token,
    /// Its file.
    pub file: Arc<PathBuf>,
}

/// Reads `path` and its includes into tokens; warnings go to `warnings`.
pub fn read_tokens(
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<SourcedToken>, ImportError> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    read_into(path, &mut stack, &mut out, warnings)?;
    Ok(out)
}

/// Tokens of `text` as if it were the file `path` (whose directory includes are relative to).
pub fn text_tokens(
    text: &str,
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<SourcedToken>, ImportError> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    lex_into(text, path, &mut stack, &mut out, warnings)?;
    Ok(out)
}

fn read_into(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<SourcedToken>,
    warnings: &mut Vec<Warning>,
) -> Result<(), ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if matches!(text, std::borrow::Cow::Owned(_)) {
        warnings.push(Warning {
            file: path.to_path_buf(),
            line: 1,
            message: "the file is not valid UTF-8; the bytes that are not were replaced".into(),
        });
    }
    lex_into(&text, path, stack, out, warnings)
}

fn lex_into(
    text: &str,
    path: &Path,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<SourcedToken>,
    warnings: &mut Vec<Warning>,
) -> Result<(), ImportError> {
    let file = Arc::new(path.to_path_buf());
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    stack.push(canonical);
    for (i, line_text) in text.lines().enumerate() {
        let line = i + 1;
        let tokens = lex_line(line_text, line);
        let is_include = matches!(tokens.first(), Some(Token { kind: TokenKind::Word(w), quoted: false, .. }) if w == "include");
        if is_include {
            let patterns: Vec<&str> = tokens[1..]
                .iter()
                .filter_map(|t| match &t.kind {
                    TokenKind::Word(w) => Some(w.as_str()),
                    _ => None,
                })
                .collect();
            if patterns.is_empty() {
                warnings.push(Warning {
                    file: path.to_path_buf(),
                    line,
                    message: "include without a file name; ignored".into(),
                });
            }
            for pattern in patterns {
                include(path, line, pattern, stack, out, warnings)?;
            }
            continue;
        }
        for token in tokens {
            out.push(SourcedToken {
                token,
                file: file.clone(),
            });
        }
        out.push(SourcedToken {
            token: Token {
                kind: TokenKind::LineEnd,
                line,
                quoted: false,
            },
            file: file.clone(),
        });
    }
    stack.pop();
    Ok(())
}

fn include(
    from: &Path,
    line: usize,
    pattern: &str,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<SourcedToken>,
    warnings: &mut Vec<Warning>,
) -> Result<(), ImportError> {
    let base = from.parent().unwrap_or_else(|| Path::new("."));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let syntax = |message: String| ImportError::Syntax {
        file: from.to_path_buf(),
        line,
        message,
    };
    let full_text = full.to_string_lossy().into_owned();
    let paths = glob::glob(&full_text).map_err(|e| {
        syntax(format!(
            "include pattern {pattern:?} is not a valid glob: {e}"
        ))
    })?;
    let mut matched: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    matched.sort();
    if matched.is_empty() {
        warnings.push(Warning {
            file: from.to_path_buf(),
            line,
            message: format!("include {pattern:?} matches no file; nothing included"),
        });
    }
    for p in matched {
        let canonical = p.canonicalize().unwrap_or_else(|_| p.clone());
        if stack.contains(&canonical) {
            return Err(syntax(format!(
                "include {} would include itself (a cycle)",
                p.display()
            )));
        }
        if stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(syntax(format!(
                "includes nest deeper than {MAX_INCLUDE_DEPTH} levels"
            )));
        }
        read_into(&p, stack, out, warnings)?;
    }
    Ok(())
}
