//! A sync group's rule (keepalived's `vrrp_sync_group`): which members are held back from
//! Master, let go, or stepped down, from what the members report. Sans-IO like [`Router`]: it
//! drives nothing itself, the driver applies each [`Decision`] with
//! [`Router::set_master_hold`] and [`Router::handle_step_down`].
//!
//! [`Router`]: crate::Router
//! [`Router::set_master_hold`]: crate::Router::set_master_hold
//! [`Router::handle_step_down`]: crate::Router::handle_step_down

use core::borrow::Borrow;
use core::fmt;
use std::collections::VecDeque;

use crate::state::{Reason, State};

/// A member as its group sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its last reported state; `None` before it reported one, or after it left for a restart.
    pub state: Option<State>,
    /// Its Fault (if `state` is Fault) has a cause of its own, not the group's: the other
    /// members follow it (see [`SyncGroup::fault_followed`]).
    pub own_fault: bool,
    /// Held, it would be Master (its [`Router::wants_master`](crate::Router::wants_master)).
    pub wants_master: bool,
    /// The group holds it back from Master.
    pub held: bool,
    /// It runs: started and not left. A member that does not run is told nothing, and keeps
    /// the others held.
    pub running: bool,
}

impl Member {
    const NOT_RUNNING: Member = Member {
        state: None,
        own_fault: false,
        wants_master: false,
        held: false,
        running: false,
    };

    /// Master, or held from it: it does not keep the others from Master.
    fn agrees(&self) -> bool {
        self.running && (self.state == Some(State::Master) || self.wants_master)
    }

    fn is_master(&self) -> bool {
        self.running && self.state == Some(State::Master)
    }
}

/// A member's state change, as its driver saw it in [`Output::StateChanged`](crate::Output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateReport {
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// Its [`Router::wants_master`](crate::Router::wants_master) once its outputs are drained.
    /// A want that ended because the router left Backup belongs here (`false`), not in a
    /// [`SyncGroup::handle_wants_master`] of its own before this report: otherwise the group
    /// sees it neither wanting nor Master for a moment and holds the others back.
    pub wants_master: bool,
    /// In Fault for a cause of its own, not because it follows another member's Fault (e.g.
    /// through a tracked object for "the group is healthy"). Ignored unless `to` is Fault.
    pub own_fault: bool,
}

/// Why a member leaves its group for a while ([`SyncGroup::handle_leave`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// It stops and starts again (e.g. on a re-created interface): the others stay as they are.
    Restart,
    /// It restarts for a configuration reload: the group's other Masters step down with it, so
    /// that the peer takes the whole group (by their priority-0 adverts). Otherwise the peer's
    /// copy of this member would want Master but stay held, as its other members still hear
    /// this node, and this member's addresses would wait a whole Master_Down_Interval.
    Reload,
    /// It cannot run (e.g. its interface does not exist yet): it counts as in a Fault of its
    /// own, which the others follow.
    Fault,
}

/// Why the group decided something, for the log: `Display` writes it out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Why<K> {
    /// This member went from Master to Backup on its own (not stepped down by the group).
    LostElection {
        /// The member that lost.
        member: K,
        /// Why it lost.
        reason: Reason,
    },
    /// This member is neither Master nor wants Master (or does not run).
    NeitherMasterNorWanting(K),
    /// Every other member is Master or wants Master.
    EveryOtherAgrees,
    /// This member restarts for a reload ([`Leave::Reload`]).
    Reloads(K),
}

impl<K: fmt::Display> fmt::Display for Why<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::LostElection { member, reason } => {
                write!(f, "{member} lost its election ({reason})")
            }
            Why::NeitherMasterNorWanting(m) => {
                write!(f, "{m} is neither Master nor wants Master")
            }
            Why::EveryOtherAgrees => f.write_str("every other member is Master or wants Master"),
            Why::Reloads(m) => write!(f, "{m} restarts for a reload"),
        }
    }
}

/// What the group tells a member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision<K> {
    /// Step down from Master to Backup ([`Router::handle_step_down`](crate::Router::handle_step_down)).
    StepDown {
        /// The member.
        member: K,
        /// Why.
        why: Why<K>,
    },
    /// Hold back from Master, or let go
    /// ([`Router::set_master_hold`](crate::Router::set_master_hold)).
    Hold {
        /// The member.
        member: K,
        /// Held (`true`) or let go.
        held: bool,
        /// Why.
        why: Why<K>,
    },
}

impl<K> Decision<K> {
    /// The member the decision is for.
    pub fn member(&self) -> &K {
        match self {
            Decision::StepDown { member, .. } | Decision::Hold { member, .. } => member,
        }
    }
}

/// One sync group's rule, on the members' reports. The group prefers Backup, as keepalived's
/// `vrrp_sync_group`:
///
/// - a member is held from Master unless every other member is Master or wants Master (a
///   member that does not run never is);
/// - a member that lost its election on its own (Master to Backup, not stepped down by the
///   group) steps the group's other Masters down;
/// - a member that became Master while another member is neither Master nor wants Master
///   (that one changed while this one was being let go) steps down again;
/// - a member leaving for a reload steps the other Masters down ([`Leave::Reload`]).
///
/// A step-down is Master to Backup with [`Reason::SteppedDown`], which triggers nothing here,
/// so the decisions do not chain into loops. Fault is not decided here: give each member a
/// weight-0 tracked object that is down while [`fault_followed`](Self::fault_followed) names a
/// member.
///
/// Generic over the member key (an instance name, a VRID). The driver reports with
/// `handle_*` and drains [`poll_decision`](Self::poll_decision) until `None` after each report,
/// applying each decision to the member's router. A member starts held: its driver calls
/// [`Router::set_master_hold`](crate::Router::set_master_hold)`(now, true)` before starting it,
/// and [`handle_start`](Self::handle_start) here.
///
/// ```
/// use vrrp_core::{Decision, Reason, State, StateReport, SyncGroup};
///
/// let mut group = SyncGroup::new(["outside", "inside"]);
/// group.handle_start(&"outside");
/// group.handle_start(&"inside");
/// let started = |to| StateReport {
///     from: State::Initialize,
///     to,
///     reason: Reason::Startup,
///     wants_master: false,
///     own_fault: false,
/// };
/// group.handle_state_changed(&"outside", started(State::Backup));
/// group.handle_state_changed(&"inside", started(State::Backup));
/// assert_eq!(group.poll_decision(), None);
///
/// // "outside" hears no master and wants Master: "inside" may go when its own time comes,
/// // "outside" stays held while "inside" still hears its master.
/// group.handle_wants_master(&"outside", true);
/// let Some(Decision::Hold { member: "inside", held: false, why }) = group.poll_decision() else {
///     panic!()
/// };
/// assert_eq!(why.to_string(), "every other member is Master or wants Master");
/// assert_eq!(group.poll_decision(), None);
/// group.handle_wants_master(&"inside", true);
/// assert!(matches!(
///     group.poll_decision(),
///     Some(Decision::Hold { member: "outside", held: false, .. })
/// ));
///
/// // Both became Master; then "outside" hears a better master: "inside" steps down with it.
/// for m in ["outside", "inside"] {
///     group.handle_state_changed(&m, StateReport {
///         from: State::Backup,
///         to: State::Master,
///         reason: Reason::MasterNoResponse,
///         wants_master: false,
///         own_fault: false,
///     });
/// }
/// assert_eq!(group.state(), Some(State::Master));
/// group.handle_state_changed(&"outside", StateReport {
///     from: State::Master,
///     to: State::Backup,
///     reason: Reason::HigherPriorityAdvert,
///     wants_master: false,
///     own_fault: false,
/// });
/// let Some(Decision::StepDown { member, why }) = group.poll_decision() else { panic!() };
/// assert_eq!(member, "inside");
/// assert_eq!(why.to_string(), "outside lost its election (heard a higher-priority master)");
/// ```
#[derive(Debug, Clone)]
pub struct SyncGroup<K> {
    /// In configuration order: the order decisions come in.
    members: Vec<(K, Member)>,
    decisions: VecDeque<Decision<K>>,
}

impl<K: Clone + PartialEq> SyncGroup<K> {
    /// A group of `members` (a repeated one counts once), none of them running yet.
    pub fn new(members: impl IntoIterator<Item = K>) -> Self {
        let mut group = SyncGroup {
            members: Vec::new(),
            decisions: VecDeque::new(),
        };
        group.set_members(members);
        group
    }

    /// Changes the members (a reload): those that stay keep their view, new ones do not run
    /// yet, and the holds follow at once.
    pub fn set_members(&mut self, members: impl IntoIterator<Item = K>) {
        let mut old = core::mem::take(&mut self.members);
        for key in members {
            if self.members.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let member = match old.iter().position(|(k, _)| *k == key) {
                Some(i) => old.swap_remove(i).1,
                None => Member::NOT_RUNNING,
            };
            self.members.push((key, member));
        }
        self.decisions
            .retain(|d| self.members.iter().any(|(k, _)| k == d.member()));
        self.update_holds();
    }

    /// The members and how the group sees them, in order.
    pub fn members(&self) -> impl Iterator<Item = (&K, &Member)> {
        self.members.iter().map(|(k, m)| (k, m))
    }

    /// How the group sees `member`; `None` if it is not one.
    pub fn member<Q>(&self, member: &Q) -> Option<&Member>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.index(member).map(|i| &self.members[i].1)
    }

    /// `member` started (or starts again), held and not wanting Master: its router must be held
    /// before it starts. Its last state stays until it reports a new one.
    pub fn handle_start<Q>(&mut self, member: &Q)
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let Some(i) = self.index(member) else {
            return;
        };
        let m = &mut self.members[i].1;
        m.running = true;
        m.held = true;
        m.wants_master = false;
        self.update_holds();
    }

    /// `member` stops running for a while; see [`Leave`]. Decisions for it not yet polled are
    /// dropped: it is told nothing until it starts again.
    pub fn handle_leave<Q>(&mut self, member: &Q, leave: Leave)
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let Some(i) = self.index(member) else {
            return;
        };
        let key = self.members[i].0.clone();
        if leave == Leave::Reload {
            for j in self.others(i) {
                let (other, m) = &self.members[j];
                if m.is_master() {
                    let (member, why) = (other.clone(), Why::Reloads(key.clone()));
                    self.step_down(member, why);
                }
            }
        }
        let fault = leave == Leave::Fault;
        self.members[i].1 = Member {
            state: fault.then_some(State::Fault),
            own_fault: fault,
            ..Member::NOT_RUNNING
        };
        self.decisions.retain(|d| *d.member() != key);
        self.update_holds();
    }

    /// `member` changed state. Its state is kept even while it does not run (a late report of
    /// an instance stopped for a restart); its want only while it runs.
    pub fn handle_state_changed<Q>(&mut self, member: &Q, report: StateReport)
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let Some(i) = self.index(member) else {
            return;
        };
        let (key, m) = &mut self.members[i];
        m.state = Some(report.to);
        m.own_fault = report.to == State::Fault && report.own_fault;
        if m.running {
            m.wants_master = report.wants_master;
        }
        let (key, running) = (key.clone(), m.running);
        let lost = report.from == State::Master
            && report.to == State::Backup
            && report.reason != Reason::SteppedDown;
        if lost {
            for j in self.others(i) {
                let (other, m) = &self.members[j];
                if m.is_master() {
                    let why = Why::LostElection {
                        member: key.clone(),
                        reason: report.reason,
                    };
                    self.step_down(other.clone(), why);
                }
            }
        } else if report.to == State::Master && running {
            if let Some(other) = self.blocker(i) {
                let why = Why::NeitherMasterNorWanting(other.clone());
                self.step_down(key, why);
            }
        }
        self.update_holds();
    }

    /// `member`'s want of Master changed ([`Output::WantsMaster`](crate::Output)) while its
    /// state did not. Ignored while it does not run.
    pub fn handle_wants_master<Q>(&mut self, member: &Q, wants: bool)
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let Some(i) = self.index(member) else {
            return;
        };
        let m = &mut self.members[i].1;
        if m.running {
            m.wants_master = wants;
        }
        self.update_holds();
    }

    /// The next decision, in the order made; drain until `None` after each `handle_*`.
    #[must_use]
    pub fn poll_decision(&mut self) -> Option<Decision<K>> {
        self.decisions.pop_front()
    }

    /// The group's own state, for its notify commands: Fault if a member is in Fault, Master or
    /// Backup when every member is, otherwise (members moving, or not running) `None`.
    pub fn state(&self) -> Option<State> {
        let states = || self.members.iter().map(|(_, m)| m.state);
        if states().any(|s| s == Some(State::Fault)) {
            return Some(State::Fault);
        }
        let first = states().next()??;
        (matches!(first, State::Master | State::Backup) && states().all(|s| s == Some(first)))
            .then_some(first)
    }

    /// The first member other than `member` in a Fault of its own: `member` follows it into
    /// Fault (through a weight-0 tracked object). Only another's own Fault counts, so that a
    /// member in Fault because of the group does not keep the group down once the cause is
    /// gone.
    pub fn fault_followed<Q>(&self, member: &Q) -> Option<&K>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.members
            .iter()
            .find(|(k, m)| k.borrow() != member && m.state == Some(State::Fault) && m.own_fault)
            .map(|(k, _)| k)
    }

    fn index<Q>(&self, member: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.members.iter().position(|(k, _)| k.borrow() == member)
    }

    /// The indices of the members other than `i`.
    fn others(&self, i: usize) -> impl Iterator<Item = usize> {
        (0..self.members.len()).filter(move |j| *j != i)
    }

    /// The first other member that keeps member `i` from Master.
    fn blocker(&self, i: usize) -> Option<&K> {
        self.others(i)
            .map(|j| &self.members[j])
            .find(|(_, m)| !m.agrees())
            .map(|(k, _)| k)
    }

    /// Queues a step-down for `member`, unless one is already queued (several members leaving
    /// for one reload).
    fn step_down(&mut self, member: K, why: Why<K>) {
        let queued = self
            .decisions
            .iter()
            .any(|d| matches!(d, Decision::StepDown { member: m, .. } if *m == member));
        if !queued {
            self.decisions.push_back(Decision::StepDown { member, why });
        }
    }

    /// Holds or lets go each running member whose hold no longer fits the view.
    fn update_holds(&mut self) {
        for i in 0..self.members.len() {
            let m = self.members[i].1;
            if !m.running {
                continue;
            }
            let blocker = self.blocker(i).cloned();
            let held = blocker.is_some();
            if m.held == held {
                continue;
            }
            self.members[i].1.held = held;
            self.decisions.push_back(Decision::Hold {
                member: self.members[i].0.clone(),
                held,
                why: blocker.map_or(Why::EveryOtherAgrees, Why::NeitherMasterNorWanting),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FaultCause;
    use State::{Backup, Fault, Initialize, Master};

    /// A group of running members, each with its (state, wants Master, held), and no decision
    /// pending.
    fn group(members: &[(&'static str, State, bool, bool)]) -> SyncGroup<&'static str> {
        let mut g = SyncGroup::new(members.iter().map(|m| m.0));
        for (i, &(_, state, wants, held)) in members.iter().enumerate() {
            g.members[i].1 = Member {
                state: Some(state),
                own_fault: state == Fault,
                wants_master: wants,
                held,
                running: true,
            };
        }
        g
    }

    fn drain(g: &mut SyncGroup<&'static str>) -> Vec<Decision<&'static str>> {
        std::iter::from_fn(|| g.poll_decision()).collect()
    }

    fn holds(d: &[Decision<&'static str>]) -> Vec<(&'static str, bool)> {
        d.iter()
            .filter_map(|d| match d {
                Decision::Hold { member, held, .. } => Some((*member, *held)),
                Decision::StepDown { .. } => None,
            })
            .collect()
    }

    fn step_downs(d: &[Decision<&'static str>]) -> Vec<&'static str> {
        d.iter()
            .filter_map(|d| match d {
                Decision::StepDown { member, .. } => Some(*member),
                Decision::Hold { .. } => None,
            })
            .collect()
    }

    fn change(from: State, to: State, reason: Reason) -> StateReport {
        StateReport {
            from,
            to,
            reason,
            wants_master: false,
            own_fault: to == Fault,
        }
    }

    #[test]
    fn a_member_is_let_go_only_when_every_other_wants_master() {
        // a wants Master; b and c do not yet: everyone stays held.
        let mut g = group(&[
            ("a", Backup, false, true),
            ("b", Backup, false, true),
            ("c", Backup, false, true),
        ]);
        g.handle_wants_master("a", true);
        assert!(drain(&mut g).is_empty());
        // b wants too: only c, whose others both want, is let go.
        g.handle_wants_master("b", true);
        let d = drain(&mut g);
        assert_eq!(holds(&d), vec![("c", false)]);
        assert_eq!(
            d[0],
            Decision::Hold {
                member: "c",
                held: false,
                why: Why::EveryOtherAgrees
            }
        );
        // c became Master (it was let go before its timer ran out): a and b go.
        g.handle_state_changed("c", change(Backup, Master, Reason::MasterNoResponse));
        let d = drain(&mut g);
        assert_eq!(holds(&d), vec![("a", false), ("b", false)]);
        assert!(step_downs(&d).is_empty());
    }

    #[test]
    fn a_want_that_ends_holds_the_others_again() {
        // a was let go as b wanted Master; b hears a master again: a is held again.
        let mut g = group(&[("a", Backup, false, false), ("b", Backup, true, false)]);
        g.handle_wants_master("b", false);
        assert_eq!(holds(&drain(&mut g)), vec![("a", true), ("b", true)]);
        let mut g = group(&[("a", Backup, false, false), ("b", Backup, true, false)]);
        g.handle_wants_master("a", false);
        let d = drain(&mut g);
        assert_eq!(holds(&d), vec![("b", true)]);
        assert_eq!(
            d[0],
            Decision::Hold {
                member: "b",
                held: true,
                why: Why::NeitherMasterNorWanting("a")
            }
        );
    }

    #[test]
    fn a_member_losing_its_election_steps_the_other_masters_down() {
        let mut g = group(&[
            ("a", Master, false, false),
            ("b", Master, false, false),
            ("c", Master, false, false),
        ]);
        g.handle_state_changed("a", change(Master, Backup, Reason::HigherPriorityAdvert));
        let d = drain(&mut g);
        assert_eq!(step_downs(&d), vec!["b", "c"]);
        assert_eq!(
            d[0],
            Decision::StepDown {
                member: "b",
                why: Why::LostElection {
                    member: "a",
                    reason: Reason::HigherPriorityAdvert
                }
            }
        );
        // And b and c are held, since a neither is Master nor wants it.
        assert_eq!(holds(&d), vec![("b", true), ("c", true)]);
    }

    #[test]
    fn a_step_down_triggers_no_further_step_down() {
        let mut g = group(&[("a", Master, false, true), ("b", Master, false, true)]);
        g.handle_state_changed("a", change(Master, Backup, Reason::SteppedDown));
        assert!(step_downs(&drain(&mut g)).is_empty());
    }

    #[test]
    fn a_master_whose_sibling_stopped_agreeing_steps_down() {
        // b was let go while a wanted Master; a heard a master meanwhile.
        let mut g = group(&[("a", Backup, false, false), ("b", Backup, false, false)]);
        g.handle_state_changed("b", change(Backup, Master, Reason::MasterNoResponse));
        let d = drain(&mut g);
        assert_eq!(step_downs(&d), vec!["b"]);
        assert_eq!(
            d[0],
            Decision::StepDown {
                member: "b",
                why: Why::NeitherMasterNorWanting("a")
            }
        );
    }

    #[test]
    fn fault_steps_nothing_down_and_holds_the_others() {
        let mut g = group(&[("a", Master, false, false), ("b", Master, false, false)]);
        g.handle_state_changed(
            "a",
            change(Master, Fault, Reason::Fault(FaultCause::InterfaceDown)),
        );
        let d = drain(&mut g);
        assert!(step_downs(&d).is_empty());
        assert_eq!(holds(&d), vec![("b", true)]);
        assert_eq!(g.fault_followed("b"), Some(&"a"));
        assert_eq!(g.fault_followed("a"), None);
        assert_eq!(g.state(), Some(Fault));
        // b follows into Fault through the group: not its own, so a does not follow b.
        let mut report = change(Master, Fault, Reason::Fault(FaultCause::InterfaceDown));
        report.own_fault = false;
        g.handle_state_changed("b", report);
        assert_eq!(g.fault_followed("a"), None);
    }

    #[test]
    fn a_member_not_running_is_told_nothing_and_holds_the_others() {
        let mut g = SyncGroup::new(["a", "b"]);
        g.handle_start("b");
        assert!(drain(&mut g).is_empty(), "b starts held");
        g.handle_state_changed("b", change(Initialize, Backup, Reason::Startup));
        g.handle_wants_master("b", true);
        assert!(drain(&mut g).is_empty());
        assert!(g.member("b").unwrap().held);
        // Its want is not recorded while it does not run, and it gets no decision.
        g.handle_wants_master("a", true);
        assert!(!g.member("a").unwrap().wants_master);
        assert!(drain(&mut g).is_empty());
        // Started, it reports and the group lets b go once it wants too.
        g.handle_start("a");
        g.handle_state_changed("a", change(Initialize, Backup, Reason::Startup));
        g.handle_wants_master("a", true);
        assert_eq!(holds(&drain(&mut g)), vec![("a", false), ("b", false)]);
    }

    #[test]
    fn leaving_for_a_restart_holds_the_others_and_drops_its_decisions() {
        let mut g = group(&[("a", Backup, true, false), ("b", Backup, true, false)]);
        g.handle_wants_master("a", false);
        assert_eq!(g.decisions.len(), 1, "b is to be held");
        g.handle_leave("b", Leave::Restart);
        assert_eq!(holds(&drain(&mut g)), vec![("a", true)]);
        assert_eq!(g.member("b"), Some(&Member::NOT_RUNNING));
        assert_eq!(g.state(), None);
        // Back: held, not wanting, its old state until it reports one.
        g.handle_start("b");
        let b = g.member("b").unwrap();
        assert!(b.running && b.held && !b.wants_master);
    }

    #[test]
    fn leaving_for_a_reload_steps_the_other_masters_down() {
        let mut g = group(&[
            ("a", Master, false, false),
            ("b", Master, false, false),
            ("c", Master, false, false),
        ]);
        // a and c restart together: only b, which stays, steps down.
        g.handle_leave("a", Leave::Reload);
        g.handle_leave("c", Leave::Reload);
        let d = drain(&mut g);
        assert_eq!(step_downs(&d), vec!["b"]);
        assert_eq!(d[0].to_owned_why(), "a restarts for a reload");
        assert_eq!(holds(&d), vec![("b", true)]);
    }

    #[test]
    fn a_member_that_cannot_run_is_a_fault_the_others_follow() {
        let mut g = group(&[("a", Backup, false, true), ("b", Backup, false, true)]);
        g.handle_leave("a", Leave::Fault);
        assert!(drain(&mut g).is_empty());
        assert_eq!(g.fault_followed("b"), Some(&"a"));
        assert_eq!(g.state(), Some(Fault));
        // Its late report while stopped is kept (not its want).
        g.handle_state_changed("a", change(Fault, Backup, Reason::FaultCleared));
        assert_eq!(g.fault_followed("b"), None);
    }

    #[test]
    fn the_group_state_is_its_members_when_they_agree() {
        let mut g = group(&[("a", Backup, false, true), ("b", Master, false, true)]);
        assert_eq!(g.state(), None);
        g.handle_state_changed("a", change(Backup, Master, Reason::MasterNoResponse));
        assert_eq!(g.state(), Some(Master));
        let g = group(&[("a", Backup, false, true), ("b", Backup, false, true)]);
        assert_eq!(g.state(), Some(Backup));
        let g = group(&[
            ("a", Initialize, false, true),
            ("b", Initialize, false, true),
        ]);
        assert_eq!(g.state(), None);
        assert_eq!(SyncGroup::<u8>::new([]).state(), None);
    }

    #[test]
    fn new_members_keep_the_others_view_and_holds_follow() {
        let mut g = group(&[("a", Backup, true, true), ("b", Backup, false, true)]);
        // b leaves the group: a alone is let go; c joins, not running: a is held again.
        g.set_members(["a"]);
        assert_eq!(holds(&drain(&mut g)), vec![("a", false)]);
        g.set_members(["a", "c", "a"]);
        assert_eq!(holds(&drain(&mut g)), vec![("a", true)]);
        assert_eq!(g.members().count(), 2);
        assert!(g.member("a").unwrap().wants_master);
        assert_eq!(g.member("c"), Some(&Member::NOT_RUNNING));
    }

    #[test]
    fn unknown_members_change_nothing() {
        let mut g = group(&[("a", Backup, false, true)]);
        g.handle_start("x");
        g.handle_wants_master("x", true);
        g.handle_leave("x", Leave::Reload);
        g.handle_state_changed("x", change(Backup, Master, Reason::MasterNoResponse));
        assert!(drain(&mut g).is_empty());
        assert!(g.member("x").is_none());
    }

    impl Decision<&'static str> {
        fn to_owned_why(&self) -> String {
            match self {
                Decision::StepDown { why, .. } | Decision::Hold { why, .. } => why.to_string(),
            }
        }
    }
}
