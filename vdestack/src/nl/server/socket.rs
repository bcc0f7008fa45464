//! A transport for [`Server`]: one end of a `SOCK_SEQPACKET` socket pair goes to
//! the caller (give it to [`crate::nl::NlClient::from_fd`]); a thread answers each
//! datagram on the other end, packing the replies into datagrams as the kernel
//! packs a dump's parts (several messages per datagram, up to [`DATAGRAM_MAX`]).

use std::io;
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::{RtStack, Server};
use crate::error::context;
use crate::nl::wire::align4;

/// The largest datagram the server packs replies into (the kernel's dump buffer
/// is of this order); one larger message goes alone.
pub const DATAGRAM_MAX: usize = 32 * 1024;

/// Serves `server` on a new socket pair: returns the client's end and the thread,
/// which ends (giving the server back) when the client's end is closed. Any bytes
/// are served as the kernel serves them (an empty or short datagram gets no
/// answer), and serving goes on after them.
pub fn spawn_socket<S>(server: Server<S>) -> io::Result<(OwnedFd, JoinHandle<Server<S>>)>
where
    S: RtStack + Send + 'static,
{
    let (client, served) = net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| context(e, "netlink server socket pair"))?;
    let thread = std::thread::Builder::new()
        .name("nl-server".into())
        .spawn(move || serve(server, served))
        .map_err(|e| context(e, "netlink server thread"))?;
    Ok((client, thread))
}

fn serve<S: RtStack>(mut server: Server<S>, fd: OwnedFd) -> Server<S> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match net::recv(&fd, &mut buf[..], RecvFlags::TRUNC) {
            Ok((_, 0)) if client_gone(&fd) => return server,
            // An empty datagram is a message, not the end: the kernel answers
            // nothing for it (Linux 6.x refuses to send one with ENODATA; older
            // kernels take it and walk no message), and neither do we.
            Ok((_, 0)) => continue,
            // A request larger than the buffer is cut, as a datagram would be.
            Ok((_, n)) => n.min(buf.len()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return server,
        };
        let replies = server.process(&buf[..n]);
        for d in pack(replies) {
            if net::send(&fd, &d, SendFlags::NOSIGNAL).is_err() {
                return server;
            }
        }
    }
}

/// Whether a 0-byte read meant the client closed (or shut down its sending side)
/// rather than an empty datagram: on `SOCK_SEQPACKET` both read as 0. Closed, the
/// socket says `RDHUP`; datagrams still queued before the close are served first.
fn client_gone(fd: &OwnedFd) -> bool {
    let mut pfd = [PollFd::new(fd, PollFlags::RDHUP)];
    let hup = match poll(&mut pfd, Some(&NO_WAIT)) {
        Ok(_) => pfd[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP),
        Err(_) => true,
    };
    hup && rustix::io::ioctl_fionread(fd).unwrap_or(0) == 0
}

/// A `poll` timeout that only looks.
const NO_WAIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Packs whole messages, each 4-aligned, into datagrams of at most [`DATAGRAM_MAX`].
fn pack(replies: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    for m in replies {
        if !cur.is_empty() && cur.len() + m.len() > DATAGRAM_MAX {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&m);
        cur.resize(align4(cur.len()), 0);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
