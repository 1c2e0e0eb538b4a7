//! The keepalived configurations the import tests read (tests/data/keepalived), and where a
//! text stands in them.

use std::path::{Path, PathBuf};

/// The path of a file under tests/data/keepalived.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keepalived")
        .join(name)
}

/// The line number (1-based) of the first line of `path` containing `needle`.
pub fn line_of(path: &Path, needle: &str) -> usize {
    nth_line_of(path, needle, 0)
}

/// The line number (1-based) of the `nth` (0-based) line of `path` containing `needle`.
pub fn nth_line_of(path: &Path, needle: &str, nth: usize) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth}"))
        .0
        + 1
}
