//! SIGHUP: the configuration file read again and applied where it changed, or rejected
//! whole (the running configuration stays).

use vrrp_core::Leave;

use super::groups;
use super::instance::{self, Command};
use super::node::Node;
use super::{balancer, capabilities, load, router_config, router_id, scripts, set_no_accept};

impl Node {
    /// SIGHUP: read the file again and apply what changed; on any error the old configuration
    /// keeps running.
    pub(super) async fn reload(&mut self) {
        tracing::info!(path = %self.options.config_path.display(), "SIGHUP: reloading");
        let new = match load(&self.options.config_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload rejected, the running configuration stays:\n{e}");
                self.shared.count_reload(false);
                return;
            }
        };
        if new == self.config {
            tracing::info!("reload: configuration unchanged");
            self.shared.count_reload(true);
            return;
        }
        if !new.instances.is_empty() {
            if let Err(e) = capabilities::require_vrrp() {
                tracing::error!("reload rejected, the running configuration stays: {e}");
                self.shared.count_reload(false);
                return;
            }
        }
        if !new.anycast.is_empty() {
            if let Err(e) = capabilities::require_net_admin() {
                tracing::error!("reload rejected, the running configuration stays: {e}");
                self.shared.count_reload(false);
                return;
            }
        }
        if let Err(e) = scripts::verify(&new) {
            tracing::error!("reload rejected, the running configuration stays: {e}");
            self.shared.count_reload(false);
            return;
        }
        if let Err(e) = set_no_accept(&new, Some(&self.config)) {
            tracing::error!(error = %e, "reload rejected, the running configuration stays");
            self.shared.count_reload(false);
            return;
        }
        let retired = match self.shared.balancer().apply(&new) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reload rejected (balancer), the running configuration stays");
                self.shared.count_reload(false);
                return;
            }
        };
        self.shared.count_reload(true);
        scripts::set_global_run_as(new.global.run_as.clone());
        if let Err(e) = self.health.apply(&new) {
            tracing::error!(error = %e, "reload: health checks not changed");
        }
        let old = std::mem::replace(&mut self.config, new.clone());
        if old.admin != new.admin {
            if let Some(task) = self.admin.take() {
                // Gone before the new one binds the same port.
                task.abort();
                let _ = task.await;
            }
            if let Some(admin) = &new.admin {
                let serve = self.options.admin;
                match serve(admin.clone(), self.shared.clone(), self.control_tx.clone()).await {
                    Ok(task) => self.admin = Some(task),
                    Err(e) => tracing::error!(error = %e, "reload: admin endpoint not started"),
                }
            }
        }
        tokio::spawn(balancer::drain(retired, self.options.drain_timeout));
        // Instances removed or changed stop (priority 0, VIPs removed); unchanged ones keep
        // their state and VIPs, and so do those whose change applies in place (priority,
        // notify commands).
        let mut changed = Vec::new();
        for (name, h) in self
            .slots
            .iter_mut()
            .filter_map(|(n, s)| Some((n, s.running.as_mut()?)))
        {
            let regrouped = groups::group_of(&new, name) != groups::group_of(&old, name);
            match new.instances.get(name) {
                Some(n) if *n == h.config && !regrouped => {}
                Some(n) if instance::in_place(&h.config, n) && !regrouped => {
                    tracing::info!(instance = %name, "reload: priority / notify changed, applied in place");
                    // in_place excludes address owners; check-config bounds the priority.
                    let priority = router_config::priority(name, n).unwrap_or(u8::MAX);
                    h.send(Command::Reconfigure(priority, n.notify.clone()));
                    h.config = n.clone();
                }
                _ => changed.push(name.clone()),
            }
        }
        // They leave their groups first, all of them, so that only the members that stay are
        // stepped down with them (see `Leave::Reload`).
        for name in &changed {
            self.groups.leave(&old, name, Leave::Reload);
        }
        self.apply_group_commands();
        for name in changed {
            if let Some(h) = self.slots.get_mut(&name).and_then(|s| s.running.take()) {
                tracing::info!(instance = %name, "reload: instance changed or removed, restarting it");
                h.shutdown().await;
            }
        }
        // The slots of removed instances go (with an operator's maintenance); one that was
        // waiting for its interface leaves the status too (a running one did as it stopped).
        let removed: Vec<String> = self
            .slots
            .keys()
            .filter(|n| !new.instances.contains_key(*n))
            .cloned()
            .collect();
        for name in removed {
            self.slots.remove(&name);
            self.shared.remove_instance(&name);
        }
        self.groups.regroup(&new);
        self.apply_group_commands();
        if let Err(e) = self.start_instances(&new) {
            tracing::error!(error = %e, "reload: an instance could not start");
        }
        self.push_backend_states(None);
        self.push_tracks();
        self.follow_anycast();
        if let Err(e) = self.anycast.apply(&new) {
            tracing::error!(error = %e, "reload: an anycast group could not start");
        }
        self.update_anycast();
        self.shared.set_checks(self.health.statuses());
        self.shared.set_router_id(router_id(&new));
        if let Err(e) = self.conntrack.apply(&new).await {
            tracing::error!(error = %e, "reload: conntrack sync not running");
        }
        tracing::info!("reload done");
    }
}
