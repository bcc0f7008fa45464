//! [`TcpListener`] and [`TcpStream`]: std's TCP types, made in a stack.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use std::os::unix::net::UnixStream;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::stack::user::{self, SockOpt, SockOptName, UserSock};

/// A TCP socket listening in a stack (`Stack::tcp_listener`).
#[derive(Debug)]
pub struct TcpListener {
    inner: ListenerRepr,
}

#[derive(Debug)]
enum ListenerRepr {
    Kernel(std::net::TcpListener),
    /// A user-space stack's: the application's end of a seqpacket pair that
    /// carries each accepted connection.
    User {
        fd: std::os::fd::OwnedFd,
        h: UserSock,
    },
}

/// A TCP connection of a stack (`Stack::tcp_connect`, [`TcpListener::accept`]).
#[derive(Debug)]
pub struct TcpStream {
    inner: StreamRepr,
}

#[derive(Debug)]
enum StreamRepr {
    Kernel(std::net::TcpStream),
    /// A user-space stack's: the application's end of a stream pair.
    User {
        s: UnixStream,
        h: UserSock,
    },
}

/// The connections a [`TcpListener`] accepts, for ever ([`TcpListener::incoming`]).
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Wraps a std listener made in a kernel stack.
    pub(crate) fn from_kernel(l: std::net::TcpListener) -> Self {
        TcpListener {
            inner: ListenerRepr::Kernel(l),
        }
    }

    /// Wraps a user-space stack's listener.
    pub(crate) fn from_user(fd: std::os::fd::OwnedFd, h: UserSock) -> Self {
        TcpListener {
            inner: ListenerRepr::User { fd, h },
        }
    }

    /// Accepts a connection: the stream and its peer's address.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.inner {
            ListenerRepr::Kernel(l) => {
                let (s, a) = l.accept()?;
                Ok((TcpStream::from_kernel(s), a))
            }
            ListenerRepr::User { fd, h } => {
                let (conn, id, peer) = user::socket_api::accept(fd.as_fd())?;
                Ok((TcpStream::from_user(conn, h.sibling(id)), peer))
            }
        }
    }

    /// An iterator over the connections accepted ([`TcpListener::accept`] in a
    /// loop, without the addresses).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.local_addr(),
            ListenerRepr::User { h, .. } => h.local_addr(),
        }
    }

    /// Makes `accept` return `WouldBlock` rather than wait.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.set_nonblocking(nonblocking),
            ListenerRepr::User { fd, .. } => Ok(rustix::io::ioctl_fionbio(fd, nonblocking)?),
        }
    }

    /// Another handle on the same socket.
    pub fn try_clone(&self) -> io::Result<Self> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.try_clone().map(Self::from_kernel),
            ListenerRepr::User { fd, h } => Ok(Self::from_user(
                rustix::io::fcntl_dupfd_cloexec(fd, 0)?,
                h.clone(),
            )),
        }
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.take_error(),
            ListenerRepr::User { h, .. } => h.take_error(),
        }
    }

    /// The IP time-to-live of its connections' packets.
    pub fn ttl(&self) -> io::Result<u32> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.ttl(),
            ListenerRepr::User { h, .. } => h.ttl(),
        }
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.set_ttl(ttl),
            ListenerRepr::User { h, .. } => h.set_ttl(ttl),
        }
    }

    /// The std listener inside, on a kernel stack; the listener back, on another.
    pub fn into_std(self) -> Result<std::net::TcpListener, Self> {
        match self.inner {
            ListenerRepr::Kernel(l) => Ok(l),
            inner @ ListenerRepr::User { .. } => Err(TcpListener { inner }),
        }
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            ListenerRepr::Kernel(l) => l.as_fd(),
            ListenerRepr::User { fd, .. } => fd.as_fd(),
        }
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl TcpStream {
    /// Wraps a std stream made in a kernel stack.
    pub(crate) fn from_kernel(s: std::net::TcpStream) -> Self {
        TcpStream {
            inner: StreamRepr::Kernel(s),
        }
    }

    /// Wraps a user-space stack's connection.
    pub(crate) fn from_user(fd: std::os::fd::OwnedFd, h: UserSock) -> Self {
        TcpStream {
            inner: StreamRepr::User {
                s: UnixStream::from(fd),
                h,
            },
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.peer_addr(),
            StreamRepr::User { h, .. } => h.peer_addr(),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.local_addr(),
            StreamRepr::User { h, .. } => h.local_addr(),
        }
    }

    /// Shuts down reading, writing or both (`Write`: the peer reads EOF).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.shutdown(how),
            StreamRepr::User { s, .. } => s.shutdown(how),
        }
    }

    /// Makes reads and writes return `WouldBlock` rather than wait.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.set_nonblocking(nonblocking),
            StreamRepr::User { s, .. } => s.set_nonblocking(nonblocking),
        }
    }

    /// How long a read waits (`None`: for ever); then `WouldBlock` or `TimedOut`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.set_read_timeout(timeout),
            StreamRepr::User { s, .. } => s.set_read_timeout(timeout),
        }
    }

    /// How long a write waits (`None`: for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.set_write_timeout(timeout),
            StreamRepr::User { s, .. } => s.set_write_timeout(timeout),
        }
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.read_timeout(),
            StreamRepr::User { s, .. } => s.read_timeout(),
        }
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.write_timeout(),
            StreamRepr::User { s, .. } => s.write_timeout(),
        }
    }

    /// Reads without taking the bytes from the queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.peek(buf),
            StreamRepr::User { s, .. } => {
                Ok(rustix::net::recv(s, buf, rustix::net::RecvFlags::PEEK)?.1)
            }
        }
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub fn nodelay(&self) -> io::Result<bool> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.nodelay(),
            StreamRepr::User { h, .. } => match h.get(SockOptName::NoDelay)? {
                SockOpt::NoDelay(on) => Ok(on),
                _ => Ok(false),
            },
        }
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.set_nodelay(nodelay),
            StreamRepr::User { h, .. } => h.set(SockOpt::NoDelay(nodelay)),
        }
    }

    /// The IP time-to-live of its packets.
    pub fn ttl(&self) -> io::Result<u32> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.ttl(),
            StreamRepr::User { h, .. } => h.ttl(),
        }
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.set_ttl(ttl),
            StreamRepr::User { h, .. } => h.set_ttl(ttl),
        }
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.take_error(),
            StreamRepr::User { h, .. } => h.take_error(),
        }
    }

    /// Another handle on the same connection.
    pub fn try_clone(&self) -> io::Result<Self> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.try_clone().map(Self::from_kernel),
            StreamRepr::User { s, h } => Ok(TcpStream {
                inner: StreamRepr::User {
                    s: s.try_clone()?,
                    h: h.clone(),
                },
            }),
        }
    }

    /// The std stream inside, on a kernel stack; the stream back, on another.
    pub fn into_std(self) -> Result<std::net::TcpStream, Self> {
        match self.inner {
            StreamRepr::Kernel(s) => Ok(s),
            inner @ StreamRepr::User { .. } => Err(TcpStream { inner }),
        }
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            StreamRepr::Kernel(s) => (&*s).read(buf),
            StreamRepr::User { s, .. } => (&*s).read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match &self.inner {
            StreamRepr::Kernel(s) => (&*s).read_vectored(bufs),
            StreamRepr::User { s, .. } => (&*s).read_vectored(bufs),
        }
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            StreamRepr::Kernel(s) => (&*s).write(buf),
            StreamRepr::User { s, .. } => (&*s).write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &self.inner {
            StreamRepr::Kernel(s) => (&*s).write_vectored(bufs),
            StreamRepr::User { s, .. } => (&*s).write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            StreamRepr::Kernel(s) => s.as_fd(),
            StreamRepr::User { s, .. } => s.as_fd(),
        }
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Connects `fd` (a blocking TCP socket) to `addr`, waiting at most `timeout`:
/// a non-blocking connect, then a wait for writability, then `SO_ERROR`; the
/// socket is blocking again afterwards. `ETIMEDOUT` when the time is up.
pub(crate) fn connect_timeout(
    fd: &std::os::fd::OwnedFd,
    addr: &SocketAddr,
    timeout: Duration,
) -> io::Result<()> {
    rustix::io::ioctl_fionbio(fd, true)?;
    match rustix::net::connect(fd, addr) {
        Ok(()) => {}
        Err(Errno::INPROGRESS | Errno::INTR) => {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                }
                let t = Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                });
                let mut pfd = [PollFd::new(fd, PollFlags::OUT)];
                match poll(&mut pfd, Some(&t)) {
                    Ok(0) | Err(Errno::INTR) => continue,
                    Ok(_) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            rustix::net::sockopt::socket_error(fd)?.map_err(io::Error::from)?;
        }
        Err(e) => return Err(e.into()),
    }
    rustix::io::ioctl_fionbio(fd, false)?;
    Ok(())
}

impl From<TcpStream> for std::os::fd::OwnedFd {
    fn from(s: TcpStream) -> Self {
        match s.inner {
            StreamRepr::Kernel(s) => s.into(),
            StreamRepr::User { s, .. } => s.into(),
        }
    }
}

impl From<TcpListener> for std::os::fd::OwnedFd {
    fn from(l: TcpListener) -> Self {
        match l.inner {
            ListenerRepr::Kernel(l) => l.into(),
            ListenerRepr::User { fd, .. } => fd,
        }
    }
}
