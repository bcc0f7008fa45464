//! The user-space backend ([`crate::stack::Backend::User`]): a TCP/IP stack
//! running in the application, on smoltcp 0.14, with no namespace, tap, helper
//! process or privilege.
//!
//! Each stack has one smoltcp interface per VDE interface, whose frames go
//! straight between smoltcp and the interface's plug, and `lo`. Routing across
//! interfaces, the socket table, the listen backlog and loopback are ours
//! (smoltcp knows one interface at a time). Its configuration is a
//! [`MemStack`](crate::nl::server::MemStack) served by the netlink server, so
//! `Stack::netlink`, configuration strings and `vdestack ip` work unchanged;
//! each change is applied to smoltcp. A bounded pool of threads polls every
//! user-space stack of the process. Sockets are fds: the application's end of a
//! socket pair per socket (see `bridge.rs`), so poll, epoll, mio and tokio work.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`UserStack`]: made from interface specs; the typed sockets; [`UserSock`], the typed sockets' handle |
//! | `pool.rs` | the pool threads: epoll over the stacks' fds, timers, wake-ups |
//! | `engine.rs` | one stack's state (interfaces, netlink state, socket table) and its poll |
//! | `device.rs` | smoltcp devices: a plug, `lo` |
//! | `config.rs` | the netlink state turned into smoltcp's addresses and routes per link (no I/O) |
//! | `mss.rs` | a SYN's ordinary MSS raised on a large-segment link, so smoltcp sends large segments to kernel stacks too (no I/O) |
//! | `filter.rs` | frames not for the stack dropped in front of an interface with more addresses than smoltcp holds (no I/O) |
//! | `route.rs` | routing in front of smoltcp: interface and source address per destination (no I/O) |
//! | `ports.rs` | local ports: in use, ephemeral picks (no I/O) |
//! | `bridge.rs` | socket pairs, the connect filler, the accept message |
//! | `sock.rs`, `tcp_sock.rs`, `dgram_sock.rs` | the socket table's entries: how bytes move for TCP, UDP and ICMP echo |
//! | `socket_api.rs` | the control calls (bind, listen, connect, accept, names, options, errors, `send_to`), for `net` and `vdestack vu` |
//! | `netlink.rs` | `Stack::netlink`: a dialog with the stack's netlink server |
//! | `dhcp.rs` | DHCPv4 (`dhcp` in configuration strings): the crate's client run by the engine |
//!
//! ## Limits (what is not done, and what asking for it gives)
//!
//! - No forwarding between interfaces: a packet for another host that arrives
//!   on an interface is dropped (as with `ip_forward=0`).
//! - Routing: a route needs an interface (`dev`); a route with a gateway
//!   reaches smoltcp as such (at most 16 per interface, the most specific
//!   kept); a destination is on-link only within the prefix of an address of
//!   the interface (a `dev`-only route to a prefix without such an address
//!   picks the interface, but the packets find no neighbour: the connection
//!   times out). No route: `ENETUNREACH`. Only the main table is used.
//! - Addresses: any number per interface (netlink's table); up to 8 go to
//!   smoltcp (source selection, on-link prefixes: the 9th address's prefix is
//!   not on-link unless an earlier one covers it); with more, smoltcp takes any
//!   address and `filter.rs` drops what is not the stack's.
//! - Neighbour discovery (ARP, NDP) is smoltcp's, patched (`vendor/smoltcp`)
//!   to rate-limit per neighbour: an unanswered neighbour is asked again after a
//!   second, while others are asked at once (upstream silences the whole cache,
//!   and the first IPv6 connection right after an IPv4 one took 1 s).
//! - IPv4 fragments are neither sent nor reassembled; no IPv6 fragments. Each
//!   Ethernet interface answers its IPv6 link-local address (from its MAC,
//!   not listed by netlink, as `MemStack` lists none); no SLAAC or router
//!   discovery; no multicast
//!   sockets; no `SO_REUSEPORT`; no raw sockets ([`crate::stack::Stack::socket`]
//!   is `EOPNOTSUPP`), no namespace (`Stack::netns` is `None`), no commands
//!   (`Stack::command`'s child gets `EOPNOTSUPP`).
//! - TCP: no SACK (smoltcp ignores it), no urgent data, no `SO_LINGER`; an
//!   application closing a connection with data unread in the stack resets it
//!   (data already in its socket pair does not count: it closes with a FIN). A read after
//!   a reset gives EOF (not `ECONNRESET`; `take_error` has it). The backlog is
//!   kept: at most `backlog` connections wait, made but not accepted, and up
//!   to 4 more handshakes per interface; beyond, a SYN is answered with a reset
//!   (the kernel drops it). `[::]` is dual-stack (IPv4 peers shown
//!   IPv4-mapped, as with Linux's default `IPV6_V6ONLY` 0); a listener on
//!   `0.0.0.0` completes an IPv6 handshake and then resets it (the kernel
//!   refuses the SYN).
//! - UDP and ICMP: a datagram of 0 bytes is not delivered (it would read as the
//!   end of the pair); at most 64 KiB per datagram (`EMSGSIZE`); a full send
//!   buffer is `ENOBUFS` for a non-blocking socket (a blocking one waits).
//! - A socket outlives its stack only as an fd: once the stack is dropped, its
//!   sockets read EOF and their calls give `EBADF`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::error::context;
use crate::net::{IcmpSocket, IpVersion, TcpListener, TcpStream, UdpSocket};
use crate::nl::NlClient;

use super::spec::IfSpec;

mod bridge;
mod config;
mod device;
mod dgram_sock;
mod dhcp;
mod engine;
mod filter;
mod flight;
mod hops;
mod mss;
mod netlink;
pub(crate) mod pool;
mod ports;
mod route;
mod sock;
pub(crate) mod socket_api;
mod tcp_sock;

pub(crate) use dgram_sock::Sources;
pub(crate) use pool::Shared;
pub(crate) use socket_api::{SockId, SockKind, SockOpt, SockOptName};

/// A user-space stack.
#[derive(Debug)]
pub(crate) struct UserStack {
    shared: Option<Arc<Shared>>,
}

/// The backlog of the listeners [`UserStack::tcp_listener`] makes (as the
/// kernel backend's).
const BACKLOG: usize = 128;

impl UserStack {
    /// A stack with one interface per spec (their plugs opened here) and `lo`.
    pub(crate) fn new(specs: &[IfSpec], offload: bool) -> io::Result<Self> {
        // An `inproc://` plug wakes the stack's pool thread directly (no fd of
        // its own); the thread is known once the stack is registered.
        let target: Arc<OnceLock<std::sync::Weak<Shared>>> = Arc::new(OnceLock::new());
        let mut plugs = Vec::with_capacity(specs.len());
        for s in specs {
            let plug = open_plug(&s.url, &target)
                .map_err(|e| context(e, format!("interface {}", s.name)))?;
            plugs.push((s.name.clone(), plug));
        }
        let shared = pool::register(|| engine::Engine::new(plugs, offload))?;
        let _ = target.set(Arc::downgrade(&shared));
        // Frames that came before the waker knew whom to wake.
        shared.kick();
        Ok(UserStack {
            shared: Some(shared),
        })
    }

    /// The shared state, for the control calls.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        self.shared.as_ref().expect("a stack not closed")
    }

    fn handle(&self, id: SockId) -> UserSock {
        UserSock {
            stack: Arc::downgrade(self.shared()),
            id,
        }
    }

    /// A netlink client of the stack.
    pub(crate) fn netlink(&self) -> NlClient {
        netlink::client(self.shared())
    }

    /// A listener on `addr`.
    pub(crate) fn tcp_listener(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let (id, fd) = socket_api::tcp_listener(self.shared(), addr, BACKLOG)
            .map_err(|e| context(e, format!("listen on {addr}")))?;
        Ok(TcpListener::from_user(fd, self.handle(id)))
    }

    /// A connection to `addr`, waiting at most `timeout` (`None`: as long as TCP
    /// tries).
    pub(crate) fn tcp_connect(
        &self,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let sh = self.shared();
        let (id, fd) = socket_api::socket(sh, addr.is_ipv6(), SockKind::Stream)?;
        let done = socket_api::connect(sh, id, addr).and_then(|_| {
            wait_writable(&fd, timeout)?;
            match socket_api::take_error(sh, id)? {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        if let Err(e) = done {
            socket_api::close(sh, id);
            return Err(context(e, format!("connect {addr}")));
        }
        Ok(TcpStream::from_user(fd, self.handle(id)))
    }

    /// A connection to `addr` started, not waited for: its fd becomes writable
    /// once made or failed (then [`TcpStream::take_error`] says which).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn tcp_connect_start(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let sh = self.shared();
        let (id, fd) = socket_api::socket(sh, addr.is_ipv6(), SockKind::Stream)?;
        if let Err(e) = socket_api::connect(sh, id, addr) {
            socket_api::close(sh, id);
            return Err(e);
        }
        Ok(TcpStream::from_user(fd, self.handle(id)))
    }

    /// A UDP socket bound to `addr`.
    pub(crate) fn udp_bind(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        let sh = self.shared();
        let (id, fd) = socket_api::socket(sh, addr.is_ipv6(), SockKind::Udp)?;
        if let Err(e) = socket_api::bind(sh, id, addr) {
            socket_api::close(sh, id);
            return Err(context(e, format!("bind {addr}")));
        }
        let sources = socket_api::sources(sh, id)?;
        Ok(UdpSocket::from_user(fd, self.handle(id), sources))
    }

    /// An ICMP echo socket.
    pub(crate) fn icmp_socket(&self, version: IpVersion) -> io::Result<IcmpSocket> {
        let sh = self.shared();
        let (id, fd) = socket_api::socket(sh, version == IpVersion::V6, SockKind::Icmp)?;
        let sources = socket_api::sources(sh, id)?;
        Ok(IcmpSocket::from_user(fd, self.handle(id), sources, version))
    }

    /// Takes the stack apart: its sockets closed, its plugs too.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        if let Some(sh) = self.shared.take() {
            let (ifaces, socks) = {
                let mut e = sh.lock();
                let socks: Vec<_> = e.socks.drain().collect();
                for (_, s) in socks {
                    s.release(&mut e);
                }
                (std::mem::take(&mut e.ifaces), ())
            };
            drop((ifaces, socks));
        }
        Ok(())
    }
}

impl Drop for UserStack {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Opens an interface's plug: `inproc://` with a waker that kicks the stack's
/// pool thread (`watched` false: no fd to watch), any other as the kernel
/// backend does (its fd watched).
fn open_plug(
    url: &str,
    target: &Arc<OnceLock<std::sync::Weak<Shared>>>,
) -> io::Result<engine::OpenPlug> {
    if let Some(arg) = url.strip_prefix("inproc://") {
        let t = target.clone();
        let waker: crate::vde::inproc::Waker = Arc::new(move || {
            if let Some(sh) = t.get().and_then(std::sync::Weak::upgrade) {
                sh.frames_came();
            }
        });
        let plug = crate::vde::inproc::InProc::open_with_waker(arg, waker)?;
        return Ok((Box::new(plug), false));
    }
    Ok((super::kernel::open_plug(url)?, true))
}

/// Waits until `fd` is writable (a connection made or failed), at most
/// `timeout`: then `ETIMEDOUT`.
fn wait_writable(fd: &OwnedFd, timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
        }
        let ts = left.map(|l| {
            Timespec::try_from(l).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            })
        });
        let mut p = [PollFd::new(fd, PollFlags::OUT)];
        match poll(&mut p, ts.as_ref()) {
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a typed socket of a user-space stack holds besides its fd: the stack
/// (weakly: a socket does not keep its stack) and its id there.
#[derive(Debug, Clone)]
pub(crate) struct UserSock {
    stack: Weak<Shared>,
    id: SockId,
}

impl UserSock {
    /// Runs a control call on the socket; `EBADF` once the stack is gone.
    pub(crate) fn call<R>(
        &self,
        f: impl FnOnce(&Shared, SockId) -> io::Result<R>,
    ) -> io::Result<R> {
        match self.stack.upgrade() {
            Some(sh) => f(&sh, self.id),
            None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// The socket's id in its stack (for `vdestack vu`).
    #[allow(dead_code)]
    pub(crate) fn id(&self) -> SockId {
        self.id
    }

    /// A handle on another socket of the same stack.
    pub(crate) fn sibling(&self, id: SockId) -> UserSock {
        UserSock {
            stack: self.stack.clone(),
            id,
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.call(socket_api::local_addr)
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.call(socket_api::peer_addr)
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.call(socket_api::take_error) {
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(None),
            r => r,
        }
    }

    pub(crate) fn set(&self, opt: SockOpt) -> io::Result<()> {
        self.call(|sh, id| socket_api::set_option(sh, id, opt))
    }

    pub(crate) fn get(&self, name: SockOptName) -> io::Result<SockOpt> {
        self.call(|sh, id| socket_api::get_option(sh, id, name))
    }

    /// The IP time-to-live (64 unless set).
    pub(crate) fn ttl(&self) -> io::Result<u32> {
        match self.get(SockOptName::Ttl)? {
            SockOpt::Ttl(t) => Ok(u32::from(t.unwrap_or(64))),
            _ => Ok(64),
        }
    }

    /// Sets the IP time-to-live: 1 to 255, else `EINVAL` (0: the default, as
    /// the kernel's -1).
    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let t = match ttl {
            0 => None,
            1..=255 => Some(ttl as u8),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        self.set(SockOpt::Ttl(t))
    }

    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.call(|sh, id| socket_api::connect(sh, id, addr))
    }

    /// Sends a datagram to `addr`; a blocking socket (`blocking`) waits while
    /// the send buffer is full.
    pub(crate) fn send_to(
        &self,
        buf: &[u8],
        addr: SocketAddr,
        blocking: bool,
    ) -> io::Result<usize> {
        loop {
            match self.call(|sh, id| socket_api::send_to(sh, id, buf, addr)) {
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    if !blocking {
                        return Err(io::Error::from(io::ErrorKind::WouldBlock));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                r => return r,
            }
        }
    }
}

/// Whether `fd` is in non-blocking mode.
pub(crate) fn is_nonblocking(fd: impl AsFd) -> bool {
    rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
}
