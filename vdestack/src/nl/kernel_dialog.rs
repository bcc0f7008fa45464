//! [`KernelDialog`]: the [`Dialog`] over a real `NETLINK_ROUTE` socket (the
//! host's, or one made inside a stack with `Stack::socket(AF_NETLINK, SOCK_RAW,
//! NETLINK_ROUTE)`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::{self, SendFlags};

use super::dialog::Dialog;
use super::socket::{open_route_socket, recv_datagram, REPLY_TIMEOUT};
use super::wire::{
    self, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI,
};

/// A netlink dialog with the kernel (or with any peer that speaks rtnetlink on a
/// datagram socket).
///
/// Each request gets the next sequence number (1, 2, ...; never 0) and port id 0;
/// replies with another sequence number (left over from an earlier, interrupted
/// exchange) are skipped.
#[derive(Debug)]
pub struct KernelDialog {
    fd: OwnedFd,
    seq: u32,
    timeout: Option<Duration>,
}

impl KernelDialog {
    /// Opens a `NETLINK_ROUTE` socket of the host (close-on-exec, bound to port 0).
    pub fn new() -> io::Result<Self> {
        Ok(Self::from_fd(open_route_socket()?))
    }

    /// Uses a `NETLINK_ROUTE` socket the caller made (in this or another network
    /// namespace or stack). The kernel binds it on its first send.
    pub fn from_fd(fd: OwnedFd) -> Self {
        KernelDialog {
            fd,
            seq: 0,
            timeout: Some(REPLY_TIMEOUT),
        }
    }

    /// Sets how long to wait for each datagram of an answer (`None`: for ever); the
    /// default is [`REPLY_TIMEOUT`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }
}

impl AsFd for KernelDialog {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The whole bytes of a message that [`wire::split`] took apart.
fn whole(m: &wire::Message<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(NLMSG_HDRLEN + m.payload.len());
    v.extend_from_slice(&((NLMSG_HDRLEN + m.payload.len()) as u32).to_ne_bytes());
    v.extend_from_slice(&m.kind.to_ne_bytes());
    v.extend_from_slice(&m.flags.to_ne_bytes());
    v.extend_from_slice(&m.seq.to_ne_bytes());
    v.extend_from_slice(&m.pid.to_ne_bytes());
    v.extend_from_slice(m.payload);
    v
}

impl Dialog for KernelDialog {
    fn dialog(&mut self, request: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        if request.len() < NLMSG_HDRLEN {
            return Err(crate::error::context(
                io::Error::from_raw_os_error(libc::EINVAL),
                "netlink request shorter than its header",
            ));
        }
        let seq = self.next_seq();
        let mut req = request.to_vec();
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        req[12..16].copy_from_slice(&0u32.to_ne_bytes());
        let flags = u16::from_ne_bytes([req[6], req[7]]);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        // A request that is neither a dump nor asks for an ack ends at its one
        // reply: the kernel sends nothing after it.
        let first_ends = !dump && flags & NLM_F_ACK == 0;
        let n = net::send(&self.fd, &req, SendFlags::empty())?;
        if n != req.len() {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let mut out = Vec::new();
        loop {
            let dgram = recv_datagram(self.fd.as_fd(), self.timeout)?;
            for m in wire::split(&dgram)? {
                if m.seq != seq {
                    continue;
                }
                out.push(whole(&m));
                let ends = match m.kind {
                    NLMSG_ERROR => true,
                    NLMSG_DONE => dump,
                    _ => first_ends && m.flags & NLM_F_MULTI == 0,
                };
                if ends {
                    return Ok(out);
                }
            }
        }
    }
}
