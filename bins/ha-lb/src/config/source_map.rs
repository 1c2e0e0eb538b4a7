//! Maps key paths and byte offsets of a TOML text to lines and columns, using the spans the
//! toml parser keeps, so a semantic error points at the key that caused it.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::key_path::{KeyPath, Segment};

/// A parsed view of the text that knows where every key and value is.
pub(crate) struct SourceMap<'a> {
    text: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

impl<'a> SourceMap<'a> {
    /// Parses `text` for spans; a text that does not parse maps everything to the start.
    pub(crate) fn new(text: &'a str) -> Self {
        SourceMap {
            text,
            root: DeTable::parse(text).ok(),
        }
    }

    /// The span of the key or value a path names: the value for scalars and array elements,
    /// the key for tables (a table's own span may cover many lines). A path that does not exist
    /// in the text (a default value) falls back to its nearest existing ancestor.
    pub(crate) fn span_of(&self, path: &KeyPath) -> Range<usize> {
        let Some(root) = &self.root else { return 0..0 };
        let mut best: Range<usize> = 0..0;
        let mut table: Option<&DeTable<'a>> = Some(root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'a>>]> = None;
        for seg in &path.0 {
            let value: &Spanned<DeValue<'a>> = match seg {
                Segment::Key(k) => {
                    let Some(t) = table else { break };
                    let Some((key, value)) = t.iter().find(|(key, _)| key.get_ref() == k) else {
                        break;
                    };
                    best = if value.get_ref().is_table() {
                        key.span()
                    } else {
                        value.span()
                    };
                    value
                }
                Segment::Index(i) => {
                    let Some(a) = array else { break };
                    let Some(value) = a.get(*i) else { break };
                    best = if value.get_ref().is_table() && !value.span().is_empty() {
                        value.span().start..value.span().start
                    } else {
                        value.span()
                    };
                    value
                }
            };
            table = value.get_ref().as_table();
            array = value.get_ref().as_array().map(|a| &a[..]);
        }
        best
    }

    /// The deepest key path whose key or value contains `offset`, to say which key a parse
    /// error is about. Every branch is searched: the span of a table made by `[a.b]` headers
    /// does not cover its keys.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        match &self.root {
            Some(root) => {
                find_in_table(root.get_ref(), offset, &KeyPath::root()).unwrap_or_default()
            }
            None => KeyPath::root(),
        }
    }

    /// 1-based line and character column of a byte offset, and the text of that line.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize, String) {
        let offset = offset.min(self.text.len());
        let mut start = offset;
        while start > 0 && !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..start].chars().count() + 1;
        let line_end = self.text[line_start..]
            .find('\n')
            .map_or(self.text.len(), |i| line_start + i);
        let line_text = self.text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        (line, column, line_text)
    }
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &KeyPath) -> Option<KeyPath> {
    for (key, value) in table.iter() {
        let here = path.key(key.get_ref());
        if let Some(deeper) = find_in_value(value, offset, &here) {
            return Some(deeper);
        }
        if contains(&key.span(), offset) || contains(&value.span(), offset) {
            return Some(here);
        }
    }
    None
}

fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &KeyPath) -> Option<KeyPath> {
    match value.get_ref() {
        DeValue::Table(t) => find_in_table(t, offset, path),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
            let here = path.index(i);
            find_in_value(v, offset, &here).or_else(|| contains(&v.span(), offset).then_some(here))
        }),
        _ => None,
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_and_ignore_crlf() {
        let text = "a = 1\r\n# 注释\r\nb = \"节点\" # x\r\n";
        let map = SourceMap::new(text);
        let offset = text.find("# x").unwrap();
        let (line, column, line_text) = map.position(offset);
        assert_eq!((line, column), (3, 10));
        assert_eq!(line_text, "b = \"节点\" # x");
        // An offset inside a multi-byte character is moved to its start, never panics.
        let inside = text.find('节').unwrap() + 1;
        assert_eq!(map.position(inside).1, 6);
        assert_eq!(map.position(text.len() + 10).0, 4);
    }

    #[test]
    fn paths_resolve_to_values_and_fall_back_to_ancestors() {
        let text = "[t]\nx = [1, 22]\n[t.u]\ny = true\n";
        let map = SourceMap::new(text);
        let p = KeyPath::root().key("t").key("x").index(1);
        assert_eq!(&text[map.span_of(&p)], "22");
        let missing = KeyPath::root().key("t").key("u").key("z");
        assert_eq!(&text[map.span_of(&missing)], "u");
        assert_eq!(map.path_at(text.find("true").unwrap()).to_string(), "t.u.y");
        assert_eq!(map.path_at(text.find("22").unwrap()).to_string(), "t.x[1]");
    }
}
