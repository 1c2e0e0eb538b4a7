//! Both directions of a proxied connection, with half-close and an idle timeout.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::copy::{self, Buffer};
use crate::splice::{self, Pipe};

/// How bytes are moved between the client and the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMode {
    /// read(2)/write(2) through a buffer in user space.
    Userspace,
    /// splice(2) through a pipe, without copying payload to user space (Linux); falls back to
    /// user space if a pipe cannot be made.
    Splice,
    /// The default: the mode measured fastest on loopback (see BENCHMARKS.md, section
    /// "lb-core").
    #[default]
    Auto,
}

impl TransferMode {
    /// The mode `Auto` stands for.
    pub fn resolve(self) -> TransferMode {
        match self {
            TransferMode::Auto => TransferMode::Userspace,
            m => m,
        }
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Both sides closed their sending direction.
    Closed,
    /// Nothing moved either way for the idle timeout.
    Idle,
    /// A read or write failed (reset, broken pipe).
    Error,
}

/// Per-transfer settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransferOptions {
    pub(crate) mode: TransferMode,
    pub(crate) buffer_size: usize,
    pub(crate) idle_timeout: Option<Duration>,
}

/// One direction's engine.
enum Engine {
    Buffer(Buffer),
    Pipe(Pipe),
}

impl Engine {
    fn new(opts: &TransferOptions) -> Engine {
        if opts.mode.resolve() == TransferMode::Splice {
            match Pipe::get() {
                Ok(p) => return Engine::Pipe(p),
                Err(e) => tracing::debug!(error = %e, "no pipe, copying in user space"),
            }
        }
        Engine::Buffer(Buffer::get(opts.buffer_size))
    }

    async fn run(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        on_data: &(dyn Fn(usize) + Sync),
    ) -> io::Result<()> {
        match self {
            Engine::Buffer(b) => copy::copy(src, dst, b.as_mut(), on_data).await,
            Engine::Pipe(p) => splice::copy(src, dst, p, on_data).await,
        }
    }

    fn recycle(self) {
        if let Engine::Pipe(p) = self {
            p.put();
        }
    }
}

/// Copies both ways until both sides have closed, an error, or the idle timeout.
/// `up` is called with bytes client→backend, `down` with bytes backend→client.
pub(crate) async fn run(
    client: &TcpStream,
    backend: &TcpStream,
    opts: &TransferOptions,
    up: &(dyn Fn(usize) + Sync),
    down: &(dyn Fn(usize) + Sync),
) -> Outcome {
    let mut e_up = Engine::new(opts);
    let mut e_down = Engine::new(opts);
    let outcome = match opts.idle_timeout {
        None => {
            let both = async {
                tokio::try_join!(
                    e_up.run(client, backend, up),
                    e_down.run(backend, client, down)
                )
            };
            match both.await {
                Ok(_) => Outcome::Closed,
                Err(_) => Outcome::Error,
            }
        }
        Some(idle) => {
            let activity = Activity::new();
            let up_t = |n: usize| {
                activity.touch();
                up(n)
            };
            let down_t = |n: usize| {
                activity.touch();
                down(n)
            };
            let both = async {
                tokio::try_join!(
                    e_up.run(client, backend, &up_t),
                    e_down.run(backend, client, &down_t)
                )
            };
            tokio::select! {
                r = both => match r {
                    Ok(_) => Outcome::Closed,
                    Err(_) => Outcome::Error,
                },
                _ = idle_expired(&activity, idle) => Outcome::Idle,
            }
        }
    };
    e_up.recycle();
    e_down.recycle();
    outcome
}

/// When bytes last moved, as nanoseconds since the transfer started (an atomic, so the
/// connection's future stays `Send`).
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ns = self.start.elapsed().as_nanos() as u64;
        self.last.store(ns, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

/// Returns once `idle` has passed since the last activity.
async fn idle_expired(activity: &Activity, idle: Duration) {
    loop {
        let deadline = activity.last() + idle;
        tokio::time::sleep_until(deadline).await;
        if activity.last() + idle <= Instant::now() {
            return;
        }
    }
}
