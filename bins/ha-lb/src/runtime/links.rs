//! Link state for the runtime: a task around the netlink [`LinkWatcher`] that forwards every
//! change, so instances on a downed link go to Fault and tracked interfaces move priorities.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::error::RuntimeError;
use super::readiness::register;
use crate::net::{link_state, Interface, LinkEvent, LinkWatcher, NetError};

/// The usable state (up, with carrier) of interfaces followed by name, as last reported.
///
/// Interfaces are followed by name, not index: one deleted and created again (a veth pair
/// re-made, a VLAN re-added) comes back with a new index, and the change says so.
#[derive(Debug, Default, Clone)]
pub struct Links {
    by_index: BTreeMap<u32, String>,
    usable: BTreeMap<String, bool>,
}

/// A followed interface whose usable state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkChange {
    /// Its index now (for a removed interface, the index it had).
    pub ifindex: u32,
    /// Its name.
    pub name: String,
    /// Up with carrier.
    pub up: bool,
}

impl Links {
    /// Starts following `name` (looked up now; an interface that does not exist is down).
    pub fn follow(&mut self, name: &str) {
        if self.usable.contains_key(name) {
            return;
        }
        let up = match Interface::by_name(name) {
            Ok(iface) => {
                self.by_index.insert(iface.index(), name.to_owned());
                link_state(iface.index()).is_ok_and(|s| s.is_usable())
            }
            Err(_) => false,
        };
        self.usable.insert(name.to_owned(), up);
    }

    /// Whether `name` is up with carrier (false when unknown).
    pub fn is_up(&self, name: &str) -> bool {
        self.usable.get(name).copied().unwrap_or(false)
    }

    /// Applies a kernel event; returns the followed interfaces whose state it changed (two
    /// when an interface is renamed: the old name goes down).
    pub fn apply(&mut self, event: &LinkEvent) -> Vec<LinkChange> {
        let mut changes = Vec::new();
        match event {
            LinkEvent::Removed { ifindex } => {
                if let Some(name) = self.by_index.remove(ifindex) {
                    self.set(*ifindex, name, false, &mut changes);
                }
            }
            LinkEvent::Changed(s) => {
                let name = match &s.name {
                    Some(n) => {
                        // The index may have been renamed away from a followed name, or a
                        // followed name may have (re)appeared with a new index.
                        let previous = if self.usable.contains_key(n) {
                            self.by_index.insert(s.ifindex, n.clone())
                        } else {
                            self.by_index.remove(&s.ifindex)
                        };
                        if let Some(old) = previous.filter(|old| old != n) {
                            self.set(s.ifindex, old, false, &mut changes);
                        }
                        if !self.usable.contains_key(n) {
                            return changes;
                        }
                        n.clone()
                    }
                    None => match self.by_index.get(&s.ifindex) {
                        Some(n) => n.clone(),
                        None => return changes,
                    },
                };
                self.set(s.ifindex, name, s.is_usable(), &mut changes);
            }
        }
        changes
    }

    fn set(&mut self, ifindex: u32, name: String, up: bool, changes: &mut Vec<LinkChange>) {
        if self.usable.insert(name.clone(), up) != Some(up) {
            changes.push(LinkChange { ifindex, name, up });
        }
    }
}

/// Starts a task that sends every link event on `tx`, until `tx` closes.
///
/// # Errors
///
/// [`RuntimeError::Net`] when the netlink socket cannot be opened.
pub fn watch(tx: mpsc::UnboundedSender<LinkEvent>) -> Result<(), RuntimeError> {
    let watcher = LinkWatcher::new()?;
    watcher.set_nonblocking(true)?;
    let mut fd = register(watcher).map_err(NetError::io("register link watcher"))?;
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.clear_ready();
            loop {
                match guard.get_inner_mut().0.recv() {
                    Ok(events) => {
                        for e in events {
                            if tx.send(e).is_err() {
                                return;
                            }
                        }
                    }
                    Err(NetError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::WouldBlock =>
                    {
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "link watcher");
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LinkState;

    fn changed(ifindex: u32, name: &str, up: bool) -> LinkEvent {
        LinkEvent::Changed(LinkState {
            ifindex,
            name: Some(name.to_owned()),
            admin_up: up,
            running: up,
            mtu: Some(1500),
        })
    }

    fn change(ifindex: u32, name: &str, up: bool) -> LinkChange {
        LinkChange {
            ifindex,
            name: name.to_owned(),
            up,
        }
    }

    #[test]
    fn a_re_created_interface_is_followed_at_its_new_index() {
        let mut links = Links::default();
        // No such interface here: followed, and down until it appears.
        links.follow("hl-none0");
        assert!(!links.is_up("hl-none0"));
        assert_eq!(
            links.apply(&changed(40, "hl-none0", true)),
            vec![change(40, "hl-none0", true)]
        );
        // The kernel repeats link messages: no change, no report.
        assert!(links.apply(&changed(40, "hl-none0", true)).is_empty());
        assert_eq!(
            links.apply(&LinkEvent::Removed { ifindex: 40 }),
            vec![change(40, "hl-none0", false)]
        );
        // Made again: it appears down at a new index, then comes up.
        assert!(links.apply(&changed(41, "hl-none0", false)).is_empty());
        assert_eq!(
            links.apply(&changed(41, "hl-none0", true)),
            vec![change(41, "hl-none0", true)]
        );
        // The old index, reused by another interface, says nothing about ours.
        assert!(links.apply(&changed(40, "other0", false)).is_empty());
        assert!(links.is_up("hl-none0"));
    }

    #[test]
    fn renaming_a_followed_interface_away_takes_it_down() {
        let mut links = Links::default();
        links.follow("hl-none1");
        links.apply(&changed(50, "hl-none1", true));
        assert_eq!(
            links.apply(&changed(50, "renamed0", true)),
            vec![change(50, "hl-none1", false)]
        );
        assert!(!links.is_up("hl-none1"));
        // Unfollowed interfaces are ignored.
        assert!(links.apply(&changed(51, "other1", true)).is_empty());
        assert!(links.apply(&LinkEvent::Removed { ifindex: 51 }).is_empty());
    }
}
