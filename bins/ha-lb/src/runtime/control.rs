//! Operators' requests from the admin endpoint (`ha-lb ctl`), carried to the node, which owns
//! the instances, and answered.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::balancer::BackendAction;

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Drain, disable, enable or re-weight a backend.
    Backend {
        /// Its pool.
        pool: String,
        /// Its address.
        backend: SocketAddr,
        /// What to do.
        action: BackendAction,
        /// For `disable`: how long open connections may go on (default: the node's drain
        /// timeout).
        grace: Option<Duration>,
    },
    /// Maintenance of a VRRP instance on or off.
    Maintenance {
        /// The instance.
        instance: String,
        /// On or off.
        on: bool,
    },
    /// Maintenance of an anycast group on or off: its routes withdrawn while on.
    AnycastMaintenance {
        /// The group.
        group: String,
        /// On or off.
        on: bool,
    },
}

/// A request and where its answer goes: what was done, or why not.
#[derive(Debug)]
pub struct ControlRequest {
    /// The request.
    pub request: Request,
    /// The answer.
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// The admin endpoint's side of the channel.
pub type ControlSender = mpsc::UnboundedSender<ControlRequest>;

/// Sends `request` to the node and waits for its answer.
///
/// # Errors
///
/// The node's refusal, or that it is not running.
pub async fn ask(tx: &ControlSender, request: Request) -> Result<String, String> {
    let (reply, answer) = oneshot::channel();
    tx.send(ControlRequest { request, reply })
        .map_err(|_| "the node is stopping".to_owned())?;
    answer
        .await
        .map_err(|_| "the node dropped the request".to_owned())?
}
