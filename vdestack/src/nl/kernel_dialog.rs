//! [`KernelDialog`]: the [`Dialog`] over a real `NETLINK_ROUTE` socket (the
//! host's, or one made inside a stack). Sequence numbers and reply timeouts live
//! here: only a socket can hold a stale reply, or keep one waiting.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::{self, netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::dialog::Dialog;
use super::wire::{
    self, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI,
};
use crate::error::context;

/// How long to wait, by default, for each datagram of an answer before giving up
/// with `ETIMEDOUT` (the kernel answers at once; a stack's server might not).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The default is [`REPLY_TIMEOUT`].
    fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

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

/// Opens a `NETLINK_ROUTE` socket of the host (close-on-exec), bound to port 0.
fn open_route_socket() -> io::Result<OwnedFd> {
    let fd = net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE is protocol 0: rustix names no constant for it
    )
    .map_err(|e| context(e, "netlink socket"))?;
    net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 0))
        .map_err(|e| context(e, "binding the netlink socket"))?;
    Ok(fd)
}

/// Receives one whole datagram from `fd`, sized by a `MSG_PEEK | MSG_TRUNC` look
/// first; `ETIMEDOUT` when nothing comes within `timeout` (`None`: wait for ever).
fn recv_datagram(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<Vec<u8>> {
    if !crate::sys::poll_readable(fd, timeout)? {
        // poll_readable also returns false on EINTR; one retry covers that.
        if !crate::sys::poll_readable(fd, timeout)? {
            return Err(context(
                io::Error::from_raw_os_error(libc::ETIMEDOUT),
                "no netlink reply",
            ));
        }
    }
    let mut probe = [0u8; 0];
    let (_, size) = net::recv(fd, &mut probe[..], RecvFlags::PEEK | RecvFlags::TRUNC)?;
    let mut buf = vec![0u8; size.max(16)];
    let (n, _) = net::recv(fd, &mut buf[..], RecvFlags::empty())?;
    buf.truncate(n);
    Ok(buf)
}
