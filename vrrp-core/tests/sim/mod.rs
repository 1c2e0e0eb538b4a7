//! A simulated LAN: nodes running [`Demux`]es of routers, a network with latency, loss and
//! partitions, crashes, graceful shutdowns and priority changes, all in virtual time.
//!
//! Every input's outputs are checked against the router's state as it goes (only a Master sends
//! a non-zero priority and holds the addresses; priority 0 only when leaving Master; state
//! changes chain), and [`Lan::assert_converged`] checks the election invariants.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use vrrp_core::{
    Decision, Demux, Output, Reason, Received, Router, RouterConfig, State, StateReport, SyncGroup,
    TrackId,
};

/// A deterministic generator (splitmix64): the simulation needs no other randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.next_u64() % 1000 < u64::from(per_mille)
    }
}

/// A state change as the harness saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: Duration,
    pub node: usize,
    pub vrid: u8,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

struct Delivery {
    to: usize,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: Vec<u8>,
}

struct Node {
    name: String,
    addr: IpAddr,
    configs: Vec<RouterConfig>,
    demux: Demux,
    /// Crashed: receives nothing, runs no timers, sends nothing.
    alive: bool,
    /// The state each router last announced, per VRID.
    shadow: HashMap<u8, State>,
    /// Whether each router holds its addresses, per VRID.
    holding: HashMap<u8, bool>,
    /// Why each router last changed state, per VRID.
    reasons: HashMap<u8, Reason>,
    /// Whether each router said it wants Master, per VRID.
    wants: HashMap<u8, bool>,
    /// Sync groups, by VRID: the rule ha-lb runs, fed with the routers' outputs as ha-lb's
    /// instances report them.
    groups: Vec<SyncGroup<u8>>,
}

fn new_demux(configs: &[RouterConfig]) -> Demux {
    let mut d = Demux::new();
    for c in configs {
        d.add(Router::new(c.clone()).unwrap()).unwrap();
    }
    d
}

/// The simulated LAN.
pub struct Lan {
    pub t0: Instant,
    pub now: Instant,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    in_flight: HashMap<u64, Delivery>,
    seq: u64,
    /// One-way latency of every delivery.
    pub latency: Duration,
    /// Extra latency drawn uniformly in `0..=jitter`.
    pub jitter: Duration,
    /// Loss, per mille of deliveries.
    pub loss_per_mille: u32,
    /// Partition group of each node: packets only flow within a group.
    group: Vec<u8>,
    /// VRIDs whose adverts do not pass between nodes (their link is cut, the nodes' others
    /// still work).
    cut: Vec<u8>,
    rng: Rng,
    pub changes: Vec<Change>,
    /// Transmissions seen, for tests that count them.
    pub transmits: u64,
    log: String,
    pub verbose: bool,
    /// The partition side of the neighbours (the clients) whose ARP / ND caches are recorded.
    pub neighbour_side: u8,
    /// Which node the neighbours' ARP / ND caches point at, per virtual address: the last node
    /// whose announcement (gratuitous ARP, unsolicited NA) reached them. Announcements are not
    /// VRRP: a cut link (`cut_link`) passes them, a partition does not.
    caches: HashMap<IpAddr, (usize, Duration)>,
}

impl Lan {
    pub fn new(seed: u64, latency: Duration) -> Self {
        let t0 = Instant::now();
        Lan {
            t0,
            now: t0,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            latency,
            jitter: Duration::ZERO,
            loss_per_mille: 0,
            group: Vec::new(),
            cut: Vec::new(),
            rng: Rng::new(seed),
            changes: Vec::new(),
            transmits: 0,
            log: String::new(),
            verbose: false,
            neighbour_side: 0,
            caches: HashMap::new(),
        }
    }

    /// Adds a node (not started) running one router per config; all configs share its address.
    pub fn add_node(&mut self, name: &str, configs: Vec<RouterConfig>) -> usize {
        let addr = configs[0].primary_address;
        assert!(configs.iter().all(|c| c.primary_address == addr));
        self.nodes.push(Node {
            name: name.to_string(),
            addr,
            demux: new_demux(&configs),
            shadow: configs
                .iter()
                .map(|c| (c.vrid, State::Initialize))
                .collect(),
            holding: configs.iter().map(|c| (c.vrid, false)).collect(),
            reasons: HashMap::new(),
            wants: configs.iter().map(|c| (c.vrid, false)).collect(),
            groups: Vec::new(),
            configs,
            alive: true,
        });
        self.group.push(0);
        self.nodes.len() - 1
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The log of everything that happened, for failure messages.
    pub fn log(&self) -> &str {
        &self.log
    }

    fn note(&mut self, line: String) {
        if self.verbose {
            println!("{line}");
        }
        let _ = writeln!(self.log, "{line}");
    }

    pub fn router(&self, node: usize, vrid: u8) -> &Router {
        let d = &self.nodes[node].demux;
        let id = d
            .lookup(vrid, self.nodes[node].configs[0].family())
            .unwrap();
        d.get(id).unwrap()
    }

    fn router_mut(&mut self, node: usize, vrid: u8) -> vrrp_core::RouterMut<'_> {
        let fam = self.nodes[node].configs[0].family();
        let d = &mut self.nodes[node].demux;
        let id = d.lookup(vrid, fam).unwrap();
        d.get_mut(id).unwrap()
    }

    pub fn state(&self, node: usize, vrid: u8) -> State {
        self.router(node, vrid).state()
    }

    pub fn is_alive(&self, node: usize) -> bool {
        self.nodes[node].alive
    }

    // ---- fault and control inputs ----

    pub fn start(&mut self, node: usize) {
        let now = self.now;
        self.note(format!(
            "{:>9.3}s {} starts",
            self.secs(),
            self.nodes[node].name
        ));
        // Members of a sync group start held, as ha-lb starts them.
        for g in 0..self.nodes[node].groups.len() {
            let vrids: Vec<u8> = self.nodes[node].groups[g]
                .members()
                .map(|(v, _)| *v)
                .collect();
            for v in vrids {
                self.router_mut(node, v).set_master_hold(now, true);
                self.nodes[node].groups[g].handle_start(&v);
            }
        }
        self.coordinate(node);
        self.nodes[node].demux.handle_startup(now);
        self.drain(node);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Graceful: each Master sends priority 0.
    pub fn shutdown(&mut self, node: usize) {
        let now = self.now;
        self.note(format!(
            "{:>9.3}s {} shuts down",
            self.secs(),
            self.nodes[node].name
        ));
        self.nodes[node].demux.handle_shutdown(now);
        self.drain(node);
    }

    /// A crash: no priority 0, nothing more from it. Its addresses vanish with it.
    pub fn crash(&mut self, node: usize) {
        self.note(format!(
            "{:>9.3}s {} crashes",
            self.secs(),
            self.nodes[node].name
        ));
        let n = &mut self.nodes[node];
        n.alive = false;
        for v in n.holding.values_mut() {
            *v = false;
        }
        for s in n.shadow.values_mut() {
            *s = State::Initialize;
        }
        for w in n.wants.values_mut() {
            *w = false;
        }
    }

    /// The crashed node boots again with fresh routers, and starts them.
    pub fn restart(&mut self, node: usize) {
        self.note(format!(
            "{:>9.3}s {} boots",
            self.secs(),
            self.nodes[node].name
        ));
        let n = &mut self.nodes[node];
        n.alive = true;
        n.demux = new_demux(&n.configs);
        // Its groups start afresh, as the process does.
        for g in &mut n.groups {
            *g = SyncGroup::new(g.members().map(|(v, _)| *v).collect::<Vec<_>>());
        }
        self.start(node);
    }

    /// The base priority the node's router has, or will have when it boots again.
    pub fn base_priority(&self, node: usize, vrid: u8) -> u8 {
        if self.nodes[node].alive {
            self.router(node, vrid).base_priority()
        } else {
            self.nodes[node]
                .configs
                .iter()
                .find(|c| c.vrid == vrid)
                .unwrap()
                .priority
        }
    }

    pub fn set_priority(&mut self, node: usize, vrid: u8, p: u8) {
        let now = self.now;
        self.note(format!(
            "{:>9.3}s {} VRID {vrid} priority := {p}",
            self.secs(),
            self.nodes[node].name
        ));
        if self.nodes[node].alive {
            self.router_mut(node, vrid)
                .set_base_priority(now, p)
                .unwrap();
            self.drain(node);
        } else {
            for c in &mut self.nodes[node].configs {
                if c.vrid == vrid {
                    c.priority = p;
                }
            }
        }
    }

    /// Sets a tracked object on every router of the node.
    pub fn set_tracked(&mut self, node: usize, id: TrackId, up: bool) {
        let what = format!("track {id} {}", if up { "up" } else { "down" });
        self.on_every_router(node, &what, |r, now| {
            let _ = r.set_tracked(now, id, up);
        });
    }

    pub fn set_interface(&mut self, node: usize, up: bool) {
        let what = format!("interface {}", if up { "up" } else { "down" });
        self.on_every_router(node, &what, |r, now| r.set_interface_up(now, up));
    }

    /// Notes `what` happened on `node` and, if it is alive, applies it to each of its
    /// routers, then drains their outputs.
    fn on_every_router(
        &mut self,
        node: usize,
        what: &str,
        mut f: impl FnMut(&mut Router, Instant),
    ) {
        let now = self.now;
        self.note(format!(
            "{:>9.3}s {} {what}",
            self.secs(),
            self.nodes[node].name
        ));
        if !self.nodes[node].alive {
            return;
        }
        let vrids: Vec<u8> = self.nodes[node].configs.iter().map(|c| c.vrid).collect();
        for v in vrids {
            f(&mut self.router_mut(node, v), now);
        }
        self.drain(node);
    }

    /// Splits the LAN: `groups[i]` is node i's side.
    pub fn partition(&mut self, groups: &[u8]) {
        self.note(format!("{:>9.3}s partition {groups:?}", self.secs()));
        self.group = groups.to_vec();
    }

    /// Cuts (or restores) the link of `vrid` between all nodes: its adverts stop passing, other
    /// VRIDs' still do.
    pub fn cut_link(&mut self, vrid: u8, cut: bool) {
        self.note(format!(
            "{:>9.3}s link of VRID {vrid} {}",
            self.secs(),
            if cut { "cut" } else { "restored" }
        ));
        self.cut.retain(|v| *v != vrid);
        if cut {
            self.cut.push(vrid);
        }
    }

    /// Makes `vrids` a sync group on `node`, run by [`SyncGroup`] as ha-lb runs it: a member is
    /// held from Master unless every other member is Master or wants Master, and a member that
    /// loses its election steps the other Masters down. Call before the node starts.
    pub fn sync_group(&mut self, node: usize, vrids: &[u8]) {
        self.nodes[node]
            .groups
            .push(SyncGroup::new(vrids.iter().copied()));
    }

    pub fn wants_master(&self, node: usize, vrid: u8) -> bool {
        self.nodes[node].wants[&vrid]
    }

    pub fn heal(&mut self) {
        self.note(format!("{:>9.3}s partition healed", self.secs()));
        self.group = vec![0; self.nodes.len()];
    }

    fn secs(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }

    // ---- running ----

    /// Runs until `self.now == until`.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.alive)
                .filter_map(|(i, n)| n.demux.poll_timeout().map(|t| (t, i)))
                .min();
            let (at, is_packet) = match (next_packet, next_timer) {
                (Some(p), Some((t, _))) if p <= t => (p, true),
                (Some(p), None) => (p, true),
                (_, Some((t, _))) => (t, false),
                (None, None) => break,
            };
            if at > until {
                break;
            }
            assert!(
                at >= self.now,
                "time went backwards: a deadline in the past"
            );
            self.now = at;
            if is_packet {
                let Reverse((_, seq)) = self.queue.pop().unwrap();
                let d = self.in_flight.remove(&seq).unwrap();
                if self.nodes[d.to].alive {
                    let rx = Received {
                        src: d.src,
                        dst: d.dst,
                        ttl: d.ttl,
                        bytes: &d.payload,
                    };
                    // Drops (e.g. not listening) are the router's business.
                    let _ = self.nodes[d.to].demux.handle_packet(at, &rx);
                    self.drain(d.to);
                }
            } else {
                let (_, i) = next_timer.unwrap();
                self.nodes[i].demux.handle_timeout(at);
                self.drain(i);
                // A timeout must make progress: its deadline is gone or later.
                assert!(
                    self.nodes[i].demux.poll_timeout().is_none_or(|t| t > at),
                    "a due timer survived handle_timeout"
                );
            }
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Drains a node's outputs, checks them against the state, and sends its packets.
    fn drain(&mut self, node: usize) {
        while let Some((id, out)) = self.nodes[node].demux.poll_output() {
            let vrid = self.nodes[node].demux.get(id).unwrap().vrid();
            let shadow = self.nodes[node].shadow[&vrid];
            match out {
                Output::StateChanged { from, to, reason } => {
                    assert_eq!(from, shadow, "state changes chain");
                    assert_ne!(from, to);
                    self.nodes[node].shadow.insert(vrid, to);
                    self.nodes[node].reasons.insert(vrid, reason);
                    // As ha-lb's instance reports it: with the want the router has once
                    // drained; any Fault here is the member's own (no group tracks).
                    let report = StateReport {
                        from,
                        to,
                        reason,
                        wants_master: self.nodes[node].demux.get(id).unwrap().wants_master(),
                        own_fault: to == State::Fault,
                    };
                    self.report(node, vrid, |g| g.handle_state_changed(&vrid, report));
                    let at = self.elapsed();
                    self.note(format!(
                        "{:>9.3}s {} VRID {vrid}: {from} -> {to} ({reason})",
                        at.as_secs_f64(),
                        self.nodes[node].name
                    ));
                    self.changes.push(Change {
                        at,
                        node,
                        vrid,
                        from,
                        to,
                        reason,
                    });
                }
                Output::AddAddresses(_) => {
                    assert_eq!(shadow, State::Master, "only a Master adds the addresses");
                    let h = self.nodes[node].holding.insert(vrid, true);
                    assert_eq!(h, Some(false), "addresses added twice");
                }
                Output::RemoveAddresses(_) => {
                    assert_ne!(shadow, State::Master);
                    let h = self.nodes[node].holding.insert(vrid, false);
                    assert_eq!(h, Some(true), "addresses removed but not held");
                }
                Output::Announce { addresses, repeat } => {
                    assert_eq!(shadow, State::Master, "only a Master announces");
                    assert!(repeat > 0);
                    if self.group[node] == self.neighbour_side {
                        let at = self.elapsed();
                        for a in addresses {
                            // The time is when it last moved, for recovery times.
                            if self.caches.get(&a).is_none_or(|(n, _)| *n != node) {
                                self.caches.insert(a, (node, at));
                            }
                        }
                        self.note(format!(
                            "{:>9.3}s {} VRID {vrid}: announces",
                            self.secs(),
                            self.nodes[node].name
                        ));
                    }
                }
                Output::WantsMaster(w) => {
                    let r = self.nodes[node].demux.get(id).unwrap();
                    assert!(!w || (shadow == State::Backup && r.is_master_held()));
                    // A want that ended as the router left Backup comes with that state
                    // change (see StateReport::wants_master), as ha-lb reports it.
                    if w || r.state() == State::Backup {
                        self.report(node, vrid, |g| g.handle_wants_master(&vrid, w));
                    }
                    let before = self.nodes[node].wants.insert(vrid, w);
                    assert_eq!(before, Some(!w), "wants change each time");
                    self.note(format!(
                        "{:>9.3}s {} VRID {vrid}: wants Master {w}",
                        self.secs(),
                        self.nodes[node].name
                    ));
                }
                Output::Transmit(t) => {
                    if t.priority == 0 {
                        let stepped = shadow == State::Backup
                            && self.nodes[node].reasons.get(&vrid) == Some(&Reason::SteppedDown);
                        assert!(
                            matches!(shadow, State::Initialize | State::Fault) || stepped,
                            "priority 0 only when leaving Master"
                        );
                    } else {
                        assert_eq!(shadow, State::Master, "only a Master advertises");
                    }
                    assert_eq!(t.ttl, 255);
                    self.transmits += 1;
                    self.send(node, t.src, t.dst, t.payload);
                }
                other => panic!("an output the simulator does not know: {other:?}"),
            }
        }
        // After draining, holding the addresses is exactly being Master.
        let n = &self.nodes[node];
        for (vrid, s) in &n.shadow {
            assert_eq!(
                n.holding[vrid],
                *s == State::Master,
                "VRID {vrid} on {}",
                n.name
            );
            if n.alive {
                let fam = n.configs[0].family();
                let r = n.demux.get(n.demux.lookup(*vrid, fam).unwrap()).unwrap();
                assert_eq!(r.state(), *s);
                assert_eq!(r.wants_master(), n.wants[vrid]);
            }
        }
        if self.coordinate(node) {
            self.drain(node);
        }
    }

    /// Hands a report of `vrid`'s router to its sync group on `node`, if it has one.
    fn report(&mut self, node: usize, vrid: u8, f: impl FnOnce(&mut SyncGroup<u8>)) {
        let groups = &mut self.nodes[node].groups;
        if let Some(g) = groups.iter_mut().find(|g| g.member(&vrid).is_some()) {
            f(g);
        }
    }

    /// Applies the decisions of `node`'s sync groups to its routers; true if it gave a router
    /// an input (whose outputs are then drained).
    fn coordinate(&mut self, node: usize) -> bool {
        if !self.nodes[node].alive {
            return false;
        }
        let now = self.now;
        let mut acted = false;
        for g in 0..self.nodes[node].groups.len() {
            while let Some(d) = self.nodes[node].groups[g].poll_decision() {
                match d {
                    Decision::StepDown { member, why } => {
                        self.note(format!(
                            "{:>9.3}s {} VRID {member}: steps down ({why})",
                            self.secs(),
                            self.nodes[node].name
                        ));
                        self.router_mut(node, member).handle_step_down(now);
                    }
                    Decision::Hold { member, held, .. } => {
                        self.router_mut(node, member).set_master_hold(now, held);
                    }
                    other => panic!("a decision the simulator does not know: {other:?}"),
                }
                acted = true;
            }
        }
        acted
    }

    fn send(&mut self, from: usize, src: IpAddr, dst: IpAddr, payload: Vec<u8>) {
        for to in 0..self.nodes.len() {
            if to == from || self.group[to] != self.group[from] {
                continue;
            }
            if payload.get(1).is_some_and(|v| self.cut.contains(v)) {
                continue;
            }
            if !dst.is_multicast() && self.nodes[to].addr != dst {
                continue;
            }
            if self.loss_per_mille > 0 && self.rng.chance(self.loss_per_mille) {
                continue;
            }
            let jitter = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.next_u64() % (self.jitter.as_nanos() as u64 + 1))
            };
            let at = self.now + self.latency + jitter;
            self.seq += 1;
            self.in_flight.insert(
                self.seq,
                Delivery {
                    to,
                    src,
                    dst,
                    ttl: 255,
                    payload: payload.clone(),
                },
            );
            self.queue.push(Reverse((at, self.seq)));
        }
    }

    // ---- invariants ----

    /// The routers of `vrid` that take part in the election: alive, started, not in Fault.
    pub fn eligible(&self, vrid: u8) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].alive
                    && self.nodes[i].shadow.contains_key(&vrid)
                    && matches!(self.state(i, vrid), State::Backup | State::Master)
            })
            .collect()
    }

    /// The eligible routers of `vrid`, by partition side.
    pub fn components(&self, vrid: u8) -> Vec<Vec<usize>> {
        let mut sides: Vec<(u8, Vec<usize>)> = Vec::new();
        for i in self.eligible(vrid) {
            match sides.iter_mut().find(|(g, _)| *g == self.group[i]) {
                Some((_, v)) => v.push(i),
                None => sides.push((self.group[i], vec![i])),
            }
        }
        sides.into_iter().map(|(_, v)| v).collect()
    }

    pub fn masters(&self, vrid: u8) -> Vec<usize> {
        self.eligible(vrid)
            .into_iter()
            .filter(|&i| self.state(i, vrid) == State::Master)
            .collect()
    }

    /// Exactly one Master per connected side; with `preempt`, one of the highest effective
    /// priority there. Returns the masters.
    pub fn assert_converged(&self, vrid: u8, preempt: bool) -> Vec<usize> {
        let mut masters = Vec::new();
        for side in self.components(vrid) {
            let m: Vec<usize> = side
                .iter()
                .copied()
                .filter(|&i| self.state(i, vrid) == State::Master)
                .collect();
            assert_eq!(
                m.len(),
                1,
                "VRID {vrid}: side {side:?} has masters {m:?} at {:?}\n{}",
                self.elapsed(),
                self.log
            );
            if preempt {
                let best = side
                    .iter()
                    .map(|&i| self.router(i, vrid).effective_priority())
                    .max()
                    .unwrap();
                assert_eq!(
                    self.router(m[0], vrid).effective_priority(),
                    best,
                    "VRID {vrid}: master {} is not of the highest priority at {:?}\n{}",
                    m[0],
                    self.elapsed(),
                    self.log
                );
            }
            masters.push(m[0]);
        }
        masters
    }

    /// After an election where every router started at once: one Master per side, of the
    /// highest priority, and among equals the highest primary address (as unsigned integers).
    pub fn assert_best_elected(&self, vrid: u8) {
        for (side, m) in self
            .components(vrid)
            .iter()
            .zip(self.assert_converged(vrid, true))
        {
            let key = |i: usize| {
                let r = self.router(i, vrid);
                let a = match r.config().primary_address {
                    IpAddr::V4(a) => u128::from(u32::from(a)),
                    IpAddr::V6(a) => u128::from(a),
                };
                (r.effective_priority(), a)
            };
            let best = side.iter().copied().max_by_key(|&i| key(i)).unwrap();
            assert_eq!(
                m, best,
                "VRID {vrid}: not the best of {side:?}\n{}",
                self.log
            );
        }
    }

    /// The node the neighbours' caches point at for `vip`, if any announced it.
    pub fn neighbour_cache(&self, vip: IpAddr) -> Option<usize> {
        self.caches.get(&vip).map(|(n, _)| *n)
    }

    /// When the neighbours' cache for `vip` last moved to another node.
    pub fn neighbour_cache_moved_at(&self, vip: IpAddr) -> Option<Duration> {
        self.caches.get(&vip).map(|(_, at)| *at)
    }

    /// Exactly one Master of `vrid` among the live nodes, and the neighbours' caches point
    /// at it for each of its addresses: clients reach the Master. Returns the Master.
    pub fn assert_neighbours_reach_master(&self, vrid: u8) -> usize {
        let m = self.masters(vrid);
        assert_eq!(
            m.len(),
            1,
            "VRID {vrid}: masters {m:?} at {:?}\n{}",
            self.elapsed(),
            self.log
        );
        for vip in self.router(m[0], vrid).virtual_addresses() {
            assert_eq!(
                self.neighbour_cache(*vip),
                Some(m[0]),
                "VRID {vrid}: the neighbours' cache for {vip} points at {:?}, the Master is {} \
                 at {:?}\n{}",
                self.neighbour_cache(*vip),
                m[0],
                self.elapsed(),
                self.log
            );
        }
        m[0]
    }

    /// The first transition of `vrid` to Master at or after `since`.
    pub fn first_master_since(&self, vrid: u8, since: Duration) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| c.vrid == vrid && c.to == State::Master && c.at >= since)
    }
}

/// A router config for the simulations: no second announcement burst, to keep logs short.
pub fn router_config(
    vrid: u8,
    version: vrrp_core::packet::Version,
    addr: &str,
    vip: &str,
    priority: u8,
    interval_cs: u16,
) -> RouterConfig {
    let mut c = RouterConfig::new(
        vrid,
        version,
        addr.parse().unwrap(),
        vec![vip.parse().unwrap()],
    );
    c.priority = priority;
    c.advert_interval_cs = interval_cs;
    c.announce.master_delay = None;
    c
}
