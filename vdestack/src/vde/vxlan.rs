//! `vxlan://[GROUP][/opt...]`: VXLAN as the Linux kernel's `vxlan` device speaks it.
//!
//! One UDP socket is bound to the wildcard address at the VXLAN port (so one endpoint
//! per host and port, like upstream and like the kernel), joins the group and has
//! multicast loopback off. Every datagram is the 8-byte VXLAN header and a frame; on
//! receive only the flags byte (`0x08`) and the VNI are checked. Source MACs are
//! learned with the sender's address and the VXLAN port (the kernel sends from a
//! hashed source port but listens on the VXLAN port), and frames to a learned MAC go
//! there; everything else goes to the group.
//!
//! Options (prefixes accepted): `port=4789`, `vni=1`, `ttl=1`, `rcvbuf=`, `v4`, `v6`,
//! `hashsize=1024`, `expiretime=128`, `if=`. The default group is `239.0.0.1`
//! (`ff05:56de::1` with `v6`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::net::{self as rnet, sockopt};

use super::batch::SegmentBatch;
use super::datagram::{self, DatagramPlug, Out};
use super::vxvde::common::{self, Forwarder, VxConfig, HEADER_LEN};
use super::{Backlog, Plug, Recv, RecvBatch, RecvBatching, SegmentBatching, MIN_FRAME};
use crate::error::context;

/// The option table, in upstream's order.
const TAGS: &[&str] = &[
    "port",
    "vni",
    "ttl",
    "rcvbuf",
    "v4",
    "v6",
    "hashsize",
    "expiretime",
    "if",
];

/// A `vxlan://` endpoint.
#[derive(Debug)]
pub struct Vxlan {
    fd: OwnedFd,
    fwd: Forwarder,
    vni: u32,
    /// The frames of the large segment being sent (and those a full peer has not
    /// taken yet, once asked to keep them).
    batch: SegmentBatch,
    /// What a member's receive queue holds ([`Plug::flight_frames`]).
    flight_frames: usize,
}

impl Vxlan {
    /// Opens `vxlan://ARG`.
    pub fn open(arg: &str) -> io::Result<Self> {
        let cfg = common::parse_config("vxlan", arg, TAGS, 4789)?;
        common::open_first_group("vxlan", arg, &cfg, Self::open_group)
    }

    fn open_group(cfg: &VxConfig, group: SocketAddr) -> io::Result<Self> {
        let fd = common::udp_socket(&group)?;
        let ifx = common::ifindex(&fd, cfg.ifname.as_deref())?;
        let any = match group {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let local = SocketAddr::new(any, group.port());
        rnet::bind(&fd, &local).map_err(|e| context(e, format!("binding {local}")))?;
        common::join(&fd, &group, ifx).map_err(|e| context(e, "joining the group"))?;
        match group {
            SocketAddr::V4(_) => sockopt::set_ip_multicast_loop(&fd, false)?,
            SocketAddr::V6(_) => sockopt::set_ipv6_multicast_loop(&fd, false)?,
        }
        common::set_output(&fd, &group, cfg, ifx)?;
        Ok(Self {
            flight_frames: common::flight_frames(&fd),
            fd,
            fwd: Forwarder::new(cfg, group),
            vni: cfg.vni,
            batch: SegmentBatch::default(),
        })
    }
}

impl Vxlan {
    /// Whether a datagram (its `hdr` bytes, then `frame`) from `from` is a frame
    /// of our VNI; if so, learns its source MAC (behind the sender's address and
    /// the VXLAN port).
    fn take(&mut self, hdr: &[u8], frame: &[u8], from: Option<SocketAddr>, now: Instant) -> bool {
        let Some(from) = from else {
            return false;
        };
        if frame.len() < MIN_FRAME || common::decode_vni(hdr) != Some(self.vni) {
            return false;
        }
        let peer = SocketAddr::new(from.ip(), self.fwd.group.port());
        self.fwd.learn(frame, peer, now);
        true
    }
}

/// A queued ICMP error: not a frame and not fatal.
fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}

impl DatagramPlug for Vxlan {
    fn out(&mut self) -> Out<'_> {
        Out {
            fd: self.fd.as_fd(),
            batch: &mut self.batch,
            prefix: &self.fwd.header,
            route: Some(&self.fwd),
        }
    }

    fn batch(&self) -> &SegmentBatch {
        &self.batch
    }

    fn socket(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn send_failed(&self, e: rustix::io::Errno) -> Option<io::Error> {
        Some(crate::sys::send_error(e))
    }
}

impl Plug for Vxlan {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        datagram::send(self, frame)
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let mut hdr = [0u8; HEADER_LEN];
        let (n, from) = match common::recv_from(&self.fd, &mut hdr, buf) {
            Ok(r) => r,
            Err(e) if is_icmp_error(&e) => return Ok(Recv::Nothing),
            Err(e) => return Err(e),
        };
        let got = &hdr[..n.min(HEADER_LEN)];
        let frame = &buf[..n.saturating_sub(HEADER_LEN).min(buf.len())];
        if self.take(got, frame, from, Instant::now()) {
            Ok(Recv::Frame(frame.len()))
        } else {
            Ok(Recv::Nothing)
        }
    }
}

impl RecvBatching for Vxlan {
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<Recv> {
        let n = match batch.receive(&self.fd, true) {
            Ok(n) => n,
            Err(e) if is_icmp_error(&e) => return Ok(Recv::Nothing),
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        for i in 0..n {
            let (d, from) = batch.datagram(i);
            let (hdr, frame) = d.split_at(d.len().min(HEADER_LEN));
            if self.take(hdr, frame, from, now) {
                batch.keep(i, HEADER_LEN, usize::MAX);
            }
        }
        Ok(batch.outcome())
    }
}
