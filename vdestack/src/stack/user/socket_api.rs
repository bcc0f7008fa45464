//! The control calls on a user-space stack's sockets: what `net`'s typed sockets
//! and `vdestack vu` (issue 16) call. Each locks the stack, acts, and wakes its
//! pool thread; none blocks (a connect starts, [`accept`] says `WouldBlock`).
//!
//! A socket is an id in the stack's table ([`SockId`]) and the application's end
//! of a socket pair (see `bridge.rs`): a TCP connection's is a `SOCK_STREAM`
//! end, writable only once connected; a listener's and a datagram socket's a
//! `SOCK_SEQPACKET` end. Reads, writes, poll and `shutdown` work on the fd
//! itself (`shutdown(SHUT_WR)` there: the stack reads what was written to the
//! end, then sends the FIN, as a kernel does); the calls here are the rest:
//!
//! | call | kernel call it stands for |
//! |---|---|
//! | [`socket`] | `socket(AF_INET/AF_INET6, SOCK_STREAM/SOCK_DGRAM, 0/IPPROTO_ICMP/IPPROTO_ICMPV6)` |
//! | [`bind`] | `bind` (port 0: the stack picks) |
//! | [`listen`] | `listen`: gives the listener's new application end, which replaces the one [`socket`] gave |
//! | [`connect`] | `connect`: starts (TCP: the fd becomes writable once connected; then [`take_error`]); UDP/ICMP: sets the peer |
//! | [`accept`] | `accept` on a listener's application end (non-blocking or not, as the fd is) |
//! | [`local_addr`], [`peer_addr`] | `getsockname`, `getpeername` |
//! | [`set_option`], [`get_option`] | `setsockopt`, `getsockopt` of [`SockOpt`] |
//! | [`take_error`] | `getsockopt(SO_ERROR)` |
//! | [`send_to`] | `sendto` with an address (a datagram's; without one, write to the fd) |
//! | [`sources`] | where `recvfrom` finds each datagram's sender: pop one per datagram read |
//! | [`close`] | `close` of the last fd (closing the application's end does it too) |
//!
//! Errors are the kernel's: `EADDRINUSE`, `EADDRNOTAVAIL`, `ECONNREFUSED`,
//! `ENETUNREACH`, `EINVAL`, `EISCONN`, `EALREADY`, `ENOTCONN`, `EAFNOSUPPORT`,
//! `EOPNOTSUPP`; `EBADF` for an id the stack does not have (closed, or the stack
//! is gone).

#![allow(dead_code)] // What vu (issue 16) calls and the typed sockets do not yet.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant as StdInstant;

use rustix::io::Errno;
use rustix::net::SocketType;
use smoltcp::socket::tcp;

use super::bridge::{self, Accepted, Filler};
use super::dgram_sock::{self, DgramKind, DgramSock};
use super::engine::{At, Engine};
use super::pool::Shared;
use super::ports::Proto;
use super::route;
use super::sock::Sock;
use super::tcp_sock::{new_socket, TcpSock, TcpState};

pub(crate) use super::dgram_sock::Sources;
pub(crate) use super::engine::SockId;

/// What a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockKind {
    /// TCP.
    Stream,
    /// UDP.
    Udp,
    /// ICMP echo (`SOCK_DGRAM` of `IPPROTO_ICMP`/`IPPROTO_ICMPV6`).
    Icmp,
}

/// A socket option and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockOpt {
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `IP_TTL` / `IPV6_UNICAST_HOPS` (`None`: the default, 64).
    Ttl(Option<u8>),
    /// `SO_BROADCAST`.
    Broadcast(bool),
    /// `SO_REUSEADDR`: accepted and kept, no effect (ports are free once closed).
    ReuseAddr(bool),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
}

/// Which option [`get_option`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockOptName {
    NoDelay,
    Ttl,
    Broadcast,
    ReuseAddr,
    KeepAlive,
}

fn err(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// Runs `f` on socket `id` of the stack, then wakes the pool thread.
fn with<R>(
    sh: &Shared,
    id: SockId,
    f: impl FnOnce(&mut Sock, &mut Engine) -> Result<R, Errno>,
) -> io::Result<R> {
    let r = {
        let mut engine = sh.lock();
        let mut s = engine.socks.remove(&id).ok_or_else(|| err(Errno::BADF))?;
        let r = f(&mut s, &mut engine);
        engine.socks.insert(id, s);
        r
    };
    sh.kick();
    r.map_err(err)
}

/// A new socket: its id and the application's end (blocking, close-on-exec).
/// `v6`: `AF_INET6` rather than `AF_INET`.
pub(crate) fn socket(sh: &Shared, v6: bool, kind: SockKind) -> io::Result<(SockId, OwnedFd)> {
    new_socket_with(sh, v6, kind, true)
}

fn new_socket_with(
    sh: &Shared,
    v6: bool,
    kind: SockKind,
    filler: bool,
) -> io::Result<(SockId, OwnedFd)> {
    let (sock, app) = match kind {
        SockKind::Stream => {
            let (app, eng) = bridge::pair(SocketType::STREAM)?;
            let f = if filler {
                bridge::fill(app.as_fd())?
            } else {
                0
            };
            let s = TcpSock::new(eng, v6, TcpState::Fresh(Filler::new(f)));
            (Sock::Tcp(s), app)
        }
        SockKind::Udp | SockKind::Icmp => {
            let (app, eng) = bridge::pair(SocketType::SEQPACKET)?;
            let k = if kind == SockKind::Udp {
                DgramKind::Udp
            } else {
                DgramKind::Icmp
            };
            (Sock::Dgram(DgramSock::new(eng, k, v6)), app)
        }
    };
    let mut engine = sh.lock();
    let id = engine.new_id();
    if let Some(fd) = sock.fd() {
        engine.watch(fd, id)?;
    }
    engine.socks.insert(id, sock);
    Ok((id, app))
}

/// An IPv4-mapped IPv6 address as the IPv4 one it stands for.
pub(super) fn unmapped(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        a => a,
    }
}

fn check_family(v6: bool, addr: &SocketAddr) -> Result<(), Errno> {
    match (v6, addr) {
        (false, SocketAddr::V4(_)) | (true, SocketAddr::V6(_)) => Ok(()),
        (false, SocketAddr::V6(_)) => Err(Errno::AFNOSUPPORT),
        (true, SocketAddr::V4(_)) => Err(Errno::INVAL),
    }
}

/// Binds socket `id` to `addr` (port 0: one the stack picks). `EINVAL` if it is
/// bound already, `EADDRNOTAVAIL` for an address not of the stack,
/// `EADDRINUSE` for a port in use.
pub(crate) fn bind(sh: &Shared, id: SockId, addr: SocketAddr) -> io::Result<()> {
    with(sh, id, |s, engine| {
        let ip = addr.ip();
        if !ip.is_unspecified() && !route::is_local(engine.mem(), ip) {
            return Err(Errno::ADDRNOTAVAIL);
        }
        match s {
            Sock::Tcp(t) => {
                check_family(t.v6, &addr)?;
                if t.bound.is_some() || !matches!(t.state, TcpState::Fresh(_)) {
                    return Err(Errno::INVAL);
                }
                t.bound = Some(engine.ports.take(Proto::Tcp, addr)?);
                Ok(())
            }
            Sock::Dgram(d) => {
                check_family(d.v6, &addr)?;
                d.bind(engine, addr)
            }
        }
    })
}

/// Listens on socket `id` (bound first to a port the stack picks if it is not
/// bound), keeping up to `backlog` connections made and not yet accepted.
/// Returns the listener's application end, which replaces the one [`socket`]
/// gave (`None` if it listened already: only the backlog changes).
/// `EOPNOTSUPP` on a datagram socket, `EINVAL` on a connected one.
pub(crate) fn listen(sh: &Shared, id: SockId, backlog: usize) -> io::Result<Option<OwnedFd>> {
    let backlog = backlog.max(1);
    let (app, eng) = bridge::pair(SocketType::SEQPACKET)?;
    let replaced = with(sh, id, |s, engine| {
        let Sock::Tcp(t) = s else {
            return Err(Errno::OPNOTSUPP);
        };
        match &mut t.state {
            TcpState::Listening { backlog: b, .. } => {
                *b = backlog;
                return Ok(false);
            }
            TcpState::Fresh(_) => {}
            _ => return Err(Errno::INVAL),
        }
        if t.bound.is_none() {
            let any = SocketAddr::new(any_of(t.v6), 0);
            t.bound = Some(engine.ports.take(Proto::Tcp, any)?);
        }
        engine.watch(eng.as_fd(), id).map_err(|_| Errno::NOMEM)?;
        t.fd = Some(eng);
        t.state = TcpState::Listening {
            backlog,
            pool: Vec::new(),
            ready: Default::default(),
        };
        // Listening now, not at the next poll: a SYN that comes first must
        // find a socket.
        t.service_listener(engine, &mut false);
        Ok(true)
    })?;
    Ok(replaced.then_some(app))
}

fn any_of(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// Starts connecting socket `id` to `addr`; never blocks. TCP: the
/// application's end becomes writable once the connection is made or failed
/// (then [`take_error`] says which). UDP and ICMP: sets the peer (and binds).
/// `ENETUNREACH` when no route leads there, `EISCONN`/`EALREADY` for a TCP
/// socket connected or connecting, `EINVAL` for a listener.
pub(crate) fn connect(sh: &Shared, id: SockId, addr: SocketAddr) -> io::Result<()> {
    with(sh, id, |s, engine| match s {
        Sock::Tcp(t) => connect_tcp(t, engine, addr),
        Sock::Dgram(d) => {
            check_family(d.v6, &addr)?;
            let addr = unmapped(addr);
            route::choose_addr(engine.mem(), &addr)?;
            if d.bound.is_none() {
                d.bind(engine, SocketAddr::new(any_of(d.v6), 0))?;
            }
            d.peer = Some(addr);
            Ok(())
        }
    })
}

fn connect_tcp(t: &mut TcpSock, engine: &mut Engine, addr: SocketAddr) -> Result<(), Errno> {
    check_family(t.v6, &addr)?;
    let addr = unmapped(addr);
    match t.state {
        TcpState::Fresh(_) => {}
        TcpState::Connecting { .. } => return Err(Errno::ALREADY),
        TcpState::Open { .. } => return Err(Errno::ISCONN),
        TcpState::Listening { .. } | TcpState::Failed { .. } => return Err(Errno::INVAL),
    }
    if addr.port() == 0 {
        return Err(Errno::CONNREFUSED);
    }
    let choice = route::choose_addr(engine.mem(), &addr)?;
    let pos = engine.iface_of(choice.link).ok_or(Errno::NETUNREACH)?;
    let local = match t.bound {
        Some(b) if !b.ip().is_unspecified() => b,
        Some(b) => SocketAddr::new(choice.src, b.port()),
        None => {
            let l = engine
                .ports
                .take(Proto::Tcp, SocketAddr::new(choice.src, 0))?;
            t.bound = Some(l);
            l
        }
    };
    let mut sock = new_socket(t.nodelay, t.hop_limit, engine.tcp_window(pos));
    let set_cx = {
        let ifc = engine.ifaces.get_mut(pos).ok_or(Errno::NETUNREACH)?;
        ifc.net.as_mut().ok_or(Errno::NETUNREACH)?
    };
    sock.connect(set_cx.iface.context(), addr, local)
        .map_err(|e| match e {
            tcp::ConnectError::InvalidState => Errno::ISCONN,
            tcp::ConnectError::Unaddressable => Errno::INVAL,
        })?;
    let handle = set_cx.sockets.add(sock);
    let filler = match std::mem::replace(
        &mut t.state,
        TcpState::Failed {
            until: StdInstant::now(),
        },
    ) {
        TcpState::Fresh(f) => f,
        _ => Filler::default(),
    };
    t.peer = Some(addr);
    t.state = TcpState::Connecting {
        at: At { iface: pos, handle },
        filler,
        started: StdInstant::now(),
    };
    Ok(())
}

/// Accepts a connection from a listener's application end: the connection's
/// application end, its id and its peer. `WouldBlock` when the fd is
/// non-blocking and none is there; `EINVAL` once the stack is gone (the
/// listener's engine end closed).
pub(crate) fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, SockId, SocketAddr)> {
    match bridge::recv_accepted(listener)? {
        Accepted::Conn(msg, fd) => Ok((fd, msg.id, msg.peer)),
        Accepted::Closed => Err(err(Errno::INVAL)),
    }
}

/// The local address of socket `id` (unbound: the unspecified address, port 0).
pub(crate) fn local_addr(sh: &Shared, id: SockId) -> io::Result<SocketAddr> {
    with(sh, id, |s, engine| {
        Ok(match s {
            Sock::Tcp(t) => match t.at().and_then(|at| endpoint(engine, at, true)) {
                Some(a) => super::tcp_sock::family_of(a, t.v6),
                None => t.bound.unwrap_or(SocketAddr::new(any_of(t.v6), 0)),
            },
            Sock::Dgram(d) => d.bound.unwrap_or(SocketAddr::new(any_of(d.v6), 0)),
        })
    })
}

fn endpoint(engine: &mut Engine, at: At, local: bool) -> Option<SocketAddr> {
    let set = engine.sockets(at.iface)?;
    let s = set.get::<tcp::Socket>(at.handle);
    let ep = if local {
        s.local_endpoint()
    } else {
        s.remote_endpoint()
    };
    ep.map(SocketAddr::from)
}

/// The peer of socket `id`: `ENOTCONN` if it has none.
pub(crate) fn peer_addr(sh: &Shared, id: SockId) -> io::Result<SocketAddr> {
    with(sh, id, |s, _| match s {
        Sock::Tcp(t) => match t.state {
            TcpState::Open { .. } => t
                .peer
                .map(|p| super::tcp_sock::family_of(p, t.v6))
                .ok_or(Errno::NOTCONN),
            _ => Err(Errno::NOTCONN),
        },
        Sock::Dgram(d) => d
            .peer
            .map(|p| super::tcp_sock::family_of(p, d.v6 && d.kind == DgramKind::Udp))
            .ok_or(Errno::NOTCONN),
    })
}

/// Sets an option of socket `id`. `ENOPROTOOPT` for one its kind lacks.
pub(crate) fn set_option(sh: &Shared, id: SockId, opt: SockOpt) -> io::Result<()> {
    with(sh, id, |s, engine| match (s, opt) {
        (Sock::Tcp(t), SockOpt::NoDelay(on)) => {
            t.nodelay = on;
            if let Some(at) = t.at() {
                if let Some(set) = engine.sockets(at.iface) {
                    set.get_mut::<tcp::Socket>(at.handle).set_nagle_enabled(!on);
                }
            }
            Ok(())
        }
        (Sock::Tcp(t), SockOpt::Ttl(ttl)) => {
            t.hop_limit = ttl;
            if let Some(at) = t.at() {
                if let Some(set) = engine.sockets(at.iface) {
                    set.get_mut::<tcp::Socket>(at.handle).set_hop_limit(ttl);
                }
            }
            Ok(())
        }
        (Sock::Tcp(t), SockOpt::KeepAlive(on)) => {
            if let Some(at) = t.at() {
                if let Some(set) = engine.sockets(at.iface) {
                    let every = on.then(|| smoltcp::time::Duration::from_secs(75));
                    set.get_mut::<tcp::Socket>(at.handle).set_keep_alive(every);
                }
            }
            Ok(())
        }
        (Sock::Dgram(d), SockOpt::Ttl(ttl)) => {
            d.hop_limit = ttl;
            Ok(())
        }
        (Sock::Dgram(d), SockOpt::Broadcast(on)) => {
            d.broadcast = on;
            Ok(())
        }
        (_, SockOpt::ReuseAddr(_)) => Ok(()),
        _ => Err(Errno::NOPROTOOPT),
    })
}

/// Reads an option of socket `id`. `ENOPROTOOPT` for one its kind lacks.
pub(crate) fn get_option(sh: &Shared, id: SockId, name: SockOptName) -> io::Result<SockOpt> {
    with(sh, id, |s, _| match (s, name) {
        (Sock::Tcp(t), SockOptName::NoDelay) => Ok(SockOpt::NoDelay(t.nodelay)),
        (Sock::Tcp(t), SockOptName::Ttl) => Ok(SockOpt::Ttl(t.hop_limit)),
        (Sock::Dgram(d), SockOptName::Ttl) => Ok(SockOpt::Ttl(d.hop_limit)),
        (Sock::Dgram(d), SockOptName::Broadcast) => Ok(SockOpt::Broadcast(d.broadcast)),
        (_, SockOptName::ReuseAddr) => Ok(SockOpt::ReuseAddr(false)),
        (Sock::Tcp(_), SockOptName::KeepAlive) => Ok(SockOpt::KeepAlive(false)),
        _ => Err(Errno::NOPROTOOPT),
    })
}

/// The pending error of socket `id` (`SO_ERROR`), cleared. A closed id has none.
pub(crate) fn take_error(sh: &Shared, id: SockId) -> io::Result<Option<io::Error>> {
    match with(sh, id, |s, _| {
        Ok(match s {
            Sock::Tcp(t) => t.error.take(),
            Sock::Dgram(d) => d.error.take(),
        })
    }) {
        Ok(e) => Ok(e.map(err)),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends a datagram from socket `id` (UDP or ICMP echo) to `addr`; returns its
/// length. `ENOBUFS` when the socket's send buffer is full (the caller may wait
/// and retry), `EOPNOTSUPP` on TCP (write to the fd).
pub(crate) fn send_to(
    sh: &Shared,
    id: SockId,
    payload: &[u8],
    addr: SocketAddr,
) -> io::Result<usize> {
    with(sh, id, |s, engine| match s {
        Sock::Dgram(d) => dgram_sock::send_to(d, engine, payload, addr),
        Sock::Tcp(_) => Err(Errno::OPNOTSUPP),
    })
}

/// The FIFO of the senders of socket `id`'s datagrams (one per datagram on its
/// application end, in order).
pub(crate) fn sources(sh: &Shared, id: SockId) -> io::Result<Sources> {
    with(sh, id, |s, _| match s {
        Sock::Dgram(d) => Ok(d.sources.clone()),
        Sock::Tcp(_) => Err(Errno::OPNOTSUPP),
    })
}

/// Closes socket `id` now (as the application closing its end would, later).
pub(crate) fn close(sh: &Shared, id: SockId) {
    {
        let mut engine = sh.lock();
        engine.hung_up.push(id);
    }
    sh.kick();
}

/// A new TCP listener on `addr` with `backlog`: its id and application end.
pub(super) fn tcp_listener(
    sh: &Shared,
    addr: SocketAddr,
    backlog: usize,
) -> io::Result<(SockId, OwnedFd)> {
    let (id, first) = new_socket_with(sh, addr.is_ipv6(), SockKind::Stream, false)?;
    let done = bind(sh, id, addr).and_then(|_| listen(sh, id, backlog));
    drop(first);
    match done {
        Ok(Some(fd)) => Ok((id, fd)),
        Ok(None) => Err(err(Errno::INVAL)),
        Err(e) => {
            close(sh, id);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// The kernel's answers to an address of the other family: an IPv6
    /// address on an IPv4 socket is EAFNOSUPPORT, an IPv4 one (a `sockaddr_in`
    /// too short) on an IPv6 socket EINVAL.
    #[test]
    fn family_errors() {
        assert_eq!(check_family(false, &sa("10.0.0.1:1")), Ok(()));
        assert_eq!(check_family(true, &sa("[fc00::1]:1")), Ok(()));
        assert_eq!(
            check_family(false, &sa("[fc00::1]:1")),
            Err(Errno::AFNOSUPPORT)
        );
        assert_eq!(check_family(true, &sa("10.0.0.1:1")), Err(Errno::INVAL));
    }

    #[test]
    fn mapped_addresses() {
        assert_eq!(unmapped(sa("[::ffff:10.0.0.1]:80")), sa("10.0.0.1:80"));
        assert_eq!(unmapped(sa("[fc00::1]:80")), sa("[fc00::1]:80"));
        assert_eq!(unmapped(sa("10.0.0.1:80")), sa("10.0.0.1:80"));
        use super::super::tcp_sock::family_of;
        assert_eq!(
            family_of(sa("10.0.0.1:80"), true),
            sa("[::ffff:10.0.0.1]:80")
        );
        assert_eq!(family_of(sa("10.0.0.1:80"), false), sa("10.0.0.1:80"));
    }
}
