//! Readiness of the driver's sockets (VRRP raw socket, link watcher) in tokio: they implement
//! `AsFd`, tokio's `AsyncFd` wants `AsRawFd`; this wrapper bridges the two.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;

/// A socket owned by its `AsyncFd` registration.
#[derive(Debug)]
pub struct Owned<T>(pub T);

impl<T: AsFd> AsRawFd for Owned<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers `socket` (already non-blocking) with the tokio reactor.
///
/// # Errors
///
/// The reactor's error (e.g. no runtime).
pub fn register<T: AsFd>(socket: T) -> io::Result<AsyncFd<Owned<T>>> {
    // `AsyncFd::new` is deprecated in favour of an `unsafe` constructor, because a registration
    // must not outlive its fd: here the AsyncFd owns the socket, so the fd lives exactly as
    // long as the registration, which is the safe case.
    #[allow(deprecated)]
    AsyncFd::new(Owned(socket))
}
