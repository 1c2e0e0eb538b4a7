//! A pool of backends with lock-free snapshots and run-time changes.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::backend::{Backend, BackendConfig, BackendState, BackendStats};
use crate::clock;
use crate::conn_log::End;
use crate::proxy_protocol::ProxyProtocol;
use crate::select::{Algorithm, PickContext, Picker, Selector};
use crate::Error;

/// The plain configuration of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Name, for listeners to refer to and for stats.
    pub name: String,
    /// How new connections are placed.
    pub algorithm: Algorithm,
    /// The initial backends.
    pub backends: Vec<BackendConfig>,
    /// How long one connection attempt to a backend may take.
    pub connect_timeout: Duration,
    /// How many other backends to try after a failed connect (never the same one twice).
    pub retries: u32,
    /// Consecutive connect failures that take a backend out for `fail_timeout` (0 = never),
    /// like nginx's `max_fails`.
    pub max_fails: u32,
    /// How long passive health keeps a failing backend out, unless set up again before.
    pub fail_timeout: Duration,
    /// PROXY protocol header sent to backends before any client byte.
    pub proxy_protocol: ProxyProtocol,
    /// Close the open connections of a backend whose state is set to
    /// [`BackendState::Down`] (haproxy's `on-marked-down shutdown-sessions`), instead of
    /// letting them go on.
    pub close_on_down: bool,
    /// Ramp a backend's weight up over this long after its state is set back to
    /// [`BackendState::Up`] (haproxy's `slowstart`, nginx's `slow_start`); zero = at once.
    pub slow_start: Duration,
}

impl PoolConfig {
    /// A pool with defaults: round robin, 3 s connect timeout, 2 retries, `max_fails` 1 and
    /// `fail_timeout` 10 s (nginx's defaults), no PROXY protocol.
    pub fn new(name: impl Into<String>, backends: Vec<BackendConfig>) -> Self {
        PoolConfig {
            name: name.into(),
            algorithm: Algorithm::RoundRobin,
            backends,
            connect_timeout: Duration::from_secs(3),
            retries: 2,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            proxy_protocol: ProxyProtocol::None,
            close_on_down: false,
            slow_start: Duration::ZERO,
        }
    }
}

/// One tier of a snapshot: primaries or backups, with the picker prepared for them.
struct Tier {
    members: Vec<Arc<Backend>>,
    picker: Box<dyn Picker>,
}

impl Tier {
    fn new(selector: &dyn Selector, members: Vec<Arc<Backend>>) -> Self {
        let picker = selector.prepare(&members);
        Tier { members, picker }
    }
}

/// An immutable view of the pool, swapped atomically on every change.
pub struct Snapshot {
    generation: u64,
    /// When slow start wants the weights read again ([`clock::now_ms`]; 0 = never).
    refresh_at: u64,
    all: Vec<Arc<Backend>>,
    primary: Tier,
    backup: Tier,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("backends", &self.all.len())
            .field("primary", &self.primary.members.len())
            .field("backup", &self.backup.members.len())
            .finish()
    }
}

impl Snapshot {
    /// Increases by one with each change to the pool.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every backend, whatever its state.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.all
    }

    /// Chooses a backend for `client` and takes a connection slot on it: primaries first,
    /// backups only when no primary is available. Backends whose id is in `excluded` are
    /// skipped.
    pub(crate) fn select(&self, client: SocketAddr, excluded: &[u64]) -> Option<Arc<Backend>> {
        for tier in [&self.primary, &self.backup] {
            if tier.members.is_empty() {
                continue;
            }
            // A backend can fill up between the pick and the slot: then exclude it and pick again.
            let mut skip: Vec<u64> = Vec::new();
            for _ in 0..=tier.members.len() {
                let chosen = if skip.is_empty() {
                    let ctx = PickContext::new(client, &tier.members, excluded);
                    tier.picker.pick(&ctx)
                } else {
                    let all: Vec<u64> = excluded.iter().chain(&skip).copied().collect();
                    let ctx = PickContext::new(client, &tier.members, &all);
                    tier.picker.pick(&ctx)
                };
                let Some(b) = chosen.and_then(|i| tier.members.get(i)) else {
                    break;
                };
                if b.try_acquire() {
                    return Some(Arc::clone(b));
                }
                skip.push(b.id());
            }
        }
        None
    }
}

/// Counters and state of a pool, for export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// The selector's name.
    pub algorithm: String,
    /// Each backend's counters.
    pub backends: Vec<BackendStats>,
}

struct PoolInner {
    name: String,
    selector: Arc<dyn Selector>,
    connect_timeout: Duration,
    retries: u32,
    max_fails: u32,
    fail_timeout: Duration,
    proxy_protocol: ProxyProtocol,
    close_on_down: bool,
    slow_start: Duration,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers; readers never take it.
    write: Mutex<()>,
}

/// A pool of backends: a cheap, cloneable handle. Listeners read its snapshot without locks;
/// control-plane calls (add, remove, weight, state) build and publish a new snapshot.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .field("selector", &self.inner.selector.name())
            .field("snapshot", &*self.inner.snapshot.load())
            .finish()
    }
}

static NEXT_BACKEND_ID: AtomicU64 = AtomicU64::new(1);

impl Pool {
    /// Builds a pool from its configuration.
    pub fn new(config: PoolConfig) -> Result<Self, Error> {
        let selector = config.algorithm.selector()?;
        let mut all: Vec<Arc<Backend>> = Vec::with_capacity(config.backends.len());
        for b in &config.backends {
            if all.iter().any(|x| x.addr() == b.addr) {
                return Err(Error::DuplicateBackend(b.addr));
            }
            all.push(new_backend(b, config.slow_start));
        }
        let snapshot = build_snapshot(selector.as_ref(), 0, all, config.slow_start);
        Ok(Pool {
            inner: Arc::new(PoolInner {
                name: config.name,
                selector,
                connect_timeout: config.connect_timeout,
                retries: config.retries,
                max_fails: config.max_fails,
                fail_timeout: config.fail_timeout,
                proxy_protocol: config.proxy_protocol,
                close_on_down: config.close_on_down,
                slow_start: config.slow_start,
                snapshot: ArcSwap::from_pointee(snapshot),
                write: Mutex::new(()),
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.inner.snapshot.load()
    }

    /// The snapshot for a new connection: during a slow-start ramp, one rebuilt with the
    /// weights of now when a step is due (a single branch otherwise).
    pub(crate) fn load_for_pick(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        let s = self.inner.snapshot.load();
        if s.refresh_at == 0 || clock::now_ms() < s.refresh_at {
            return s;
        }
        drop(s);
        let _ = self.update_if(|_| {
            // Another connection may have rebuilt it meanwhile.
            let due = {
                let cur = self.inner.snapshot.load();
                cur.refresh_at != 0 && clock::now_ms() >= cur.refresh_at
            };
            Ok(((), due))
        });
        self.inner.snapshot.load()
    }

    /// Closes every connection open to backend `addr` now (an operator's `disable` after its
    /// grace): `cause` is what the connection log says.
    pub fn close_connections(&self, addr: SocketAddr, cause: End) -> Result<(), Error> {
        let s = self.load();
        let b = Self::find(&s.all, addr)?;
        tracing::info!(pool = %self.inner.name, backend = %addr, active = b.active(), %cause, "closing the backend's connections");
        b.close_connections(cause);
        Ok(())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.inner.connect_timeout
    }

    pub(crate) fn retries(&self) -> u32 {
        self.inner.retries
    }

    pub(crate) fn max_fails(&self) -> u32 {
        self.inner.max_fails
    }

    pub(crate) fn fail_timeout(&self) -> Duration {
        self.inner.fail_timeout
    }

    pub(crate) fn proxy_protocol(&self) -> ProxyProtocol {
        self.inner.proxy_protocol
    }

    /// Applies `f` to the backend list under the writer lock and publishes the result.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut Vec<Arc<Backend>>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.update_if(|all| f(all).map(|out| (out, true)))
    }

    /// Like [`Pool::update`], but publishes only if `f` says something changed: a new snapshot
    /// prepares new pickers, which restarts round robin's cycle, so a health check repeating
    /// "up" must not do it.
    fn update_if<T>(
        &self,
        f: impl FnOnce(&mut Vec<Arc<Backend>>) -> Result<(T, bool), Error>,
    ) -> Result<T, Error> {
        let _guard = match self.inner.write.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = self.inner.snapshot.load();
        let mut all = current.all.clone();
        let (out, changed) = f(&mut all)?;
        if changed {
            let next = build_snapshot(
                self.inner.selector.as_ref(),
                current.generation + 1,
                all,
                self.inner.slow_start,
            );
            self.inner.snapshot.store(Arc::new(next));
        }
        Ok(out)
    }

    fn find(all: &[Arc<Backend>], addr: SocketAddr) -> Result<&Arc<Backend>, Error> {
        all.iter()
            .find(|b| b.addr() == addr)
            .ok_or(Error::UnknownBackend(addr))
    }

    /// Adds a backend; it takes new connections as soon as this returns (if its state is up).
    pub fn add(&self, config: BackendConfig) -> Result<(), Error> {
        self.update(|all| {
            if all.iter().any(|b| b.addr() == config.addr) {
                return Err(Error::DuplicateBackend(config.addr));
            }
            all.push(new_backend(&config, self.inner.slow_start));
            Ok(())
        })
    }

    /// Removes a backend: no new connections; those open to it go on until they end.
    pub fn remove(&self, addr: SocketAddr) -> Result<(), Error> {
        self.update(|all| {
            let before = all.len();
            all.retain(|b| b.addr() != addr);
            if all.len() == before {
                return Err(Error::UnknownBackend(addr));
            }
            Ok(())
        })
    }

    /// Changes a backend's weight (0 = no new connections). Publishes a new snapshot only if
    /// the weight changed.
    pub fn set_weight(&self, addr: SocketAddr, weight: u32) -> Result<(), Error> {
        self.update_if(|all| {
            let b = Self::find(all, addr)?;
            let changed = b.configured_weight() != weight;
            b.set_weight(weight);
            Ok(((), changed))
        })
    }

    /// Changes a backend's state: this is how health-check results and operator actions
    /// arrive. Setting it up also ends a passive-health cool-down, and starts the slow-start
    /// ramp of a backend that was not up; setting it down closes its connections with
    /// `close_on_down`. Publishes a new snapshot (and new pickers) only if the state changed.
    pub fn set_state(&self, addr: SocketAddr, state: BackendState) -> Result<(), Error> {
        let close = self.update_if(|all| {
            let b = Self::find(all, addr)?;
            let changed = b.state() != state;
            if changed {
                tracing::info!(pool = %self.inner.name, backend = %addr, %state, "backend state");
                if state == BackendState::Up {
                    b.start_ramp();
                }
            }
            // Even unchanged, "up" ends a passive-health cool-down (not part of the snapshot).
            b.set_state(state);
            let close = (changed && state == BackendState::Down && self.inner.close_on_down)
                .then(|| Arc::clone(b));
            Ok((close, changed))
        })?;
        if let Some(b) = close {
            tracing::info!(pool = %self.inner.name, backend = %addr, active = b.active(), "backend down: closing its connections");
            b.close_connections(End::BackendDown);
        }
        Ok(())
    }

    /// Changes a backend's connection limit (0 = unlimited).
    pub fn set_max_connections(&self, addr: SocketAddr, max: u32) -> Result<(), Error> {
        self.update(|all| {
            Self::find(all, addr)?.set_max_connections(max);
            Ok(())
        })
    }

    /// Replaces the backend list, as on a configuration reload: backends whose address (and
    /// backup flag) stay keep their counters, state (health owns it) and open connections, and
    /// take the new weight and limit; the others are added, with their configured state, or
    /// removed (their open connections go on).
    pub fn set_backends(&self, configs: &[BackendConfig]) -> Result<(), Error> {
        for (i, c) in configs.iter().enumerate() {
            if configs[..i].iter().any(|o| o.addr == c.addr) {
                return Err(Error::DuplicateBackend(c.addr));
            }
        }
        self.update(|all| {
            let mut next = Vec::with_capacity(configs.len());
            for c in configs {
                match all.iter().find(|b| b.addr() == c.addr) {
                    Some(b) if b.is_backup() == c.backup => {
                        b.set_weight(c.weight);
                        b.set_max_connections(c.max_connections);
                        next.push(Arc::clone(b));
                    }
                    _ => next.push(new_backend(c, self.inner.slow_start)),
                }
            }
            *all = next;
            Ok(())
        })
    }

    /// A copy of every backend's counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            name: self.inner.name.clone(),
            algorithm: self.inner.selector.name().to_string(),
            backends: self.load().all.iter().map(|b| b.stats()).collect(),
        }
    }
}

fn new_backend(config: &BackendConfig, slow_start: Duration) -> Arc<Backend> {
    let b = Backend::new(NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed), config);
    b.set_slow_start(slow_start);
    Arc::new(b)
}

/// How often the weights are read again during a slow-start ramp: ten steps, none shorter
/// than 50 ms.
fn ramp_step_ms(slow_start: Duration) -> u64 {
    (slow_start.as_millis() as u64 / 10).max(50)
}

fn build_snapshot(
    selector: &dyn Selector,
    generation: u64,
    all: Vec<Arc<Backend>>,
    slow_start: Duration,
) -> Snapshot {
    // `settle_ramp` on every backend: finished ramps end here.
    let mut ramping = false;
    for b in &all {
        ramping |= b.settle_ramp();
    }
    let refresh_at = if ramping {
        clock::now_ms() + ramp_step_ms(slow_start)
    } else {
        0
    };
    let eligible = |backup: bool| -> Vec<Arc<Backend>> {
        all.iter()
            .filter(|b| b.is_backup() == backup && b.state() == BackendState::Up && b.weight() > 0)
            .cloned()
            .collect()
    };
    let primary = Tier::new(selector, eligible(false));
    let backup = Tier::new(selector, eligible(true));
    Snapshot {
        generation,
        refresh_at,
        all,
        primary,
        backup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn pool(backends: Vec<BackendConfig>) -> Pool {
        Pool::new(PoolConfig::new("p", backends)).unwrap()
    }

    #[test]
    fn backups_only_when_no_primary_is_available() {
        let p = pool(vec![
            BackendConfig::new(addr(1)),
            BackendConfig::new(addr(2)).backup(true),
        ]);
        let client = addr(9);
        let b = p.load().select(client, &[]).unwrap();
        assert_eq!(b.addr(), addr(1));
        b.release();
        p.set_state(addr(1), BackendState::Down).unwrap();
        let b = p.load().select(client, &[]).unwrap();
        assert_eq!(b.addr(), addr(2));
        b.release();
        p.set_state(addr(1), BackendState::Up).unwrap();
        let b = p.load().select(client, &[]).unwrap();
        assert_eq!(b.addr(), addr(1));
        // Excluding the primary (it failed for this connection) falls to the backup too.
        let id = b.id();
        b.release();
        let b = p.load().select(client, &[id]).unwrap();
        assert_eq!(b.addr(), addr(2));
    }

    #[test]
    fn connection_limit_skips_full_backends() {
        let p = pool(vec![
            BackendConfig::new(addr(1)).max_connections(1),
            BackendConfig::new(addr(2)).max_connections(1),
        ]);
        let a = p.load().select(addr(9), &[]).unwrap();
        let b = p.load().select(addr(9), &[]).unwrap();
        assert_ne!(a.addr(), b.addr());
        assert!(p.load().select(addr(9), &[]).is_none());
        a.release();
        assert_eq!(p.load().select(addr(9), &[]).unwrap().addr(), a.addr());
    }

    #[test]
    fn run_time_changes_publish_new_snapshots() {
        let p = pool(vec![BackendConfig::new(addr(1))]);
        let g0 = p.snapshot().generation();
        p.add(BackendConfig::new(addr(2))).unwrap();
        assert!(matches!(
            p.add(BackendConfig::new(addr(2))),
            Err(Error::DuplicateBackend(_))
        ));
        p.set_weight(addr(2), 5).unwrap();
        p.remove(addr(1)).unwrap();
        assert!(matches!(p.remove(addr(1)), Err(Error::UnknownBackend(_))));
        let s = p.snapshot();
        assert_eq!(s.generation(), g0 + 3);
        assert_eq!(s.backends().len(), 1);
        assert_eq!(s.backends()[0].weight(), 5);
        p.set_backends(&[
            BackendConfig::new(addr(2)).weight(7),
            BackendConfig::new(addr(3)),
        ])
        .unwrap();
        let st = p.stats();
        assert_eq!(st.backends.len(), 2);
        assert_eq!(st.backends[0].weight, 7);
    }

    #[test]
    fn drain_and_zero_weight_take_no_new_connections() {
        let p = pool(vec![
            BackendConfig::new(addr(1)),
            BackendConfig::new(addr(2)),
        ]);
        p.set_state(addr(1), BackendState::Drain).unwrap();
        for _ in 0..10 {
            let b = p.load().select(addr(9), &[]).unwrap();
            assert_eq!(b.addr(), addr(2));
            b.release();
        }
        p.set_weight(addr(2), 0).unwrap();
        assert!(p.load().select(addr(9), &[]).is_none());
    }
}
