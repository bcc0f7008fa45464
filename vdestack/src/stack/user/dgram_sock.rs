//! A datagram socket of the table: UDP, or ICMP echo ("ping socket"). Its
//! engine end is a `SOCK_SEQPACKET` pair carrying plain payloads; each
//! datagram's source address is pushed on a FIFO the application's side pops
//! ([`Sources`]) before the payload is written. Writes on the pair go to the
//! connected peer; sends to an address are a control call ([`send_to`]).
//!
//! A datagram socket has one smoltcp socket per interface that is up (smoltcp
//! dispatches per interface), all bound alike; a send goes out through the one
//! of the interface the route picks.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use smoltcp::socket::{icmp, udp};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::engine::{smol_ip, At, Engine, Scratch};
use super::ports::Proto;
use super::route;

/// Datagrams (and payload bytes) each direction of a smoltcp socket holds.
const DGRAM_PACKETS: usize = 64;
const DGRAM_BYTES: usize = 256 * 1024;

/// Where a datagram written to a socket's engine end came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    /// The sender.
    pub(crate) from: SocketAddr,
    /// The hop limit (IPv4: TTL) its packet arrived with.
    pub(crate) hop_limit: u8,
}

/// The sources of the datagrams written to a socket's engine end, in order;
/// the application's side pops one per datagram it reads.
pub(crate) type Sources = Arc<Mutex<VecDeque<Source>>>;

/// The hop limit told when none was noted (see `hops.rs`): the usual initial one.
const HOPS_UNKNOWN: u8 = 64;

/// UDP or ICMP echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DgramKind {
    Udp,
    Icmp,
}

/// A datagram socket.
#[derive(Debug)]
pub(super) struct DgramSock {
    pub(super) fd: OwnedFd,
    pub(super) kind: DgramKind,
    pub(super) v6: bool,
    /// The local address (ICMP: the port is the echo identifier), once bound.
    pub(super) bound: Option<SocketAddr>,
    /// The connected peer.
    pub(super) peer: Option<SocketAddr>,
    /// The smoltcp sockets, one per up interface.
    pub(super) at: Vec<At>,
    pub(super) sources: Sources,
    pub(super) error: Option<Errno>,
    pub(super) hop_limit: Option<u8>,
    pub(super) broadcast: bool,
    pub(super) gone: bool,
}

impl DgramSock {
    pub(super) fn new(fd: OwnedFd, kind: DgramKind, v6: bool) -> Self {
        DgramSock {
            fd,
            kind,
            v6,
            bound: None,
            peer: None,
            at: Vec::new(),
            sources: Arc::new(Mutex::new(VecDeque::new())),
            error: None,
            hop_limit: None,
            broadcast: false,
            gone: false,
        }
    }

    pub(super) fn proto(&self) -> Proto {
        match self.kind {
            DgramKind::Udp => Proto::Udp,
            DgramKind::Icmp => Proto::Icmp,
        }
    }

    /// Binds to `addr` (port 0: an ephemeral one), if not bound yet.
    pub(super) fn bind(&mut self, engine: &mut Engine, addr: SocketAddr) -> Result<(), Errno> {
        if self.bound.is_some() {
            return Err(Errno::INVAL);
        }
        let taken = engine.ports.take(self.proto(), addr)?;
        self.bound = Some(taken);
        self.refresh(engine);
        Ok(())
    }

    fn ensure_bound(&mut self, engine: &mut Engine) -> Result<SocketAddr, Errno> {
        if self.bound.is_none() {
            let any = route::unspecified_like(if self.v6 {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            });
            self.bind(engine, SocketAddr::new(any, 0))?;
        }
        Ok(self.bound.expect("bound above"))
    }

    /// Makes the smoltcp sockets of the interfaces that came up.
    pub(super) fn refresh(&mut self, engine: &mut Engine) {
        let Some(local) = self.bound else { return };
        for pos in engine.up_ifaces() {
            if self.at.iter().any(|a| a.iface == pos) || !engine.iface_has(pos, local.ip()) {
                continue;
            }
            let set = engine.sockets(pos).expect("up");
            let handle = match self.kind {
                DgramKind::Udp => {
                    let mut s = udp::Socket::new(udp_buffer(), udp_buffer());
                    let ep = IpListenEndpoint {
                        addr: (!local.ip().is_unspecified()).then(|| smol_ip(local.ip())),
                        port: local.port(),
                    };
                    if s.bind(ep).is_err() {
                        continue;
                    }
                    s.set_hop_limit(self.hop_limit);
                    set.add(s)
                }
                DgramKind::Icmp => {
                    let mut s = icmp::Socket::new(icmp_buffer(), icmp_buffer());
                    if s.bind(icmp::Endpoint::Ident(local.port())).is_err() {
                        continue;
                    }
                    s.set_hop_limit(self.hop_limit);
                    set.add(s)
                }
            };
            self.at.push(At { iface: pos, handle });
        }
    }

    pub(super) fn service(
        &mut self,
        engine: &mut Engine,
        busy: &mut bool,
        scratch: &mut Scratch,
    ) -> bool {
        if self.gone {
            return false;
        }
        self.refresh(engine);
        // net → app
        for i in 0..self.at.len() {
            let at = self.at[i];
            while let Some(set) = engine.sockets(at.iface) {
                let got = match self.kind {
                    DgramKind::Udp => {
                        let s = set.get_mut::<udp::Socket>(at.handle);
                        match s.peek() {
                            Ok((payload, meta)) => {
                                let from = SocketAddr::from(meta.endpoint);
                                let n = payload.len().min(scratch.dgram.len());
                                scratch.dgram[..n].copy_from_slice(&payload[..n]);
                                Some((n, from))
                            }
                            Err(_) => None,
                        }
                    }
                    DgramKind::Icmp => {
                        let s = set.get_mut::<icmp::Socket>(at.handle);
                        match s.recv_slice(&mut scratch.dgram) {
                            Ok((n, from)) => Some((n, SocketAddr::new(from.into(), 0))),
                            Err(_) => None,
                        }
                    }
                };
                let Some((n, from)) = got else { break };
                // A wildcard IPv4 socket takes no IPv6; an IPv6 one sees IPv4
                // senders mapped.
                if from.is_ipv6() && !self.v6 {
                    if self.kind == DgramKind::Udp {
                        let _ = set.get_mut::<udp::Socket>(at.handle).recv();
                    }
                    continue;
                }
                let hop_limit = engine.hops.of(from.ip()).unwrap_or(HOPS_UNKNOWN);
                let from = super::tcp_sock::family_of(from, self.v6 && self.kind == DgramKind::Udp);
                let wanted = match self.peer {
                    Some(p) => {
                        super::tcp_sock::family_of(p, self.v6 && self.kind == DgramKind::Udp).ip()
                            == from.ip()
                            && (self.kind == DgramKind::Icmp || p.port() == from.port())
                    }
                    None => true,
                } && (self.kind == DgramKind::Udp
                    || is_echo_reply(&scratch.dgram[..n], self.v6));
                let source = Source { from, hop_limit };
                let delivered = !wanted || self.deliver(&scratch.dgram[..n], source);
                if self.kind == DgramKind::Udp {
                    if !delivered {
                        // The application's queue is full: leave it in smoltcp's.
                        break;
                    }
                    if let Some(set) = engine.sockets(at.iface) {
                        let _ = set.get_mut::<udp::Socket>(at.handle).recv();
                    }
                }
                *busy = true;
            }
        }
        // app → net: datagrams written to the pair go to the connected peer.
        loop {
            let n = match rustix::net::recv(&self.fd, &mut scratch.dgram[..], RecvFlags::DONTWAIT) {
                Ok((_, n)) => n,
                Err(Errno::INTR) => continue,
                Err(_) => break,
            };
            if n == 0 && super::bridge::hung_up(&self.fd) {
                return false;
            }
            match self.peer {
                Some(p) => {
                    let payload = scratch.dgram[..n].to_vec();
                    if let Err(e) = send_to(self, engine, &payload, p) {
                        self.error = Some(e);
                    }
                }
                None => self.error = Some(Errno::DESTADDRREQ),
            }
            *busy = true;
        }
        true
    }

    /// Writes one datagram to the engine end, its source first on the FIFO;
    /// `false` when the application's queue is full.
    fn deliver(&self, payload: &[u8], source: Source) -> bool {
        if payload.is_empty() {
            // An empty message would read as the end of the pair: dropped.
            return true;
        }
        let mut q = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(source);
        match rustix::net::send(&self.fd, payload, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(_) => true,
            Err(_) => {
                q.pop_back();
                false
            }
        }
    }

    pub(super) fn release(self, engine: &mut Engine) {
        for at in &self.at {
            if let Some(set) = engine.sockets(at.iface) {
                set.remove(at.handle);
            }
        }
        if let Some(b) = self.bound {
            engine.ports.give_back(self.proto(), b);
        }
    }
}

/// Whether an ICMP message is an echo reply (a ping socket receives only those;
/// smoltcp's socket of the identifier also sees requests, e.g. its own on `lo`).
fn is_echo_reply(msg: &[u8], v6: bool) -> bool {
    msg.first() == Some(if v6 { &129 } else { &0 })
}

fn udp_buffer() -> udp::PacketBuffer<'static> {
    udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; DGRAM_PACKETS],
        vec![0u8; DGRAM_BYTES],
    )
}

fn icmp_buffer() -> icmp::PacketBuffer<'static> {
    icmp::PacketBuffer::new(
        vec![icmp::PacketMetadata::EMPTY; DGRAM_PACKETS / 4],
        vec![0u8; DGRAM_BYTES / 4],
    )
}

/// Sends `payload` to `dst` from socket `s`: routed, bound first if need be.
/// `ENETUNREACH` (no route), `EMSGSIZE` (larger than the buffer), `ENOBUFS`
/// (the buffer is full: the caller may wait and retry), `EAFNOSUPPORT` (the
/// other family), `EACCES` (broadcast without `SO_BROADCAST`).
pub(super) fn send_to(
    s: &mut DgramSock,
    engine: &mut Engine,
    payload: &[u8],
    dst: SocketAddr,
) -> Result<usize, Errno> {
    if dst.is_ipv6() != s.v6 {
        return Err(Errno::AFNOSUPPORT);
    }
    // An IPv6 socket reaches IPv4 through mapped addresses (dual-stack).
    let dst = super::socket_api::unmapped(dst);
    if payload.len() > DGRAM_BYTES / 4 {
        return Err(Errno::MSGSIZE);
    }
    let is_bcast = matches!(dst.ip(), IpAddr::V4(a) if a.is_broadcast());
    if is_bcast && !s.broadcast {
        return Err(Errno::ACCESS);
    }
    let local = s.ensure_bound(engine)?;
    let choice = if is_bcast {
        // The first up interface with an IPv4 address.
        let mem = engine.mem();
        let a = mem
            .addrs()
            .iter()
            .find(|a| {
                a.local.is_ipv4() && mem.links().iter().any(|l| l.index == a.index && l.is_up())
            })
            .ok_or(Errno::NETUNREACH)?;
        route::Choice {
            link: a.index,
            src: a.local,
        }
    } else {
        route::choose_addr(engine.mem(), &dst)?
    };
    let pos = engine.iface_of(choice.link).ok_or(Errno::NETUNREACH)?;
    // No fragments: a datagram must fit the link (lo takes any).
    let headers = if s.v6 { 48 } else { 28 };
    if choice.link != route::LO && payload.len() + headers > engine.ifaces[pos].mtu {
        return Err(Errno::MSGSIZE);
    }
    s.refresh(engine);
    let at = *s
        .at
        .iter()
        .find(|a| a.iface == pos)
        .ok_or(Errno::NETUNREACH)?;
    let src = if local.ip().is_unspecified() {
        choice.src
    } else {
        local.ip()
    };
    let set = engine.sockets(pos).ok_or(Errno::NETUNREACH)?;
    match s.kind {
        DgramKind::Udp => {
            let sock = set.get_mut::<udp::Socket>(at.handle);
            let meta = udp::UdpMetadata {
                endpoint: IpEndpoint::from(dst),
                local_address: Some(smol_ip(src)),
                meta: Default::default(),
            };
            sock.send_slice(payload, meta).map_err(|e| match e {
                udp::SendError::BufferFull => Errno::NOBUFS,
                udp::SendError::Unaddressable => Errno::INVAL,
            })?;
        }
        DgramKind::Icmp => {
            if payload.len() < 8 {
                return Err(Errno::INVAL);
            }
            let mut msg = payload.to_vec();
            // The kernel puts the socket's identifier in; the checksum smoltcp
            // computes.
            msg[4..6].copy_from_slice(&local.port().to_be_bytes());
            let sock = set.get_mut::<icmp::Socket>(at.handle);
            sock.send_slice(&msg, smol_ip(dst.ip()))
                .map_err(|e| match e {
                    icmp::SendError::BufferFull => Errno::NOBUFS,
                    icmp::SendError::Unaddressable => Errno::INVAL,
                })?;
        }
    }
    Ok(payload.len())
}
