//! Sync groups as the node runs them. vrrp-core's [`SyncGroup`] holds the rule (hold, let go,
//! step down); this keeps one per configured group with its notify queue and the state it last
//! announced, feeds it the members' state events, and turns its decisions into commands for
//! the members.

use std::collections::BTreeMap;

use vrrp_core::{Decision, Leave, State, StateReport, SyncGroup};

use super::instance::{Command, StateEvent};
use super::notify::{self, Notifier};
use crate::config::Config;

/// One sync group.
#[derive(Debug)]
struct Group {
    /// The rule and its members' view (state, own Fault, want, hold, running).
    rule: SyncGroup<String>,
    /// The group's notify commands, in order; started with its first announced state.
    notifier: Option<Notifier>,
    /// The state its notify last announced.
    announced: Option<&'static str>,
}

/// The node's sync groups by name.
#[derive(Debug, Default)]
pub struct Groups {
    by_name: BTreeMap<String, Group>,
}

/// The sync group `instance` belongs to in `config`.
pub fn group_of(config: &Config, instance: &str) -> Option<String> {
    config
        .sync_groups
        .iter()
        .find(|(_, g)| g.instances.iter().any(|m| m == instance))
        .map(|(n, _)| n.clone())
}

impl Groups {
    /// Makes the groups those of `config`: a group that stays keeps its members' view (those
    /// still in it), a new one starts with none running.
    pub fn regroup(&mut self, config: &Config) {
        let mut old = std::mem::take(&mut self.by_name);
        for (name, g) in &config.sync_groups {
            let mut group = old.remove(name).unwrap_or_else(|| Group {
                rule: SyncGroup::new([]),
                notifier: None,
                announced: None,
            });
            group.rule.set_members(g.instances.iter().cloned());
            self.by_name.insert(name.clone(), group);
        }
    }

    /// Whether the sync group `group` lets `instance` follow it out of Fault: `false` while
    /// another member's own fault holds the group (the tracked object of `track_sync_group`).
    pub fn lets_run(&self, group: &str, instance: &str) -> bool {
        self.by_name
            .get(group)
            .is_none_or(|g| g.rule.fault_followed(instance).is_none())
    }

    /// Member `name` of `config` started (it starts held; the group lets it go).
    pub fn started(&mut self, config: &Config, name: &str) {
        if let Some(g) = group_of(config, name).and_then(|g| self.by_name.get_mut(&g)) {
            g.rule.handle_start(name);
        }
    }

    /// Member `name` of `config` leaves its group for a while (see [`Leave`]).
    pub fn leave(&mut self, config: &Config, name: &str, leave: Leave) {
        if let Some(g) = group_of(config, name).and_then(|g| self.by_name.get_mut(&g)) {
            g.rule.handle_leave(name, leave);
        }
    }

    /// A member's state event: its group's view follows, and the group's notify runs when
    /// the group's state changed. Returns whether the event was a state change of a member
    /// (then tracked sync groups may have changed).
    pub fn handle_event(&mut self, config: &Config, event: StateEvent) -> bool {
        let Some(name) = group_of(config, event.name()) else {
            return false;
        };
        let Some(group) = self.by_name.get_mut(&name) else {
            return false;
        };
        let (member, to, priority) = match event {
            StateEvent::WantsMaster { name, wants_master } => {
                group.rule.handle_wants_master(&name, wants_master);
                return false;
            }
            StateEvent::Changed {
                name,
                from,
                to,
                reason,
                own_fault,
                priority,
                wants_master,
                why: _,
            } => {
                group.rule.handle_state_changed(
                    &name,
                    StateReport {
                        from,
                        to,
                        reason,
                        wants_master,
                        own_fault,
                    },
                );
                (name, to, priority)
            }
        };
        let word = match group.rule.state() {
            Some(State::Fault) => "FAULT",
            Some(State::Master) => "MASTER",
            Some(State::Backup) => "BACKUP",
            _ => return true,
        };
        if group.announced != Some(word) {
            group.announced = Some(word);
            tracing::info!(sync_group = %name, state = word, member = %member, member_state = %to, "sync group state");
            let commands = config
                .sync_groups
                .get(&name)
                .map(|g| notify::commands_for(&g.notify, "GROUP", &name, word, priority))
                .unwrap_or_default();
            group
                .notifier
                .get_or_insert_with(|| Notifier::start(&name))
                .queue(commands);
        }
        true
    }

    /// What the groups decided since last asked, as commands to their members, logged with
    /// the reasons.
    pub fn poll_commands(&mut self) -> Vec<(String, Command)> {
        let mut out = Vec::new();
        for (group, g) in &mut self.by_name {
            while let Some(d) = g.rule.poll_decision() {
                match d {
                    Decision::StepDown { member, why } => {
                        tracing::info!(sync_group = %group, instance = %member, reason = %why, "sync group: stepping down to Backup");
                        out.push((
                            member,
                            Command::StepDown(format!("sync group {group}: {why}")),
                        ));
                    }
                    Decision::Hold { member, held, why } => {
                        if held {
                            tracing::info!(sync_group = %group, instance = %member, reason = %why, "sync group: holding back from Master");
                        } else {
                            tracing::info!(sync_group = %group, instance = %member, reason = %why, "sync group: letting go to Master");
                        }
                        out.push((member, Command::Hold(held)));
                    }
                    other => {
                        tracing::warn!(sync_group = %group, decision = ?other, "sync group decision not applied");
                    }
                }
            }
        }
        out
    }
}
