//! [`UdpSocket`]: std's UDP socket, made in a stack.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::stack::user::{self, SockOpt, SockOptName, Sources, UserSock};

/// A UDP socket of a stack (`Stack::udp_bind`).
#[derive(Debug)]
pub struct UdpSocket {
    inner: Repr,
}

#[derive(Debug)]
enum Repr {
    Kernel(std::net::UdpSocket),
    /// A user-space stack's: the application's end of a seqpacket pair carrying
    /// payloads, and the FIFO of their senders.
    User(UserDgram),
}

/// A datagram socket of a user-space stack, as the typed sockets hold it.
#[derive(Debug)]
pub(crate) struct UserDgram {
    pub(crate) s: UnixDatagram,
    pub(crate) h: UserSock,
    pub(crate) sources: Sources,
}

impl UserDgram {
    pub(crate) fn new(fd: OwnedFd, h: UserSock, sources: Sources) -> Self {
        UserDgram {
            s: UnixDatagram::from(fd),
            h,
            sources,
        }
    }

    /// The sender of the datagram just read (taken off the FIFO).
    fn pop(&self) -> SocketAddr {
        let mut q = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        q.pop_front()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.from)
    }

    fn front(&self) -> SocketAddr {
        let q = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        q.front()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.from)
    }

    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let n = self.s.recv(buf)?;
        Ok((n, self.pop()))
    }

    pub(crate) fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let n = rustix::net::recv(&self.s, buf, rustix::net::RecvFlags::PEEK)?.1;
        Ok((n, self.front()))
    }

    pub(crate) fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.h.send_to(buf, addr, !user::is_nonblocking(&self.s))
    }

    /// Sends to the connected peer: `EDESTADDRREQ` if there is none.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let peer = self.h.peer_addr().map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTCONN) => io::Error::from_raw_os_error(libc::EDESTADDRREQ),
            _ => e,
        })?;
        self.send_to(buf, peer)
    }

    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(UserDgram {
            s: self.s.try_clone()?,
            h: self.h.clone(),
            sources: self.sources.clone(),
        })
    }
}

fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

impl UdpSocket {
    /// Wraps a std socket made in a kernel stack.
    pub(crate) fn from_kernel(s: std::net::UdpSocket) -> Self {
        UdpSocket {
            inner: Repr::Kernel(s),
        }
    }

    /// Wraps a user-space stack's socket.
    pub(crate) fn from_user(fd: OwnedFd, h: UserSock, sources: Sources) -> Self {
        UdpSocket {
            inner: Repr::User(UserDgram::new(fd, h, sources)),
        }
    }

    /// Sends a datagram to `addr` (the first address it resolves to, as std
    /// does: a name is resolved by the host, not the stack); returns the bytes
    /// sent.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        match &self.inner {
            Repr::Kernel(s) => s.send_to(buf, addr),
            Repr::User(u) => u.send_to(buf, first_addr(addr)?),
        }
    }

    /// Receives a datagram: its length (cut to `buf`) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.inner {
            Repr::Kernel(s) => s.recv_from(buf),
            Repr::User(u) => u.recv_from(buf),
        }
    }

    /// [`UdpSocket::recv_from`] without taking the datagram from the queue.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.inner {
            Repr::Kernel(s) => s.peek_from(buf),
            Repr::User(u) => u.peek_from(buf),
        }
    }

    /// Sets the default destination, and takes datagrams only from it (the
    /// first of `addr`'s addresses that works, as std does).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        match &self.inner {
            Repr::Kernel(s) => s.connect(addr),
            Repr::User(u) => {
                let mut last = None;
                for a in addr.to_socket_addrs()? {
                    match u.h.connect(a) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to")
                }))
            }
        }
    }

    /// Sends a datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            Repr::Kernel(s) => s.send(buf),
            Repr::User(u) => u.send(buf),
        }
    }

    /// Receives a datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            Repr::Kernel(s) => s.recv(buf),
            Repr::User(u) => u.recv_from(buf).map(|(n, _)| n),
        }
    }

    /// [`UdpSocket::recv`] without taking the datagram from the queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            Repr::Kernel(s) => s.peek(buf),
            Repr::User(u) => u.peek_from(buf).map(|(n, _)| n),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Repr::Kernel(s) => s.local_addr(),
            Repr::User(u) => u.h.local_addr(),
        }
    }

    /// The connected peer's address (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Repr::Kernel(s) => s.peer_addr(),
            Repr::User(u) => u.h.peer_addr(),
        }
    }

    /// Makes sends and receives return `WouldBlock` rather than wait.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match &self.inner {
            Repr::Kernel(s) => s.set_nonblocking(nonblocking),
            Repr::User(u) => u.s.set_nonblocking(nonblocking),
        }
    }

    /// How long a receive waits (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            Repr::Kernel(s) => s.set_read_timeout(timeout),
            Repr::User(u) => u.s.set_read_timeout(timeout),
        }
    }

    /// How long a send waits (`None`: for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            Repr::Kernel(s) => s.set_write_timeout(timeout),
            Repr::User(u) => u.s.set_write_timeout(timeout),
        }
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match &self.inner {
            Repr::Kernel(s) => s.read_timeout(),
            Repr::User(u) => u.s.read_timeout(),
        }
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        match &self.inner {
            Repr::Kernel(s) => s.write_timeout(),
            Repr::User(u) => u.s.write_timeout(),
        }
    }

    /// Whether it may send to broadcast addresses (`SO_BROADCAST`).
    pub fn broadcast(&self) -> io::Result<bool> {
        match &self.inner {
            Repr::Kernel(s) => s.broadcast(),
            Repr::User(u) => match u.h.get(SockOptName::Broadcast)? {
                SockOpt::Broadcast(on) => Ok(on),
                _ => Ok(false),
            },
        }
    }

    /// Lets it send to broadcast addresses, or not.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        match &self.inner {
            Repr::Kernel(s) => s.set_broadcast(on),
            Repr::User(u) => u.h.set(SockOpt::Broadcast(on)),
        }
    }

    /// The IP time-to-live of its datagrams.
    pub fn ttl(&self) -> io::Result<u32> {
        match &self.inner {
            Repr::Kernel(s) => s.ttl(),
            Repr::User(u) => u.h.ttl(),
        }
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        match &self.inner {
            Repr::Kernel(s) => s.set_ttl(ttl),
            Repr::User(u) => u.h.set_ttl(ttl),
        }
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.inner {
            Repr::Kernel(s) => s.take_error(),
            Repr::User(u) => u.h.take_error(),
        }
    }

    /// Another handle on the same socket.
    pub fn try_clone(&self) -> io::Result<Self> {
        match &self.inner {
            Repr::Kernel(s) => s.try_clone().map(Self::from_kernel),
            Repr::User(u) => Ok(UdpSocket {
                inner: Repr::User(u.try_clone()?),
            }),
        }
    }

    /// The std socket inside, on a kernel stack; the socket back, on another.
    pub fn into_std(self) -> Result<std::net::UdpSocket, Self> {
        match self.inner {
            Repr::Kernel(s) => Ok(s),
            inner @ Repr::User(_) => Err(UdpSocket { inner }),
        }
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Repr::Kernel(s) => s.as_fd(),
            Repr::User(u) => u.s.as_fd(),
        }
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
            Repr::User(u) => u.s.into(),
        }
    }
}
