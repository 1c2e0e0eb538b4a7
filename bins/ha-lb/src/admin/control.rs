//! The admin endpoint's write requests (`ha-lb ctl`): off unless `[admin] control = true`;
//! with a `token_file`, each must carry `Authorization: Bearer TOKEN`.
//!
//! | request | does |
//! |---|---|
//! | `POST /backends/POOL/ADDRESS/drain` | no new connections; open ones go on |
//! | `POST /backends/POOL/ADDRESS/disable[?grace_ms=N]` | the same, and open ones are closed after the grace |
//! | `POST /backends/POOL/ADDRESS/enable` | undoes drain and disable |
//! | `POST /backends/POOL/ADDRESS/weight/N` | sets the weight (0..=1000) |
//! | `POST /instances/NAME/maintenance/on` (`off`) | hands the VIPs over and stays Backup (until off) |
//! | `POST /anycast/NAME/maintenance/on` (`off`) | withdraws the group's routes, still serving what comes (until off) |
//!
//! `ADDRESS` is percent-encoded (`%5B2001%3Adb8%3A%3A1%5D%3A80` for `[2001:db8::1]:80`).

use std::path::Path;
use std::time::Duration;

use crate::runtime::balancer::BackendAction;
use crate::runtime::control::Request;

/// Decodes `%XX` escapes; `None` if one is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes everything but letters, digits, `.`, `-` and `_` as `%XX`, for a path segment.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The request a write path names, or why it names none.
///
/// # Errors
///
/// A message for the client (answered with 404 or 400).
pub fn parse(path: &str, query: Option<&str>) -> Result<Request, String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let decode = |s: &str| percent_decode(s).ok_or_else(|| format!("bad escape in {s:?}"));
    match segments.as_slice() {
        ["backends", pool, addr, rest @ ..] => {
            let pool = decode(pool)?;
            let addr = decode(addr)?;
            let backend = addr
                .parse()
                .map_err(|_| format!("{addr:?} is not a backend address (IP:port)"))?;
            let mut grace = None;
            let action = match rest {
                ["drain"] => BackendAction::Drain,
                ["disable"] => {
                    for (k, v) in query
                        .unwrap_or_default()
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                    {
                        if k == "grace_ms" {
                            let ms: u64 = v
                                .parse()
                                .map_err(|_| format!("grace_ms {v:?} is not a number"))?;
                            grace = Some(Duration::from_millis(ms));
                        }
                    }
                    BackendAction::Disable
                }
                ["enable"] => BackendAction::Enable,
                ["weight", n] => BackendAction::Weight(
                    n.parse()
                        .map_err(|_| format!("weight {n:?} is not a number 0..=1000"))?,
                ),
                _ => {
                    return Err(
                        "backend actions: drain, disable[?grace_ms=N], enable, weight/N".into(),
                    )
                }
            };
            Ok(Request::Backend {
                pool,
                backend,
                action,
                grace,
            })
        }
        ["instances", name, "maintenance", on @ ("on" | "off")] => Ok(Request::Maintenance {
            instance: decode(name)?,
            on: *on == "on",
        }),
        ["anycast", name, "maintenance", on @ ("on" | "off")] => Ok(Request::AnycastMaintenance {
            group: decode(name)?,
            on: *on == "on",
        }),
        _ => Err(
            "write requests: /backends/POOL/ADDRESS/{drain,disable,enable,weight/N}, \
             /instances/NAME/maintenance/{on,off}, /anycast/NAME/maintenance/{on,off}"
                .into(),
        ),
    }
}

/// Reads the bearer token from `file` (its content, trimmed).
///
/// # Errors
///
/// A message naming the file when it cannot be read or is empty.
pub fn read_token(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("admin token_file {}: {e}", file.display()))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(format!("admin token_file {} is empty", file.display()));
    }
    Ok(token)
}

/// Whether the `Authorization` header carries `token` (compared in constant time).
pub fn authorized(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_to_requests() {
        let addr = percent_encode("[2001:db8::1]:80");
        assert_eq!(addr, "%5B2001%3Adb8%3A%3A1%5D%3A80");
        let r = parse(&format!("/backends/web/{addr}/weight/5"), None).unwrap();
        assert_eq!(
            r,
            Request::Backend {
                pool: "web".into(),
                backend: "[2001:db8::1]:80".parse().unwrap(),
                action: BackendAction::Weight(5),
                grace: None
            }
        );
        let r = parse("/backends/web/192.0.2.1%3A80/disable", Some("grace_ms=250")).unwrap();
        assert!(matches!(
            r,
            Request::Backend { action: BackendAction::Disable, grace: Some(g), .. } if g == Duration::from_millis(250)
        ));
        assert_eq!(
            parse("/instances/VI_1/maintenance/on", None).unwrap(),
            Request::Maintenance {
                instance: "VI_1".into(),
                on: true
            }
        );
        assert!(parse("/backends/web/nonsense/drain", None).is_err());
        assert!(parse("/backends/web/192.0.2.1:80/weight/x", None).is_err());
        assert!(parse("/instances/VI_1/maintenance/maybe", None).is_err());
        assert_eq!(
            parse("/anycast/api/maintenance/off", None).unwrap(),
            Request::AnycastMaintenance {
                group: "api".into(),
                on: false
            }
        );
        assert!(parse("/backends/web/%zz/drain", None).is_err());
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        assert!(authorized(Some("Bearer s3cret"), "s3cret"));
        assert!(!authorized(Some("Bearer s3cre"), "s3cret"));
        assert!(!authorized(Some("Bearer s3cretX"), "s3cret"));
        assert!(!authorized(Some("Basic s3cret"), "s3cret"));
        assert!(!authorized(None, "s3cret"));
    }
}
