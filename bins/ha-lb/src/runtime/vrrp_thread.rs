//! The thread every VRRP port of `ha-lb run` runs on: a current-thread tokio runtime of its
//! own, as keepalived's VRRP process is one single-threaded event loop.
//!
//! Why: on the node's multi-thread runtime, every advert sent or received woke a worker
//! thread and often handed tasks between the two workers (wake-ups, work stealing, the
//! kernel's task switches), which cost more CPU than the advert itself once hundreds of
//! instances ran. On one thread that does nothing else, a wake-up runs every due timer and
//! reads every queued advert of every port in one go, and nothing else competes for it:
//! health checks, the balancer and the admin endpoint stay on the main runtime.

use std::io;
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The VRRP thread, started by the first port that needs it and stopped when the last
/// [`VrrpThread`] handle goes (its runtime drops whatever tasks are left).
#[derive(Debug, Clone, Default)]
pub struct VrrpThread {
    started: Arc<OnceLock<Running>>,
}

#[derive(Debug)]
struct Running {
    handle: Handle,
    /// Dropped with the last handle: the thread's `block_on` returns and its runtime goes.
    _stop: oneshot::Sender<()>,
}

impl VrrpThread {
    /// The runtime's handle, starting the thread if this is the first call. The thread is
    /// made by the calling thread, so it is in the caller's network namespace.
    ///
    /// # Errors
    ///
    /// When the runtime or the thread cannot be made (out of memory or threads).
    pub fn handle(&self) -> io::Result<Handle> {
        if let Some(r) = self.started.get() {
            return Ok(r.handle.clone());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ha-lb-vrrp".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        // Two first calls at once: the loser's thread stops as its sender drops here.
        let running = self.started.get_or_init(|| Running {
            handle,
            _stop: stop,
        });
        Ok(running.handle.clone())
    }
}
