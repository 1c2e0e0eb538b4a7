//! Readiness of the driver's sockets (VRRP raw socket, link watcher) in tokio: they implement
//! `AsFd`, tokio's `AsyncFd` wants `AsRawFd`; this wrapper bridges the two.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A socket owned by its `AsyncFd` registration.
#[derive(Debug)]
pub struct Owned<T>(pub T);

impl<T: AsFd> AsRawFd for Owned<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers `socket` (already non-blocking) with the tokio reactor, for reading only: the
/// driver's sockets send without waiting (a VRRP advert that finds the send queue full is
/// reported, not queued), and with write interest every packet sent, and every one read,
/// woke the reactor once more to report write space nobody waits for (measured when the VRRP
/// thread ran a tokio runtime: 15 of 35 wake-ups a second of a Backup of 20 instances).
///
/// # Errors
///
/// The reactor's error (e.g. no runtime).
pub fn register<T: AsFd>(socket: T) -> io::Result<AsyncFd<Owned<T>>> {
    // `AsyncFd::new` is deprecated in favour of an `unsafe` constructor, because a registration
    // must not outlive its fd: here the AsyncFd owns the socket, so the fd lives exactly as
    // long as the registration, which is the safe case.
    #[allow(deprecated)]
    AsyncFd::with_interest(Owned(socket), Interest::READABLE)
}
