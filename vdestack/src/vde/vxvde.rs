//! `vxvde://[GROUP][/opt...]`: a distributed switch over UDP multicast and unicast,
//! byte-compatible with Debian vdeplug 4.0.1's `libvdeplug_vxvde`.
//!
//! Every endpoint has two sockets. The *multicast* one is bound to GROUP:PORT with
//! `SO_REUSEADDR` (so every endpoint on a host shares the port) and joins the group.
//! The *unicast* one is bound to an ephemeral port; everything is sent from it, so
//! peers learn that port and answer there. Frames to a learned, fresh MAC go unicast to
//! the peer that sent it; all others go to the group. Each datagram is the 8-byte
//! VXLAN header followed by the frame, and only datagrams with exactly our header are
//! taken. A header alone is a goodbye: its sender is forgotten. The data fd is an
//! epoll fd over both sockets; [`RecvBatching::recv_batch`] takes up to 32 datagrams from
//! one of them with one `recvmmsg`, the one read first alternating.
//!
//! Debian's plugin drops received frames of exactly 14 bytes (it wants more than
//! 14); ours takes every frame of 14 bytes or more, as every other plug does.
//!
//! Options (prefixes accepted): `port=14789`, `vni=` (default: `grp`'s gid or 1),
//! `grp=`, `ttl=1`, `rcvbuf=`, `v4`, `v6`, `hashsize=1024`, `expiretime=128`, `if=`,
//! `bind=`. The default group is `239.0.0.1` (`ff05:56de::1` with `v6`).

pub mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::epoll;
use rustix::net::{self as rnet, sockopt};

use self::common::{Forwarder, VxConfig, HEADER_LEN};
use super::batch::SegmentBatch;
use super::datagram::{self, DatagramPlug, Out};
use super::{Backlog, Plug, Recv, RecvBatch, RecvBatching, SegmentBatching, MIN_FRAME};
use crate::error::context;

/// The option table, in upstream's order (it decides what a prefix means).
pub const TAGS: &[&str] = &[
    "port",
    "vni",
    "grp",
    "ttl",
    "rcvbuf",
    "v4",
    "v6",
    "hashsize",
    "expiretime",
    "if",
    "bind",
];

/// A `vxvde://` endpoint.
#[derive(Debug)]
pub struct Vxvde {
    mcast: OwnedFd,
    ucast: OwnedFd,
    epoll: OwnedFd,
    fwd: Forwarder,
    /// Where our own datagrams come from, to drop them when multicast loops them back.
    me: SocketAddr,
    /// Which socket to read first: alternated, so neither can starve the other.
    mcast_first: bool,
    /// The frames of the large segment being sent (and those a full peer has not
    /// taken yet, once asked to keep them).
    batch: SegmentBatch,
    /// What a member's receive queue holds ([`Plug::flight_frames`]).
    flight_frames: usize,
}

impl Vxvde {
    /// Opens `vxvde://ARG`.
    pub fn open(arg: &str) -> io::Result<Self> {
        let cfg = common::parse_config("vxvde", arg, TAGS, 14789)?;
        common::open_first_group("vxvde", arg, &cfg, Self::open_group)
    }

    fn open_group(cfg: &VxConfig, group: SocketAddr) -> io::Result<Self> {
        let mcast = common::udp_socket(&group)?;
        let ifx = common::ifindex(&mcast, cfg.ifname.as_deref())?;
        sockopt::set_socket_reuseaddr(&mcast, true)?;
        rnet::bind(&mcast, &group).map_err(|e| context(e, "binding the multicast socket"))?;
        common::join(&mcast, &group, ifx).map_err(|e| context(e, "joining the group"))?;
        if let Some(n) = cfg.rcvbuf {
            sockopt::set_socket_recv_buffer_size(&mcast, n)?;
        }

        let ucast = common::udp_socket(&group)?;
        let local = SocketAddr::new(cfg.bind.unwrap_or_else(|| unspecified(&group)), 0);
        rnet::bind(&ucast, &local)
            .map_err(|e| context(e, format!("binding the unicast socket to {local}")))?;
        common::set_output(&ucast, &group, cfg, ifx)?;
        let me = local_source(&ucast, &group, cfg, ifx)?;

        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        for (i, fd) in [&mcast, &ucast].into_iter().enumerate() {
            epoll::add(
                &ep,
                fd,
                epoll::EventData::new_u64(i as u64),
                epoll::EventFlags::IN,
            )?;
        }
        Ok(Self {
            fwd: Forwarder::new(cfg, group),
            flight_frames: common::flight_frames(&mcast),
            mcast,
            ucast,
            epoll: ep,
            me,
            mcast_first: true,
            batch: SegmentBatch::default(),
        })
    }

    /// The address and port our datagrams leave from (as peers see it).
    pub fn local_addr(&self) -> SocketAddr {
        self.me
    }

    /// Reads one datagram from `fd` and decides what it is.
    fn recv_one(&mut self, from_mcast: bool, buf: &mut [u8]) -> io::Result<Recv> {
        let mut hdr = [0u8; HEADER_LEN];
        let fd = if from_mcast { &self.mcast } else { &self.ucast };
        let (n, from) = common::recv_from(fd, &mut hdr, buf)?;
        let got = &hdr[..n.min(HEADER_LEN)];
        let frame = &buf[..n.saturating_sub(HEADER_LEN).min(buf.len())];
        if self.take(from_mcast, got, frame, from, Instant::now()) {
            Ok(Recv::Frame(frame.len()))
        } else {
            Ok(Recv::Nothing)
        }
    }

    /// Decides what a datagram (its `hdr` bytes, then `frame`) from `from` is:
    /// whether it is a frame for the caller. Learns its source MAC, or forgets the
    /// sender on a goodbye; drops a foreign header, our own multicast looped back
    /// and runts.
    fn take(
        &mut self,
        from_mcast: bool,
        hdr: &[u8],
        frame: &[u8],
        from: Option<SocketAddr>,
        now: Instant,
    ) -> bool {
        let Some(from) = from else {
            return false;
        };
        if hdr != self.fwd.header {
            return false;
        }
        if from_mcast && common::same_endpoint(&from, &self.me) {
            return false; // our own multicast, looped back
        }
        if frame.is_empty() {
            self.fwd.forget(&from); // goodbye
            return false;
        }
        if frame.len() < MIN_FRAME {
            return false;
        }
        self.fwd.learn(frame, from, now);
        true
    }

    /// Receives a batch from one socket and keeps its frames.
    fn recv_batch_from(&mut self, from_mcast: bool, batch: &mut RecvBatch) -> io::Result<Recv> {
        let fd = if from_mcast { &self.mcast } else { &self.ucast };
        let n = batch.receive(fd, true)?;
        let now = Instant::now();
        for i in 0..n {
            let (d, from) = batch.datagram(i);
            let (hdr, frame) = d.split_at(d.len().min(HEADER_LEN));
            if self.take(from_mcast, hdr, frame, from, now) {
                batch.keep(i, HEADER_LEN, usize::MAX);
            }
        }
        Ok(batch.outcome())
    }

    /// Tries both sockets, the one read first alternating so neither starves the
    /// other, with `recv` (one datagram) or a batch.
    fn recv_either(
        &mut self,
        mut recv: impl FnMut(&mut Self, bool) -> io::Result<Recv>,
    ) -> io::Result<Recv> {
        let first = self.mcast_first;
        self.mcast_first = !first;
        let mut last = io::Error::from(io::ErrorKind::WouldBlock);
        for from_mcast in [first, !first] {
            match recv(self, from_mcast) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => last = e,
                // An ICMP error queued on the socket is not a frame and not fatal.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
                    ) =>
                {
                    return Ok(Recv::Nothing)
                }
                other => return other,
            }
        }
        Err(last)
    }
}

/// The wildcard address of `group`'s family.
fn unspecified(group: &SocketAddr) -> IpAddr {
    match group {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// The source address and port our multicast datagrams carry: the unicast socket's
/// port, and the address the kernel picks toward the group (asked of a connected
/// probe socket with the same output settings, which sends nothing).
fn local_source(
    ucast: &OwnedFd,
    group: &SocketAddr,
    cfg: &VxConfig,
    ifx: u32,
) -> io::Result<SocketAddr> {
    let bound = SocketAddr::try_from(rnet::getsockname(ucast)?)
        .map_err(|_| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
    if !bound.ip().is_unspecified() {
        return Ok(bound);
    }
    let probe = common::udp_socket(group)?;
    common::set_output(&probe, group, cfg, ifx)?;
    rnet::connect(&probe, group)?;
    let via = SocketAddr::try_from(rnet::getsockname(&probe)?)
        .map_err(|_| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
    Ok(SocketAddr::new(via.ip(), bound.port()))
}

impl DatagramPlug for Vxvde {
    fn out(&mut self) -> Out<'_> {
        Out {
            fd: self.ucast.as_fd(),
            batch: &mut self.batch,
            prefix: &self.fwd.header,
            route: Some(&self.fwd),
        }
    }

    fn batch(&self) -> &SegmentBatch {
        &self.batch
    }

    fn socket(&self) -> BorrowedFd<'_> {
        self.ucast.as_fd()
    }

    fn send_failed(&self, e: rustix::io::Errno) -> Option<io::Error> {
        Some(crate::sys::send_error(e))
    }
}

impl Plug for Vxvde {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        datagram::send(self, frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        self.recv_either(|me, from_mcast| me.recv_one(from_mcast, buf))
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    fn segment_batching(&mut self) -> Option<&mut dyn SegmentBatching> {
        Some(self)
    }

    fn recv_batching(&mut self) -> Option<&mut dyn RecvBatching> {
        Some(self)
    }

    fn backlog(&mut self) -> Option<&mut dyn Backlog> {
        Some(self)
    }

    fn flight_frames(&self) -> Option<usize> {
        Some(self.flight_frames)
    }
}

impl RecvBatching for Vxvde {
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<Recv> {
        batch.clear();
        self.recv_either(|me, from_mcast| me.recv_batch_from(from_mcast, batch))
    }
}

impl Drop for Vxvde {
    fn drop(&mut self) {
        // Goodbye: peers forget our MACs at once instead of unicasting into the void
        // until the entries expire.
        let _ = common::send_to(&self.ucast, &self.fwd.group, &self.fwd.header, &[]);
    }
}
