//! [`UdpSocket`]: std's UDP socket, made in a stack.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// A UDP socket of a stack (`Stack::udp_bind`).
#[derive(Debug)]
pub struct UdpSocket {
    inner: Repr,
}

#[derive(Debug)]
enum Repr {
    Kernel(std::net::UdpSocket),
}

impl UdpSocket {
    /// Wraps a std socket made in a kernel stack.
    pub(crate) fn from_kernel(s: std::net::UdpSocket) -> Self {
        UdpSocket {
            inner: Repr::Kernel(s),
        }
    }

    fn std(&self) -> &std::net::UdpSocket {
        match &self.inner {
            Repr::Kernel(s) => s,
        }
    }

    /// Sends a datagram to `addr` (the first address it resolves to, as std
    /// does: a name is resolved by the host, not the stack); returns the bytes
    /// sent.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        self.std().send_to(buf, addr)
    }

    /// Receives a datagram: its length (cut to `buf`) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.std().recv_from(buf)
    }

    /// [`UdpSocket::recv_from`] without taking the datagram from the queue.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.std().peek_from(buf)
    }

    /// Sets the default destination, and takes datagrams only from it (the
    /// first of `addr`'s addresses that works, as std does).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.std().connect(addr)
    }

    /// Sends a datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.std().send(buf)
    }

    /// Receives a datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.std().recv(buf)
    }

    /// [`UdpSocket::recv`] without taking the datagram from the queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.std().peek(buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// The connected peer's address (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    /// Makes sends and receives return `WouldBlock` rather than wait.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.std().set_nonblocking(nonblocking)
    }

    /// How long a receive waits (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.std().set_read_timeout(timeout)
    }

    /// How long a send waits (`None`: for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.std().set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.std().read_timeout()
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.std().write_timeout()
    }

    /// Whether it may send to broadcast addresses (`SO_BROADCAST`).
    pub fn broadcast(&self) -> io::Result<bool> {
        self.std().broadcast()
    }

    /// Lets it send to broadcast addresses, or not.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.std().set_broadcast(on)
    }

    /// The IP time-to-live of its datagrams.
    pub fn ttl(&self) -> io::Result<u32> {
        self.std().ttl()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.std().set_ttl(ttl)
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// Another handle on the same socket.
    pub fn try_clone(&self) -> io::Result<Self> {
        self.std().try_clone().map(Self::from_kernel)
    }

    /// The std socket inside, on a kernel stack; the socket back, on another.
    pub fn into_std(self) -> Result<std::net::UdpSocket, Self> {
        match self.inner {
            Repr::Kernel(s) => Ok(s),
        }
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std().as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<UdpSocket> for std::os::fd::OwnedFd {
    fn from(s: UdpSocket) -> Self {
        match s.inner {
            Repr::Kernel(s) => s.into(),
        }
    }
}
