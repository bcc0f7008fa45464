//! [`ServedNet`]: what `vdestack vu` asks of the stack it serves, and
//! [`MemNet`], the in-memory stack of `--stack mem`.
//!
//! A served stack answers rtnetlink; everything else the supervisor serves is
//! built on that, as libnlq builds it: the netdevice ioctls and the `/proc/net`
//! files ([`crate::nl::emul`] over a [`NetDialog`]). Its `AF_INET`/`AF_INET6`
//! sockets are answered by [`ServedNet::inet_call`], whose default is a stack
//! with no data path ([`super::no_route`]): a user-space TCP/IP stack overrides it.

use std::net::IpAddr;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{self as rnet, AddressFamily, RecvFlags, Shutdown, SocketFlags, SocketType};

use super::inet::{self, Accepted, CallId, InetCall, InetReply, InetSocket, Received};
use crate::nl::dialog::Dialog;
use crate::nl::server::{MemStack, Server};
use crate::vu::Errno;

/// A network stack served to supervised programs.
///
/// One value serves every supervised process for the whole run: what one
/// process sets, the next one sees.
pub trait ServedNet: Send {
    /// Answers `request` (the bytes of one datagram a program sent on a
    /// `NETLINK_ROUTE` socket: one or more messages) for the socket whose port id
    /// is `port`, as the kernel would: every reply message, whole, with `port`
    /// as its `nlmsg_pid`.
    fn rtnetlink(&mut self, port: u32, request: &[u8]) -> Vec<Vec<u8>>;

    /// Checks an `AF_INET`/`AF_INET6` `socket()` call (`kind` is the base type,
    /// without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`) and returns the protocol the
    /// socket gets (0 picks the type's default, as the kernel does). Default:
    /// the kernel's checks for TCP, UDP, ICMP echo and raw sockets.
    fn inet_socket(&mut self, family: i32, kind: i32, protocol: i32) -> Result<i32, Errno> {
        inet::check_socket(family, kind, protocol)
    }

    /// Makes a socket `socket()` asked for (`protocol` as
    /// [`ServedNet::inet_socket`] returned it): what the supervisor keeps, and
    /// the program's fd (an `AF_UNIX` socket-pair end: `SOCK_STREAM` for stream
    /// sockets, `SOCK_SEQPACKET` for the others). Default: a pair whose other
    /// end we keep, shut for reading, so the program's writes fail (`EPIPE`)
    /// and its reads wait: a stack with no data path.
    fn inet_open(
        &mut self,
        family: i32,
        kind: i32,
        protocol: i32,
    ) -> Result<(InetSocket, OwnedFd), Errno> {
        let ty = if kind == libc::SOCK_STREAM {
            SocketType::STREAM
        } else {
            SocketType::SEQPACKET
        };
        let (ours, theirs) = rnet::socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)
            .map_err(|e| e.raw_os_error())?;
        rnet::shutdown(&ours, Shutdown::Read).map_err(|e| e.raw_os_error())?;
        Ok((
            InetSocket::new(Some(ours), 0, family, kind, protocol),
            theirs,
        ))
    }

    /// Takes one waiting connection of listener `sock`, whose program end is
    /// `app`; `EAGAIN` when none waits (the supervisor then waits for `app` to
    /// be readable, or fails a non-blocking call). Default: none ever comes.
    fn inet_accept(
        &mut self,
        sock: &mut InetSocket,
        app: BorrowedFd<'_>,
    ) -> Result<Accepted, Errno> {
        let _ = (sock, app);
        Err(libc::EAGAIN)
    }

    /// Receives one datagram (with `peek`, leaves it there) with its source
    /// from datagram socket `sock`, whose program end is `app`, into `buf`;
    /// `EAGAIN` when none waits. Default: the pair's next message, with no
    /// source.
    fn inet_recv(
        &mut self,
        sock: &mut InetSocket,
        app: BorrowedFd<'_>,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Received, Errno> {
        let _ = sock;
        let mut flags = RecvFlags::DONTWAIT | RecvFlags::TRUNC;
        if peek {
            flags |= RecvFlags::PEEK;
        }
        let (len, full) = rnet::recv(app, buf, flags).map_err(|e| e.raw_os_error())?;
        Ok(Received {
            len,
            full,
            from: None,
            hop_limit: None,
        })
    }

    /// Whether socket `sock` (one without [`InetSocket::ours`]) is still open
    /// in the stack: the supervisor forgets the sockets the program closed.
    /// Default: yes.
    fn inet_alive(&mut self, sock: &InetSocket) -> bool {
        let _ = sock;
        true
    }

    /// Serves a call on one of the stack's sockets; `id` names the call if the
    /// answer is [`InetReply::Later`]. Default: a stack that has addresses and
    /// routes but no data path, so every destination is unreachable
    /// ([`super::no_route`]).
    fn inet_call(
        &mut self,
        sock: &mut InetSocket,
        call: InetCall<'_>,
        id: CallId,
    ) -> Result<InetReply, Errno> {
        let _ = id;
        inet::no_route(&mut NetDialog::new(self), sock, call)
    }

    /// An fd that becomes readable when answers deferred with
    /// [`InetReply::Later`] are ready ([`ServedNet::completions`]); the
    /// supervisor waits on it with the rest. Default: none.
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// The deferred answers that are ready, by call (called when
    /// [`ServedNet::wake_fd`] is readable; the stack makes it unreadable again).
    /// An answer for a call whose caller is gone (killed, or interrupted by a
    /// signal: it then makes the call again, under a new id) is dropped.
    fn completions(&mut self) -> Vec<(CallId, Result<InetReply, Errno>)> {
        Vec::new()
    }

    /// Whether `ip` is one of the stack's addresses (a `bind` to it succeeds).
    fn is_local(&mut self, ip: IpAddr) -> bool {
        crate::nl::emul::is_local(&mut NetDialog::new(self), ip).unwrap_or(false)
    }

    /// Called once the program has ended, before the stack is dropped: waits
    /// (up to `limit`) for what the program's closed connections still have on
    /// the way, and says whether all of it got there. Default: nothing to wait
    /// for.
    fn settle(&self, limit: std::time::Duration) -> bool {
        let _ = limit;
        true
    }
}

/// A [`Dialog`] over a served stack's rtnetlink (port 0), for the emulation
/// written on netlink (ioctls, `/proc/net`).
pub struct NetDialog<'a, N: ?Sized> {
    net: &'a mut N,
}

impl<'a, N: ServedNet + ?Sized> NetDialog<'a, N> {
    /// A dialog with `net`.
    pub fn new(net: &'a mut N) -> Self {
        NetDialog { net }
    }
}

impl<N: ServedNet + ?Sized> Dialog for NetDialog<'_, N> {
    fn dialog(&mut self, request: &[u8]) -> std::io::Result<Vec<Vec<u8>>> {
        Ok(self.net.rtnetlink(0, request))
    }
}

/// The MAC address of `--stack mem`'s `vde0` (libnlq's `netlinktest` numbers its
/// links' addresses from `80:00:00:00:00:41`; the transcript has `42`).
pub const MEM_VDE0_MAC: [u8; 6] = [0x80, 0, 0, 0, 0, 0x42];

/// A stack in memory ([`MemStack`]) behind the netlink server: `--stack mem`.
#[derive(Debug)]
pub struct MemNet {
    server: Server<MemStack>,
}

impl MemNet {
    /// Serves `stack`.
    pub fn new(stack: MemStack) -> Self {
        MemNet {
            server: Server::new(stack, 0),
        }
    }

    /// The stack of libnlq's VUOS demonstration (its `netlinktest` module): `lo`
    /// (index 1, `LOOPBACK`, MTU 65536, down) and `vde0` (index 2,
    /// `BROADCAST|MULTICAST`, MTU 1500, MAC `80:00:00:00:00:42`, down, no
    /// carrier).
    pub fn netlinktest() -> Self {
        let mut stack = MemStack::new();
        // A fresh stack has only lo: the name is free and valid.
        let _ = stack.add_device("vde0", MEM_VDE0_MAC);
        MemNet::new(stack)
    }

    /// The stack.
    pub fn stack(&self) -> &MemStack {
        self.server.stack()
    }

    /// The stack, to change it directly (counters, carrier).
    pub fn stack_mut(&mut self) -> &mut MemStack {
        self.server.stack_mut()
    }
}

impl ServedNet for MemNet {
    fn rtnetlink(&mut self, port: u32, request: &[u8]) -> Vec<Vec<u8>> {
        self.server.set_port(port);
        self.server.process(request)
    }
}
