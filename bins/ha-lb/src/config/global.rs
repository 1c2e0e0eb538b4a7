//! `[global]`: settings of the whole process.

use serde::{Deserialize, Serialize};

/// Process-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Name of this node in logs, notify arguments and `/status`. Default: the hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Run exec checks and notify commands as this `user[:group]` (names or numbers; the
    /// user's primary group when no group is given), keepalived's `script_user`. Default:
    /// as ha-lb's own user. Either way they run with no capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

impl Global {
    /// `true` when nothing is set, so an empty `[global]` is not written out.
    pub fn is_empty(&self) -> bool {
        self.router_id.is_none() && self.run_as.is_none()
    }
}
