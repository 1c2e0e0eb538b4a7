//! A whole balancer built from one plain configuration: pools and the listeners that use them.

use std::time::Duration;

use crate::listener::{Listener, ListenerConfig, ListenerHandle, ShutdownReport};
use crate::pool::{Pool, PoolConfig, PoolStats};
use crate::stats::ListenerStats;
use crate::Error;

/// Pools and listeners, as a binary's configuration file would describe them.
#[derive(Debug, Clone, Default)]
pub struct BalancerConfig {
    /// The backend pools, by unique name.
    pub pools: Vec<PoolConfig>,
    /// The listeners; each names its pool.
    pub listeners: Vec<ListenerConfig>,
}

/// Every counter of a balancer at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerStats {
    /// Per listener.
    pub listeners: Vec<ListenerStats>,
    /// Per pool, with per-backend counters.
    pub pools: Vec<PoolStats>,
}

/// A running balancer. Stop it with [`Balancer::shutdown`]; dropping it instead leaves its
/// listeners serving (detached) until the tokio runtime ends.
#[derive(Debug)]
pub struct Balancer {
    pools: Vec<Pool>,
    listeners: Vec<ListenerHandle>,
}

impl Balancer {
    /// Checks the configuration, binds every listener (failing before any serves), then starts
    /// them all. Must be called within a tokio runtime.
    pub fn start(config: BalancerConfig) -> Result<Balancer, Error> {
        let mut pools: Vec<Pool> = Vec::with_capacity(config.pools.len());
        for pc in config.pools {
            if pools.iter().any(|p| p.name() == pc.name) {
                return Err(Error::DuplicatePool(pc.name));
            }
            pools.push(Pool::new(pc)?);
        }
        let mut bound = Vec::with_capacity(config.listeners.len());
        for lc in &config.listeners {
            let pool =
                pools
                    .iter()
                    .find(|p| p.name() == lc.pool)
                    .ok_or_else(|| Error::UnknownPool {
                        listener: lc.addr,
                        pool: lc.pool.clone(),
                    })?;
            bound.push(Listener::bind(lc, pool.clone())?);
        }
        let listeners = bound.into_iter().map(Listener::spawn).collect();
        Ok(Balancer { pools, listeners })
    }

    /// The pool of this name: the handle through which backends are added, removed,
    /// re-weighted and set up or down at run time.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name() == name)
    }

    /// All pools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// All running listeners, in configuration order.
    pub fn listeners(&self) -> &[ListenerHandle] {
        &self.listeners
    }

    /// Every counter now.
    pub fn stats(&self) -> BalancerStats {
        BalancerStats {
            listeners: self.listeners.iter().map(|l| l.stats()).collect(),
            pools: self.pools.iter().map(|p| p.stats()).collect(),
        }
    }

    /// Graceful stop of every listener with one shared deadline: stop accepting, let open
    /// connections end for up to `grace`, cut the rest.
    pub async fn shutdown(self, grace: Duration) -> Vec<ShutdownReport> {
        for l in &self.listeners {
            l.begin_shutdown(grace);
        }
        let mut reports = Vec::with_capacity(self.listeners.len());
        for l in self.listeners {
            reports.push(l.wait().await);
        }
        reports
    }
}
