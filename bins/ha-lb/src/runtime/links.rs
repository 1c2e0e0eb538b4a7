//! Link state for the runtime: a task around the netlink [`LinkWatcher`] that forwards every
//! change, so instances on a downed link go to Fault and tracked interfaces move priorities.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::error::RuntimeError;
use super::readiness::register;
use crate::net::{link_state, Interface, LinkEvent, LinkWatcher, NetError};

/// The usable state (up, with carrier) of interfaces by name, as last reported.
#[derive(Debug, Default, Clone)]
pub struct Links {
    by_index: BTreeMap<u32, String>,
    usable: BTreeMap<String, bool>,
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

    /// Applies a kernel event; returns the interface name and new state when a followed
    /// interface changed.
    pub fn apply(&mut self, event: &LinkEvent) -> Option<(u32, String, bool)> {
        let (ifindex, up, name) = match event {
            LinkEvent::Changed(s) => (s.ifindex, s.is_usable(), s.name.clone()),
            LinkEvent::Removed { ifindex } => (*ifindex, false, None),
        };
        let name = match self.by_index.get(&ifindex) {
            Some(n) => n.clone(),
            None => {
                // An interface we follow by name may have (re)appeared with a new index.
                let n = name.filter(|n| self.usable.contains_key(n))?;
                self.by_index.insert(ifindex, n.clone());
                n
            }
        };
        let old = self.usable.insert(name.clone(), up);
        (old != Some(up)).then_some((ifindex, name, up))
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
