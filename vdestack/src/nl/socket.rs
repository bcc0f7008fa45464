//! [`NlClient`]: one rtnetlink socket and the request/reply dialog over it.
//!
//! Unlike nlinline, which opens a fresh socket per call and reads one 36-byte
//! reply, the client keeps its socket, numbers its requests (seq 1, 2, 3, ...; the
//! bytes are otherwise nlinline's) and reads every reply to the end: all parts of a
//! dump (`NLM_F_MULTI` across several datagrams, up to `NLMSG_DONE`) and the ack
//! after a reply, so no stale message is left for the next call. Messages with
//! another sequence number (left over from an interrupted call) are skipped.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rustix::net::{self, netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::wire::{
    self, Builder, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_MULTI, NLM_F_REQUEST,
};
use crate::error::context;

/// How long to wait, by default, for each datagram of an answer before giving up
/// with `ETIMEDOUT` (the kernel answers at once; a stack's server might not).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a dump that the kernel marks interrupted (`NLM_F_DUMP_INTR`: the
/// table changed meanwhile) is retried before `EINTR` is returned.
const DUMP_TRIES: usize = 5;

/// A netlink route client over a socket: the host's ([`NlClient::new`]) or one the
/// caller made, e.g. inside another network stack ([`NlClient::from_fd`]).
///
/// It can be shared between threads: requests take turns on the socket, so no
/// thread reads another's answer.
#[derive(Debug)]
pub struct NlClient {
    fd: OwnedFd,
    seq: AtomicU32,
    turn: Mutex<()>,
    timeout: Option<Duration>,
}

/// How a request's answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// At the `NLMSG_ERROR` (ack or error); data messages before it are kept.
    Ack,
    /// At `NLMSG_DONE` (or an error).
    Done,
    /// At the first message (a GET without ACK).
    First,
}

/// The data messages of an answer (type, payload) and the ack's value, if any.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub msgs: Vec<(u16, Vec<u8>)>,
    pub ack: Option<i32>,
    /// Some message carried `NLM_F_DUMP_INTR`.
    pub interrupted: bool,
}

impl NlClient {
    /// Opens a `NETLINK_ROUTE` socket of the host (close-on-exec), bound to port 0.
    pub fn new() -> io::Result<Self> {
        Ok(Self::from_fd(open_route_socket()?))
    }

    /// Uses a `NETLINK_ROUTE` socket the caller made (in this or another network
    /// namespace or stack). It needs no bind: the kernel binds it on first send.
    /// Any datagram socket whose peer answers rtnetlink works too (e.g. one end of
    /// a socket pair whose other end is an emulated stack's netlink server).
    pub fn from_fd(fd: OwnedFd) -> Self {
        NlClient {
            fd,
            seq: AtomicU32::new(1),
            turn: Mutex::new(()),
            timeout: Some(REPLY_TIMEOUT),
        }
    }

    /// Sets how long to wait for each datagram of an answer (`None`: for ever);
    /// the default is [`REPLY_TIMEOUT`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Dumps every object of request type `kind` (`RTM_GETLINK`, ...) with the fixed
    /// header `fixed`; returns the payloads of the messages of type `reply`.
    /// Retries a dump that the kernel marks interrupted.
    pub(crate) fn dump(
        &self,
        kind: u16,
        fixed: &[u8],
        reply: u16,
        what: &str,
    ) -> io::Result<Vec<Vec<u8>>> {
        for _ in 0..DUMP_TRIES {
            let seq = self.next_seq();
            let msg = Builder::new(kind, NLM_F_REQUEST | NLM_F_DUMP, seq)
                .raw(fixed)
                .finish();
            let ans = self
                .dialog(&msg, seq, Until::Done)
                .map_err(|e| context(e, what))?;
            if !ans.interrupted {
                return Ok(ans
                    .msgs
                    .into_iter()
                    .filter(|(k, _)| *k == reply)
                    .map(|(_, p)| p)
                    .collect());
            }
        }
        Err(context(
            io::Error::from_raw_os_error(libc::EINTR),
            format!("{what}: interrupted {DUMP_TRIES} times"),
        ))
    }

    /// The next sequence number (1, 2, ...; never 0).
    pub(crate) fn next_seq(&self) -> u32 {
        loop {
            let s = self.seq.fetch_add(1, Ordering::Relaxed);
            if s != 0 {
                return s;
            }
        }
    }

    /// Sends `msg` (built with sequence number `seq`) and reads its answer.
    /// A negative error from the peer is an `io::Error` with that errno.
    pub(crate) fn dialog(&self, msg: &[u8], seq: u32, until: Until) -> io::Result<Answer> {
        // A poisoned lock only means another request panicked; the socket is fine
        // (stale replies are skipped by sequence number).
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        let n = net::send(&self.fd, msg, SendFlags::empty())?;
        if n != msg.len() {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let mut ans = Answer::default();
        loop {
            let dgram = self.recv_datagram()?;
            for m in wire::split(&dgram)? {
                if m.seq != seq {
                    continue;
                }
                ans.interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                match m.kind {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        let code = wire::error_code(m.payload)?;
                        if code < 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        ans.ack = Some(code);
                        return Ok(ans);
                    }
                    NLMSG_DONE => {
                        // A dump may end with a negative error in place of 0.
                        let code = if m.payload.len() >= 4 {
                            wire::error_code(m.payload)?
                        } else {
                            0
                        };
                        if code < 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        return Ok(ans);
                    }
                    NLMSG_OVERRUN => return Err(io::Error::from_raw_os_error(libc::EOVERFLOW)),
                    k if k < 16 => {
                        return Err(wire::malformed(&format!("control message type {k}")))
                    }
                    k => {
                        ans.msgs.push((k, m.payload.to_vec()));
                        if until == Until::First && m.flags & NLM_F_MULTI == 0 {
                            return Ok(ans);
                        }
                    }
                }
            }
        }
    }

    fn recv_datagram(&self) -> io::Result<Vec<u8>> {
        recv_datagram(self.fd.as_fd(), self.timeout)
    }
}

/// Opens a `NETLINK_ROUTE` socket of the host (close-on-exec), bound to port 0.
pub(crate) fn open_route_socket() -> io::Result<OwnedFd> {
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
/// Shared by [`NlClient`] and [`super::kernel_dialog::KernelDialog`].
pub(crate) fn recv_datagram(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<Vec<u8>> {
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

impl AsFd for NlClient {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
