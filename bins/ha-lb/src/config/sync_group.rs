//! `[sync_groups.NAME]`: instances that change state together, as keepalived's
//! `vrrp_sync_group`: Fault together, Backup together (a member that loses its election steps
//! the others down), and Master only when every member wants it.

use serde::{Deserialize, Serialize};

use super::notify::Notify;

/// One sync group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncGroup {
    /// Names of `[instances.NAME]`, at least two, each in at most one group. Required.
    pub instances: Vec<String>,
    /// Commands run when the group changes state. Default none.
    #[serde(default, skip_serializing_if = "Notify::is_empty")]
    pub notify: Notify,
}
