//! NAT listeners (`mode = "nat"`) at run time: what the kernel is to do, from the listeners'
//! configuration and the state of their pools' backends (checks, operators' drain / disable /
//! weight), programmed through [`crate::net::nat`] whenever it changes.
//!
//! The pools are lb-core pools, as for proxy listeners, so health checks, `ha-lb ctl` and
//! `/status` treat a NAT listener's backends alike; only the data plane differs: nothing is
//! bound, the kernel rewrites and forwards every packet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lb_core::{BackendState, Pool};

use crate::config::{self, Algorithm, ListenerMode, NatSource};
use crate::net::conntrack;
use crate::net::nat::{self, NatListener, Pick, Snat};
use crate::net::NetError;
use crate::status::{NatBackendStatus, NatListenerStatus};

/// The NAT listeners of a configuration, and what was last programmed for them.
#[derive(Debug, Default)]
pub struct NatTable {
    listeners: BTreeMap<String, config::Listener>,
    /// What the kernel has (`None`: nothing programmed yet by this process).
    programmed: Option<Vec<NatListener>>,
    /// What the events thread shares with the table.
    events: Arc<Events>,
    /// Whether the events thread runs.
    events_thread: bool,
}

/// What the thread that reads conntrack's "flow ended" events shares with the table.
#[derive(Debug, Default)]
struct Events {
    /// The NAT listeners by address: name, pool, and whether they log.
    watched: Mutex<BTreeMap<SocketAddr, (String, String, bool)>>,
    /// Ended flows by (listener address, backend): count, bytes from and to clients.
    ended: Mutex<BTreeMap<(SocketAddr, SocketAddr), [u64; 3]>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The backends a NAT listener sends new flows to: the primaries that take new connections
/// (check up, not drained or disabled, weight above 0), or, when there is none, such backups;
/// as map slots (each repeated by its weight).
pub fn slots(pool: &Pool) -> Vec<std::net::SocketAddr> {
    let snapshot = pool.snapshot();
    let usable = |backup: bool| -> Vec<(std::net::SocketAddr, u32)> {
        snapshot
            .backends()
            .iter()
            .filter(|b| b.is_backup() == backup && b.state() == BackendState::Up)
            .map(|b| (b.addr(), b.configured_weight()))
            .filter(|(_, w)| *w > 0)
            .collect()
    };
    let primaries = nat::slots(&usable(false));
    if primaries.is_empty() {
        nat::slots(&usable(true))
    } else {
        primaries
    }
}

fn pick(a: Algorithm) -> Pick {
    match a {
        Algorithm::Random => Pick::Random,
        Algorithm::Sourcehash => Pick::SourceHash,
        // check-config refuses the others for NAT listeners.
        _ => Pick::RoundRobin,
    }
}

fn snat(l: &config::Listener) -> Snat {
    match l.effective_nat_source() {
        NatSource::Masquerade => Snat::Masquerade,
        NatSource::Vip => Snat::To(l.listen.ip()),
        NatSource::Preserve => Snat::Preserve,
    }
}

impl NatTable {
    /// Takes the NAT listeners of `config` (programmed at the next [`NatTable::sync`]).
    pub fn configure(&mut self, config: &config::Config) {
        self.listeners = config
            .listeners
            .iter()
            .filter(|(_, l)| l.mode == ListenerMode::Nat)
            .map(|(n, l)| (n.clone(), l.clone()))
            .collect();
        let watched: BTreeMap<SocketAddr, (String, String, bool)> = self
            .listeners
            .iter()
            .map(|(n, l)| (l.listen, (n.clone(), l.pool.clone(), l.log)))
            .collect();
        let any = !watched.is_empty();
        *locked(&self.events.watched) = watched;
        if any && !self.events_thread {
            self.events_thread = start_events(self.events.clone());
        }
    }

    /// Whether this process has programmed the kernel at least once.
    pub fn has_programmed(&self) -> bool {
        self.programmed.is_some()
    }

    /// The names of the NAT listeners, once the kernel has their rules.
    pub fn programmed_names(&self) -> Vec<String> {
        if self.programmed.is_some() {
            self.listeners.keys().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// What the kernel is to do now, listeners in name order.
    pub fn desired(&self, pools: &BTreeMap<String, (config::Pool, Pool)>) -> Vec<NatListener> {
        self.listeners
            .values()
            .map(|l| {
                let (algorithm, slots) = pools
                    .get(&l.pool)
                    .map_or((Algorithm::Roundrobin, Vec::new()), |(c, p)| {
                        (c.algorithm, slots(p))
                    });
                NatListener {
                    listen: l.listen,
                    pick: pick(algorithm),
                    snat: snat(l),
                    slots,
                }
            })
            .collect()
    }

    /// Programs the kernel when what it should do changed (in one transaction). Without any
    /// NAT listener, the table is removed once (a killed earlier run may have left it; a
    /// kernel without nf_tables is then no error).
    ///
    /// # Errors
    ///
    /// The kernel's refusal; what it had stays.
    pub fn sync(&mut self, pools: &BTreeMap<String, (config::Pool, Pool)>) -> Result<(), NetError> {
        let desired = self.desired(pools);
        if self.programmed.as_ref() == Some(&desired) {
            return Ok(());
        }
        if desired.is_empty() {
            if let Err(e) = nat::remove() {
                if self.programmed.as_ref().is_some_and(|p| !p.is_empty()) {
                    return Err(e);
                }
                tracing::debug!(error = %e, "no leftover NAT table removed");
            }
            self.programmed = Some(desired);
            return Ok(());
        }
        let families: Vec<bool> = desired.iter().map(|l| l.listen.is_ipv4()).collect();
        nat::apply(&desired)?;
        let log = self.listeners.values().any(|l| l.log);
        sysctls(families.contains(&true), families.contains(&false), log);
        for l in &desired {
            tracing::info!(
                listen = %l.listen,
                backends = ?distinct(&l.slots),
                slots = l.slots.len(),
                "NAT listener programmed (nftables table inet {})",
                nat::TABLE
            );
        }
        self.programmed = Some(desired);
        Ok(())
    }

    /// Removes every rule (graceful stop).
    ///
    /// # Errors
    ///
    /// The kernel's refusal.
    pub fn clear(&mut self) -> Result<(), NetError> {
        if self.programmed.as_ref().is_some_and(|p| !p.is_empty()) {
            nat::remove()?;
            tracing::info!("NAT listeners removed (nftables table inet {})", nat::TABLE);
        }
        self.programmed = Some(Vec::new());
        Ok(())
    }
}

fn distinct(slots: &[std::net::SocketAddr]) -> Vec<std::net::SocketAddr> {
    let mut v = slots.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// A NAT balancer forwards: turns on IPv4 (`net.ipv4.ip_forward`) and IPv6
/// (`net.ipv6.conf.all.forwarding`) forwarding in this network namespace for the families
/// that have NAT listeners, conntrack's byte accounting (`net.netfilter.nf_conntrack_acct`,
/// for the bytes per backend in the status) and, for `log = true`, its time stamps
/// (`net.netfilter.nf_conntrack_timestamp`, for the duration), saying so when they were off. Left on at stop
/// (other things may rely on them by then).
fn sysctls(v4: bool, v6: bool, log: bool) {
    let keys = [
        (v4, "/proc/sys/net/ipv4/ip_forward"),
        (v6, "/proc/sys/net/ipv6/conf/all/forwarding"),
        (true, "/proc/sys/net/netfilter/nf_conntrack_acct"),
        (log, "/proc/sys/net/netfilter/nf_conntrack_timestamp"),
    ];
    for (wanted, path) in keys {
        if !wanted {
            continue;
        }
        let on = std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1");
        if on {
            continue;
        }
        match std::fs::write(path, "1") {
            Ok(()) => {
                tracing::warn!(sysctl = %path, "was off: turned on for the NAT listeners")
            }
            Err(e) => {
                tracing::error!(sysctl = %path, error = %e, "is off and cannot be turned on: NAT listeners need it (forwarding; bytes per backend)")
            }
        }
    }
}

impl NatTable {
    /// Ends the flows NAT listeners sent to backend `addr` of `pool` (a check down with
    /// `on_backend_down = "close"`, the end of an operator's `disable`): their conntrack
    /// entries go, so the client's next packet is answered with a reset and it reconnects to
    /// a healthy backend. Returns how many flows ended.
    pub fn close_flows(&self, pool: &str, addr: SocketAddr) -> Result<usize, NetError> {
        let listens: Vec<SocketAddr> = self
            .listeners
            .values()
            .filter(|l| l.pool == pool)
            .map(|l| l.listen)
            .collect();
        if listens.is_empty() {
            return Ok(0);
        }
        let flows: Vec<conntrack::Flow> = conntrack::tcp_flows(|dst| listens.contains(&dst))?
            .into_iter()
            .filter(|f| f.reply_src == addr)
            .collect();
        conntrack::delete(&flows)
    }
}

/// A NAT listener as the status shows it, before its flows are read.
#[derive(Debug, Clone)]
pub struct NatView {
    name: String,
    listener: config::Listener,
    /// Every backend of the pool, its slots in the map, and its ended flows (count, bytes
    /// from and to clients).
    backends: Vec<(SocketAddr, u32, [u64; 3])>,
}

impl NatTable {
    /// The NAT listeners with their backends' slots now.
    pub fn views(&self, pools: &BTreeMap<String, (config::Pool, Pool)>) -> Vec<NatView> {
        let ended = locked(&self.events.ended);
        self.listeners
            .iter()
            .map(|(name, l)| {
                let backends = pools.get(&l.pool).map_or_else(Vec::new, |(c, p)| {
                    let taken = slots(p);
                    c.backends
                        .iter()
                        .map(|b| {
                            let n = taken.iter().filter(|s| **s == b.address).count();
                            let done = ended
                                .get(&(l.listen, b.address))
                                .copied()
                                .unwrap_or_default();
                            (b.address, u32::try_from(n).unwrap_or(u32::MAX), done)
                        })
                        .collect()
                });
                NatView {
                    name: name.clone(),
                    listener: l.clone(),
                    backends,
                }
            })
            .collect()
    }
}

/// The status of NAT listeners: their backends' shares, and their flows from the conntrack
/// table (one dump for all).
pub fn status(views: Vec<NatView>) -> Vec<NatListenerStatus> {
    if views.is_empty() {
        return Vec::new();
    }
    let listens: Vec<SocketAddr> = views.iter().map(|v| v.listener.listen).collect();
    let flows = conntrack::tcp_flows(|dst| listens.contains(&dst));
    views
        .into_iter()
        .map(|v| {
            let listen = v.listener.listen;
            let backends = v
                .backends
                .iter()
                .map(|(addr, slots, [ended, ended_in, ended_out])| {
                    let mut b = NatBackendStatus {
                        address: addr.to_string(),
                        slots: *slots,
                        flows: 0,
                        established: 0,
                        bytes_from_clients: 0,
                        bytes_to_clients: 0,
                        flows_total: *ended,
                        bytes_from_clients_total: *ended_in,
                        bytes_to_clients_total: *ended_out,
                    };
                    for f in flows.iter().flatten() {
                        if f.original_dst == listen && f.reply_src == *addr {
                            b.flows += 1;
                            b.established += u64::from(f.established);
                            b.bytes_from_clients += f.bytes_original;
                            b.bytes_to_clients += f.bytes_reply;
                            b.flows_total += 1;
                            b.bytes_from_clients_total += f.bytes_original;
                            b.bytes_to_clients_total += f.bytes_reply;
                        }
                    }
                    b
                })
                .collect();
            NatListenerStatus {
                name: v.name,
                listen: listen.to_string(),
                pool: v.listener.pool.clone(),
                nat_source: v.listener.effective_nat_source().as_str().to_owned(),
                backends,
                error: flows.as_ref().err().map(ToString::to_string),
            }
        })
        .collect()
}

/// Starts the thread that reads conntrack's "flow ended" events: each ended flow of a NAT
/// listener is added to its backend's totals (the status' `*_total` counters) and, with
/// `log = true`, written as a connection log line. A flow ends when the kernel forgets it,
/// i.e. after TIME_WAIT (120 s by default). The thread ends when the table is dropped.
fn start_events(events: Arc<Events>) -> bool {
    let spawned = std::thread::Builder::new()
        .name("ha-lb-natevents".into())
        .spawn(move || {
            let mut ends = match conntrack::Ends::subscribe(Duration::from_secs(1)) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "no conntrack events: NAT totals count open flows only, no NAT connection log");
                    return;
                }
            };
            while Arc::strong_count(&events) > 1 {
                match ends.recv() {
                    Ok(flows) => {
                        let watched = locked(&events.watched);
                        let mut ended = locked(&events.ended);
                        for f in flows {
                            let Some((name, pool, log)) = watched.get(&f.original_dst) else {
                                continue;
                            };
                            let t = ended.entry((f.original_dst, f.reply_src)).or_default();
                            t[0] += 1;
                            t[1] += f.bytes_original;
                            t[2] += f.bytes_reply;
                            if *log {
                                write_log(name, pool, &f);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "NAT conntrack events lost: totals and connection log miss some flows");
                    }
                }
            }
        });
    match spawned {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "no conntrack events thread for NAT listeners");
            false
        }
    }
}

/// One ended NAT flow as a connection log line (the fields of proxy listeners' lines that
/// the kernel knows; `end`: `closed` for a TCP close, `no_answer` for a connect that never
/// completed, `removed` for an established flow that timed out or was deleted).
fn write_log(listener: &str, pool: &str, f: &conntrack::Flow) {
    let end = match f.tcp_state {
        Some(1 | 2) => "no_answer",
        Some(3) => "removed",
        Some(4..=8) => "closed",
        _ => "unknown",
    };
    tracing::info!(
        target: "ha_lb::connection",
        listener = %listener,
        client = %f.original_src,
        pool = %pool,
        backend = %f.reply_src,
        mode = "nat",
        bytes_in = f.bytes_original,
        bytes_out = f.bytes_reply,
        duration_ms = f.duration.map_or(-1.0, |d| d.as_secs_f64() * 1000.0),
        end,
        "connection"
    );
}
