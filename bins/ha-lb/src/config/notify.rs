//! Commands run on state changes, as keepalived's `notify_*`.
//!
//! Each command is an argument vector run without a shell. For one instance (or sync group)
//! the commands run in order, never two at once.

use serde::{Deserialize, Serialize};

/// Notify commands of an instance or sync group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Run on becoming Master. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<Vec<String>>,
    /// Run on becoming Backup. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Vec<String>>,
    /// Run on entering Fault. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Vec<String>>,
    /// Run when the instance stops. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Run on every change, with `INSTANCE|GROUP NAME STATE PRIORITY` appended, as keepalived's
    /// plain `notify`. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<String>>,
    /// Run these commands as this `user[:group]` instead of `global.run_as`. Default: the
    /// global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

impl Notify {
    /// `true` when no command is set.
    pub fn is_empty(&self) -> bool {
        self.commands().next().is_none()
    }

    /// The commands that are set, with the key they were given under.
    pub fn commands(&self) -> impl Iterator<Item = (&'static str, &Vec<String>)> {
        [
            ("master", &self.master),
            ("backup", &self.backup),
            ("fault", &self.fault),
            ("stop", &self.stop),
            ("any", &self.any),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}
