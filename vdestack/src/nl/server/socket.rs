//! A transport for [`Server`]: one end of a `SOCK_SEQPACKET` socket pair goes to
//! the caller (give it to [`crate::nl::NlClient::from_fd`]); a thread answers each
//! datagram on the other end, packing the replies into datagrams as the kernel
//! packs a dump's parts (several messages per datagram, up to [`DATAGRAM_MAX`]).

use std::io;
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::{RtStack, Server};
use crate::error::context;
use crate::nl::wire::align4;

/// The largest datagram the server packs replies into (the kernel's dump buffer
/// is of this order); one larger message goes alone.
pub const DATAGRAM_MAX: usize = 32 * 1024;

/// Serves `server` on a new socket pair: returns the client's end and the thread,
/// which ends (giving the server back) when the client's end is closed.
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
            Ok((_, 0)) => return server,
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
