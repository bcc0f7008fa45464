//! `seqpacket://FD`: an already-open `SOCK_SEQPACKET` socket, one frame per message.
//!
//! This is how libvdeplug's static variant talks to a `vde_plug` helper, and a cheap
//! way to hand a network to a child process. The plug takes ownership of the fd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::net::{recv, send, sockopt, RecvFlags, SendFlags, SocketType};

use super::url::{bad_value, parse_number};
use super::{Plug, Recv, MIN_FRAME};
use crate::error::context;

/// A plug over an inherited `SOCK_SEQPACKET` fd.
#[derive(Debug)]
pub struct SeqPacket {
    fd: OwnedFd,
}

impl SeqPacket {
    /// Opens `seqpacket://FD`. The number is parsed like `strtol(.., 0)`; the fd must
    /// be an open `SOCK_SEQPACKET` socket, which the plug then owns and closes.
    pub fn open(arg: &str) -> io::Result<Self> {
        let n = parse_number(arg)
            .filter(|&n| n <= i32::MAX as u64)
            .ok_or_else(|| bad_value("seqpacket", "fd number", arg, "expected a number"))?;
        let raw = n as RawFd;
        let fd = crate::sys::claim_fd(raw).map_err(|e| context(e, format!("seqpacket://{arg}")))?;
        match sockopt::socket_type(&fd) {
            Ok(SocketType::SEQPACKET) => {}
            Ok(_) | Err(_) => {
                // Not a socket we can use: leave the fd open, as we found it.
                let _ = fd.into_raw_fd();
                return Err(
                    bad_value("seqpacket", "fd", arg, "not a SOCK_SEQPACKET socket").into(),
                );
            }
        }
        crate::sys::set_nonblocking(&fd)?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        Ok(Self { fd })
    }

    /// A plug over a seqpacket socket the caller owns already.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        crate::sys::set_nonblocking(&fd)?;
        Ok(Self { fd })
    }
}

impl Plug for SeqPacket {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        Ok(send(
            &self.fd,
            frame,
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        )?)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let len = buf.len();
        match recv(&self.fd, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) => Ok(Recv::Closed),
            Ok((n, _)) => Ok(Recv::Frame(n.min(len))),
            Err(rustix::io::Errno::CONNRESET) => Ok(Recv::Closed),
            Err(e) => Err(e.into()),
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
