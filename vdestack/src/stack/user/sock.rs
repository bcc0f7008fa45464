//! The socket table's entries: [`Sock`], a TCP socket ([`TcpSock`], in
//! `tcp_sock.rs`) or a datagram one ([`DgramSock`], UDP or ICMP echo, in
//! `dgram_sock.rs`), and what the engine asks of every entry.

use std::time::Instant as StdInstant;

use smoltcp::time::Instant;

use super::dgram_sock::DgramSock;
use super::engine::{Engine, Scratch, SockId};
use super::tcp_sock::TcpSock;

/// One socket of a stack.
#[derive(Debug)]
pub(super) enum Sock {
    Tcp(TcpSock),
    Dgram(DgramSock),
}

impl Sock {
    /// Moves what can move; `false` when the entry is done with (then
    /// [`Sock::release`] is called).
    pub(super) fn service(
        &mut self,
        id: SockId,
        engine: &mut Engine,
        t: Instant,
        busy: &mut bool,
        scratch: &mut Scratch,
    ) -> bool {
        match self {
            Sock::Tcp(s) => s.service(id, engine, t, busy),
            Sock::Dgram(s) => s.service(engine, busy, scratch),
        }
    }

    /// Gives back its ports and its smoltcp sockets.
    pub(super) fn release(self, engine: &mut Engine) {
        match self {
            Sock::Tcp(s) => s.release(engine),
            Sock::Dgram(s) => s.release(engine),
        }
    }

    /// The application's end hung up.
    pub(super) fn app_gone(&mut self) {
        match self {
            Sock::Tcp(s) => s.gone = true,
            Sock::Dgram(s) => s.gone = true,
        }
    }

    /// Its engine end.
    pub(super) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self {
            Sock::Tcp(s) => s.fd.as_ref().map(|f| f.as_fd()),
            Sock::Dgram(s) => Some(s.fd.as_fd()),
        }
    }

    /// When the entry wants to be looked at again, besides smoltcp's timers.
    pub(super) fn deadline(&self) -> Option<StdInstant> {
        match self {
            Sock::Tcp(s) => s.deadline(),
            Sock::Dgram(_) => None,
        }
    }
}
