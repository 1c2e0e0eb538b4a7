//! The balancer side: lb-core pools and listeners built from the configuration, kept across
//! reloads.
//!
//! Listeners bind with IP_FREEBIND (`non_local_bind`) so a backup node listens on the VIP
//! before it holds it and serves the moment the VIP arrives, and with SO_REUSEPORT so that a
//! reload can open a changed listener before closing the old one: listeners keep accepting.
//! A pool whose backends changed is updated in place (open connections and counters stay).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use lb_core::{
    Algorithm, BackendConfig, BackendState, BalancerStats, ConnectionLog, End, Listener,
    ListenerConfig, ListenerHandle, Pool, PoolConfig, ProxyProtocol,
};
use serde::{Deserialize, Serialize};

use super::error::RuntimeError;
use super::nat::NatTable;
use crate::config::{self, Config};

/// Maglev lookup table size (a prime well above any pool size).
const MAGLEV_TABLE_SIZE: usize = 65_537;

/// An operator's state for a backend (`ha-lb ctl backend ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// No new connections; open ones go on.
    Drain,
    /// No new connections; open ones are closed after a grace.
    Disable,
}

/// What an operator asks of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendAction {
    /// Take no new connections; open ones go on.
    Drain,
    /// Take no new connections; close the open ones after the grace.
    Disable,
    /// Undo drain and disable: the backend's state is its check's again.
    Enable,
    /// Set its weight (0..=1000); the configured weight is the file's again.
    Weight(u32),
}

/// An operator's change to one backend, kept across reloads while the file leaves that
/// backend as it was when the change was made (`basis`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    state: Option<AdminState>,
    weight: Option<u32>,
    basis: config::Backend,
}

impl Override {
    fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        match self.state {
            Some(AdminState::Drain) => parts.push("drain".to_owned()),
            Some(AdminState::Disable) => parts.push("disable".to_owned()),
            None => {}
        }
        if let Some(w) = self.weight {
            parts.push(format!("weight {w}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The running pools and listeners.
#[derive(Debug, Default)]
pub struct Balancer {
    pools: BTreeMap<String, (config::Pool, Pool)>,
    listeners: BTreeMap<String, (config::Listener, ListenerHandle)>,
    /// Operators' changes, by pool and backend.
    overrides: BTreeMap<(String, SocketAddr), Override>,
    /// Backends whose check says down (the others are up).
    checks_down: BTreeSet<(String, SocketAddr)>,
    /// Where listeners with `log = true` send their records.
    log: Option<ConnectionLog>,
    /// The listeners in NAT mode: nftables rules, no socket.
    nat: NatTable,
}

fn algorithm(a: config::Algorithm) -> Algorithm {
    match a {
        config::Algorithm::Roundrobin => Algorithm::RoundRobin,
        config::Algorithm::Leastconn => Algorithm::LeastConn,
        config::Algorithm::P2c => Algorithm::PowerOfTwo,
        config::Algorithm::Random => Algorithm::Random,
        // sourcehash is refused by check-config for proxy listeners; a pool that only NAT
        // listeners use still gets an lb-core pool (it keeps the backends' states).
        config::Algorithm::Maglev | config::Algorithm::Sourcehash => Algorithm::Maglev {
            table_size: MAGLEV_TABLE_SIZE,
        },
    }
}

fn backends(pool: &config::Pool) -> Vec<BackendConfig> {
    pool.backends
        .iter()
        .map(|b| {
            BackendConfig::new(b.address)
                .weight(b.weight)
                .backup(b.backup)
                .max_connections(b.max_conns)
        })
        .collect()
}

fn pool_config(name: &str, pool: &config::Pool) -> PoolConfig {
    let mut pc = pool_config_base(name, pool);
    pc.close_on_down = pool.on_backend_down == config::OnBackendDown::Close;
    pc.slow_start = Duration::from_millis(pool.slow_start_ms);
    pc
}

fn pool_config_base(name: &str, pool: &config::Pool) -> PoolConfig {
    let mut pc = PoolConfig::new(name, backends(pool));
    pc.algorithm = algorithm(pool.algorithm);
    pc.connect_timeout = Duration::from_millis(pool.connect_timeout_ms);
    pc.retries = pool.retries;
    pc.max_fails = pool.max_fails;
    pc.fail_timeout = Duration::from_millis(pool.fail_timeout_ms);
    pc.proxy_protocol = match pool.proxy_protocol {
        config::ProxyProtocol::Off => ProxyProtocol::None,
        config::ProxyProtocol::V1 => ProxyProtocol::V1,
        config::ProxyProtocol::V2 => ProxyProtocol::V2,
    };
    pc
}

fn listener_config(
    name: &str,
    l: &config::Listener,
    log: Option<&ConnectionLog>,
) -> ListenerConfig {
    let mut lc = ListenerConfig::new(l.listen, l.pool.clone());
    lc.log = log.filter(|_| l.log).map(|log| log.with_label(name));
    lc.freebind = l.non_local_bind;
    lc.reuseport = true;
    lc.max_connections = l.max_connections;
    lc.idle_timeout = Some(Duration::from_millis(l.idle_timeout_ms));
    lc
}

/// Whether two pool definitions differ only in their backend lists (updated in place).
fn same_settings(a: &config::Pool, b: &config::Pool) -> bool {
    a.algorithm == b.algorithm
        && a.retries == b.retries
        && a.connect_timeout_ms == b.connect_timeout_ms
        && a.proxy_protocol == b.proxy_protocol
        && a.max_fails == b.max_fails
        && a.fail_timeout_ms == b.fail_timeout_ms
        && a.on_backend_down == b.on_backend_down
        && a.slow_start_ms == b.slow_start_ms
}

impl Balancer {
    /// Brings pools and listeners to what `config` says. Unchanged listeners keep running;
    /// pools whose settings are unchanged get their new backend list in place. On error,
    /// what was already running keeps running. Must run within the tokio runtime.
    ///
    /// Returns the listeners that were replaced or removed, for the caller to drain.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Balancer`] when a pool or listener is refused (e.g. a bind fails).
    pub fn apply(&mut self, config: &Config) -> Result<Vec<ListenerHandle>, RuntimeError> {
        // Build every new pool and bind every new listener first, so an error changes nothing.
        let mut new_pools = BTreeMap::new();
        for (name, p) in &config.pools {
            match self.pools.get(name) {
                Some((old, _)) if same_settings(old, p) => {}
                _ => {
                    new_pools.insert(name.clone(), Pool::new(pool_config(name, p))?);
                }
            }
        }
        let pool_handle = |name: &str| -> Option<Pool> {
            new_pools
                .get(name)
                .cloned()
                .or_else(|| self.pools.get(name).map(|(_, p)| p.clone()))
        };
        let mut bound = Vec::new();
        for (name, l) in &config.listeners {
            if l.mode == config::ListenerMode::Nat {
                continue;
            }
            let keep = self
                .listeners
                .get(name)
                .is_some_and(|(old, _)| old == l && !new_pools.contains_key(&l.pool));
            if keep {
                continue;
            }
            let pool = pool_handle(&l.pool).ok_or_else(|| lb_core::Error::UnknownPool {
                listener: l.listen,
                pool: l.pool.clone(),
            })?;
            bound.push((
                name.clone(),
                l.clone(),
                Listener::bind(&listener_config(name, l, self.log.as_ref()), pool)?,
            ));
        }
        // Commit: update pools in place, swap listeners.
        for (name, p) in &config.pools {
            if let Some((old, pool)) = self.pools.get_mut(name) {
                if !new_pools.contains_key(name) {
                    if old.backends != p.backends {
                        pool.set_backends(&backends(p))?;
                        tracing::info!(pool = %name, backends = p.backends.len(), "pool backends updated in place");
                    }
                    *old = p.clone();
                }
            }
        }
        for (name, pool) in new_pools {
            if let Some(p) = config.pools.get(&name) {
                tracing::info!(pool = %name, "pool started");
                self.pools.insert(name, (p.clone(), pool));
            }
        }
        self.pools.retain(|name, _| config.pools.contains_key(name));
        self.keep_overrides(config);
        let mut retired = Vec::new();
        for (name, l, listener) in bound {
            tracing::info!(listener = %name, listen = %l.listen, pool = %l.pool, "listener started");
            if let Some((_, old)) = self.listeners.insert(name, (l, listener.spawn())) {
                retired.push(old);
            }
        }
        let gone: Vec<String> = self
            .listeners
            .keys()
            .filter(|n| {
                config
                    .listeners
                    .get(*n)
                    .is_none_or(|l| l.mode == config::ListenerMode::Nat)
            })
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, old)) = self.listeners.remove(&name) {
                tracing::info!(listener = %name, "listener stopped (no longer configured, or now in NAT mode)");
                retired.push(old);
            }
        }
        self.nat.configure(config);
        if let Err(e) = self.nat.sync(&self.pools) {
            // At start nothing runs yet: the start fails (no nf_tables, no CAP_NET_ADMIN). On a
            // reload the rest is committed already: the kernel keeps the rules it had, and
            // the next change of a backend tries again.
            if !self.nat.has_programmed() {
                return Err(RuntimeError::Nat(e));
            }
            tracing::error!(error = %e, "NAT listeners not updated: the kernel keeps the previous rules");
        }
        Ok(retired)
    }

    /// Sets where listeners with `log = true` send their records (before the first
    /// [`Balancer::apply`]).
    pub fn set_connection_log(&mut self, log: ConnectionLog) {
        self.log = Some(log);
    }

    /// Connection log records dropped because its queue was full.
    pub fn connection_log_dropped(&self) -> u64 {
        self.log.as_ref().map_or(0, ConnectionLog::dropped)
    }

    /// Keeps the operators' changes to backends that `config` leaves as they were, and
    /// applies them to the (possibly new) pools; forgets the others.
    fn keep_overrides(&mut self, config: &Config) {
        let pools = &self.pools;
        self.overrides.retain(|(pool, addr), o| {
            let same = config
                .pools
                .get(pool)
                .and_then(|p| p.backends.iter().find(|b| b.address == *addr))
                .is_some_and(|b| *b == o.basis);
            if !same {
                tracing::info!(pool = %pool, backend = %addr, "the file changed the backend: the operator's change to it ends");
            }
            same && pools.contains_key(pool)
        });
        self.checks_down.retain(|(pool, addr)| {
            config
                .pools
                .get(pool)
                .is_some_and(|p| p.backends.iter().any(|b| b.address == *addr))
        });
        // Every backend: those whose change just ended go back to the file's settings too.
        for (name, (conf, _)) in &self.pools {
            for b in &conf.backends {
                if let Err(e) = self.push_backend(name, b.address, false) {
                    tracing::warn!(pool = %name, backend = %b.address, error = %e, "operator's change not applied");
                }
            }
        }
    }

    /// Sets backend `addr` of `pool` in lb-core from its check and its operator's change: a
    /// check down wins (no new connections, and `on_backend_down` applies), then drain or
    /// disable, then up; the weight is the operator's, else the file's. Unless `from_check`,
    /// an unchanged state is not set again (setting "up" ends a passive-health cool-down,
    /// which only a check may do).
    fn push_backend(
        &self,
        pool: &str,
        addr: SocketAddr,
        from_check: bool,
    ) -> Result<(), lb_core::Error> {
        let Some((conf, p)) = self.pools.get(pool) else {
            return Ok(());
        };
        let key = (pool.to_owned(), addr);
        let o = self.overrides.get(&key);
        let state = if self.checks_down.contains(&key) {
            BackendState::Down
        } else {
            match o.and_then(|o| o.state) {
                Some(AdminState::Drain) => BackendState::Drain,
                Some(AdminState::Disable) => BackendState::Maintenance,
                None => BackendState::Up,
            }
        };
        let configured = conf
            .backends
            .iter()
            .find(|b| b.address == addr)
            .map_or(1, |b| b.weight);
        p.set_weight(addr, o.and_then(|o| o.weight).unwrap_or(configured))?;
        let current = p
            .snapshot()
            .backends()
            .iter()
            .find(|b| b.addr() == addr)
            .map(|b| b.state());
        if from_check || current != Some(state) {
            p.set_state(addr, state)?;
        }
        Ok(())
    }

    /// Sets the health of backend `addr` of `pool` (from its check).
    ///
    /// # Errors
    ///
    /// lb-core's, when the pool has no such backend.
    pub fn set_backend_state(
        &mut self,
        pool: &str,
        addr: SocketAddr,
        up: bool,
    ) -> Result<(), lb_core::Error> {
        if !self.pools.contains_key(pool) {
            return Ok(());
        }
        let key = (pool.to_owned(), addr);
        let went_down = if up {
            self.checks_down.remove(&key);
            false
        } else {
            self.checks_down.insert(key)
        };
        self.push_backend(pool, addr, true)?;
        self.sync_nat();
        let close = self
            .pools
            .get(pool)
            .is_some_and(|(c, _)| c.on_backend_down == config::OnBackendDown::Close);
        if went_down && close {
            self.close_nat_flows(pool, addr, "its check is down");
        }
        Ok(())
    }

    /// Ends the NAT flows to backend `addr` of `pool` (lb-core closes the proxied ones).
    fn close_nat_flows(&self, pool: &str, addr: SocketAddr, why: &str) {
        match self.nat.close_flows(pool, addr) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(pool = %pool, backend = %addr, flows = n, "NAT flows ended: {why}")
            }
            Err(e) => {
                tracing::warn!(pool = %pool, backend = %addr, error = %e, "cannot end the NAT flows")
            }
        }
    }

    /// Programs the NAT listeners when their backends changed; a refusal is logged (the
    /// kernel keeps what it had) and tried again at the next change.
    fn sync_nat(&mut self) {
        if let Err(e) = self.nat.sync(&self.pools) {
            tracing::error!(error = %e, "NAT listeners not updated");
        }
    }

    /// Removes the NAT listeners' rules (graceful stop).
    ///
    /// # Errors
    ///
    /// The kernel's refusal.
    pub fn clear_nat(&mut self) -> Result<(), RuntimeError> {
        self.nat.clear().map_err(RuntimeError::Nat)
    }

    /// An operator's change to backend `addr` of `pool`; what to say back.
    ///
    /// # Errors
    ///
    /// A message naming what is unknown or out of range.
    pub fn control(
        &mut self,
        pool: &str,
        addr: SocketAddr,
        action: BackendAction,
    ) -> Result<String, String> {
        let Some((conf, _)) = self.pools.get(pool) else {
            let known: Vec<&String> = self.pools.keys().collect();
            return Err(format!("no pool {pool:?} (pools: {known:?})"));
        };
        let Some(basis) = conf.backends.iter().find(|b| b.address == addr).cloned() else {
            return Err(format!("pool {pool:?} has no backend {addr}"));
        };
        if let BackendAction::Weight(w) = action {
            if w > 1000 {
                return Err(format!("weight {w} is out of range 0..=1000"));
            }
        }
        let key = (pool.to_owned(), addr);
        let mut o = self.overrides.remove(&key).unwrap_or(Override {
            state: None,
            weight: None,
            basis: basis.clone(),
        });
        o.basis = basis.clone();
        match action {
            BackendAction::Drain => o.state = Some(AdminState::Drain),
            BackendAction::Disable => o.state = Some(AdminState::Disable),
            BackendAction::Enable => o.state = None,
            // The file's weight is no change to keep.
            BackendAction::Weight(w) => o.weight = (w != basis.weight).then_some(w),
        }
        let said = o.describe().unwrap_or_else(|| "as configured".to_owned());
        if o.state.is_some() || o.weight.is_some() {
            self.overrides.insert(key, o);
        }
        self.push_backend(pool, addr, false)
            .map_err(|e| e.to_string())?;
        self.sync_nat();
        tracing::info!(pool = %pool, backend = %addr, now = %said, "operator changed a backend");
        Ok(format!("pool {pool} backend {addr}: {said}"))
    }

    /// Closes the open connections of backend `addr` of `pool` if it is still disabled (the
    /// end of `disable`'s grace).
    pub fn close_if_disabled(&self, pool: &str, addr: SocketAddr) {
        let disabled = self
            .overrides
            .get(&(pool.to_owned(), addr))
            .is_some_and(|o| o.state == Some(AdminState::Disable));
        if let (true, Some((_, p))) = (disabled, self.pools.get(pool)) {
            if let Err(e) = p.close_connections(addr, End::Disabled) {
                tracing::warn!(pool = %pool, backend = %addr, error = %e, "cannot close connections");
            }
            self.close_nat_flows(pool, addr, "disabled by an operator");
        }
    }

    /// The operator's change to a backend, in words (`drain`, `weight 5`, ...), if any.
    pub fn admin_note(&self, pool: &str, addr: SocketAddr) -> Option<String> {
        self.overrides
            .get(&(pool.to_owned(), addr))
            .and_then(Override::describe)
    }

    /// Whether backend `b` of `pool` takes new connections as far as the file and the
    /// operator say (weight above 0, not drained or disabled).
    pub fn operator_allows(&self, pool: &str, b: &config::Backend) -> bool {
        match self.overrides.get(&(pool.to_owned(), b.address)) {
            Some(o) => o.state.is_none() && o.weight.unwrap_or(b.weight) > 0,
            None => b.weight > 0,
        }
    }

    /// The backends of `pool` that passive health (failed connects, nginx's `max_fails`) has
    /// taken out for now.
    pub fn ejected(&self, pool: &str) -> Vec<std::net::SocketAddr> {
        self.pools.get(pool).map_or_else(Vec::new, |(_, p)| {
            p.stats()
                .backends
                .iter()
                .filter(|b| b.ejected)
                .map(|b| b.addr)
                .collect()
        })
    }

    /// The NAT listeners and their backends' shares, for the status.
    pub fn nat_views(&self) -> Vec<super::nat::NatView> {
        self.nat.views(&self.pools)
    }

    /// The names of the listeners that are bound, and of the NAT listeners once programmed.
    pub fn listening(&self) -> Vec<String> {
        self.listeners
            .keys()
            .cloned()
            .chain(self.nat.programmed_names())
            .collect()
    }

    /// Every counter now.
    pub fn stats(&self) -> BalancerStats {
        BalancerStats {
            listeners: self.listeners.values().map(|(_, l)| l.stats()).collect(),
            pools: self.pools.values().map(|(_, p)| p.stats()).collect(),
        }
    }

    /// Takes every listener out, for a graceful stop.
    pub fn take_listeners(&mut self) -> Vec<ListenerHandle> {
        std::mem::take(&mut self.listeners)
            .into_values()
            .map(|(_, l)| l)
            .collect()
    }
}

/// Drains listeners: stop accepting, let open connections end for up to `grace`, cut the
/// rest; logs what each listener reports.
pub async fn drain(listeners: Vec<ListenerHandle>, grace: Duration) {
    for l in &listeners {
        l.begin_shutdown(grace);
    }
    for l in listeners {
        let addr = l.local_addr();
        let report = l.wait().await;
        tracing::info!(listen = %addr, report = ?report, "listener drained");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, backends: &[&str], algorithm: &str) -> Config {
        let mut t = format!(
            "[listeners.web]\nlisten = \"{listen}\"\npool = \"web\"\n\n\
             [pools.web]\nalgorithm = \"{algorithm}\"\n"
        );
        for b in backends {
            t += &format!("[[pools.web.backends]]\naddress = \"{b}\"\n");
        }
        toml::from_str(&t).unwrap()
    }

    #[test]
    fn pool_options_reach_lb_core() {
        let mut c = config("127.0.0.1:1", &["127.0.0.1:2"], "roundrobin");
        let p = c.pools.get_mut("web").unwrap();
        assert!(!pool_config("web", p).close_on_down);
        assert_eq!(pool_config("web", p).slow_start, Duration::ZERO);
        p.on_backend_down = config::OnBackendDown::Close;
        p.slow_start_ms = 1500;
        let pc = pool_config("web", p);
        assert!(pc.close_on_down);
        assert_eq!(pc.slow_start, Duration::from_millis(1500));
        // A change of either makes a new pool (not an in-place backend update).
        let before = c.pools["web"].clone();
        let mut after = before.clone();
        after.slow_start_ms = 10;
        assert!(!same_settings(&before, &after));
    }

    #[tokio::test]
    async fn reload_updates_pools_in_place_and_replaces_changed_listeners() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut b = Balancer::default();
        assert!(b
            .apply(&config(&listen, &["127.0.0.1:1"], "roundrobin"))
            .unwrap()
            .is_empty());
        let pool_before = b.pools["web"].1.clone();
        // New backend list: same pool object, listener kept.
        let retired = b
            .apply(&config(
                &listen,
                &["127.0.0.1:1", "127.0.0.1:2"],
                "roundrobin",
            ))
            .unwrap();
        assert!(retired.is_empty());
        assert_eq!(b.stats().pools[0].backends.len(), 2);
        assert_eq!(pool_before.stats().backends.len(), 2, "updated in place");
        // Another algorithm: a new pool, so its listener is replaced (SO_REUSEPORT lets the new
        // one bind the same port while the old one still listens).
        let retired = b
            .apply(&config(&listen, &["127.0.0.1:1"], "leastconn"))
            .unwrap();
        assert_eq!(retired.len(), 1);
        drain(retired, Duration::from_millis(10)).await;
        assert_eq!(pool_before.stats().backends.len(), 2, "old pool untouched");
        assert_eq!(b.stats().listeners.len(), 1);
        // A listener that cannot bind (the port is taken without SO_REUSEPORT): an error, and
        // what runs stays as it was.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().to_string();
        let err = b.apply(&config(&busy, &["127.0.0.1:1", "127.0.0.1:3"], "leastconn"));
        assert!(matches!(err, Err(RuntimeError::Balancer(_))), "{err:?}");
        assert_eq!(b.stats().pools[0].backends.len(), 1);
        assert_eq!(b.stats().listeners[0].addr, Some(listen.parse().unwrap()));
    }
}
