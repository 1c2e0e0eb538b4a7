//! NAT listeners (`mode = "nat"`) at run time: what the kernel is to do, from the listeners'
//! configuration and the state of their pools' backends (checks, operators' drain / disable /
//! weight), programmed through [`crate::net::nat`] whenever it changes.
//!
//! The pools are lb-core pools, as for proxy listeners, so health checks, `ha-lb ctl` and
//! `/status` treat a NAT listener's backends alike; only the data plane differs: nothing is
//! bound, the kernel rewrites and forwards every packet.

use std::collections::BTreeMap;

use lb_core::{BackendState, Pool};

use crate::config::{self, Algorithm, ListenerMode, NatSource};
use crate::net::nat::{self, NatListener, Pick, Snat};
use crate::net::NetError;

/// The NAT listeners of a configuration, and what was last programmed for them.
#[derive(Debug, Default)]
pub struct NatTable {
    listeners: BTreeMap<String, config::Listener>,
    /// What the kernel has (`None`: nothing programmed yet by this process).
    programmed: Option<Vec<NatListener>>,
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
    }

    /// Whether `name` is a NAT listener.
    pub fn contains(&self, name: &str) -> bool {
        self.listeners.contains_key(name)
    }

    /// The names of the NAT listeners, once the kernel has their rules.
    pub fn programmed_names(&self) -> Vec<String> {
        if self.programmed.is_some() {
            self.listeners.keys().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// The NAT listeners by name.
    pub fn listeners(&self) -> &BTreeMap<String, config::Listener> {
        &self.listeners
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
        forwarding(families.contains(&true), families.contains(&false));
        nat::apply(&desired)?;
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
/// that have NAT listeners, saying so when it was off. Left on at stop (other things may rely
/// on it by then).
fn forwarding(v4: bool, v6: bool) {
    let keys = [
        (v4, "/proc/sys/net/ipv4/ip_forward"),
        (v6, "/proc/sys/net/ipv6/conf/all/forwarding"),
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
                tracing::warn!(sysctl = %path, "forwarding was off: turned on for the NAT listeners")
            }
            Err(e) => {
                tracing::error!(sysctl = %path, error = %e, "forwarding is off and cannot be turned on: NAT listeners will not forward")
            }
        }
    }
}
