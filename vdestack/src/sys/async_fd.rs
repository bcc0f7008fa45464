//! tokio's `AsyncFd` over an fd we own (the `tokio` feature): registering an fd
//! with tokio's reactor is `unsafe` (tokio cannot check that the fd stays open and
//! the same file while it is registered), so it is done here, for `OwnedFd` only.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Registers `fd` with the current tokio runtime's reactor for `interest`.
/// Panics, as tokio does, outside a runtime with I/O enabled.
pub fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is an open fd, owned by the `AsyncFd` from now on: it
    // stays open and the same file until the `AsyncFd` is dropped or gives it back
    // (`into_inner`), and `as_raw_fd` returns the same number every time. The
    // crate's callers keep the `AsyncFd` private and never swap the fd through
    // `get_mut`.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

/// The sockets of [`crate::net`]: each owns one fd for its whole life, and its
/// `as_raw_fd` always returns that fd.
pub trait OwnsItsFd: std::os::fd::AsRawFd {}

impl OwnsItsFd for crate::net::TcpListener {}
impl OwnsItsFd for crate::net::TcpStream {}
impl OwnsItsFd for crate::net::UdpSocket {}

/// Registers a socket of [`crate::net`] with the current tokio runtime's reactor
/// for `interest`. Panics, as tokio does, outside a runtime with I/O enabled.
pub fn register_socket<T: OwnsItsFd>(s: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: the socket owns its fd (`OwnsItsFd`), now owned by the `AsyncFd`:
    // it stays open and the same file until the `AsyncFd` is dropped or gives it
    // back (`into_inner`); the crate's callers keep the `AsyncFd` private and
    // never swap the socket through `get_mut`.
    unsafe { AsyncFd::register_with_interest(s, interest) }.map_err(|e| e.into_parts().1)
}
