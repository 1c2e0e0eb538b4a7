//! Splits keepalived.conf text into tokens: words, quoted strings, `{` and `}`, line ends.
//!
//! As keepalived does: `#` or `!` at the start of a word begins a comment that runs to the end
//! of the line (so `auth_pass abc#1` keeps its `#`); double-quoted strings keep their spaces;
//! braces are tokens of their own even when written against a word.

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A word or a quoted string (quotes removed).
    Word(String),
    /// `{`
    Open,
    /// `}`
    Close,
    /// The end of a line: statements end there.
    LineEnd,
}

/// A token and the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// 1-based line in its file.
    pub line: usize,
    /// `true` for a quoted string, which is never a keyword, brace or comment.
    pub quoted: bool,
}

/// Splits one line into tokens (without the trailing [`TokenKind::LineEnd`]). An unterminated
/// quote runs to the end of the line, as keepalived reads it.
pub fn lex_line(text: &str, line: usize) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            tokens.push(Token {
                kind: TokenKind::Word(std::mem::take(word)),
                line,
                quoted: false,
            });
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' if word.is_empty() => break,
            '"' if word.is_empty() => {
                let mut s = String::new();
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    s.push(q);
                }
                tokens.push(Token {
                    kind: TokenKind::Word(s),
                    line,
                    quoted: true,
                });
            }
            '{' | '}' => {
                flush(&mut word, &mut tokens);
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                tokens.push(Token {
                    kind,
                    line,
                    quoted: false,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut tokens),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens);
    tokens
}

/// Splits a command line the way keepalived splits `script` and `notify_*` strings: on white
/// space, with single or double quotes grouping words.
pub fn split_command(command: &str) -> Vec<String> {
    let mut argv = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    argv.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        argv.push(current);
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(tokens: &[Token]) -> Vec<String> {
        tokens
            .iter()
            .map(|t| match &t.kind {
                TokenKind::Word(w) => w.clone(),
                TokenKind::Open => "{".into(),
                TokenKind::Close => "}".into(),
                TokenKind::LineEnd => "\\n".into(),
            })
            .collect()
    }

    #[test]
    fn comments_quotes_and_braces() {
        assert_eq!(
            words(&lex_line("interval 2 # 检测时间间隔", 1)),
            ["interval", "2"]
        );
        assert_eq!(
            words(&lex_line("! Configuration File", 1)),
            Vec::<String>::new()
        );
        assert_eq!(
            words(&lex_line("auth_pass abc#1", 1)),
            ["auth_pass", "abc#1"]
        );
        assert_eq!(
            words(&lex_line("script \"/bin/x -a 'b c'\"", 1)),
            ["script", "/bin/x -a 'b c'"]
        );
        assert_eq!(
            words(&lex_line("unicast_peer{192.0.2.1}", 1)),
            ["unicast_peer", "{", "192.0.2.1", "}"]
        );
        assert_eq!(
            words(&lex_line("\"#not a comment\"", 1)),
            ["#not a comment"]
        );
    }

    #[test]
    fn command_splitting() {
        assert_eq!(
            split_command("/bin/x -a 'b c' \"d e\""),
            ["/bin/x", "-a", "b c", "d e"]
        );
        assert_eq!(
            split_command("  /etc/keepalived/nginx_check.sh  "),
            ["/etc/keepalived/nginx_check.sh"]
        );
        assert_eq!(split_command("x ''"), ["x", ""]);
    }
}
