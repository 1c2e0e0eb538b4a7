//! A backend server: its configuration, run-time state and live counters.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::clock;
use crate::conn_log::End;

/// Administrative or health state of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BackendState {
    /// Takes new connections.
    #[default]
    Up,
    /// Failed its health checks: no new connections; existing ones go on.
    Down,
    /// Being drained: no new connections, existing ones go on until they end.
    Drain,
    /// Taken out by an operator: no new connections; existing ones go on.
    Maintenance,
}

impl BackendState {
    fn to_u8(self) -> u8 {
        match self {
            BackendState::Up => 0,
            BackendState::Down => 1,
            BackendState::Drain => 2,
            BackendState::Maintenance => 3,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => BackendState::Up,
            1 => BackendState::Down,
            2 => BackendState::Drain,
            _ => BackendState::Maintenance,
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendState::Up => "up",
            BackendState::Down => "down",
            BackendState::Drain => "drain",
            BackendState::Maintenance => "maintenance",
        })
    }
}

/// How to reach a backend and how much traffic it takes: the plain configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Relative share of new connections (0 takes no new connections). Default 1.
    pub weight: u32,
    /// Most concurrent connections (0 = unlimited). Past it the backend is skipped by selection
    /// until a connection ends; if every backend is full the client connection is closed and
    /// counted as `no_backend`.
    pub max_connections: u32,
    /// A backup takes traffic only when no primary backend is available.
    pub backup: bool,
    /// Initial state.
    pub state: BackendState,
}

impl BackendConfig {
    /// A primary backend with weight 1, no connection limit, state up.
    pub fn new(addr: SocketAddr) -> Self {
        BackendConfig {
            addr,
            weight: 1,
            max_connections: 0,
            backup: false,
            state: BackendState::Up,
        }
    }

    /// The same with another weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The same, marked as backup.
    pub fn backup(mut self, backup: bool) -> Self {
        self.backup = backup;
        self
    }

    /// The same with a connection limit (0 = unlimited).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// The same with another initial state.
    pub fn state(mut self, state: BackendState) -> Self {
        self.state = state;
        self
    }
}

/// A point-in-time copy of one backend's counters and gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStats {
    /// The backend's address.
    pub addr: SocketAddr,
    /// Its weight now (less than configured while slow start ramps it up).
    pub weight: u32,
    /// Whether slow start is ramping its weight up.
    pub ramping: bool,
    /// Whether it is a backup.
    pub backup: bool,
    /// Its state now.
    pub state: BackendState,
    /// Whether passive health checking has taken it out for a cool-down right now.
    pub ejected: bool,
    /// Connections open to it now.
    pub active: u64,
    /// Connections established to it since it was added.
    pub connections: u64,
    /// Failed connection attempts (refused, unreachable, timed out).
    pub connect_errors: u64,
    /// Bytes sent from clients to this backend.
    pub bytes_to_backend: u64,
    /// Bytes sent from this backend to clients.
    pub bytes_from_backend: u64,
    /// Times passive health checking took it out.
    pub ejections: u64,
}

/// A backend as the balancer sees it at run time: configuration plus lock-free live state.
///
/// Selectors read it through [`crate::PickContext`]; its counters are atomics, so reading them on
/// the connection path takes no lock.
#[derive(Debug)]
pub struct Backend {
    id: u64,
    addr: SocketAddr,
    backup: bool,
    weight: AtomicU32,
    max_connections: AtomicU32,
    state: AtomicU8,
    active: AtomicU64,
    connections: AtomicU64,
    connect_errors: AtomicU64,
    bytes_to: AtomicU64,
    bytes_from: AtomicU64,
    ejections: AtomicU64,
    consecutive_fails: AtomicU32,
    /// Milliseconds on [`clock::now_ms`] until which passive health keeps it out (0 = not).
    ejected_until: AtomicU64,
    /// Slow start: how long the weight takes to ramp up after the backend comes up (0 = off).
    slow_start_ms: AtomicU64,
    /// Slow start: when the current ramp began on [`clock::now_ms`] (0 = not ramping).
    ramp_from: AtomicU64,
    /// Bumped to close every connection open to it; the cause is in `close_cause`.
    close: watch::Sender<u64>,
    close_cause: AtomicU8,
}

impl Backend {
    pub(crate) fn new(id: u64, config: &BackendConfig) -> Self {
        Backend {
            id,
            addr: config.addr,
            backup: config.backup,
            weight: AtomicU32::new(config.weight),
            max_connections: AtomicU32::new(config.max_connections),
            state: AtomicU8::new(config.state.to_u8()),
            active: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            bytes_to: AtomicU64::new(0),
            bytes_from: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            consecutive_fails: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            slow_start_ms: AtomicU64::new(0),
            ramp_from: AtomicU64::new(0),
            close: watch::Sender::new(0),
            close_cause: AtomicU8::new(0),
        }
    }

    /// A number unique within the process, stable for the backend's life in its pool.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its weight now: the configured one, or less while slow start ramps it up.
    pub fn weight(&self) -> u32 {
        let w = self.weight.load(Ordering::Relaxed);
        let from = self.ramp_from.load(Ordering::Relaxed);
        if from == 0 || w == 0 {
            return w;
        }
        let span = self.slow_start_ms.load(Ordering::Relaxed);
        let elapsed = clock::now_ms().saturating_sub(from);
        if span == 0 || elapsed >= span {
            return w;
        }
        // In proportion to the time since it came up, at least 1 so that it gets a first few.
        let ramped = (u64::from(w) * elapsed).div_ceil(span).max(1);
        u32::try_from(ramped).unwrap_or(w).min(w)
    }

    /// Its configured weight (what slow start ramps up to).
    pub fn configured_weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Whether slow start is ramping its weight up now.
    pub fn is_ramping(&self) -> bool {
        let from = self.ramp_from.load(Ordering::Relaxed);
        from != 0
            && clock::now_ms().saturating_sub(from) < self.slow_start_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slow_start(&self, span: Duration) {
        self.slow_start_ms
            .store(span.as_millis() as u64, Ordering::Relaxed);
    }

    /// Starts a slow-start ramp now (if the pool has one).
    pub(crate) fn start_ramp(&self) {
        if self.slow_start_ms.load(Ordering::Relaxed) > 0 {
            self.ramp_from.store(clock::now_ms(), Ordering::Relaxed);
        }
    }

    /// Ends a finished ramp; true if one is still going.
    pub(crate) fn settle_ramp(&self) -> bool {
        if self.ramp_from.load(Ordering::Relaxed) == 0 {
            return false;
        }
        if self.is_ramping() {
            return true;
        }
        self.ramp_from.store(0, Ordering::Relaxed);
        false
    }

    /// Closes every connection open to it now (`cause`: [`End::BackendDown`] or
    /// [`End::Disabled`]); new ones are not affected.
    pub(crate) fn close_connections(&self, cause: End) {
        self.close_cause.store(cause.to_u8(), Ordering::Relaxed);
        self.close.send_modify(|g| *g += 1);
    }

    /// Resolves when [`Backend::close_connections`] is called after `rx` was made.
    pub(crate) fn close_watch(&self) -> watch::Receiver<u64> {
        self.close.subscribe()
    }

    /// Why connections were last closed.
    pub(crate) fn close_cause(&self) -> End {
        End::from_close_cause(self.close_cause.load(Ordering::Relaxed))
    }

    /// Whether it is a backup.
    pub fn is_backup(&self) -> bool {
        self.backup
    }

    /// Its state now.
    pub fn state(&self) -> BackendState {
        BackendState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Connections open to it now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Its connection limit (0 = unlimited).
    pub fn max_connections(&self) -> u32 {
        self.max_connections.load(Ordering::Relaxed)
    }

    /// Whether passive health checking keeps it out right now.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && clock::now_ms() < until
    }

    /// Whether it may take a new connection now: state up, weight above 0, not ejected, below
    /// its connection limit.
    pub fn is_available(&self) -> bool {
        if self.state() != BackendState::Up || self.weight() == 0 || self.is_ejected() {
            return false;
        }
        let max = self.max_connections();
        max == 0 || self.active() < u64::from(max)
    }

    pub(crate) fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    pub(crate) fn set_max_connections(&self, max: u32) {
        self.max_connections.store(max, Ordering::Relaxed);
    }

    pub(crate) fn set_state(&self, state: BackendState) {
        self.state.store(state.to_u8(), Ordering::Relaxed);
        if state == BackendState::Up {
            // An active check saying "up" ends a passive cool-down early.
            self.ejected_until.store(0, Ordering::Relaxed);
            self.consecutive_fails.store(0, Ordering::Relaxed);
        }
    }

    /// Takes a connection slot if below the limit; false when full.
    pub(crate) fn try_acquire(&self) -> bool {
        let max = u64::from(self.max_connections());
        if max == 0 {
            self.active.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |a| {
                (a < max).then_some(a + 1)
            })
            .is_ok()
    }

    pub(crate) fn release(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn record_connect_ok(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        if self.consecutive_fails.load(Ordering::Relaxed) != 0 {
            self.consecutive_fails.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failed attempt; after `max_fails` in a row (0 = never) the backend is out for
    /// `fail_timeout`.
    pub(crate) fn record_connect_error(&self, max_fails: u32, fail_timeout: Duration) {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
        if max_fails == 0 {
            return;
        }
        let fails = self.consecutive_fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails >= max_fails {
            self.consecutive_fails.store(0, Ordering::Relaxed);
            let until = clock::now_ms()
                .saturating_add(fail_timeout.as_millis() as u64)
                .max(1);
            self.ejected_until.store(until, Ordering::Relaxed);
            self.ejections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(backend = %self.addr, fails, ?fail_timeout, "backend ejected");
        }
    }

    pub(crate) fn add_bytes(&self, to_backend: u64, from_backend: u64) {
        if to_backend != 0 {
            self.bytes_to.fetch_add(to_backend, Ordering::Relaxed);
        }
        if from_backend != 0 {
            self.bytes_from.fetch_add(from_backend, Ordering::Relaxed);
        }
    }

    /// A copy of its counters now.
    pub fn stats(&self) -> BackendStats {
        BackendStats {
            addr: self.addr,
            weight: self.weight(),
            ramping: self.is_ramping(),
            backup: self.backup,
            state: self.state(),
            ejected: self.is_ejected(),
            active: self.active(),
            connections: self.connections.load(Ordering::Relaxed),
            connect_errors: self.connect_errors.load(Ordering::Relaxed),
            bytes_to_backend: self.bytes_to.load(Ordering::Relaxed),
            bytes_from_backend: self.bytes_from.load(Ordering::Relaxed),
            ejections: self.ejections.load(Ordering::Relaxed),
        }
    }
}
