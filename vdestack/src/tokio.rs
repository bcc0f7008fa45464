//! Async sockets and plugs for [tokio] (the `tokio` cargo feature): a
//! [`TcpListener`], [`TcpStream`] and [`UdpSocket`] made in a
//! [`Stack`], and an [`AsyncPlug`] that awaits frames.
//!
//! They need a tokio runtime with I/O enabled (`Runtime` with `enable_io`, or
//! `#[tokio::main]`). The sockets are made in the stack like the blocking ones of
//! [`crate::net`] (one request to the stack, which does not wait on the network),
//! then handed to tokio's reactor; connecting and everything after it is async.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use vdestack::stack::Stack;
//! use vdestack::tokio::TcpListener;
//!
//! # async fn serve() -> std::io::Result<()> {
//! let stack = Stack::builder().interface("vde0", "vxvde://239.1.2.3").build()?;
//! // ... configure vde0 through stack.netlink() ...
//! let listener = TcpListener::bind(&stack, "[::]:5000".parse().unwrap())?;
//! loop {
//!     let (mut conn, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n @ 1..) = conn.read(&mut buf).await {
//!             if conn.write_all(&buf[..n]).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::net;
use crate::stack::Stack;
use crate::vde::{Plug, Recv};

/// An async TCP listener of a stack.
#[derive(Debug)]
pub struct TcpListener {
    inner: ListenerInner,
}

#[derive(Debug)]
enum ListenerInner {
    Kernel(::tokio::net::TcpListener),
    /// A user-space stack's: its fd (a socket pair end) in tokio's reactor.
    User(AsyncFd<net::TcpListener>),
}

impl TcpListener {
    /// Listens on `addr` in `stack` ([`Stack::tcp_listener`]), for tokio.
    pub fn bind(stack: &Stack, addr: SocketAddr) -> io::Result<Self> {
        Self::from_net(stack.tcp_listener(addr)?)
    }

    /// Hands a listener of a stack to tokio.
    pub fn from_net(listener: net::TcpListener) -> io::Result<Self> {
        let inner = match listener.into_std() {
            Ok(std) => {
                std.set_nonblocking(true)?;
                ListenerInner::Kernel(::tokio::net::TcpListener::from_std(std)?)
            }
            Err(user) => {
                user.set_nonblocking(true)?;
                ListenerInner::User(crate::sys::async_fd::register_socket(
                    user,
                    Interest::READABLE,
                )?)
            }
        };
        Ok(TcpListener { inner })
    }

    /// Accepts a connection: the stream and its peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.inner {
            ListenerInner::Kernel(l) => {
                let (s, a) = l.accept().await?;
                Ok((
                    TcpStream {
                        inner: StreamInner::Kernel(s),
                    },
                    a,
                ))
            }
            ListenerInner::User(fd) => loop {
                let mut ready = fd.readable().await?;
                match ready.try_io(|l| l.get_ref().accept()) {
                    Ok(r) => {
                        let (s, a) = r?;
                        return Ok((TcpStream::user(s)?, a));
                    }
                    Err(_would_block) => continue,
                }
            },
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            ListenerInner::Kernel(l) => l.local_addr(),
            ListenerInner::User(fd) => fd.get_ref().local_addr(),
        }
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            ListenerInner::Kernel(l) => l.as_fd(),
            ListenerInner::User(fd) => fd.get_ref().as_fd(),
        }
    }
}

/// An async TCP connection of a stack: `AsyncRead + AsyncWrite`.
#[derive(Debug)]
pub struct TcpStream {
    inner: StreamInner,
}

#[derive(Debug)]
enum StreamInner {
    Kernel(::tokio::net::TcpStream),
    /// A user-space stack's: its fd (a socket pair end) in tokio's reactor.
    User(AsyncFd<net::TcpStream>),
}

impl TcpStream {
    fn user(s: net::TcpStream) -> io::Result<Self> {
        s.set_nonblocking(true)?;
        Ok(TcpStream {
            inner: StreamInner::User(crate::sys::async_fd::register_socket(
                s,
                Interest::READABLE | Interest::WRITABLE,
            )?),
        })
    }

    /// Connects from `stack` to `addr` (the socket is made in the stack, the
    /// connect awaited).
    pub async fn connect(stack: &Stack, addr: SocketAddr) -> io::Result<Self> {
        if let Some(start) = stack.user_connect_start(addr) {
            // A user-space stack's connection is writable once made or failed.
            let s = start.map_err(|e| crate::error::context(e, format!("connect {addr}")))?;
            s.set_nonblocking(true)?;
            let fd = crate::sys::async_fd::register_socket(s, Interest::WRITABLE)?;
            let _ = fd.writable().await?;
            let s = fd.into_inner();
            if let Some(e) = s.take_error()? {
                return Err(crate::error::context(e, format!("connect {addr}")));
            }
            return Self::user(s);
        }
        let domain = match addr {
            SocketAddr::V4(_) => net::AddressFamily::INET,
            SocketAddr::V6(_) => net::AddressFamily::INET6,
        };
        let fd = stack.socket_with(
            domain,
            net::SocketType::STREAM,
            net::SocketFlags::NONBLOCK,
            None,
        )?;
        let socket = ::tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
        let inner = socket
            .connect(addr)
            .await
            .map_err(|e| crate::error::context(e, format!("connect {addr}")))?;
        Ok(TcpStream {
            inner: StreamInner::Kernel(inner),
        })
    }

    /// Hands a connection of a stack to tokio.
    pub fn from_net(stream: net::TcpStream) -> io::Result<Self> {
        match stream.into_std() {
            Ok(std) => {
                std.set_nonblocking(true)?;
                Ok(TcpStream {
                    inner: StreamInner::Kernel(::tokio::net::TcpStream::from_std(std)?),
                })
            }
            Err(user) => Self::user(user),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            StreamInner::Kernel(s) => s.peer_addr(),
            StreamInner::User(fd) => fd.get_ref().peer_addr(),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            StreamInner::Kernel(s) => s.local_addr(),
            StreamInner::User(fd) => fd.get_ref().local_addr(),
        }
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub fn nodelay(&self) -> io::Result<bool> {
        match &self.inner {
            StreamInner::Kernel(s) => s.nodelay(),
            StreamInner::User(fd) => fd.get_ref().nodelay(),
        }
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.inner {
            StreamInner::Kernel(s) => s.set_nodelay(nodelay),
            StreamInner::User(fd) => fd.get_ref().set_nodelay(nodelay),
        }
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use std::io::Read;
        match &mut self.inner {
            StreamInner::Kernel(s) => Pin::new(s).poll_read(cx, buf),
            StreamInner::User(fd) => loop {
                let mut ready = match fd.poll_read_ready(cx) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => return Poll::Pending,
                };
                let unfilled = buf.initialize_unfilled();
                match ready.try_io(|s| {
                    let mut r = s.get_ref();
                    r.read(unfilled)
                }) {
                    Ok(Ok(n)) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        use std::io::Write;
        match &mut self.inner {
            StreamInner::Kernel(s) => Pin::new(s).poll_write(cx, buf),
            StreamInner::User(fd) => loop {
                let mut ready = match fd.poll_write_ready(cx) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => return Poll::Pending,
                };
                match ready.try_io(|s| {
                    let mut w = s.get_ref();
                    w.write(buf)
                }) {
                    Ok(r) => return Poll::Ready(r),
                    Err(_would_block) => continue,
                }
            },
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            StreamInner::Kernel(s) => Pin::new(s).poll_flush(cx),
            StreamInner::User(_) => Poll::Ready(Ok(())),
        }
    }

    /// Shuts the writing side down: the peer reads EOF.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            StreamInner::Kernel(s) => Pin::new(s).poll_shutdown(cx),
            StreamInner::User(fd) => Poll::Ready(fd.get_ref().shutdown(std::net::Shutdown::Write)),
        }
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            StreamInner::Kernel(s) => s.as_fd(),
            StreamInner::User(fd) => fd.get_ref().as_fd(),
        }
    }
}

/// An async UDP socket of a stack.
#[derive(Debug)]
pub struct UdpSocket {
    inner: UdpInner,
}

#[derive(Debug)]
enum UdpInner {
    Kernel(::tokio::net::UdpSocket),
    /// A user-space stack's: its fd (a socket pair end) in tokio's reactor.
    /// Sends are calls to the stack that never wait for the network (a full
    /// send buffer is retried after a millisecond).
    User(AsyncFd<net::UdpSocket>),
}

/// Retries `send` while the user-space stack's send buffer is full.
fn user_send(send: impl Fn() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match send() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            r => return r,
        }
    }
}

impl UdpSocket {
    /// A socket bound to `addr` in `stack` ([`Stack::udp_bind`]), for tokio.
    pub fn bind(stack: &Stack, addr: SocketAddr) -> io::Result<Self> {
        Self::from_net(stack.udp_bind(addr)?)
    }

    /// Hands a UDP socket of a stack to tokio.
    pub fn from_net(socket: net::UdpSocket) -> io::Result<Self> {
        let inner = match socket.into_std() {
            Ok(std) => {
                std.set_nonblocking(true)?;
                UdpInner::Kernel(::tokio::net::UdpSocket::from_std(std)?)
            }
            Err(user) => {
                user.set_nonblocking(true)?;
                UdpInner::User(crate::sys::async_fd::register_socket(
                    user,
                    Interest::READABLE,
                )?)
            }
        };
        Ok(UdpSocket { inner })
    }

    /// Sends a datagram to `addr`.
    pub async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        match &self.inner {
            UdpInner::Kernel(s) => s.send_to(buf, addr).await,
            UdpInner::User(fd) => user_send(|| fd.get_ref().send_to(buf, addr)),
        }
    }

    /// Receives a datagram: its length and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.inner {
            UdpInner::Kernel(s) => s.recv_from(buf).await,
            UdpInner::User(fd) => loop {
                let mut ready = fd.readable().await?;
                match ready.try_io(|s| s.get_ref().recv_from(buf)) {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
        }
    }

    /// Sets the default destination, and takes datagrams only from it.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        match &self.inner {
            UdpInner::Kernel(s) => s.connect(addr).await,
            UdpInner::User(fd) => fd.get_ref().connect(addr),
        }
    }

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            UdpInner::Kernel(s) => s.send(buf).await,
            UdpInner::User(fd) => user_send(|| fd.get_ref().send(buf)),
        }
    }

    /// Receives a datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            UdpInner::Kernel(s) => s.recv(buf).await,
            UdpInner::User(fd) => loop {
                let mut ready = fd.readable().await?;
                match ready.try_io(|s| s.get_ref().recv(buf)) {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            UdpInner::Kernel(s) => s.local_addr(),
            UdpInner::User(fd) => fd.get_ref().local_addr(),
        }
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            UdpInner::Kernel(s) => s.peer_addr(),
            UdpInner::User(fd) => fd.get_ref().peer_addr(),
        }
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            UdpInner::Kernel(s) => s.as_fd(),
            UdpInner::User(fd) => fd.get_ref().as_fd(),
        }
    }
}

/// A plug whose frames are awaited: [`AsyncPlug::recv`] waits (in tokio's
/// reactor, on the plug's data fd) until the plug has something to report.
/// Sending never blocks a plug, so [`AsyncPlug::send`] is not async.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use vdestack::vde::Recv;
/// let mut plug = vdestack::tokio::AsyncPlug::new(vdestack::vde::open("vxvde://239.1.2.3")?)?;
/// let mut buf = vec![0u8; vdestack::vde::MAX_FRAME];
/// loop {
///     match plug.recv(&mut buf).await? {
///         Recv::Frame(n) => println!("a frame of {n} bytes"),
///         Recv::Nothing => {}
///         Recv::Closed => break,
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncPlug {
    /// A copy of the plug's data fd, registered with tokio (declared first: it
    /// leaves the reactor before the plug closes).
    ready: AsyncFd<OwnedFd>,
    plug: Box<dyn Plug>,
}

impl AsyncPlug {
    /// Hands `plug` to tokio's reactor.
    pub fn new(plug: Box<dyn Plug>) -> io::Result<Self> {
        let fd = rustix::io::fcntl_dupfd_cloexec(plug.data_fd(), 0)?;
        Ok(AsyncPlug {
            ready: crate::sys::async_fd::register(fd, Interest::READABLE)?,
            plug,
        })
    }

    /// Waits for the next event and returns what [`Plug::recv`] made of it: a
    /// frame, [`Recv::Nothing`] (something handled, no frame) or [`Recv::Closed`].
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        loop {
            let mut guard = self.ready.readable().await?;
            match guard.try_io(|_| self.plug.recv(buf)) {
                Ok(r) => return r,
                // Nothing after all: the readiness is cleared, wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one frame ([`Plug::send`]: never blocks; a full peer drops it).
    pub fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.plug.send(frame)
    }

    /// The plug.
    pub fn get_ref(&self) -> &dyn Plug {
        &*self.plug
    }

    /// The plug, to use its capabilities.
    pub fn get_mut(&mut self) -> &mut dyn Plug {
        &mut *self.plug
    }

    /// The plug back, out of tokio's reactor.
    pub fn into_inner(self) -> Box<dyn Plug> {
        self.plug
    }
}
