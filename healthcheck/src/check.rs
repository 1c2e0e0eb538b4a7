//! The `Check` trait every health check implements, and the timeout wrapper around it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::failure::{Failure, Outcome};

/// One probe of a target's health.
///
/// Implementations must be cancel-safe: the [`Monitor`](crate::Monitor) drops the future when
/// the check's timeout expires, so whatever the check started (a socket, a child process) has to
/// be cleaned up on drop. The built-in checks are.
#[async_trait]
pub trait Check: Send + Sync + 'static {
    /// Probes the target once: `Ok(())` if healthy, otherwise why not.
    async fn check(&self) -> Outcome;

    /// A short human description of what is checked, for logs (e.g. `tcp 10.0.0.1:6443`).
    fn describe(&self) -> String;
}

#[async_trait]
impl<C: Check + ?Sized> Check for Arc<C> {
    async fn check(&self) -> Outcome {
        (**self).check().await
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

#[async_trait]
impl<C: Check + ?Sized> Check for Box<C> {
    async fn check(&self) -> Outcome {
        (**self).check().await
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Runs `check` once, turning an overrun of `timeout` into [`Failure::TimedOut`].
///
/// The check's future is dropped on timeout, which for the built-ins closes sockets and kills
/// the process group of an exec check.
pub async fn run_with_timeout<C: Check + ?Sized>(check: &C, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, check.check()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::TimedOut(timeout)),
    }
}

impl std::fmt::Debug for dyn Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Check").field(&self.describe()).finish()
    }
}
