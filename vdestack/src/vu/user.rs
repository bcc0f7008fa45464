//! [`UserNet`]: a user-space TCP/IP stack ([`crate::stack::Backend::User`])
//! served to supervised programs. Each of the program's `AF_INET`/`AF_INET6`
//! sockets is one of the stack's sockets, and its fd is the stack's
//! application end of a socket pair (`stack/user/socket_api.rs`): reads,
//! writes and readiness are native; the calls the supervisor traps go to the
//! stack's control calls. Its netlink server answers the program's
//! configuration (rtnetlink, ioctls, `/proc/net`).
//!
//! What the kernel's sockets have and these do not (the documented limits):
//! no raw sockets (`EPERM`, as for a program without `CAP_NET_RAW`), no
//! UDP-Lite; of the control messages on received datagrams only the hop limit
//! (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`; no timestamps, no packet info);
//! `connect(AF_UNSPEC)` on a datagram socket succeeds but keeps the peer; a
//! datagram's sender is known only to a receive that asks for it
//! (`recvfrom` with an address, `recvmsg`): one read with plain `read`/`recv`
//! on an unconnected socket that also receives with addresses puts the
//! following senders one datagram off;
//! `SO_RCVBUF`/`SO_SNDBUF`, `SO_LINGER` and the timeouts are the pair's
//! socket's (timeouts work on reads and writes, not on `accept`/`connect`).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{self as rnet, RecvFlags};

use super::inet::{
    check_socket, keep_option, kept_option, Accepted, CallId, InetCall, InetReply, InetSocket,
    Received,
};
use super::served::ServedNet;
use super::Errno;
use crate::nl::server::frame;
use crate::nl::NlClient;
use crate::stack::user::socket_api::{self, SockId};
use crate::stack::user::{Shared, SockKind, SockOpt, SockOptName, Sources};
use crate::stack::Stack;

/// The largest backlog a listener gets (each waiting connection is a socket
/// of the stack's).
const BACKLOG_MAX: i32 = 128;

/// A user-space stack served to supervised programs (`vdestack vu URL...`).
///
/// The stack sends for a program's connections as long as it lives, after the
/// program has ended too (as a kernel does after a process exits). Dropping
/// it drops what is still on the way: call [`UserNet::settle`] first, or keep
/// it while peers still read.
///
/// ```no_run
/// use std::process::Command;
/// use vdestack::stack::{Backend, Stack};
/// use vdestack::vu::{UserNet, Vu};
///
/// let stack = Stack::builder()
///     .interface("vde0", "vxvde://239.1.2.3")
///     .backend(Backend::User)
///     .build()?;
/// let mut vu = Vu::new(UserNet::new(stack)?);
/// let mut ping = Command::new("sh");
/// ping.args(["-c", "ip addr add 10.0.0.1/24 dev vde0 && ip link set vde0 up && ping -c 1 10.0.0.2"]);
/// vu.run(ping)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UserNet {
    stack: Stack,
    shared: Arc<Shared>,
    nl: NlClient,
    /// Where each datagram socket's senders are queued, by socket id.
    sources: HashMap<u64, Sources>,
}

fn errno(e: io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn sock_id(s: &InetSocket) -> SockId {
    s.id as SockId
}

/// An `int` option value (`EINVAL` if fewer than 4 bytes came, as the kernel
/// says for its int options).
fn int_of(value: &[u8]) -> Result<i32, Errno> {
    value
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or(libc::EINVAL)
}

impl UserNet {
    /// Serves `stack`, which must be a user-space stack (`EINVAL` otherwise: a
    /// kernel stack's sockets are the kernel's; run the command in its
    /// namespace instead).
    pub fn new(stack: Stack) -> io::Result<Self> {
        let shared = stack.user_shared().cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "vu: only a user-space stack (Backend::User) can be served",
            )
        })?;
        let nl = stack.netlink()?;
        Ok(UserNet {
            stack,
            shared,
            nl,
            sources: HashMap::new(),
        })
    }

    /// The stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The stack, when done.
    pub fn into_stack(self) -> Stack {
        self.stack
    }

    /// Waits, up to `limit`, until the connections the program let go of
    /// (closed, or left by its exit) have had their data and FIN acknowledged
    /// by the peer, as a kernel keeps sending after a process exits. Whether
    /// everything was acknowledged in time. `vdestack vu` calls it before it
    /// drops the stack, so `nc` sending a file and exiting loses nothing.
    pub fn settle(&self, limit: Duration) -> bool {
        self.shared.settle(limit)
    }

    fn sources_of(&mut self, s: &InetSocket) -> Result<Sources, Errno> {
        if let Some(q) = self.sources.get(&s.id) {
            return Ok(q.clone());
        }
        let q = socket_api::sources(&self.shared, sock_id(s)).map_err(errno)?;
        self.sources.insert(s.id, q.clone());
        Ok(q)
    }

    fn set_option(
        &mut self,
        s: &mut InetSocket,
        level: i32,
        name: i32,
        value: &[u8],
    ) -> Result<InetReply, Errno> {
        let opt = match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => Some(SockOpt::ReuseAddr(int_of(value)? != 0)),
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => Some(SockOpt::KeepAlive(int_of(value)? != 0)),
            (libc::SOL_SOCKET, libc::SO_BROADCAST) => Some(SockOpt::Broadcast(int_of(value)? != 0)),
            (libc::SOL_SOCKET, libc::SO_REUSEPORT) => None,
            // The pair's socket keeps the rest (buffer sizes, timeouts, linger).
            (libc::SOL_SOCKET, _) => return Ok(InetReply::Continue),
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => Some(SockOpt::NoDelay(int_of(value)? != 0)),
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => {
                let v = int_of(value)?;
                if !(-1..=255).contains(&v) || (v == 0 && level == libc::IPPROTO_IP) {
                    return Err(libc::EINVAL);
                }
                Some(SockOpt::Ttl((v >= 0).then_some(v as u8)))
            }
            _ => None,
        };
        if let Some(o) = opt {
            match socket_api::set_option(&self.shared, sock_id(s), o) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        keep_option(s, level, name, value);
        Ok(InetReply::Value(0))
    }

    fn get_option(
        &mut self,
        s: &mut InetSocket,
        level: i32,
        name: i32,
    ) -> Result<InetReply, Errno> {
        let asked = match (level, name) {
            (libc::SOL_SOCKET, libc::SO_ERROR) => {
                let e = socket_api::take_error(&self.shared, sock_id(s)).map_err(errno)?;
                return Ok(InetReply::Value(e.map_or(0, errno) as i64));
            }
            (
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR | libc::SO_KEEPALIVE | libc::SO_BROADCAST | libc::SO_REUSEPORT,
            ) => None,
            (libc::SOL_SOCKET, _) => return Ok(InetReply::Continue),
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => Some(SockOptName::NoDelay),
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => {
                Some(SockOptName::Ttl)
            }
            _ => None,
        };
        if let Some(n) = asked {
            match socket_api::get_option(&self.shared, sock_id(s), n) {
                Ok(SockOpt::NoDelay(on)) => return Ok(InetReply::Value(on as i64)),
                Ok(SockOpt::Ttl(t)) => return Ok(InetReply::Value(t.unwrap_or(64) as i64)),
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        Ok(InetReply::Bytes(kept_option(s, level, name)))
    }
}

impl ServedNet for UserNet {
    fn settle(&self, limit: Duration) -> bool {
        UserNet::settle(self, limit)
    }

    fn rtnetlink(&mut self, port: u32, request: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, msg) in frame::split(request) {
            let Ok(replies) = self.nl.raw_dialog(msg) else {
                continue;
            };
            for mut r in replies {
                // Replies carry the requester's port id, as the kernel's.
                if let Some(pid) = r.get_mut(12..16) {
                    pid.copy_from_slice(&port.to_ne_bytes());
                }
                out.push(r);
            }
        }
        out
    }

    fn inet_socket(&mut self, family: i32, kind: i32, protocol: i32) -> Result<i32, Errno> {
        let p = check_socket(family, kind, protocol)?;
        match (kind, p) {
            (libc::SOCK_RAW, _) => Err(libc::EPERM),
            (_, libc::IPPROTO_UDPLITE) => Err(libc::EPROTONOSUPPORT),
            _ => Ok(p),
        }
    }

    fn inet_open(
        &mut self,
        family: i32,
        kind: i32,
        protocol: i32,
    ) -> Result<(InetSocket, OwnedFd), Errno> {
        let k = match (kind, protocol) {
            (libc::SOCK_STREAM, _) => SockKind::Stream,
            (_, libc::IPPROTO_UDP) => SockKind::Udp,
            _ => SockKind::Icmp,
        };
        let (id, app) =
            socket_api::socket(&self.shared, family == libc::AF_INET6, k).map_err(errno)?;
        Ok((
            InetSocket::new(None, id as u64, family, kind, protocol),
            app,
        ))
    }

    fn inet_call(
        &mut self,
        s: &mut InetSocket,
        call: InetCall<'_>,
        _id: CallId,
    ) -> Result<InetReply, Errno> {
        let (sh, id) = (&self.shared, sock_id(s));
        let stream = s.kind == libc::SOCK_STREAM;
        match call {
            InetCall::Bind(a) => socket_api::bind(sh, id, a)
                .map(|()| InetReply::Value(0))
                .map_err(errno),
            InetCall::Listen(backlog) => {
                let backlog = backlog.clamp(1, BACKLOG_MAX) as usize;
                match socket_api::listen(sh, id, backlog).map_err(errno)? {
                    Some(fd) => Ok(InetReply::Listening(fd)),
                    None => Ok(InetReply::Value(0)),
                }
            }
            InetCall::Connect(Some(a)) => {
                socket_api::connect(sh, id, a).map_err(errno)?;
                Ok(if stream {
                    InetReply::InProgress
                } else {
                    InetReply::Value(0)
                })
            }
            // Dissolving a datagram socket's association: the stack keeps the
            // peer (a documented limit); a stream cannot (the kernel's TCP
            // disconnects, which a user-space connection cannot undo).
            InetCall::Connect(None) if stream => Err(libc::EOPNOTSUPP),
            InetCall::Connect(None) => Ok(InetReply::Value(0)),
            InetCall::SendTo { to, data } => socket_api::send_to(sh, id, data, to)
                .map(|n| InetReply::Value(n as i64))
                .map_err(errno),
            InetCall::Shutdown(how) => {
                if !(0..=2).contains(&how) {
                    return Err(libc::EINVAL);
                }
                // Only a connected socket shuts down (ENOTCONN otherwise); then
                // its end of the pair does it: what the program wrote before
                // still goes, then the FIN (the stack reads its end to the
                // end), and what it would read after is refused.
                socket_api::peer_addr(sh, id).map_err(errno)?;
                Ok(InetReply::Continue)
            }
            InetCall::LocalAddr => socket_api::local_addr(sh, id)
                .map(InetReply::Address)
                .map_err(errno),
            InetCall::PeerAddr => socket_api::peer_addr(sh, id)
                .map(InetReply::Address)
                .map_err(errno),
            InetCall::SetSockOpt { level, name, value } => self.set_option(s, level, name, value),
            InetCall::GetSockOpt { level, name } => self.get_option(s, level, name),
        }
    }

    fn inet_accept(&mut self, s: &mut InetSocket, app: BorrowedFd<'_>) -> Result<Accepted, Errno> {
        // Never wait here, whatever the program's mode: a connection is taken
        // only once one is there. Nobody else takes it meanwhile: the
        // program's accepts (and receives) on a served listener all come here,
        // one at a time.
        let mut p = [PollFd::from_borrowed_fd(app, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut p, Some(&zero)).map_err(|e| e.raw_os_error())?;
        if !p[0]
            .revents()
            .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
        {
            return Err(libc::EAGAIN);
        }
        let (fd, id, peer) = socket_api::accept(app).map_err(errno)?;
        Ok(Accepted {
            sock: InetSocket::new(None, id as u64, s.family, s.kind, s.protocol),
            app: fd,
            peer,
        })
    }

    fn inet_recv(
        &mut self,
        s: &mut InetSocket,
        app: BorrowedFd<'_>,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Received, Errno> {
        let q = self.sources_of(s)?;
        // The sender goes in the queue before its datagram goes to the pair:
        // holding the queue while reading keeps the two in step.
        let mut q = q.lock().unwrap_or_else(|p| p.into_inner());
        let mut flags = RecvFlags::DONTWAIT | RecvFlags::TRUNC;
        if peek {
            flags |= RecvFlags::PEEK;
        }
        let (len, full) = rnet::recv(app.as_fd(), buf, flags).map_err(|e| e.raw_os_error())?;
        let source = if peek {
            q.front().copied()
        } else {
            q.pop_front()
        };
        Ok(Received {
            len,
            full,
            from: source.map(|s| s.from),
            hop_limit: source.map(|s| s.hop_limit),
        })
    }

    fn inet_alive(&mut self, s: &InetSocket) -> bool {
        let alive = socket_api::local_addr(&self.shared, sock_id(s)).is_ok();
        if !alive {
            self.sources.remove(&s.id);
        }
        alive
    }

    fn is_local(&mut self, ip: IpAddr) -> bool {
        crate::nl::emul::is_local(&mut super::NetDialog::new(self), ip).unwrap_or(false)
    }
}
