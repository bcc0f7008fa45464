//! [`Engine`]: the state of one user-space stack, and its poll: smoltcp
//! interfaces (one per VDE interface, plus `lo`), the netlink state they are
//! made from, and the socket table.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, OnceLock};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use smoltcp::iface::{Config, Interface, Route, SocketHandle, SocketSet};
use smoltcp::phy::Medium;
use smoltcp::time::{Duration as SmolDuration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use super::device::{LoopDevice, PlugDevice};
use super::hops::{Hops, Recording};
use super::pool::Worker;
use super::ports::Ports;
use super::route::LO;
use super::sock::Sock;
use crate::nl::server::memstack::MemLinkKind;
use crate::nl::server::{MemStack, Server};
use crate::vde::gso::MAX_GSO_FRAME;
use crate::vde::poll_window::PollWindow;
use crate::vde::{Plug, MAX_FRAME};

/// A socket's id in its stack's table.
pub(crate) type SockId = u32;

/// The pool thread's frame buffers, lent to each stack it polls.
pub(crate) struct Scratch {
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// One datagram between an application's end and smoltcp.
    pub(super) dgram: Vec<u8>,
}

impl Scratch {
    pub(super) fn new() -> Self {
        Scratch {
            rx: vec![0; MAX_GSO_FRAME],
            tx: vec![0; MAX_GSO_FRAME],
            dgram: vec![0; 65536],
        }
    }
}

/// smoltcp's clock: milliseconds since the first stack of the process.
pub(super) fn smol_now(at: StdInstant) -> Instant {
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(StdInstant::now);
    Instant::from_micros(at.saturating_duration_since(epoch).as_micros() as i64)
}

fn std_at(t: Instant, now_smol: Instant, now: StdInstant) -> StdInstant {
    let d = (t - now_smol).total_micros();
    now + std::time::Duration::from_micros(d)
}

/// An interface's plug, and whether its fd is to be watched (`inproc://` wakes
/// the pool thread itself).
pub(super) type OpenPlug = (Box<dyn Plug>, bool);

/// Where an interface's frames go.
pub(super) enum Port {
    Plug(Box<dyn Plug>),
    Loop(LoopDevice),
}

/// smoltcp's side of an interface, made when the link first goes up.
pub(super) struct Net {
    pub(super) iface: Interface,
    pub(super) sockets: SocketSet<'static>,
}

/// One interface of the stack.
pub(super) struct Iface {
    /// Its netlink index.
    pub(super) link: u32,
    pub(super) port: Port,
    pub(super) net: Option<Box<Net>>,
    pub(super) up: bool,
    /// The MTU smoltcp was made with.
    pub(super) mtu: usize,
    pub(super) mac: [u8; 6],
    /// The plug's network is gone.
    pub(super) closed: bool,
    /// Its plug's fd is watched (not an `inproc://` plug, which wakes the pool
    /// thread itself).
    pub(super) watched: bool,
    /// Its plug carries large TCP segments whole (see `device.rs`).
    pub(super) large: bool,
    /// Its plug cuts large TCP segments itself (see `device.rs`).
    pub(super) tso: bool,
    /// The full-size frames its receivers queue, shared among the TCP
    /// connections that send on it (see `flight.rs`).
    pub(super) flight_frames: Option<usize>,
    /// Its addresses, when there are more than smoltcp holds (smoltcp then
    /// takes any address; `filter.rs` drops what is not ours).
    pub(super) only: Option<Vec<(IpAddr, u8)>>,
}

impl std::fmt::Debug for Iface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iface")
            .field("link", &self.link)
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

/// A smoltcp socket: its interface (a position in [`Engine::ifaces`]) and handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    pub(super) iface: usize,
    pub(super) handle: SocketHandle,
}

/// One user-space stack.
pub(crate) struct Engine {
    /// The configuration state (links, addresses, routes) and its netlink server.
    pub(super) nl: Server<MemStack>,
    /// `lo` first, then the VDE interfaces in the order given.
    pub(super) ifaces: Vec<Iface>,
    pub(super) socks: HashMap<SockId, Sock>,
    pub(super) next_id: SockId,
    pub(super) ports: Ports,
    /// The pool thread that polls the stack, and the stack's slot there (set
    /// once registered).
    pub(super) worker: Option<(Arc<Worker>, u64)>,
    /// smoltcp TCP sockets no entry owns, removed once closed (a reset to send).
    pub(super) orphans: Vec<At>,
    /// The DHCP clients, one per link at most.
    pub(super) dhcp: Vec<super::dhcp::Dhcp>,
    /// DHCP clients stopped, gone once their release is out.
    pub(super) dhcp_done: Vec<super::dhcp::Stopping>,
    /// Sockets whose application end hung up since the last poll.
    pub(super) hung_up: Vec<SockId>,
    /// A watched plug's fd had an event since frames were last taken (at
    /// first: there may be frames).
    pub(super) plugs_stirred: bool,
    /// The hop limits datagrams arrive with, by source.
    pub(super) hops: Hops,
    /// A seed for smoltcp's and our own random choices.
    seed: u64,
    /// The stack's traffic on its plugs, weighed as the pool threads weigh
    /// theirs: during bulk its senders leave its frames to its pool thread
    /// (`pool.rs`).
    traffic: PollWindow,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ifaces", &self.ifaces)
            .field("sockets", &self.socks.len())
            .finish_non_exhaustive()
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    u64::from_ne_bytes(b)
}

/// A locally administered unicast MAC from a random value.
fn random_mac(r: u64) -> [u8; 6] {
    let b = r.to_le_bytes();
    [(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

impl Engine {
    /// A stack with `lo` and one interface per (name, plug).
    pub(super) fn new(plugs: Vec<(String, OpenPlug)>, offload: bool) -> io::Result<Self> {
        let seed = random_u64();
        let mut mem = MemStack::new();
        let mut ifaces = vec![Iface {
            link: LO,
            port: Port::Loop(LoopDevice::default()),
            net: None,
            up: false,
            mtu: 65536,
            mac: [0; 6],
            closed: false,
            watched: false,
            large: false,
            tso: false,
            flight_frames: None,
            only: None,
        }];
        for (i, (name, (mut plug, watched))) in plugs.into_iter().enumerate() {
            // Large segments go whole where the plug carries them.
            let large = offload
                && match plug.offload() {
                    Some(o) => {
                        o.enable();
                        true
                    }
                    None => false,
                };
            let mac = random_mac(seed.rotate_left(8 * i as u32) ^ i as u64);
            let link = mem.add_device(&name, mac).map_err(|e| {
                crate::error::context(io::Error::from(e), format!("interface {name}"))
            })?;
            let _ = mem.set_carrier(link, true);
            let flight_frames = plug.flight_frames();
            // Segments cut by the plug, on the multicast datagram links only
            // (see `device.rs`).
            let tso = !large && flight_frames.is_some() && plug.segment_batching().is_some();
            ifaces.push(Iface {
                link,
                port: Port::Plug(plug),
                net: None,
                up: false,
                mtu: 1500,
                mac,
                closed: false,
                watched,
                large,
                tso,
                flight_frames,
                only: None,
            });
        }
        Ok(Engine {
            nl: Server::new(mem, 0),
            ifaces,
            socks: HashMap::new(),
            next_id: 1,
            ports: Ports::new(seed as u32),
            worker: None,
            hung_up: Vec::new(),
            plugs_stirred: true,
            hops: Hops::default(),
            orphans: Vec::new(),
            dhcp: Vec::new(),
            dhcp_done: Vec::new(),
            seed,
            traffic: PollWindow::new(StdDuration::ZERO),
        })
    }

    /// The stack's netlink state.
    pub(super) fn mem(&self) -> &MemStack {
        self.nl.stack()
    }

    /// The fds of the plugs, to watch.
    pub(super) fn plug_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.ifaces
            .iter()
            .filter_map(|i| match &i.port {
                Port::Plug(p) if i.watched => Some(p.data_fd()),
                _ => None,
            })
            .collect()
    }

    /// Watches a socket's engine end in the pool thread's epoll set.
    pub(super) fn watch(&self, fd: BorrowedFd<'_>, id: SockId) -> io::Result<()> {
        match &self.worker {
            Some((w, slot)) => w.watch(fd, *slot, id),
            None => Ok(()),
        }
    }

    /// The position in [`Engine::ifaces`] of link `link`.
    pub(super) fn iface_of(&self, link: u32) -> Option<usize> {
        self.ifaces.iter().position(|i| i.link == link)
    }

    /// A new socket id.
    pub(super) fn new_id(&mut self) -> SockId {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.socks.contains_key(&id) {
                return id;
            }
        }
    }

    /// Applies the netlink state to smoltcp: each interface up or down, its MTU,
    /// MAC, addresses and gateway routes.
    pub(crate) fn apply_config(&mut self) {
        let now = smol_now(StdInstant::now());
        let seed = self.seed;
        let mem = self.nl.stack();
        for (pos, ifc) in self.ifaces.iter_mut().enumerate() {
            let Some(link) = mem.links().iter().find(|l| l.index == ifc.link) else {
                ifc.up = false;
                continue;
            };
            let loopback = link.kind == MemLinkKind::Loopback;
            ifc.up = link.is_up();
            // An IP packet's length is 16 bits: lo's 65536 would wrap it.
            let mtu = (link.mtu as usize).clamp(68, if loopback { 65535 } else { MAX_FRAME - 14 });
            let mac = link.mac;
            let remake = ifc.net.is_some() && (ifc.mtu != mtu || (!loopback && ifc.mac != mac));
            ifc.mtu = mtu;
            ifc.mac = mac;
            if let Port::Loop(l) = &mut ifc.port {
                l.mtu = mtu;
            }
            if !ifc.up && ifc.net.is_none() {
                continue;
            }
            if ifc.net.is_none() || remake {
                let iface = new_interface(
                    &mut ifc.port,
                    mac,
                    mtu,
                    ifc.large,
                    ifc.tso,
                    seed ^ pos as u64,
                    now,
                );
                match &mut ifc.net {
                    Some(n) => n.iface = iface,
                    None => {
                        ifc.net = Some(Box::new(Net {
                            iface,
                            sockets: SocketSet::new(Vec::new()),
                        }))
                    }
                }
            }
            let net = ifc.net.as_mut().expect("made above");
            let conf = super::config::of_link(mem, ifc.link);
            // smoltcp flushes the neighbour cache on every address update: only
            // a real change may cost the neighbours (every netlink request, a dump
            // included, comes here; a flush left a DHCPRELEASE waiting on ARP).
            if net.iface.ip_addrs() != conf.addrs.as_slice() {
                net.iface.update_ip_addrs(|a| {
                    a.clear();
                    for c in conf.addrs.iter().take(a.capacity()) {
                        let _ = a.push(*c);
                    }
                });
            }
            net.iface.set_any_ip(loopback || conf.any_ip);
            ifc.only = (conf.any_ip && !loopback).then(|| {
                mem.addrs()
                    .iter()
                    .filter(|a| a.index == ifc.link)
                    .map(|a| (a.local, a.prefix))
                    .collect()
            });
            net.iface.routes_mut().update(|r| {
                r.clear();
                for (cidr, via) in &conf.routes {
                    let _ = r.push(Route {
                        cidr: *cidr,
                        via_router: *via,
                        preferred_until: None,
                        expires_at: None,
                    });
                }
            });
        }
    }

    /// Whether the stack's traffic is bulk (more than `vde::poll_window`'s
    /// [`BULK_BYTES`](crate::vde::poll_window::BULK_BYTES) a millisecond on its
    /// plugs, lately).
    pub(super) fn is_bulk(&self) -> bool {
        self.traffic.is_bulk()
    }

    /// Polls the stack: frames in and out of every interface, sockets' bytes
    /// moved, timers run. Returns when it wants to be polled again.
    pub(crate) fn poll(&mut self, now: StdInstant, scratch: &mut Scratch) -> Option<StdInstant> {
        let t = smol_now(now);
        for id in std::mem::take(&mut self.hung_up) {
            if let Some(s) = self.socks.get_mut(&id) {
                s.app_gone();
            }
        }
        for round in 0..16 {
            // Frames are taken in the first round only: what comes later
            // is an event (the plugs' fds are edge-triggered in the pool's
            // epoll; `inproc://` wakes the stack), and looking for it again
            // costs a receive that finds nothing on each of a plug's sockets.
            // Later rounds send what the sockets' services gave smoltcp.
            self.poll_ifaces(t, scratch, round == 0);
            let busy = self.service(t, scratch);
            let looped = self.ifaces.iter().any(|i| match &i.port {
                Port::Loop(l) => !l.queue.is_empty(),
                Port::Plug(_) => false,
            });
            if !busy && !looped {
                break;
            }
            if round == 15 {
                // More to do: come back at once.
                return Some(now);
            }
        }
        let mut next: Option<SmolDuration> = None;
        for ifc in &mut self.ifaces {
            if let (true, Some(net)) = (ifc.up, ifc.net.as_mut()) {
                if let Some(d) = net.iface.poll_delay(t, &net.sockets) {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
            }
        }
        let extra = self
            .socks
            .values()
            .filter_map(|s| s.deadline())
            .chain(self.dhcp.iter().filter_map(|d| d.deadline()))
            .chain(self.dhcp_done.iter().map(|d| d.until))
            .min();
        let mut at = next.map(|d| std_at(t + d, t, now));
        if let Some(e) = extra {
            at = Some(at.map_or(e, |a| a.min(e)));
        }
        at
    }

    /// Runs smoltcp on every interface: frames in (with `ingress`) and out.
    ///
    /// A watched plug's frames are taken only after its fd had an event since
    /// they were last taken (`plugs_stirred`): its fd is edge-triggered in the
    /// pool's epoll and was read until it had nothing, so a poll for a socket's
    /// bytes or a timer skips the receives that would find nothing.
    fn poll_ifaces(&mut self, t: Instant, scratch: &mut Scratch, ingress: bool) {
        let mut moved = 0;
        let stirred = self.plugs_stirred;
        if ingress {
            self.plugs_stirred = false;
        }
        for ifc in &mut self.ifaces {
            let ingress = ingress && (stirred || !ifc.watched);
            match (&mut ifc.port, ifc.up, ifc.net.as_mut()) {
                (Port::Plug(plug), true, Some(net)) => {
                    let mut dev = PlugDevice {
                        plug: &mut **plug,
                        rx: &mut scratch.rx,
                        tx: &mut scratch.tx,
                        mtu: ifc.mtu,
                        large: ifc.large,
                        tso: ifc.tso,
                        only: ifc.only.as_deref(),
                        closed: false,
                        moved: 0,
                    };
                    let mut rec = Recording {
                        dev: &mut dev,
                        hops: &mut self.hops,
                        ethernet: true,
                    };
                    if let Some(frames) = ifc.flight_frames {
                        // The link's MSS: the MTU less the IP and TCP headers.
                        super::flight::share(&mut net.sockets, frames, ifc.mtu.saturating_sub(40));
                    }
                    if ingress {
                        net.iface.poll(t, &mut rec, &mut net.sockets);
                    } else {
                        while net.iface.poll_egress(t, &mut rec, &mut net.sockets)
                            != smoltcp::iface::PollResult::None
                        {}
                    }
                    ifc.closed |= dev.closed;
                    moved += dev.moved;
                }
                (Port::Plug(plug), _, _) if ingress => {
                    // Down: frames are dropped, as a down link's are.
                    let mut closed = false;
                    while super::device::recv_frame(&mut **plug, &mut scratch.rx, &mut closed)
                        .is_some()
                    {}
                    ifc.closed |= closed;
                }
                (Port::Loop(dev), true, Some(net)) => {
                    let mut rec = Recording {
                        dev,
                        hops: &mut self.hops,
                        ethernet: false,
                    };
                    net.iface.poll(t, &mut rec, &mut net.sockets);
                }
                (Port::Loop(dev), _, _) => dev.queue.clear(),
                (Port::Plug(_), _, _) => {}
            }
        }
        if moved > 0 {
            self.traffic.moved(moved, StdInstant::now());
        }
    }

    /// Moves bytes between the sockets' engine ends and smoltcp, accepts,
    /// closes. Returns whether anything moved (smoltcp then has more to send).
    fn service(&mut self, t: Instant, scratch: &mut Scratch) -> bool {
        let mut busy = false;
        if !self.dhcp_done.is_empty() && super::dhcp::finish_stopped(self) {
            busy = true;
        }
        if !self.dhcp.is_empty() && super::dhcp::service(self) {
            busy = true;
        }
        let orphans = std::mem::take(&mut self.orphans);
        for at in orphans {
            let Some(set) = self.sockets(at.iface) else {
                continue;
            };
            let s = set.get::<smoltcp::socket::tcp::Socket>(at.handle);
            if s.state() == smoltcp::socket::tcp::State::Closed {
                set.remove(at.handle);
            } else {
                self.orphans.push(at);
            }
        }
        let ids: Vec<SockId> = self.socks.keys().copied().collect();
        for id in ids {
            let Some(mut s) = self.socks.remove(&id) else {
                continue;
            };
            let keep = s.service(id, self, t, &mut busy, scratch);
            if keep {
                self.socks.insert(id, s);
            } else {
                s.release(self);
            }
        }
        busy
    }

    /// Whether a connection the application let go of still has data or its
    /// FIN on the way, not yet acknowledged (orphans being reset count too).
    pub(super) fn closing(&mut self) -> bool {
        use smoltcp::socket::tcp::{Socket, State};
        let mut ats: Vec<At> = self
            .socks
            .values()
            .filter_map(|s| match s {
                Sock::Tcp(t) => t.let_go(),
                Sock::Dgram(_) => None,
            })
            .collect();
        ats.extend(self.orphans.iter().copied());
        ats.into_iter().any(|at| {
            self.sockets(at.iface).is_some_and(|set| {
                let state = set.get::<Socket>(at.handle).state();
                !matches!(state, State::Closed | State::TimeWait | State::FinWait2)
            })
        })
    }

    /// The TCP window for a connection on interface `pos` (see
    /// [`super::tcp_sock::TCP_BUFFER_WIRE`]).
    pub(super) fn tcp_window(&self, pos: usize) -> usize {
        match self.ifaces.get(pos) {
            Some(i) if i.large || matches!(i.port, Port::Loop(_)) => super::tcp_sock::TCP_BUFFER,
            _ => super::tcp_sock::TCP_BUFFER_WIRE,
        }
    }

    /// The smoltcp socket set of interface `pos`, made if need be.
    pub(super) fn sockets(&mut self, pos: usize) -> Option<&mut SocketSet<'static>> {
        self.ifaces
            .get_mut(pos)
            .and_then(|i| i.net.as_mut())
            .map(|n| &mut n.sockets)
    }

    /// The positions of the interfaces that are up and have smoltcp state.
    pub(super) fn up_ifaces(&self) -> Vec<usize> {
        (0..self.ifaces.len())
            .filter(|&i| self.ifaces[i].up && self.ifaces[i].net.is_some())
            .collect()
    }

    /// Whether `ip` is an address of interface `pos` (`lo` has them all).
    pub(super) fn iface_has(&self, pos: usize, ip: IpAddr) -> bool {
        let link = self.ifaces[pos].link;
        link == LO
            || ip.is_unspecified()
            || self
                .mem()
                .addrs()
                .iter()
                .any(|a| a.index == link && a.local == ip)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let socks: Vec<Sock> = self.socks.drain().map(|(_, s)| s).collect();
        for s in socks {
            s.release(self);
        }
    }
}

/// A smoltcp interface for `port`.
fn new_interface(
    port: &mut Port,
    mac: [u8; 6],
    mtu: usize,
    large: bool,
    tso: bool,
    seed: u64,
    now: Instant,
) -> Interface {
    let (hw, medium) = match port {
        Port::Plug(_) => (
            HardwareAddress::Ethernet(EthernetAddress(mac)),
            Medium::Ethernet,
        ),
        Port::Loop(_) => (HardwareAddress::Ip, Medium::Ip),
    };
    let mut config = Config::new(hw);
    config.random_seed = seed;
    let mut caps_dev = CapsOnly(if medium == Medium::Ethernet {
        super::device::plug_caps(mtu, large, tso)
    } else {
        super::device::caps(medium, mtu)
    });
    Interface::new(config, &mut caps_dev, now)
}

/// A device that only states capabilities, to make an interface with.
struct CapsOnly(smoltcp::phy::DeviceCapabilities);

impl smoltcp::phy::Device for CapsOnly {
    type RxToken<'a> = super::device::LoopRx;
    type TxToken<'a> = super::device::LoopTx<'a>;
    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        None
    }
    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        None
    }
    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.0.clone()
    }
}

/// A smoltcp address from ours.
pub(super) fn smol_ip(ip: IpAddr) -> IpAddress {
    IpAddress::from(ip)
}

/// The IP CIDR of an address and prefix.
pub(super) fn cidr(ip: IpAddr, prefix: u8) -> IpCidr {
    IpCidr::new(smol_ip(ip), prefix)
}
