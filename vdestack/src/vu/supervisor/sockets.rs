//! `socket()` for the families we serve, and the socket calls that must be
//! answered for served sockets (`CONTINUE`d for every other fd: the decision
//! reads no memory, only which socket the fd is).

use std::os::fd::{AsFd, OwnedFd};

use rustix::event::epoll::EventFlags;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::target::{FdKind, Target};
use super::{Answer, Served, State, Then};
use crate::sys::seccomp::Response;
use crate::sys::set_nonblocking;
use crate::vu::inet::{CallId, InetCall, InetReply};
use crate::vu::netlink::{abstract_name, NlSock, SOL_NETLINK};
use crate::vu::served::ServedNet;
use crate::vu::sockaddr::{self, SOCKADDR_MAX};
use crate::vu::Errno;

/// `SOCK_TYPE_MASK`.
const SOCK_TYPE_MASK: i32 = 0xf;
/// `SOCK_MAX`: types are below it.
const SOCK_MAX: i32 = 11;
/// `NETLINK_ROUTE`, the one protocol served.
const NETLINK_ROUTE: i32 = 0;
/// `MAX_LINKS`: netlink protocols are below it.
const NETLINK_MAX_LINKS: i32 = 32;

impl<N: ServedNet + ?Sized> State<'_, N> {
    /// `socket(family, type, protocol)` for `AF_NETLINK`, `AF_INET`, `AF_INET6`.
    pub(super) fn socket(&mut self, t: &Target<'_>) -> Answer {
        let (family, ty, protocol) = (t.int(0), t.int(1), t.int(2));
        let flags = ty & !SOCK_TYPE_MASK;
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Answer::errno(libc::EINVAL);
        }
        let kind = ty & SOCK_TYPE_MASK;
        if !(0..SOCK_MAX).contains(&kind) {
            return Answer::errno(libc::EINVAL);
        }
        let made = match family {
            libc::AF_NETLINK => self.netlink_socket(kind, protocol, t.tgid()),
            libc::AF_INET | libc::AF_INET6 => self.inet_socket(family, kind, protocol),
            _ => return Answer::CONTINUE,
        };
        let (theirs, served) = match made {
            Ok(m) => m,
            Err(e) => return Answer::errno(e),
        };
        if flags & libc::SOCK_NONBLOCK != 0 && set_nonblocking(&theirs).is_err() {
            return Answer::errno(libc::ENOMEM);
        }
        let ino = match self.register(&theirs, served) {
            Ok(ino) => ino,
            Err(e) => return Answer::errno(e),
        };
        match t.send_fd(theirs.as_fd(), flags & libc::SOCK_CLOEXEC != 0) {
            Ok(_) => Answer::Done,
            Err(e) => {
                self.forget(ino);
                Answer::errno(e)
            }
        }
    }

    /// Enters a served socket, known by the inode of the program's end
    /// `theirs`, in the table (our end, if we keep one, in the epoll set).
    pub(super) fn register(&mut self, theirs: &OwnedFd, served: Served) -> Result<u64, Errno> {
        let ino = rustix::fs::fstat(theirs)
            .map_err(|e| e.raw_os_error())?
            .st_ino;
        let (ours, events) = match &served {
            Served::Netlink(s) => (Some(&s.ours), EventFlags::IN | EventFlags::RDHUP),
            Served::Inet(s) => (s.ours.as_ref(), EventFlags::empty()),
        };
        if let Some(ours) = ours {
            self.watch(ino, ours, events)
                .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        } else {
            self.sweep_closed();
        }
        self.socks.insert(ino, served);
        Ok(ino)
    }

    fn netlink_socket(&mut self, kind: i32, protocol: i32, tgid: i32) -> Result<Made, Errno> {
        if kind != libc::SOCK_RAW && kind != libc::SOCK_DGRAM {
            return Err(libc::ESOCKTNOSUPPORT);
        }
        // A kernel without a protocol's module answers EPROTONOSUPPORT.
        if protocol != NETLINK_ROUTE || !(0..NETLINK_MAX_LINKS).contains(&protocol) {
            return Err(libc::EPROTONOSUPPORT);
        }
        let (ours, theirs) = pair(SocketType::SEQPACKET)?;
        set_nonblocking(&ours).map_err(|_| libc::ENOMEM)?;
        // Our end's name reads as a netlink address with port id 0 (the kernel's).
        let mut bound = false;
        for _ in 0..64 {
            self.serial = self.serial.wrapping_add(1);
            let addr = SocketAddrUnix::new_abstract_name(&abstract_name(self.serial))
                .map_err(|e| e.raw_os_error())?;
            match net::bind(&ours, &addr) {
                Ok(()) => {
                    bound = true;
                    break;
                }
                Err(rustix::io::Errno::ADDRINUSE) => continue,
                Err(e) => return Err(e.raw_os_error()),
            }
        }
        if !bound {
            return Err(libc::EADDRINUSE);
        }
        Ok((theirs, Served::Netlink(NlSock::new(ours, kind, tgid))))
    }

    fn inet_socket(&mut self, family: i32, kind: i32, protocol: i32) -> Result<Made, Errno> {
        let protocol = self.net.inet_socket(family, kind, protocol)?;
        let (sock, theirs) = self.net.inet_open(family, kind, protocol)?;
        Ok((theirs, Served::Inet(sock)))
    }

    /// bind, connect, getsockname, getpeername, getsockopt, setsockopt, sendto,
    /// shutdown.
    pub(super) fn sockcall(&mut self, t: &Target<'_>) -> Answer {
        let FdKind::Served(ino) = t.fd_kind(t.int(0), &self.socks) else {
            return Answer::CONTINUE;
        };
        let r = if matches!(self.socks.get(&ino), Some(Served::Netlink(_))) {
            self.netlink_call(t, ino)
        } else {
            self.inet_call(t, ino)
        };
        match r {
            Ok(a) => a,
            Err(e) => Answer::errno(e),
        }
    }

    fn netlink_call(&mut self, t: &Target<'_>, ino: u64) -> Result<Answer, Errno> {
        let nr = t.n.nr as i64;
        // Read first, then check the call still waits, then act.
        let input = match nr {
            libc::SYS_bind | libc::SYS_connect => Some(read_addr(t, t.ptr(1), t.int(2))?),
            libc::SYS_setsockopt if t.int(1) == SOL_NETLINK => Some(read_opt(t, 4)?),
            _ => None,
        };
        if input.is_some() && !t.valid() {
            return Ok(Answer::Done);
        }
        let Some(Served::Netlink(s)) = self.socks.get_mut(&ino) else {
            return Ok(Answer::CONTINUE);
        };
        let ports = &mut self.ports;
        match nr {
            libc::SYS_bind => s.bind(ports, &input.unwrap_or_default())?,
            libc::SYS_connect => s.connect(ports, &input.unwrap_or_default())?,
            libc::SYS_getsockname | libc::SYS_getpeername => {
                let name = s.name(nr == libc::SYS_getpeername);
                write_addr(t, t.ptr(1), t.ptr(2), &name)?;
            }
            libc::SYS_setsockopt => match t.int(1) {
                SOL_NETLINK => s.setsockopt(t.int(2), &input.unwrap_or_default())?,
                libc::SOL_SOCKET => return Ok(Answer::CONTINUE),
                _ => return Err(libc::ENOPROTOOPT),
            },
            libc::SYS_getsockopt => match t.int(1) {
                SOL_NETLINK => {
                    let len = t.read_i32(t.ptr(4))?;
                    let (bytes, report) = s.getsockopt(t.int(2), len)?;
                    t.write(t.ptr(3), &bytes)?;
                    t.write(t.ptr(4), &report.to_ne_bytes())?;
                }
                libc::SOL_SOCKET => {
                    let (kind, protocol) = (s.kind, 0);
                    return socket_identity(t, libc::AF_NETLINK, kind, protocol, false);
                }
                _ => return Err(libc::ENOPROTOOPT),
            },
            // Netlink sockets have no shutdown (sock_no_shutdown).
            libc::SYS_shutdown => return Err(libc::EOPNOTSUPP),
            // sendto with an address: seqpacket ignores it; the request reaches
            // the served stack like any other.
            _ => return Ok(Answer::CONTINUE),
        }
        Ok(Answer::value(0))
    }

    fn inet_call(&mut self, t: &Target<'_>, ino: u64) -> Result<Answer, Errno> {
        let nr = t.n.nr as i64;
        let (family, kind, protocol, listening) = match self.socks.get(&ino) {
            Some(Served::Inet(s)) => (s.family, s.kind, s.protocol, s.listening),
            _ => return Ok(Answer::CONTINUE),
        };
        let payload;
        let value;
        let call = match nr {
            libc::SYS_bind => {
                let a = read_addr(t, t.ptr(1), t.int(2))?;
                InetCall::Bind(sockaddr::parse_inet(&a, family)?)
            }
            libc::SYS_connect => {
                let a = read_addr(t, t.ptr(1), t.int(2))?;
                if sockaddr::family(&a)? == libc::AF_UNSPEC {
                    InetCall::Connect(None)
                } else {
                    InetCall::Connect(Some(sockaddr::parse_inet(&a, family)?))
                }
            }
            // TCP ignores the address: what is sent goes down the stream.
            libc::SYS_sendto if kind == libc::SOCK_STREAM => return self.stream_send(t, ino),
            libc::SYS_sendto => {
                let a = read_addr(t, t.ptr(4), t.int(5))?;
                let to = sockaddr::parse_inet(&a, family)?;
                payload = read_payload(t, t.ptr(1), t.n.args[2])?;
                InetCall::SendTo { to, data: &payload }
            }
            libc::SYS_shutdown => InetCall::Shutdown(t.int(1)),
            libc::SYS_listen => InetCall::Listen(t.int(1)),
            libc::SYS_getsockname => InetCall::LocalAddr,
            libc::SYS_getpeername => InetCall::PeerAddr,
            libc::SYS_getsockopt => {
                if t.int(1) == libc::SOL_SOCKET {
                    let id = socket_identity(t, family, kind, protocol, listening)?;
                    if !matches!(id, Answer::Reply(Response::Continue)) {
                        return Ok(id);
                    }
                }
                InetCall::GetSockOpt {
                    level: t.int(1),
                    name: t.int(2),
                }
            }
            _ => {
                let len = t.int(4);
                if len < 0 {
                    return Err(libc::EINVAL);
                }
                value = read_opt(t, len.min(256) as usize)?;
                InetCall::SetSockOpt {
                    level: t.int(1),
                    name: t.int(2),
                    value: &value,
                }
            }
        };
        if !t.valid() {
            return Ok(Answer::Done);
        }
        let Some(Served::Inet(s)) = self.socks.get_mut(&ino) else {
            return Ok(Answer::CONTINUE);
        };
        let getsockopt = matches!(call, InetCall::GetSockOpt { .. });
        let reply = self.net.inet_call(s, call, CallId(t.n.id))?;
        self.reply(t, ino, reply, getsockopt)
    }

    /// Ends a served call as the stack's reply says.
    pub(super) fn reply(
        &mut self,
        t: &Target<'_>,
        ino: u64,
        reply: InetReply,
        getsockopt: bool,
    ) -> Result<Answer, Errno> {
        match reply {
            InetReply::Later => {
                self.pending.insert(t.n.id, (*t.n, getsockopt));
                Ok(Answer::Done)
            }
            InetReply::Continue => Ok(Answer::CONTINUE),
            InetReply::InProgress => {
                let fd = t.int(0);
                let nonblocking = t.fd_flags(fd).unwrap_or(0) & libc::O_NONBLOCK != 0;
                if nonblocking {
                    return Err(libc::EINPROGRESS);
                }
                let app = self.program_fd(t, fd, ino)?;
                Ok(self.wait(t, app, EventFlags::OUT, Then::ConnectResult(ino)))
            }
            InetReply::Listening(fd) => self.install_listener(t, ino, fd),
            InetReply::Address(a) => {
                write_addr(t, t.ptr(1), t.ptr(2), &sockaddr::encode_inet(&a))?;
                Ok(Answer::value(0))
            }
            other => finish(t, other, getsockopt),
        }
    }
}

/// The answer to a served socket call (now or later) that ends in a value: a
/// getsockopt's value is written to the caller's memory.
pub(super) fn finish(t: &Target<'_>, reply: InetReply, getsockopt: bool) -> Result<Answer, Errno> {
    match reply {
        InetReply::Value(v) if !getsockopt => Ok(Answer::value(v)),
        InetReply::Value(v) => write_opt(t, &(v as i32).to_ne_bytes()),
        InetReply::Bytes(b) => write_opt(t, &b),
        InetReply::Continue => Ok(Answer::CONTINUE),
        InetReply::Address(a) => {
            write_addr(t, t.ptr(1), t.ptr(2), &sockaddr::encode_inet(&a))?;
            Ok(Answer::value(0))
        }
        // A deferred answer that defers again (or a stack answering later with
        // what only an immediate answer can be): the call keeps waiting.
        InetReply::Later | InetReply::InProgress | InetReply::Listening(_) => Ok(Answer::Done),
    }
}

/// The bytes a `sendto` sends (at most a datagram's 64 KiB: more is
/// `EMSGSIZE`, as for UDP).
pub(super) fn read_payload(t: &Target<'_>, ptr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    if len > MAX_DATAGRAM as u64 {
        return Err(libc::EMSGSIZE);
    }
    t.read(ptr, len as usize)
}

/// The largest datagram sent or received through the supervisor.
pub(super) const MAX_DATAGRAM: usize = 65_535;

/// What `socket()` made, before it is registered: the program's end and what
/// we keep.
type Made = (OwnedFd, Served);

fn pair(ty: SocketType) -> Result<(OwnedFd, OwnedFd), Errno> {
    net::socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)
        .map_err(|e| e.raw_os_error())
}

/// An address argument (`move_addr_to_kernel`: a length outside 0..=128 is
/// `EINVAL`).
pub(super) fn read_addr(t: &Target<'_>, ptr: u64, len: i32) -> Result<Vec<u8>, Errno> {
    if !(0..=SOCKADDR_MAX as i32).contains(&len) {
        return Err(libc::EINVAL);
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    t.read(ptr, len as usize)
}

/// A setsockopt value: at most `max` bytes of what the caller passed (the int
/// options read 4 bytes only when at least 4 are given).
fn read_opt(t: &Target<'_>, max: usize) -> Result<Vec<u8>, Errno> {
    let len = t.int(4);
    if len < 0 {
        return Err(libc::EINVAL);
    }
    let n = (len as usize).min(max);
    if n < max.min(4) {
        return Ok(Vec::new());
    }
    t.read(t.ptr(3), n)
}

/// Fills in an address result (`getsockname`, `getpeername`): as many bytes
/// as the caller's length allows, and the full length.
pub(super) fn write_addr(t: &Target<'_>, ptr: u64, len_ptr: u64, name: &[u8]) -> Result<(), Errno> {
    let len = t.read_i32(len_ptr)?;
    if len < 0 {
        return Err(libc::EINVAL);
    }
    let n = (len as usize).min(name.len());
    if n > 0 {
        t.write(ptr, &name[..n])?;
    }
    t.write(len_ptr, &(name.len() as i32).to_ne_bytes())
}

/// Fills in a getsockopt result: up to the caller's length, which becomes the
/// length written.
fn write_opt(t: &Target<'_>, value: &[u8]) -> Result<Answer, Errno> {
    let len = t.read_i32(t.ptr(4))?;
    if len < 0 {
        return Err(libc::EINVAL);
    }
    let n = (len as usize).min(value.len());
    if n > 0 {
        t.write(t.ptr(3), &value[..n])?;
    }
    t.write(t.ptr(4), &(n as i32).to_ne_bytes())?;
    Ok(Answer::value(0))
}

/// `SO_TYPE`, `SO_DOMAIN`, `SO_PROTOCOL`, `SO_ACCEPTCONN` say what the
/// program asked for (the pair's socket would say `AF_UNIX`); the other
/// `SOL_SOCKET` options are `CONTINUE`d (a netlink socket's are the pair
/// socket's: buffer sizes, `SO_ERROR`, ...).
fn socket_identity(
    t: &Target<'_>,
    family: i32,
    kind: i32,
    protocol: i32,
    listening: bool,
) -> Result<Answer, Errno> {
    let v = match t.int(2) {
        libc::SO_TYPE => kind,
        libc::SO_DOMAIN => family,
        libc::SO_PROTOCOL => protocol,
        libc::SO_ACCEPTCONN => listening as i32,
        _ => return Ok(Answer::CONTINUE),
    };
    write_opt(t, &v.to_ne_bytes())
}
