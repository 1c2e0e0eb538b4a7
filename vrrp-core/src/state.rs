//! The states of a virtual router and why it moves between them.

use core::fmt;

use crate::track::TrackId;

/// The state of a virtual router: RFC 5798 §6.4, plus keepalived's Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down: sends nothing, listens to nothing.
    Initialize,
    /// Watching the Master, ready to take over.
    Backup,
    /// Holding the virtual addresses and advertising.
    Master,
    /// Unable to serve (interface down, or a weight-0 tracked object down): holds nothing,
    /// sends nothing, until the cause clears.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "Initialize",
            State::Backup => "Backup",
            State::Master => "Master",
            State::Fault => "Fault",
        })
    }
}

/// What holds a router in [`State::Fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultCause {
    /// The driver reported the interface down.
    InterfaceDown,
    /// A tracked object with weight 0 is down.
    TrackDown(TrackId),
}

impl fmt::Display for FaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultCause::InterfaceDown => f.write_str("interface down"),
            FaultCause::TrackDown(id) => write!(f, "tracked object {id} down"),
        }
    }
}

/// Why a router changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Startup: Initialize to Backup.
    Startup,
    /// Priority 255: the address owner goes to Master at once (startup or leaving Fault).
    AddressOwner,
    /// Master_Down_Timer expired: the master stopped advertising (crash, or priority 0).
    MasterNoResponse,
    /// This Backup outranked a lower-priority master and took over (Preempt_Mode, possibly after
    /// `preempt_delay`).
    Preempted,
    /// A Master heard a better advert (higher priority, or equal priority from a higher
    /// address) and stepped down.
    HigherPriorityAdvert,
    /// The driver stepped a Master down because its sync group goes Backup
    /// ([`Router::handle_step_down`](crate::Router::handle_step_down)).
    SteppedDown,
    /// A fault appeared.
    Fault(FaultCause),
    /// The last fault cleared.
    FaultCleared,
    /// The driver shut the router down.
    Shutdown,
}

impl Reason {
    /// The RFC 6527 `vrrpv3StatisticsNewMasterReason` of a transition to Master with this
    /// reason; `None` for a reason that does not make a master.
    pub const fn new_master_reason(self) -> Option<NewMasterReason> {
        match self {
            Reason::AddressOwner => Some(NewMasterReason::Priority),
            Reason::MasterNoResponse => Some(NewMasterReason::MasterNoResponse),
            Reason::Preempted => Some(NewMasterReason::Preempted),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("address owner (priority 255)"),
            Reason::MasterNoResponse => f.write_str("master down timer expired"),
            Reason::Preempted => f.write_str("preempted a lower-priority master"),
            Reason::HigherPriorityAdvert => f.write_str("heard a higher-priority master"),
            Reason::SteppedDown => f.write_str("stepped down for its sync group"),
            Reason::Fault(cause) => write!(f, "fault: {cause}"),
            Reason::FaultCleared => f.write_str("fault cleared"),
            Reason::Shutdown => f.write_str("shutdown"),
        }
    }
}

/// RFC 6527's `vrrpv3StatisticsNewMasterReason`: why this router last became Master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NewMasterReason {
    /// `notMaster(0)`: it never became Master.
    #[default]
    NotMaster,
    /// `priority(1)`: it has the highest priority (the address owner).
    Priority,
    /// `preempted(2)`: it preempted a lower-priority master.
    Preempted,
    /// `masterNoResponse(3)`: the previous master stopped responding.
    MasterNoResponse,
}

impl NewMasterReason {
    /// The MIB's integer value.
    pub const fn mib_value(self) -> u8 {
        match self {
            NewMasterReason::NotMaster => 0,
            NewMasterReason::Priority => 1,
            NewMasterReason::Preempted => 2,
            NewMasterReason::MasterNoResponse => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_master_reasons_follow_rfc_6527() {
        assert_eq!(
            Reason::AddressOwner
                .new_master_reason()
                .map(NewMasterReason::mib_value),
            Some(1)
        );
        assert_eq!(
            Reason::Preempted
                .new_master_reason()
                .map(NewMasterReason::mib_value),
            Some(2)
        );
        assert_eq!(
            Reason::MasterNoResponse
                .new_master_reason()
                .map(NewMasterReason::mib_value),
            Some(3)
        );
        for r in [
            Reason::Startup,
            Reason::HigherPriorityAdvert,
            Reason::SteppedDown,
            Reason::Fault(FaultCause::InterfaceDown),
            Reason::FaultCleared,
            Reason::Shutdown,
        ] {
            assert_eq!(r.new_master_reason(), None, "{r}");
        }
        assert_eq!(NewMasterReason::default().mib_value(), 0);
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            Reason::Fault(FaultCause::TrackDown(TrackId(3))).to_string(),
            "fault: tracked object #3 down"
        );
        assert_eq!(State::Master.to_string(), "Master");
    }
}
