//! A small YAML writer for manifests: block style, every string double-quoted with JSON
//! escapes (valid YAML), so no value can be read back as another type (`"on"`, `"1.10"`) or
//! break the structure.

use serde_json::Value;

/// `value` as a YAML document (ending with a newline).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => seq(a, 0, &mut out),
        v => {
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        // JSON's scalars (null, true, 1.5, "text") are YAML's too.
        v => v.to_string(),
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if plain {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key(k));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                map(inner, indent + 2, out);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                seq(items, indent, out);
            }
            v => {
                out.push(' ');
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

fn seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first key on the dash's line, the others under it.
                let mut text = String::new();
                map(m, indent + 2, &mut text);
                out.push(' ');
                out.push_str(text.trim_start());
            }
            Value::Array(a) if is_block(item) => {
                out.push('\n');
                seq(a, indent + 2, out);
            }
            v => {
                out.push(' ');
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_and_sequences() {
        let v = json!({
            "a": {"b": 1, "c": [true, "on"]},
            "list": [{"x": "1.10", "y": {"z": null}}, {"w": []}],
            "weird key": "line\nbreak: \"q\"",
            "empty": {},
        });
        assert_eq!(
            to_yaml(&v),
            "a:\n  b: 1\n  c:\n  - true\n  - \"on\"\nempty: {}\nlist:\n- x: \"1.10\"\n  y:\n    z: null\n- w: []\n\"weird key\": \"line\\nbreak: \\\"q\\\"\"\n"
        );
    }
}
