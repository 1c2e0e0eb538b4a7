//! `[global]`: settings of the whole process.

use serde::{Deserialize, Serialize};

/// Process-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Name of this node in logs, notify arguments and `/status`. Default: the hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
}

impl Global {
    /// `true` when nothing is set, so an empty `[global]` is not written out.
    pub fn is_empty(&self) -> bool {
        self.router_id.is_none()
    }
}
