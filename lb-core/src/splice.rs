//! One direction of a connection moved with Linux splice(2) through a pipe: socket to pipe,
//! pipe to socket, without copying the payload through user space.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;

use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use std::sync::atomic::AtomicBool;

use crate::copy::end_of_stream;

/// Most bytes asked of one splice call; the pipe holds 64 KiB by default.
const CHUNK: usize = 1 << 20;

/// A pipe used as the in-kernel buffer of one direction.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe not yet written out; only an empty pipe goes back to the pool.
    pending: usize,
}

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Empty pipes kept per thread, so short connections skip pipe2(2) and close(2).
const POOLED_PIPES: usize = 64;

impl Pipe {
    /// An empty pipe from the thread's pool or a new one.
    pub(crate) fn get() -> io::Result<Pipe> {
        if let Some(p) = PIPES.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop())) {
            return Ok(p);
        }
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok(Pipe {
            read,
            write,
            pending: 0,
        })
    }

    /// Gives an empty pipe back to the pool; a pipe with data left is closed.
    pub(crate) fn put(self) {
        if self.pending != 0 {
            return;
        }
        PIPES.with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() < POOLED_PIPES {
                    p.push(self);
                }
            }
        });
    }
}

/// Moves bytes from `src` to `dst` until `src` ends, then shuts down `dst`'s write side.
pub(crate) async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &mut Pipe,
    ended: &AtomicBool,
    on_data: &(dyn Fn(usize) + Sync),
) -> io::Result<()> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
        let n = loop {
            let r = src.try_io(Interest::READABLE, || {
                splice(src, None, &pipe.write, None, CHUNK, flags).map_err(io::Error::from)
            });
            match r {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => src.readable().await?,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            end_of_stream(dst, ended);
            return Ok(());
        }
        pipe.pending = n;
        on_data(n);
        while pipe.pending > 0 {
            let r = dst.try_io(Interest::WRITABLE, || {
                splice(&pipe.read, None, dst, None, pipe.pending, flags).map_err(io::Error::from)
            });
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => pipe.pending -= m.min(pipe.pending),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        }
    }
}
