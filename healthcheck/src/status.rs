//! Which HTTP status codes count as healthy.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ConfigError;

/// The HTTP statuses that count as healthy.
///
/// In a configuration file: a number (`200`), a list (`[200, 204]`), a range as text
/// (`"200-399"`) or a class (`"2xx"`). The default is `"200-399"`, like haproxy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMatch {
    /// Exactly this status.
    Exact(u16),
    /// Any status of the set.
    Set(Vec<u16>),
    /// Any status in the inclusive range.
    Range(u16, u16),
}

impl Default for StatusMatch {
    fn default() -> Self {
        StatusMatch::Range(200, 399)
    }
}

impl StatusMatch {
    /// Whether `status` is healthy.
    pub fn matches(&self, status: u16) -> bool {
        match self {
            StatusMatch::Exact(s) => *s == status,
            StatusMatch::Set(set) => set.contains(&status),
            StatusMatch::Range(lo, hi) => (*lo..=*hi).contains(&status),
        }
    }

    /// Rejects codes outside 100-599, an empty set and an inverted range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::Invalid {
            field: "expect_status",
            reason,
        };
        let check = |code: u16| {
            if (100..=599).contains(&code) {
                Ok(())
            } else {
                Err(bad(format!("{code} is not an HTTP status (100-599)")))
            }
        };
        match self {
            StatusMatch::Exact(s) => check(*s),
            StatusMatch::Set(set) if set.is_empty() => {
                Err(bad("the set is empty; list at least one status".to_owned()))
            }
            StatusMatch::Set(set) => set.iter().try_for_each(|s| check(*s)),
            StatusMatch::Range(lo, hi) => {
                check(*lo)?;
                check(*hi)?;
                if lo > hi {
                    return Err(bad(format!("range {lo}-{hi} is inverted")));
                }
                Ok(())
            }
        }
    }

    /// Parses `"200"`, `"200-399"` or `"2xx"`.
    pub fn parse(text: &str) -> Result<StatusMatch, ConfigError> {
        let bad = || ConfigError::Invalid {
            field: "expect_status",
            reason: format!("{text:?}: write 200, [200, 204], \"200-399\" or \"2xx\""),
        };
        let text = text.trim();
        let parsed = if let Some(class) = text.strip_suffix("xx") {
            let c: u16 = class.parse().map_err(|_| bad())?;
            StatusMatch::Range(c * 100, c * 100 + 99)
        } else if let Some((lo, hi)) = text.split_once('-') {
            let lo = lo.trim().parse().map_err(|_| bad())?;
            let hi = hi.trim().parse().map_err(|_| bad())?;
            StatusMatch::Range(lo, hi)
        } else {
            StatusMatch::Exact(text.parse().map_err(|_| bad())?)
        };
        parsed.validate()?;
        Ok(parsed)
    }
}

impl fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusMatch::Exact(s) => write!(f, "{s}"),
            StatusMatch::Set(set) => {
                let codes: Vec<String> = set.iter().map(u16::to_string).collect();
                write!(f, "{}", codes.join(","))
            }
            StatusMatch::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

impl<'de> Deserialize<'de> for StatusMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Set(Vec<u16>),
            Text(String),
        }
        let parsed = match Raw::deserialize(d).map_err(|_| {
            de::Error::custom("expect_status: write 200, [200, 204], \"200-399\" or \"2xx\"")
        })? {
            Raw::Code(c) => StatusMatch::Exact(c),
            Raw::Set(s) => StatusMatch::Set(s),
            Raw::Text(t) => StatusMatch::parse(&t).map_err(de::Error::custom)?,
        };
        parsed.validate().map_err(de::Error::custom)?;
        Ok(parsed)
    }
}

impl Serialize for StatusMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StatusMatch::Exact(c) => s.serialize_u16(*c),
            StatusMatch::Set(set) => set.serialize(s),
            StatusMatch::Range(..) => s.serialize_str(&self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_exact_set_and_range() {
        assert!(StatusMatch::Exact(200).matches(200));
        assert!(!StatusMatch::Exact(200).matches(503));
        assert!(StatusMatch::Set(vec![200, 204]).matches(204));
        assert!(StatusMatch::default().matches(302));
        assert!(!StatusMatch::default().matches(503));
    }

    #[test]
    fn parses_text_forms() {
        assert_eq!(
            StatusMatch::parse("2xx").ok(),
            Some(StatusMatch::Range(200, 299))
        );
        assert_eq!(
            StatusMatch::parse("200-204").ok(),
            Some(StatusMatch::Range(200, 204))
        );
        assert_eq!(
            StatusMatch::parse("503").ok(),
            Some(StatusMatch::Exact(503))
        );
        assert!(StatusMatch::parse("399-200").is_err());
        assert!(StatusMatch::parse("ok").is_err());
        assert!(StatusMatch::Set(vec![]).validate().is_err());
        assert!(StatusMatch::Exact(42).validate().is_err());
    }
}
