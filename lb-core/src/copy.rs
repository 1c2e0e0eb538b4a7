//! One direction of a connection copied through a userspace buffer.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Why [`copy`] returned without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    /// `src` ended and `dst` was shut down for writing.
    Ended,
    /// A read filled the whole buffer (bulk traffic) and the caller asked to hear of it; all
    /// bytes read so far have been written.
    Bulk,
}

/// Reads from `src` and writes everything to `dst` until `src` ends, then shuts down `dst`'s
/// write side (a half-close travels on, the other direction goes on). With `stop_on_bulk`,
/// returns early after the first read that fills `buf`.
pub(crate) async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    buf: &mut [u8],
    stop_on_bulk: bool,
    ended: &AtomicBool,
    on_data: &(dyn Fn(usize) + Sync),
) -> io::Result<Copied> {
    loop {
        let n = loop {
            match read_once(src, buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => src.readable().await?,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            end_of_stream(dst, ended);
            return Ok(Copied::Ended);
        }
        on_data(n);
        write_all(dst, &buf[..n]).await?;
        if stop_on_bulk && n == buf.len() {
            return Ok(Copied::Bulk);
        }
    }
}

/// One read(2). A short read means the socket is drained for now: its readiness is cleared
/// then, so the next read waits for epoll instead of spending a system call on EAGAIN (as
/// haproxy does). Safe with edge-triggered epoll: data arriving later raises a new event.
fn read_once(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = None;
    let r = src.try_io(Interest::READABLE, || {
        let n = rustix::io::read(src, &mut *buf).map_err(io::Error::from)?;
        if n > 0 && n < buf.len() {
            got = Some(n);
            // WouldBlock makes tokio clear the readiness; the bytes are kept in `got`.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (r, got) {
        (_, Some(n)) => Ok(n),
        (r, None) => r,
    }
}

/// Writes all of `data` to a non-blocking stream shared by reference.
pub(crate) async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(m) => data = &data[m..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Passes an end of stream on. The first direction to end half-closes its destination (FIN,
/// the other direction keeps flowing). When the second ends, both sockets are about to be
/// closed, and close(2) sends that FIN itself: one system call less per connection.
pub(crate) fn end_of_stream(dst: &TcpStream, other_ended: &AtomicBool) {
    if !other_ended.swap(true, Ordering::AcqRel) {
        // Errors mean the peer is gone already; the other direction will see that itself.
        let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
    }
}

thread_local! {
    static BUFFERS: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread for reuse, so short connections do not allocate and zero memory.
const POOLED_BUFFERS: usize = 256;

/// A copy buffer from the thread's pool, returned to it on drop.
pub(crate) struct Buffer(Option<Box<[u8]>>);

impl Buffer {
    pub(crate) fn get(size: usize) -> Buffer {
        let pooled = BUFFERS.with(|b| {
            let mut b = b.borrow_mut();
            match b.last() {
                Some(buf) if buf.len() == size => b.pop(),
                _ => None,
            }
        });
        Buffer(Some(
            pooled.unwrap_or_else(|| vec![0u8; size].into_boxed_slice()),
        ))
    }

    pub(crate) fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(buf) = self.0.take() {
            BUFFERS.with(|b| {
                if let Ok(mut b) = b.try_borrow_mut() {
                    if b.len() < POOLED_BUFFERS {
                        b.push(buf);
                    }
                }
            });
        }
    }
}
