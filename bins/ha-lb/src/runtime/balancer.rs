//! The balancer side: lb-core pools and listeners built from the configuration, kept across
//! reloads.
//!
//! Listeners bind with IP_FREEBIND (`non_local_bind`) so a backup node listens on the VIP
//! before it holds it and serves the moment the VIP arrives, and with SO_REUSEPORT so that a
//! reload can open a changed listener before closing the old one: listeners keep accepting.
//! A pool whose backends changed is updated in place (open connections and counters stay).

use std::collections::BTreeMap;
use std::time::Duration;

use lb_core::{
    Algorithm, BackendConfig, BackendState, BalancerStats, Listener, ListenerConfig,
    ListenerHandle, Pool, PoolConfig, ProxyProtocol,
};

use super::error::RuntimeError;
use crate::config::{self, Config};

/// Maglev lookup table size (a prime well above any pool size).
const MAGLEV_TABLE_SIZE: usize = 65_537;

/// The running pools and listeners.
#[derive(Debug, Default)]
pub struct Balancer {
    pools: BTreeMap<String, (config::Pool, Pool)>,
    listeners: BTreeMap<String, (config::Listener, ListenerHandle)>,
}

fn algorithm(a: config::Algorithm) -> Algorithm {
    match a {
        config::Algorithm::Roundrobin => Algorithm::RoundRobin,
        config::Algorithm::Leastconn => Algorithm::LeastConn,
        config::Algorithm::P2c => Algorithm::PowerOfTwo,
        config::Algorithm::Random => Algorithm::Random,
        config::Algorithm::Maglev => Algorithm::Maglev {
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

fn listener_config(l: &config::Listener) -> ListenerConfig {
    let mut lc = ListenerConfig::new(l.listen, l.pool.clone());
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
                Listener::bind(&listener_config(l), pool)?,
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
            .filter(|n| !config.listeners.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, old)) = self.listeners.remove(&name) {
                tracing::info!(listener = %name, "listener stopped (no longer configured)");
                retired.push(old);
            }
        }
        Ok(retired)
    }

    /// Sets the health of backend `addr` of `pool` (from its check).
    ///
    /// # Errors
    ///
    /// lb-core's, when the pool has no such backend.
    pub fn set_backend_state(
        &self,
        pool: &str,
        addr: std::net::SocketAddr,
        up: bool,
    ) -> Result<(), lb_core::Error> {
        let Some((_, p)) = self.pools.get(pool) else {
            return Ok(());
        };
        let state = if up {
            BackendState::Up
        } else {
            BackendState::Down
        };
        p.set_state(addr, state)
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

    /// The names of the listeners that are bound.
    pub fn listening(&self) -> Vec<String> {
        self.listeners.keys().cloned().collect()
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
