//! Builds the statement tree of a keepalived.conf from its tokens: a statement is a keyword and
//! its arguments up to the end of the line, with an optional `{ ... }` block of statements.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::ImportError;
use super::lexer::TokenKind;
use super::source::SourcedToken;

/// Deepest nesting of blocks accepted; keepalived's own grammar needs 4, and a limit keeps a
/// hostile file from exhausting the stack.
pub const MAX_BLOCK_DEPTH: usize = 32;

/// One statement.
#[derive(Debug, Clone)]
pub struct Node {
    /// The first word.
    pub keyword: String,
    /// The other words of the line, quotes removed.
    pub args: Vec<String>,
    /// The statements inside `{ ... }`, if the statement has a block.
    pub children: Option<Vec<Node>>,
    /// The file it is in.
    pub file: Arc<PathBuf>,
    /// 1-based line of the keyword.
    pub line: usize,
}

impl Node {
    /// The block's statements, or none.
    pub fn block(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }

    /// The first argument, if any.
    pub fn arg(&self) -> Option<&str> {
        self.args.first().map(String::as_str)
    }
}

/// Parses the whole token stream into top-level statements.
pub fn parse(tokens: &[SourcedToken]) -> Result<Vec<Node>, ImportError> {
    let mut pos = 0;
    let nodes = parse_block(tokens, &mut pos, None, 0)?;
    Ok(nodes)
}

fn parse_block(
    tokens: &[SourcedToken],
    pos: &mut usize,
    opened: Option<&SourcedToken>,
    depth: usize,
) -> Result<Vec<Node>, ImportError> {
    if let (Some(open), true) = (opened, depth > MAX_BLOCK_DEPTH) {
        return Err(ImportError::Syntax {
            file: open.file.to_path_buf(),
            line: open.token.line,
            message: format!("blocks nest deeper than {MAX_BLOCK_DEPTH} levels"),
        });
    }
    let mut nodes = Vec::new();
    loop {
        let Some(t) = tokens.get(*pos) else {
            return match opened {
                None => Ok(nodes),
                Some(open) => Err(ImportError::Syntax {
                    file: open.file.to_path_buf(),
                    line: open.token.line,
                    message: "this `{` is never closed".into(),
                }),
            };
        };
        match &t.token.kind {
            TokenKind::LineEnd => *pos += 1,
            TokenKind::Close => {
                *pos += 1;
                if opened.is_some() {
                    return Ok(nodes);
                }
                return Err(ImportError::Syntax {
                    file: t.file.to_path_buf(),
                    line: t.token.line,
                    message: "`}` without a matching `{`".into(),
                });
            }
            TokenKind::Open => {
                return Err(ImportError::Syntax {
                    file: t.file.to_path_buf(),
                    line: t.token.line,
                    message: "`{` without a keyword before it".into(),
                });
            }
            TokenKind::Word(keyword) => {
                let mut node = Node {
                    keyword: keyword.clone(),
                    args: Vec::new(),
                    children: None,
                    file: t.file.clone(),
                    line: t.token.line,
                };
                *pos += 1;
                while let Some(next) = tokens.get(*pos) {
                    match &next.token.kind {
                        TokenKind::Word(w) => {
                            node.args.push(w.clone());
                            *pos += 1;
                        }
                        TokenKind::Open => {
                            *pos += 1;
                            node.children = Some(parse_block(tokens, pos, Some(next), depth + 1)?);
                            break;
                        }
                        TokenKind::LineEnd | TokenKind::Close => break,
                    }
                }
                nodes.push(node);
            }
        }
    }
}
