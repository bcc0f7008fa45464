//! The data calls a served IP socket needs from us: `accept` (a listener's
//! connections come as messages on its pair), `listen` (the program's fd
//! becomes the listener's end), and the datagrams whose addresses travel
//! beside the payloads: `recvfrom` with a place for the source, `recvmsg`,
//! `sendmsg` with a destination. Everything else on a served socket (plain
//! `read`, `write`, `send`, `recv`, `poll`) is the kernel's, on the pair.
//!
//! A call that must wait (a blocking `accept`, `recvfrom`, or a blocking
//! `connect` in progress) waits in the supervisor, not in the stack: a copy of
//! the program's end goes into our epoll set, and the call is made again when
//! it is ready (`waits.rs`). A non-blocking socket (or `MSG_DONTWAIT`)
//! gets `EAGAIN` instead.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::fs::OFlags;
use rustix::net::{self, SendFlags};

use super::sockets::{read_addr, write_addr, MAX_DATAGRAM};
use super::target::{FdKind, Target};
use super::{Answer, Served, State, Then};
use crate::sys::set_nonblocking;
use crate::vu::inet::{kept_option, Accepted, InetCall, InetSocket, Received};
use crate::vu::msghdr::{
    int_cmsgs, parse_iovecs, parse_msghdr, scatter, MsgHdr, IOVEC_SIZE, MSGHDR_SIZE,
    MSG_CONTROLLEN_AT, MSG_FLAGS_AT, MSG_NAMELEN_AT, UIO_MAXIOV,
};
use crate::vu::served::ServedNet;
use crate::vu::sockaddr;
use crate::vu::Errno;

/// The most a `sendto` with an address on a stream socket passes at once (a
/// short write, as a non-blocking socket may make).
const STREAM_CHUNK: u64 = 256 * 1024;

/// What a served IP socket is, for the data calls.
#[derive(Clone, Copy)]
struct Shape {
    ino: u64,
    kind: i32,
    family: i32,
    listening: bool,
}

/// A datagram taken, or the call already dealt with.
enum Got {
    Data(Received, Vec<u8>),
    Answered(Answer),
}

fn nonblocking(fd: &OwnedFd) -> bool {
    rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(OFlags::NONBLOCK))
}

impl<N: ServedNet + ?Sized> State<'_, N> {
    /// The served IP socket fd `fd` of the caller is, if it is one.
    fn inet_shape(&self, t: &Target<'_>, fd: i32) -> Option<Shape> {
        let FdKind::Served(ino) = t.fd_kind(fd, &self.socks) else {
            return None;
        };
        match self.socks.get(&ino) {
            Some(Served::Inet(s)) => Some(Shape {
                ino,
                kind: s.kind,
                family: s.family,
                listening: s.listening,
            }),
            _ => None,
        }
    }

    /// `accept(fd, addr, len)` and `accept4(fd, addr, len, flags)`.
    pub(super) fn accept(&mut self, t: &Target<'_>) -> Answer {
        let fd = t.int(0);
        let Some(shape) = self.inet_shape(t, fd) else {
            return Answer::CONTINUE;
        };
        self.try_accept(t, fd, shape).unwrap_or_else(Answer::errno)
    }

    fn try_accept(&mut self, t: &Target<'_>, fd: i32, shape: Shape) -> Result<Answer, Errno> {
        if shape.kind != libc::SOCK_STREAM {
            return Err(libc::EOPNOTSUPP);
        }
        if !shape.listening {
            return Err(libc::EINVAL);
        }
        let flags = if t.n.nr as i64 == libc::SYS_accept4 {
            t.int(3)
        } else {
            0
        };
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(libc::EINVAL);
        }
        let app = self.program_fd(t, fd, shape.ino)?;
        if !t.valid() {
            return Ok(Answer::Done);
        }
        let Some(Served::Inet(s)) = self.socks.get_mut(&shape.ino) else {
            return Ok(Answer::CONTINUE);
        };
        match self.net.inet_accept(s, app.as_fd()) {
            Ok(acc) => self.deliver(t, acc, flags),
            Err(libc::EAGAIN) if nonblocking(&app) => Err(libc::EAGAIN),
            Err(libc::EAGAIN) => Ok(self.wait(t, app, EventFlags::IN, Then::Redo)),
            Err(e) => Err(e),
        }
    }

    /// Hands an accepted connection to the caller.
    fn deliver(&mut self, t: &Target<'_>, acc: Accepted, flags: i32) -> Result<Answer, Errno> {
        if flags & libc::SOCK_NONBLOCK != 0 {
            set_nonblocking(&acc.app).map_err(|_| libc::ENOMEM)?;
        }
        if t.ptr(1) != 0 {
            write_addr(t, t.ptr(1), t.ptr(2), &sockaddr::encode_inet(&acc.peer))?;
        }
        let ino = self.register(&acc.app, Served::Inet(acc.sock))?;
        match t.send_fd(acc.app.as_fd(), flags & libc::SOCK_CLOEXEC != 0) {
            Ok(_) => Ok(Answer::Done),
            Err(e) => {
                self.forget(ino);
                Err(e)
            }
        }
    }

    /// `listen` made the socket a listener: its end takes the place of the
    /// program's fd, with the same flags.
    pub(super) fn install_listener(
        &mut self,
        t: &Target<'_>,
        ino: u64,
        end: OwnedFd,
    ) -> Result<Answer, Errno> {
        let target = t.int(0);
        let flags = t.fd_flags(target).ok_or(libc::EBADF)?;
        if flags & libc::O_NONBLOCK != 0 {
            set_nonblocking(&end).map_err(|_| libc::ENOMEM)?;
        }
        let new_ino = rustix::fs::fstat(&end)
            .map_err(|e| e.raw_os_error())?
            .st_ino;
        t.replace_fd(end.as_fd(), target, flags & libc::O_CLOEXEC != 0)?;
        if let Some(Served::Inet(mut s)) = self.socks.remove(&ino) {
            s.listening = true;
            if let Some(ours) = &s.ours {
                let _ = epoll::modify(
                    &self.epoll,
                    ours,
                    EventData::new_u64(new_ino),
                    EventFlags::empty(),
                );
            }
            self.socks.insert(new_ino, Served::Inet(s));
        }
        Ok(Answer::value(0))
    }

    /// `recvfrom(fd, buf, len, flags, addr, addrlen)` with an address wanted.
    pub(super) fn recvfrom(&mut self, t: &Target<'_>) -> Answer {
        self.recv_datagram(t, RecvCall::From)
    }

    /// `recvmsg(fd, msg, flags)`.
    pub(super) fn recvmsg(&mut self, t: &Target<'_>) -> Answer {
        self.recv_datagram(t, RecvCall::Msg)
    }

    /// A receive that wants the sender: on a served datagram socket, one
    /// datagram read with its sender (and the control messages asked for) and
    /// written to the caller. Other fds, and streams (no senders: the kernel
    /// says length 0, as for TCP), are the kernel's.
    fn recv_datagram(&mut self, t: &Target<'_>, call: RecvCall) -> Answer {
        let fd = t.int(0);
        let Some(shape) = self.inet_shape(t, fd) else {
            return Answer::CONTINUE;
        };
        if shape.listening {
            return Answer::errno(libc::ENOTCONN);
        }
        if shape.kind == libc::SOCK_STREAM {
            return Answer::CONTINUE;
        }
        self.try_recv_datagram(t, fd, shape, call)
            .unwrap_or_else(Answer::errno)
    }

    fn try_recv_datagram(
        &mut self,
        t: &Target<'_>,
        fd: i32,
        shape: Shape,
        call: RecvCall,
    ) -> Result<Answer, Errno> {
        let place = Place::read(t, call)?;
        let (got, data) = match self.take_datagram(t, fd, shape.ino, place.flags, place.cap())? {
            Got::Data(g, d) => (g, d),
            Got::Answered(a) => return Ok(a),
        };
        let control = match self.socks.get(&shape.ino) {
            Some(Served::Inet(s)) if place.wants_control() => control_messages(s, got),
            _ => Vec::new(),
        };
        place.write(t, &data, got, &control)?;
        Ok(Answer::value(received_value(got, place.flags)))
    }

    /// One datagram of served socket `ino` for a receive call with `flags`, at
    /// most `cap` bytes of it; or the call's answer (it waits, it is gone).
    fn take_datagram(
        &mut self,
        t: &Target<'_>,
        fd: i32,
        ino: u64,
        flags: i32,
        cap: usize,
    ) -> Result<Got, Errno> {
        // No errors are queued (no ICMP errors reach the program).
        if flags & libc::MSG_ERRQUEUE != 0 {
            return Err(libc::EAGAIN);
        }
        let app = self.program_fd(t, fd, ino)?;
        if !t.valid() {
            return Ok(Got::Answered(Answer::Done));
        }
        let mut buf = vec![0u8; cap];
        let Some(Served::Inet(s)) = self.socks.get_mut(&ino) else {
            return Ok(Got::Answered(Answer::CONTINUE));
        };
        let peek = flags & libc::MSG_PEEK != 0;
        match self.net.inet_recv(s, app.as_fd(), &mut buf, peek) {
            Ok(got) => {
                buf.truncate(got.len);
                Ok(Got::Data(got, buf))
            }
            Err(libc::EAGAIN) if flags & libc::MSG_DONTWAIT != 0 || nonblocking(&app) => {
                Err(libc::EAGAIN)
            }
            Err(libc::EAGAIN) => Ok(Got::Answered(self.wait(t, app, EventFlags::IN, Then::Redo))),
            Err(e) => Err(e),
        }
    }

    /// `sendmsg(fd, msg, flags)`: with a destination on a served datagram
    /// socket, the stack sends it; everything else goes to the kernel (on a
    /// served socket: down the pair, to the connected peer).
    pub(super) fn sendmsg(&mut self, t: &Target<'_>) -> Answer {
        let fd = t.int(0);
        let Some(shape) = self.inet_shape(t, fd) else {
            return Answer::CONTINUE;
        };
        if shape.listening {
            return Answer::errno(libc::EPIPE);
        }
        if shape.kind == libc::SOCK_STREAM {
            return Answer::CONTINUE;
        }
        self.try_sendmsg(t, shape).unwrap_or_else(Answer::errno)
    }

    fn try_sendmsg(&mut self, t: &Target<'_>, shape: Shape) -> Result<Answer, Errno> {
        let m = parse_msghdr(&t.read(t.ptr(1), MSGHDR_SIZE)?);
        if m.name == 0 || m.namelen == 0 {
            // Only the pair sees it (which ignores any address): no way round
            // the stack, whatever the program changes meanwhile.
            return Ok(Answer::CONTINUE);
        }
        let to = sockaddr::parse_inet(&read_addr(t, m.name, m.namelen as i32)?, shape.family)?;
        if m.iovlen > UIO_MAXIOV {
            return Err(libc::EMSGSIZE);
        }
        let iov = parse_iovecs(&t.read(m.iov, m.iovlen as usize * IOVEC_SIZE)?)?;
        let total: u64 = iov.iter().map(|&(_, l)| l).sum();
        if total > MAX_DATAGRAM as u64 {
            return Err(libc::EMSGSIZE);
        }
        let mut data = Vec::with_capacity(total as usize);
        for (base, len) in iov {
            data.extend_from_slice(&t.read(base, len as usize)?);
        }
        if !t.valid() {
            return Ok(Answer::Done);
        }
        let Some(Served::Inet(s)) = self.socks.get_mut(&shape.ino) else {
            return Ok(Answer::CONTINUE);
        };
        let reply = self.net.inet_call(
            s,
            InetCall::SendTo { to, data: &data },
            crate::vu::CallId(t.n.id),
        )?;
        self.reply(t, shape.ino, reply, false)
    }

    /// `sendto` with an address on a stream socket: TCP ignores the address,
    /// so the bytes go down the stream, as a `send` would send them.
    pub(super) fn stream_send(&mut self, t: &Target<'_>, ino: u64) -> Result<Answer, Errno> {
        let (fd, flags) = (t.int(0), t.int(3));
        let data = t.read(t.ptr(1), t.n.args[2].min(STREAM_CHUNK) as usize)?;
        let app = self.program_fd(t, fd, ino)?;
        if !t.valid() {
            return Ok(Answer::Done);
        }
        match net::send(&app, &data, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(n) => Ok(Answer::value(n as i64)),
            Err(rustix::io::Errno::AGAIN)
                if flags & libc::MSG_DONTWAIT != 0 || nonblocking(&app) =>
            {
                Err(libc::EAGAIN)
            }
            Err(rustix::io::Errno::AGAIN) => Ok(self.wait(t, app, EventFlags::OUT, Then::Redo)),
            Err(e) => Err(e.raw_os_error()),
        }
    }
}

/// The receive calls that want a datagram's sender.
#[derive(Clone, Copy)]
enum RecvCall {
    /// `recvfrom(fd, buf, len, flags, addr, addrlen)`.
    From,
    /// `recvmsg(fd, msg, flags)`.
    Msg,
}

/// Where a receive call puts a datagram, read from the caller before the
/// datagram is taken.
struct Place {
    flags: i32,
    /// The caller's buffers.
    iov: Vec<(u64, u64)>,
    /// `recvfrom`'s address and its length's place; `recvmsg`'s message header
    /// (its place and fields).
    rest: PlaceRest,
}

enum PlaceRest {
    From { addr: u64, len_at: u64 },
    Msg { at: u64, m: MsgHdr },
}

impl Place {
    fn read(t: &Target<'_>, call: RecvCall) -> Result<Place, Errno> {
        Ok(match call {
            RecvCall::From => Place {
                flags: t.int(3),
                iov: vec![(t.ptr(1), t.n.args[2])],
                rest: PlaceRest::From {
                    addr: t.ptr(4),
                    len_at: t.ptr(5),
                },
            },
            RecvCall::Msg => {
                let at = t.ptr(1);
                let m = parse_msghdr(&t.read(at, MSGHDR_SIZE)?);
                if m.iovlen > UIO_MAXIOV {
                    return Err(libc::EMSGSIZE);
                }
                Place {
                    flags: t.int(2),
                    iov: parse_iovecs(&t.read(m.iov, m.iovlen as usize * IOVEC_SIZE)?)?,
                    rest: PlaceRest::Msg { at, m },
                }
            }
        })
    }

    /// The most bytes of a datagram the buffers take.
    fn cap(&self) -> usize {
        let cap: u64 = self.iov.iter().map(|&(_, l)| l).sum();
        cap.min(MAX_DATAGRAM as u64) as usize
    }

    /// Whether the caller has room for control messages.
    fn wants_control(&self) -> bool {
        matches!(self.rest, PlaceRest::Msg { m, .. } if m.control != 0)
    }

    /// Writes the datagram `data` received as `got`, its sender and the
    /// `control` messages (each an `int`: level, type, value) to the caller.
    fn write(
        &self,
        t: &Target<'_>,
        data: &[u8],
        got: Received,
        control: &[(i32, i32, i32)],
    ) -> Result<(), Errno> {
        let mut done = 0;
        for (base, n) in scatter(&self.iov, data.len()) {
            t.write(base, &data[done..done + n])?;
            done += n;
        }
        let (at, m) = match self.rest {
            PlaceRest::From { addr, len_at } => return write_source(t, addr, len_at, got),
            PlaceRest::Msg { at, m } => (at, m),
        };
        let name = got
            .from
            .map(|a| sockaddr::encode_inet(&a))
            .unwrap_or_default();
        if m.name != 0 && !name.is_empty() {
            let n = (m.namelen as usize).min(name.len());
            t.write(m.name, &name[..n])?;
        }
        let namelen = if m.name != 0 { name.len() as u32 } else { 0 };
        t.write(at + MSG_NAMELEN_AT, &namelen.to_ne_bytes())?;
        let (cmsgs, cut) = int_cmsgs(control, m.controllen as usize);
        if !cmsgs.is_empty() {
            t.write(m.control, &cmsgs)?;
        }
        t.write(at + MSG_CONTROLLEN_AT, &(cmsgs.len() as u64).to_ne_bytes())?;
        let mut mflags = if got.full > got.len {
            libc::MSG_TRUNC
        } else {
            0
        };
        if cut {
            mflags |= libc::MSG_CTRUNC;
        }
        t.write(at + MSG_FLAGS_AT, &mflags.to_ne_bytes())
    }
}

/// Whether an `int` option kept for socket `s` is on (the kernel reads an
/// `int`, or a byte when fewer were given).
fn option_on(s: &InetSocket, level: i32, name: i32) -> bool {
    let v = kept_option(s, level, name);
    match v.get(..4) {
        Some(b) => i32::from_ne_bytes(b.try_into().expect("4 bytes")) != 0,
        None => v.first().is_some_and(|&b| b != 0),
    }
}

/// The control messages socket `s` asked for about a datagram received as
/// `got`: the hop limit (`IP_TTL` with `IP_RECVTTL`, for IPv4 senders;
/// `IPV6_HOPLIMIT` with `IPV6_RECVHOPLIMIT`, on an IPv6 socket).
fn control_messages(s: &InetSocket, got: Received) -> Vec<(i32, i32, i32)> {
    let mut out = Vec::new();
    let Some(hops) = got.hop_limit.map(i32::from) else {
        return out;
    };
    let v4_sender = match got.from {
        Some(SocketAddr::V4(_)) => true,
        Some(SocketAddr::V6(a)) => a.ip().to_ipv4_mapped().is_some(),
        None => s.family == libc::AF_INET,
    };
    if v4_sender && option_on(s, libc::IPPROTO_IP, libc::IP_RECVTTL) {
        out.push((libc::IPPROTO_IP, libc::IP_TTL, hops));
    }
    if s.family == libc::AF_INET6 && option_on(s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT) {
        out.push((libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, hops));
    }
    out
}

/// What a receive call returns: the bytes copied, or with `MSG_TRUNC` the
/// datagram's whole length.
fn received_value(got: Received, flags: i32) -> i64 {
    if flags & libc::MSG_TRUNC != 0 {
        got.full as i64
    } else {
        got.len as i64
    }
}

/// Fills in a receive call's source address (length 0 when the stack gives
/// none, as for an unnamed `AF_UNIX` sender).
fn write_source(t: &Target<'_>, addr: u64, len_ptr: u64, got: Received) -> Result<(), Errno> {
    match got.from {
        Some(a) => write_addr(t, addr, len_ptr, &sockaddr::encode_inet(&a)),
        None => t.write(len_ptr, &0u32.to_ne_bytes()),
    }
}
