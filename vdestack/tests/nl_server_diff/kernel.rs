//! The kernel's side of the differential test: a NETLINK_ROUTE socket in the
//! test's namespace, a request/answer exchange that knows when the kernel is done,
//! and waits for the kernel's asynchronous steps.

use std::os::fd::OwnedFd;

use rustix::net::{self, netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use vdestack::nl::wire::{self, *};

const SYNC_SEQ: u32 = 0xfeed_0000;

/// The kernel's side: a NETLINK_ROUTE socket and its port id.
pub struct Kernel {
    fd: OwnedFd,
    /// The socket's port id.
    pub port: u32,
    syncs: u32,
}

impl Kernel {
    /// A bound NETLINK_ROUTE socket.
    pub fn new() -> Self {
        let fd = net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 0)).unwrap();
        let addr = netlink::SocketAddrNetlink::try_from(net::getsockname(&fd).unwrap()).unwrap();
        Kernel {
            fd,
            port: addr.pid(),
            syncs: 0,
        }
    }

    /// Sends `req`, then a NOOP asking for an ACK, and returns every message up to
    /// (without) that ACK: all the kernel answered to `req`, nothing more.
    pub fn ask(&mut self, req: &[u8]) -> Vec<Vec<u8>> {
        if let Err(e) = net::send(&self.fd, req, SendFlags::empty()) {
            // What the kernel refuses at send time (the caller sees the errno).
            return vec![format!("send: {e:?}").into_bytes()];
        }
        self.syncs += 1;
        let seq = SYNC_SEQ + self.syncs;
        let sync = Builder::new(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, seq).finish();
        net::send(&self.fd, &sync, SendFlags::empty()).unwrap();
        // A dump's later parts come as the reader drains the socket, after the
        // sync's ACK: read until that ACK and every dump's end have come.
        let mut dumps: Vec<u32> = vdestack::nl::server::frame::split(req)
            .iter()
            .map(|(h, _)| h)
            .filter(|h| {
                h.kind >= 16
                    && h.kind & 3 == 2
                    && h.flags & NLM_F_REQUEST != 0
                    && h.flags & NLM_F_DUMP != 0
            })
            .map(|h| h.seq)
            .collect();
        let mut synced = false;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while !synced || !dumps.is_empty() {
            assert!(vdestack_poll(&self.fd), "the kernel did not answer");
            let (n, _) = net::recv(&self.fd, &mut buf[..], RecvFlags::empty()).unwrap();
            for m in wire::split(&buf[..n]).unwrap() {
                if m.seq == seq && m.kind == NLMSG_ERROR {
                    synced = true;
                    continue;
                }
                if m.kind == NLMSG_DONE || m.kind == NLMSG_ERROR {
                    dumps.retain(|d| *d != m.seq);
                }
                let len = NLMSG_HDRLEN + m.payload.len();
                let start = m.payload.as_ptr() as usize - buf.as_ptr() as usize - NLMSG_HDRLEN;
                out.push(buf[start..start + len].to_vec());
            }
        }
        out
    }
}

/// The IPv6 address a successful `RTM_NEWADDR` added, if `req` is one.
pub fn new_v6_addr(req: &[u8]) -> Option<Vec<u8>> {
    let (h, m) = *vdestack::nl::server::frame::split(req).first()?;
    if h.kind != RTM_NEWADDR || m.get(16) != Some(&(libc::AF_INET6 as u8)) {
        return None;
    }
    let attrs = wire::attrs(m.get(24..)?).ok()?;
    attrs
        .iter()
        .find(|(t, _)| *t == IFA_LOCAL)
        .or(attrs.iter().find(|(t, _)| *t == IFA_ADDRESS))
        .map(|(_, v)| v.to_vec())
}

/// The kernel adds an IPv6 address's local route from a work queue, a moment
/// after it acknowledged the address: wait (up to 5 s) until the route is there,
/// so that the next dump shows the state the request leads to.
pub fn settle_v6(kernel: &mut Kernel, addr: &[u8]) {
    for i in 0..250 {
        let dump = Builder::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 0xabc0_0000 + i)
            .raw(&[libc::AF_INET6 as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .finish();
        let found = kernel.ask(&dump).iter().any(|m| {
            wire::split(m)
                .ok()
                .and_then(|v| v.first().copied())
                .is_some_and(|m| {
                    m.kind == RTM_NEWROUTE
                        && m.payload.get(7) == Some(&2)
                        && wire::attrs(&m.payload[12..])
                            .unwrap_or_default()
                            .iter()
                            .any(|(t, v)| *t == 1 && *v == addr)
                })
        });
        if found {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The kernel derives `IFF_RUNNING` and the operational state from the carrier in
/// a work queue (linkwatch), a moment after a link or its peer changed: wait (up
/// to 5 s) until every link's flags and state agree with its carrier.
pub fn settle_links(kernel: &mut Kernel) {
    const UP: u32 = 0x1;
    const RUNNING: u32 = 0x40;
    const LOWER_UP: u32 = 0x10000;
    for i in 0..250 {
        let dump = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0xabd0_0000 + i)
            .raw(&[0; 16])
            .finish();
        let steady = kernel.ask(&dump).iter().all(|m| {
            let Some(m) = wire::split(m).ok().and_then(|v| v.first().copied()) else {
                return true;
            };
            if m.kind != RTM_NEWLINK || m.payload.len() < 16 {
                return true;
            }
            let f = u32::from_ne_bytes([m.payload[8], m.payload[9], m.payload[10], m.payload[11]]);
            let oper = wire::attrs(&m.payload[16..])
                .unwrap_or_default()
                .iter()
                .find(|(t, _)| *t == 16)
                .and_then(|(_, v)| v.first().copied());
            let carrier = f & UP != 0 && f & LOWER_UP != 0;
            (f & RUNNING != 0) == carrier
                && !(carrier && matches!(oper, Some(2 | 3)))
                && !(f & UP != 0 && !carrier && oper == Some(6))
        });
        if steady {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn vdestack_poll(fd: &OwnedFd) -> bool {
    let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    let t = rustix::event::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut p, Some(&t)).unwrap() > 0
}
