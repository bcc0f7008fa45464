//! A TCP socket of the table: its states, and how bytes move between its
//! engine end (a stream pair; a listener's: a seqpacket pair) and smoltcp.
//!
//! * app → net: the engine end is read straight into smoltcp's send buffer
//!   while it has room; the application's EOF (close or `shutdown(Write)`) is a
//!   FIN.
//! * net → app: smoltcp's receive buffer is written straight to the engine end
//!   while it takes it; the peer's FIN is a `shutdown(Write)` of the engine end
//!   (the application reads EOF).
//! * A reset or a timeout keeps its error for `SO_ERROR` and closes the engine
//!   end (the application reads EOF, its writes fail with `EPIPE`).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant as StdInstant};

use rustix::io::Errno;
use rustix::net::Shutdown;
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration as SmolDuration, Instant};

use super::bridge::{self, AcceptMsg, Filler};
use super::engine::{At, Engine, SockId};
use super::ports::Proto;

/// The bytes of each direction's smoltcp buffer (the window) on a link that
/// carries large segments between stacks of this process (`inproc://`) and on
/// `lo`: 1 MiB keeps such a fast path full; pages are touched only as data
/// comes.
pub(super) const TCP_BUFFER: usize = 1 << 20;

/// The window on a link of ordinary frames (a datagram transport, a switch).
/// Such a link drops what a receiver's socket queue cannot hold (Linux's default
/// holds about 90 full frames). Unpatched smoltcp recovered from a loss slowly
/// (an RTO of at least a second, one segment per fast retransmit): 1 MiB windows
/// moved 3-33 MB/s between two user stacks on `vxvde://`, 64 KiB collapsed with
/// four streams. With our patched loss recovery (`vendor/smoltcp/PATCHES.md`)
/// losses cost a round trip or two; measured side by side (3 rounds, vxvde://,
/// 1/4 streams, MB/s): 32 KiB 137/121 between user stacks and 56/46 to a Debian
/// vdens; 64 KiB 169/129 and 81/48; 128 KiB 158/132 and 60/45.
pub(super) const TCP_BUFFER_WIRE: usize = 64 << 10;

/// How long an ACK may wait for data to ride on. An answer written within it
/// carries the ACK of its request, so a request/response exchange moves two
/// segments, not four (and wakes each pool thread once per direction, not
/// twice): 13,000 round trips/s between two user stacks on `inproc://` instead of
/// 5,000-7,000 with no delay. Bulk is not slowed: smoltcp, like Linux, acknowledges
/// at once whenever more than a segment's worth is unacknowledged. Short, where
/// Linux waits up to 40 ms, so a Nagle sender waiting for it loses at most 1 ms.
const ACK_DELAY: SmolDuration = SmolDuration::from_millis(1);

/// How long an unanswered connection attempt (or unacknowledged data) is
/// retried before the connection fails with `ETIMEDOUT` (Linux gives up after
/// about two minutes).
pub(super) const TCP_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the error of a failed connection is kept for `SO_ERROR` once its
/// engine end is closed.
const ERROR_KEPT: Duration = Duration::from_secs(60);

/// The most smoltcp sockets a listener keeps listening per interface.
pub(super) const MAX_LISTENING: usize = 4;

/// Where a TCP socket is in its life.
#[derive(Debug)]
pub(super) enum TcpState {
    /// Made, neither connected nor listening: the filler in its engine end.
    Fresh(Filler),
    /// Connecting: the filler stays until the connection is made.
    Connecting {
        at: At,
        filler: Filler,
        started: StdInstant,
    },
    /// Connected.
    Open {
        at: At,
        /// The application sent EOF (we sent FIN).
        app_eof: bool,
        /// The peer's EOF was passed on.
        eof_sent: bool,
        /// The application shut its reading side: what arrives is dropped.
        read_shut: bool,
    },
    /// Listening: smoltcp sockets listening on each interface, and connections
    /// made but not yet handed to the application.
    Listening {
        backlog: usize,
        pool: Vec<At>,
        ready: VecDeque<At>,
    },
    /// Failed or reset: only its error is left, until `until`.
    Failed { until: StdInstant },
}

/// A TCP socket.
#[derive(Debug)]
pub(super) struct TcpSock {
    /// The engine's end (closed, `None`, once failed).
    pub(super) fd: Option<OwnedFd>,
    pub(super) v6: bool,
    /// The local address, once bound (its port is held in the stack's table).
    pub(super) bound: Option<SocketAddr>,
    /// The peer, once connecting.
    pub(super) peer: Option<SocketAddr>,
    pub(super) state: TcpState,
    /// The pending error (`SO_ERROR`).
    pub(super) error: Option<Errno>,
    pub(super) nodelay: bool,
    pub(super) hop_limit: Option<u8>,
    /// The application's end hung up.
    pub(super) gone: bool,
}

/// A new smoltcp TCP socket, set up as ours are: no delayed ACK (it caps
/// throughput), CUBIC, Nagle as asked, the timeout.
pub(super) fn new_socket(
    nodelay: bool,
    hop_limit: Option<u8>,
    window: usize,
) -> tcp::Socket<'static> {
    let rx = tcp::SocketBuffer::new(vec![0u8; window]);
    let tx = tcp::SocketBuffer::new(vec![0u8; window]);
    let mut s = tcp::Socket::new(rx, tx);
    s.set_ack_delay(Some(ACK_DELAY));
    s.set_nagle_enabled(!nodelay);
    s.set_congestion_control(tcp::CongestionControl::Cubic);
    s.set_timeout(Some(SmolDuration::from_secs(TCP_TIMEOUT.as_secs())));
    s.set_hop_limit(hop_limit);
    s
}

fn tcp_of<'a>(sockets: &'a mut SocketSet<'static>, at: At) -> &'a mut tcp::Socket<'static> {
    sockets.get_mut::<tcp::Socket>(at.handle)
}

/// Whether a smoltcp socket's connection is made (or was, and is closing).
fn is_made(s: &tcp::Socket) -> bool {
    !matches!(
        s.state(),
        State::Closed | State::Listen | State::SynSent | State::SynReceived
    )
}

impl TcpSock {
    pub(super) fn new(fd: OwnedFd, v6: bool, state: TcpState) -> Self {
        TcpSock {
            fd: Some(fd),
            v6,
            bound: None,
            peer: None,
            state,
            error: None,
            nodelay: false,
            hop_limit: None,
            gone: false,
        }
    }

    pub(super) fn deadline(&self) -> Option<StdInstant> {
        match self.state {
            TcpState::Failed { until } => Some(until),
            _ => None,
        }
    }

    /// The smoltcp socket of a connecting or connected socket.
    pub(super) fn at(&self) -> Option<At> {
        match self.state {
            TcpState::Connecting { at, .. } | TcpState::Open { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The connection, if the application let go of it: its end hung up or
    /// closed (what [`Shared::settle`](super::Shared::settle) waits for).
    pub(super) fn let_go(&self) -> Option<At> {
        let TcpState::Open { at, .. } = &self.state else {
            return None;
        };
        let hung = self.gone || self.fd.as_ref().is_none_or(super::bridge::hung_up);
        hung.then_some(*at)
    }

    /// Fails the socket with `error`: its engine end closed, its smoltcp socket
    /// gone.
    fn fail(&mut self, engine: &mut Engine, error: Option<Errno>) {
        if let Some(at) = self.at() {
            if let Some(set) = engine.sockets(at.iface) {
                set.remove(at.handle);
            }
        }
        self.error = error.or(self.error);
        self.fd = None;
        self.state = TcpState::Failed {
            until: StdInstant::now() + ERROR_KEPT,
        };
    }

    pub(super) fn service(
        &mut self,
        id: SockId,
        engine: &mut Engine,
        t: Instant,
        busy: &mut bool,
    ) -> bool {
        let _ = t;
        match &mut self.state {
            TcpState::Fresh(_) => !self.gone,
            TcpState::Failed { until } => !self.gone && *until > StdInstant::now(),
            TcpState::Listening { .. } => {
                if self.gone {
                    return false;
                }
                self.service_listener(engine, busy);
                true
            }
            TcpState::Connecting {
                at,
                filler,
                started,
            } => {
                let (at, started) = (*at, *started);
                let Some(set) = engine.sockets(at.iface) else {
                    self.fail(engine, Some(Errno::NETUNREACH));
                    return !self.gone;
                };
                let s = tcp_of(set, at);
                if is_made(s) {
                    let fd = self.fd.as_ref().expect("a connecting socket has its fd");
                    filler.drain(fd.as_fd());
                    self.state = TcpState::Open {
                        at,
                        app_eof: false,
                        eof_sent: false,
                        read_shut: false,
                    };
                    *busy = true;
                    self.service_open(engine, busy)
                } else if s.state() == State::Closed {
                    let timed_out = started.elapsed() + Duration::from_secs(1) >= TCP_TIMEOUT;
                    let e = if timed_out {
                        Errno::TIMEDOUT
                    } else {
                        Errno::CONNREFUSED
                    };
                    self.fail(engine, Some(e));
                    !self.gone
                } else if self.gone {
                    set_remove(engine, at);
                    self.state = TcpState::Failed {
                        until: StdInstant::now(),
                    };
                    false
                } else {
                    true
                }
            }
            TcpState::Open { .. } => {
                let _ = id;
                self.service_open(engine, busy)
            }
        }
    }

    fn service_open(&mut self, engine: &mut Engine, busy: &mut bool) -> bool {
        let TcpState::Open {
            at,
            app_eof,
            eof_sent,
            read_shut,
        } = &mut self.state
        else {
            return true;
        };
        let at = *at;
        let Some(set) = engine.sockets(at.iface) else {
            self.fail(engine, Some(Errno::NETDOWN));
            return !self.gone;
        };
        let s = tcp_of(set, at);
        if self.gone {
            // The application closed: what it wrote goes, then a FIN (read
            // below: its end reads EOF after the data); a reset if it left data
            // unread, as the kernel does. The entry goes once the connection is
            // closed.
            if s.can_recv() && !*app_eof && !*read_shut {
                s.abort();
            }
            *read_shut = true;
            if matches!(s.state(), State::Closed | State::TimeWait) {
                set_remove(engine, at);
                self.state = TcpState::Failed {
                    until: StdInstant::now(),
                };
                return false;
            }
        }
        let Some(fd) = self.fd.as_ref() else {
            return !self.gone;
        };
        // net → app
        while s.can_recv() {
            let r = s.recv(|buf| {
                if *read_shut {
                    return (buf.len(), Ok(buf.len()));
                }
                match rustix::io::write(fd, buf) {
                    Ok(n) => (n, Ok(n)),
                    Err(e) => (0, Err(e)),
                }
            });
            match r {
                Ok(Ok(n)) if n > 0 => *busy = true,
                Ok(Err(Errno::PIPE)) => *read_shut = true,
                _ => break,
            }
        }
        if !*eof_sent && !s.may_recv() && !s.can_recv() && is_made(s) {
            let _ = rustix::net::shutdown(fd, Shutdown::Write);
            *eof_sent = true;
        }
        // app → net. Read on every poll, not only after an event: a skipped
        // read would strand bytes until the connection timed out, were an
        // event ever missed; a read that finds nothing costs a system call.
        while !*app_eof && s.can_send() {
            let r = s.send(|buf| match rustix::io::read(fd, buf) {
                Ok(0) => (0, Some(0)),
                Ok(n) => (n, Some(n)),
                Err(Errno::AGAIN) => (0, None),
                Err(_) => (0, Some(0)),
            });
            match r {
                Ok(Some(0)) => {
                    *app_eof = true;
                    s.close();
                    *busy = true;
                }
                Ok(Some(_)) => *busy = true,
                _ => break,
            }
        }
        if s.state() == State::Closed || (s.state() == State::TimeWait && *app_eof) {
            if *app_eof && !*eof_sent && !*read_shut && s.can_recv() {
                // The peer's data before its FIN is still going to the
                // application (its end was full): the EOF comes after it.
                return true;
            }
            if *app_eof && *eof_sent {
                // Closed both ways: the application reads EOF, its writes
                // fail with EPIPE, as after a kernel's close; the entry stays a
                // while for its calls (options, names).
                set_remove(engine, at);
                self.state = TcpState::Failed {
                    until: StdInstant::now() + ERROR_KEPT,
                };
                self.fd = None;
                return !self.gone;
            }
            self.fail(engine, Some(Errno::CONNRESET));
            return !self.gone;
        }
        true
    }

    /// Keeps the listening pool full, and hands made connections to the
    /// application.
    pub(super) fn service_listener(&mut self, engine: &mut Engine, busy: &mut bool) {
        let TcpState::Listening {
            backlog,
            pool,
            ready,
        } = &mut self.state
        else {
            return;
        };
        let Some(local) = self.bound else { return };
        // Made connections leave the pool; failed ones listen again.
        let mut i = 0;
        while i < pool.len() {
            let at = pool[i];
            let Some(set) = engine.sockets(at.iface) else {
                pool.swap_remove(i);
                continue;
            };
            let s = tcp_of(set, at);
            if is_made(s) {
                // A wildcard endpoint takes both families: an IPv4 listener
                // refuses IPv6 (an IPv6 one takes IPv4, dual-stack).
                let v6_peer = s
                    .remote_endpoint()
                    .is_some_and(|e| SocketAddr::from(e).is_ipv6());
                if v6_peer && !self.v6 {
                    s.abort();
                    engine.orphans.push(at);
                } else {
                    ready.push_back(at);
                }
                pool.swap_remove(i);
                continue;
            }
            if s.state() == State::Closed {
                let _ = s.listen(local);
            }
            i += 1;
        }
        // Refill, within the backlog.
        let per_iface = (*backlog).clamp(1, MAX_LISTENING);
        if ready.len() < *backlog {
            for pos in engine.up_ifaces() {
                if !engine.iface_has(pos, local.ip()) {
                    continue;
                }
                let have = pool.iter().filter(|a| a.iface == pos).count();
                for _ in have..per_iface {
                    let mut s = new_socket(self.nodelay, self.hop_limit, engine.tcp_window(pos));
                    let ep = if local.ip().is_unspecified() {
                        smoltcp::wire::IpListenEndpoint {
                            addr: None,
                            port: local.port(),
                        }
                    } else {
                        local.into()
                    };
                    if s.listen(ep).is_err() {
                        break;
                    }
                    let set = engine.sockets(pos).expect("an up interface has sockets");
                    pool.push(At {
                        iface: pos,
                        handle: set.add(s),
                    });
                    *busy = true;
                }
            }
        }
        // Hand over what is made.
        let Some(lfd) = self.fd.as_ref() else { return };
        while let Some(&at) = ready.front() {
            let set = engine.sockets(at.iface).expect("made on an up interface");
            let s = tcp_of(set, at);
            let (Some(peer), Some(me)) = (s.remote_endpoint(), s.local_endpoint()) else {
                ready.pop_front();
                set.remove(at.handle);
                continue;
            };
            let (app, eng) = match bridge::pair(rustix::net::SocketType::STREAM) {
                Ok(p) => p,
                Err(_) => break,
            };
            let id = engine.new_id();
            let msg = AcceptMsg {
                id,
                peer: family_of(SocketAddr::from(peer), self.v6),
            };
            match bridge::send_accepted(lfd.as_fd(), &msg, app.as_fd()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(_) => break,
            }
            ready.pop_front();
            drop(app);
            let _ = engine.watch(eng.as_fd(), id);
            let mut conn = TcpSock::new(
                eng,
                self.v6,
                TcpState::Open {
                    at,
                    app_eof: false,
                    eof_sent: false,
                    read_shut: false,
                },
            );
            // The connection shares the listener's port: nothing to give back.
            conn.bound = None;
            conn.peer = Some(msg.peer);
            let _ = me;
            conn.nodelay = self.nodelay;
            conn.hop_limit = self.hop_limit;
            engine.socks.insert(id, super::sock::Sock::Tcp(conn));
            *busy = true;
        }
    }

    pub(super) fn release(self, engine: &mut Engine) {
        let mut ats: Vec<At> = Vec::new();
        match &self.state {
            TcpState::Connecting { at, .. } => ats.push(*at),
            TcpState::Open { at, .. } => ats.push(*at),
            TcpState::Listening { pool, ready, .. } => {
                ats.extend(pool.iter().copied());
                ats.extend(ready.iter().copied());
            }
            _ => {}
        }
        for at in ats {
            if let Some(set) = engine.sockets(at.iface) {
                // A connection never handed over is reset, as the kernel does
                // for a listener closed with connections queued.
                let s = tcp_of(set, at);
                if s.is_active() {
                    s.abort();
                    // Let the reset go out: the socket goes once closed.
                    engine.orphans.push(at);
                    continue;
                }
                set.remove(at.handle);
            }
        }
        if let Some(b) = self.bound {
            engine.ports.give_back(Proto::Tcp, b);
        }
    }
}

/// An address as a socket of the family (`v6`) shows it: IPv4 as IPv4-mapped
/// IPv6 on an IPv6 socket (dual-stack, as Linux).
pub(super) fn family_of(a: SocketAddr, v6: bool) -> SocketAddr {
    match a {
        SocketAddr::V4(v4) if v6 => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        a => a,
    }
}

fn set_remove(engine: &mut Engine, at: At) {
    if let Some(set) = engine.sockets(at.iface) {
        set.remove(at.handle);
    }
}
