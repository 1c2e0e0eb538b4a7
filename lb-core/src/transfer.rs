//! Both directions of a proxied connection, with half-close and an idle timeout.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
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
    /// The default: user space until a read fills the whole buffer (bulk traffic), then
    /// splice(2) for the rest of that direction. Short request/response traffic avoids the
    /// pipe's extra system calls; bulk avoids the copies (see BENCHMARKS.md, "lb-core").
    #[default]
    Auto,
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Both sides closed their sending direction; `client_first`: the client did first.
    Closed {
        /// The client's direction ended first.
        client_first: bool,
    },
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

/// One direction's engine: a userspace buffer, a pipe, or (auto) a buffer until the traffic
/// turns out to be bulk, then a pipe.
struct Engine {
    mode: TransferMode,
    buffer_size: usize,
    buffer: Option<Buffer>,
    pipe: Option<Pipe>,
}

impl Engine {
    fn new(opts: &TransferOptions) -> Engine {
        Engine {
            mode: opts.mode,
            buffer_size: opts.buffer_size,
            buffer: None,
            pipe: None,
        }
    }

    /// A pipe for this direction, or `None` (logged) when the kernel will not give one.
    fn pipe(&mut self) -> Option<&mut Pipe> {
        if self.pipe.is_none() {
            match Pipe::get() {
                Ok(p) => self.pipe = Some(p),
                Err(e) => tracing::debug!(error = %e, "no pipe, copying in user space"),
            }
        }
        self.pipe.as_mut()
    }

    async fn run(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        ended: &AtomicBool,
        on_data: &(dyn Fn(usize) + Sync),
    ) -> io::Result<()> {
        if self.mode == TransferMode::Splice {
            if let Some(pipe) = self.pipe() {
                return splice::copy(src, dst, pipe, ended, on_data).await;
            }
        }
        let auto = self.mode == TransferMode::Auto;
        let size = self.buffer_size;
        let buf = self.buffer.get_or_insert_with(|| Buffer::get(size));
        if copy::copy(src, dst, buf.as_mut(), auto, ended, on_data).await? == copy::Copied::Ended {
            return Ok(());
        }
        // Bulk traffic: hand the buffer back and move the rest in the kernel.
        self.buffer = None;
        match self.pipe() {
            Some(pipe) => splice::copy(src, dst, pipe, ended, on_data).await,
            None => {
                let buf = self.buffer.get_or_insert_with(|| Buffer::get(size));
                copy::copy(src, dst, buf.as_mut(), false, ended, on_data)
                    .await
                    .map(|_| ())
            }
        }
    }

    fn recycle(self) {
        if let Some(p) = self.pipe {
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
    let ended = AtomicBool::new(false);
    // Which direction ended first: 1 the client's, 2 the backend's.
    let first = AtomicU8::new(0);
    let mark = |who: u8| {
        let _ = first.compare_exchange(0, who, Ordering::Relaxed, Ordering::Relaxed);
    };
    let closed = || Outcome::Closed {
        client_first: first.load(Ordering::Relaxed) != 2,
    };
    let mut e_up = Engine::new(opts);
    let mut e_down = Engine::new(opts);
    let outcome = match opts.idle_timeout {
        None => {
            let both = async {
                tokio::try_join!(
                    async {
                        let r = e_up.run(client, backend, &ended, up).await;
                        mark(1);
                        r
                    },
                    async {
                        let r = e_down.run(backend, client, &ended, down).await;
                        mark(2);
                        r
                    }
                )
            };
            match both.await {
                Ok(_) => closed(),
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
                    async {
                        let r = e_up.run(client, backend, &ended, &up_t).await;
                        mark(1);
                        r
                    },
                    async {
                        let r = e_down.run(backend, client, &ended, &down_t).await;
                        mark(2);
                        r
                    }
                )
            };
            tokio::select! {
                r = both => match r {
                    Ok(_) => closed(),
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
