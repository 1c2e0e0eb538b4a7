//! What a sync group decides when one of its members changes, apart from Fault (which follows
//! through the members' group tracks): pure, so that the rules are tested without sockets.
//!
//! The group prefers Backup, as keepalived's `vrrp_sync_group`:
//!
//! - a member that lost its election on its own (Master to Backup, not stepped down by the
//!   group) steps the group's other Masters down;
//! - a member that became Master while another member is neither Master nor wants Master (that
//!   one changed while this one was being let go) steps down again;
//! - a member is held from Master unless every other member is Master or wants Master.
//!
//! A step-down is Master to Backup with its own reason, which triggers nothing here, so the
//! decisions do not chain into loops.

use std::collections::BTreeMap;

use vrrp_core::{Reason, State};

/// A member as its group sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its last known state; `None` before it reported one.
    pub state: Option<State>,
    /// Held, it would be Master.
    pub wants: bool,
    /// The group holds it back from Master.
    pub held: bool,
}

/// What the group tells a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Step down from Master to Backup.
    StepDown {
        /// The member.
        member: String,
        /// Why, for the log.
        why: String,
    },
    /// Hold back from Master (`held`), or let go.
    Hold {
        /// The member.
        member: String,
        /// Held or let go.
        held: bool,
        /// Why, for the log.
        why: String,
    },
}

/// The decisions after member `name` reported `state` (`change`: the state it left and why;
/// `None` when only its want of Master changed). `members` are the group's, in order; `view`
/// holds the running ones, already updated with the report.
pub fn decide(
    members: &[String],
    view: &BTreeMap<String, Member>,
    name: &str,
    state: State,
    change: Option<(State, Reason)>,
) -> Vec<Decision> {
    let master = |m: &str| view.get(m).is_some_and(|x| x.state == Some(State::Master));
    let agrees = |m: &str| master(m) || view.get(m).is_some_and(|x| x.wants);
    let others = |m: &str| {
        let m = m.to_owned();
        members.iter().filter(move |o| **o != m)
    };
    let mut decisions = Vec::new();
    match change {
        Some((State::Master, reason))
            if state == State::Backup && reason != Reason::SteppedDown =>
        {
            for o in others(name).filter(|o| master(o)) {
                decisions.push(Decision::StepDown {
                    member: o.clone(),
                    why: format!("{name} lost its election ({reason})"),
                });
            }
        }
        Some(_) if state == State::Master => {
            if let Some(o) = others(name).find(|o| !agrees(o)) {
                decisions.push(Decision::StepDown {
                    member: name.to_owned(),
                    why: format!("{o} is neither Master nor wants Master"),
                });
            }
        }
        _ => {}
    }
    for m in members {
        let Some(member) = view.get(m) else {
            continue;
        };
        let blocker = others(m).find(|o| !agrees(o));
        if member.held == blocker.is_some() {
            continue;
        }
        decisions.push(Decision::Hold {
            member: m.clone(),
            held: blocker.is_some(),
            why: blocker.map_or_else(
                || "every other member is Master or wants Master".to_owned(),
                |o| format!("{o} is neither Master nor wants Master"),
            ),
        });
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(members: &[(&str, State, bool, bool)]) -> (Vec<String>, BTreeMap<String, Member>) {
        let names = members.iter().map(|m| m.0.to_owned()).collect();
        let view = members
            .iter()
            .map(|&(n, state, wants, held)| {
                (
                    n.to_owned(),
                    Member {
                        state: Some(state),
                        wants,
                        held,
                    },
                )
            })
            .collect();
        (names, view)
    }

    fn hold(member: &str, held: bool) -> (String, bool) {
        (member.to_owned(), held)
    }

    fn holds(d: &[Decision]) -> Vec<(String, bool)> {
        d.iter()
            .filter_map(|d| match d {
                Decision::Hold { member, held, .. } => Some((member.clone(), *held)),
                Decision::StepDown { .. } => None,
            })
            .collect()
    }

    fn step_downs(d: &[Decision]) -> Vec<String> {
        d.iter()
            .filter_map(|d| match d {
                Decision::StepDown { member, .. } => Some(member.clone()),
                Decision::Hold { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_member_is_let_go_only_when_every_other_wants_master() {
        use State::Backup;
        // a wants Master; b and c do not yet: everyone stays held.
        let (m, v) = group(&[
            ("a", Backup, true, true),
            ("b", Backup, false, true),
            ("c", Backup, false, true),
        ]);
        assert!(decide(&m, &v, "a", Backup, None).is_empty());
        // b wants too: only c, whose others both want, is let go.
        let (m, v) = group(&[
            ("a", Backup, true, true),
            ("b", Backup, true, true),
            ("c", Backup, false, true),
        ]);
        assert_eq!(
            holds(&decide(&m, &v, "b", Backup, None)),
            vec![hold("c", false)]
        );
        // c became Master (it was let go before its timer ran out): a and b go.
        let (m, v) = group(&[
            ("a", Backup, true, true),
            ("b", Backup, true, true),
            ("c", State::Master, false, false),
        ]);
        let d = decide(
            &m,
            &v,
            "c",
            State::Master,
            Some((Backup, Reason::MasterNoResponse)),
        );
        assert_eq!(holds(&d), vec![hold("a", false), hold("b", false)]);
        assert!(step_downs(&d).is_empty());
    }

    #[test]
    fn a_want_that_ends_holds_the_others_again() {
        // a was let go as b wanted Master; b hears a master again: a is held again.
        let (m, v) = group(&[
            ("a", State::Backup, false, false),
            ("b", State::Backup, false, false),
        ]);
        assert_eq!(
            holds(&decide(&m, &v, "b", State::Backup, None)),
            vec![hold("a", true), hold("b", true)]
        );
        let (m, v) = group(&[
            ("a", State::Backup, false, false),
            ("b", State::Backup, true, false),
        ]);
        assert_eq!(
            holds(&decide(&m, &v, "a", State::Backup, None)),
            vec![hold("b", true)]
        );
    }

    #[test]
    fn a_member_losing_its_election_steps_the_other_masters_down() {
        let (m, v) = group(&[
            ("a", State::Backup, false, false),
            ("b", State::Master, false, false),
            ("c", State::Master, false, false),
        ]);
        let d = decide(
            &m,
            &v,
            "a",
            State::Backup,
            Some((State::Master, Reason::HigherPriorityAdvert)),
        );
        assert_eq!(step_downs(&d), vec!["b".to_owned(), "c".to_owned()]);
        // And b and c are held, since a neither is Master nor wants it.
        assert_eq!(holds(&d), vec![hold("b", true), hold("c", true)]);
    }

    #[test]
    fn a_step_down_triggers_no_further_step_down() {
        let (m, v) = group(&[
            ("a", State::Backup, false, true),
            ("b", State::Master, false, true),
        ]);
        let d = decide(
            &m,
            &v,
            "a",
            State::Backup,
            Some((State::Master, Reason::SteppedDown)),
        );
        assert!(step_downs(&d).is_empty());
    }

    #[test]
    fn a_master_whose_sibling_stopped_agreeing_steps_down() {
        // b was let go while a wanted Master; a heard a master meanwhile.
        let (m, v) = group(&[
            ("a", State::Backup, false, false),
            ("b", State::Master, false, false),
        ]);
        let d = decide(
            &m,
            &v,
            "b",
            State::Master,
            Some((State::Backup, Reason::MasterNoResponse)),
        );
        assert_eq!(step_downs(&d), vec!["b".to_owned()]);
    }

    #[test]
    fn fault_and_restarts_step_nothing_down() {
        let (m, v) = group(&[
            ("a", State::Fault, false, false),
            ("b", State::Master, false, false),
        ]);
        let d = decide(
            &m,
            &v,
            "a",
            State::Fault,
            Some((
                State::Master,
                Reason::Fault(vrrp_core::FaultCause::InterfaceDown),
            )),
        );
        assert!(step_downs(&d).is_empty());
        assert_eq!(holds(&d), vec![hold("b", true)]);
        // A member not running (being restarted) is not told anything, and holds the others.
        let names = vec!["a".to_owned(), "b".to_owned()];
        let mut view = BTreeMap::new();
        view.insert(
            "b".to_owned(),
            Member {
                state: Some(State::Backup),
                wants: true,
                held: false,
            },
        );
        assert_eq!(
            holds(&decide(&names, &view, "b", State::Backup, None)),
            vec![hold("b", true)]
        );
    }
}
