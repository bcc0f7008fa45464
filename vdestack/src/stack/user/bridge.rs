//! The fds between the application and the engine: socket pairs, the filler
//! that keeps a connecting socket unwritable, and the message a listener's
//! pair carries per accepted connection.
//!
//! * A TCP connection is a `SOCK_STREAM` pair; a listener and a datagram
//!   socket (UDP, ICMP echo) a `SOCK_SEQPACKET` pair. The engine's end is
//!   non-blocking; the application's is blocking (as a new socket is).
//! * Filler: a socket pair is writable at once, a connecting socket is not. So
//!   before the application's end is handed out, it is written to until the
//!   engine's end is full ([`fill`]); the engine reads nothing from it until the
//!   connection is made (or fails), then reads and drops exactly that many bytes
//!   ([`Filler`]), which makes the application's end writable.
//! * An accepted connection reaches the listener's application end as one
//!   message: [`AcceptMsg`] as data, the connection's application end as
//!   `SCM_RIGHTS`.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    self as rnet, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// A socket pair: (application end, blocking; engine end, non-blocking), both
/// close-on-exec.
pub(super) fn pair(ty: SocketType) -> io::Result<(OwnedFd, OwnedFd)> {
    let (app, engine) = rnet::socketpair(
        AddressFamily::UNIX,
        ty,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::io::ioctl_fionbio(&app, false)?;
    Ok((app, engine))
}

/// Writes filler from `app` (non-blocking for the while) until it would block;
/// returns how many bytes.
pub(super) fn fill(app: BorrowedFd<'_>) -> io::Result<usize> {
    rustix::io::ioctl_fionbio(app, true)?;
    let chunk = [0u8; 16 * 1024];
    let mut total = 0;
    let mut n = chunk.len();
    loop {
        match rnet::send(app, &chunk[..n], SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
            Ok(k) => total += k,
            Err(Errno::AGAIN) if n > 1 => n /= 2,
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::io::ioctl_fionbio(app, false)?;
    Ok(total)
}

/// Filler bytes still to drop from an engine end before real data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Filler {
    left: usize,
}

impl Filler {
    pub(super) fn new(bytes: usize) -> Self {
        Filler { left: bytes }
    }

    /// Bytes still to drop.
    #[cfg(test)]
    pub(super) fn left(&self) -> usize {
        self.left
    }

    /// Counts `n` bytes read and dropped (at most what is left).
    pub(super) fn dropped(&mut self, n: usize) {
        self.left -= n.min(self.left);
    }

    /// Reads and drops what it can of the filler from `fd`; `true` once none is
    /// left.
    pub(super) fn drain(&mut self, fd: BorrowedFd<'_>) -> bool {
        let mut buf = [0u8; 16 * 1024];
        while self.left > 0 {
            let want = self.left.min(buf.len());
            match rustix::io::read(fd, &mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => self.dropped(n),
                Err(Errno::INTR) => {}
                Err(_) => break,
            }
        }
        self.left == 0
    }
}

/// What a listener's pair carries per accepted connection, besides the fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AcceptMsg {
    /// The connection's socket id in the stack.
    pub(crate) id: u32,
    /// The peer's address.
    pub(crate) peer: SocketAddr,
}

impl AcceptMsg {
    /// The encoded size: id (4), family (1: 4 or 6), port (2), address (16),
    /// IPv6 scope id (4), all little-endian.
    pub(crate) const LEN: usize = 27;

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.id.to_le_bytes());
        b[5..7].copy_from_slice(&self.peer.port().to_le_bytes());
        match self.peer {
            SocketAddr::V4(a) => {
                b[4] = 4;
                b[7..11].copy_from_slice(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                b[4] = 6;
                b[7..23].copy_from_slice(&a.ip().octets());
                b[23..27].copy_from_slice(&a.scope_id().to_le_bytes());
            }
        }
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::LEN {
            return None;
        }
        let id = u32::from_le_bytes(b[0..4].try_into().ok()?);
        let port = u16::from_le_bytes([b[5], b[6]]);
        let ip: IpAddr = match b[4] {
            4 => Ipv4Addr::new(b[7], b[8], b[9], b[10]).into(),
            6 => Ipv6Addr::from(<[u8; 16]>::try_from(&b[7..23]).ok()?).into(),
            _ => return None,
        };
        let mut peer = SocketAddr::new(ip, port);
        if let SocketAddr::V6(a) = &mut peer {
            a.set_scope_id(u32::from_le_bytes(b[23..27].try_into().ok()?));
        }
        Some(AcceptMsg { id, peer })
    }
}

/// Sends `msg` and `fd` on a listener's engine end (non-blocking: `WouldBlock`
/// while the application has not taken the earlier ones).
pub(super) fn send_accepted(
    listener: BorrowedFd<'_>,
    msg: &AcceptMsg,
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let data = msg.encode();
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rnet::sendmsg(
        listener,
        &[IoSlice::new(&data)],
        &mut control,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    )?;
    Ok(())
}

/// What [`recv_accepted`] got.
pub(crate) enum Accepted {
    /// A connection.
    Conn(AcceptMsg, OwnedFd),
    /// The engine end is gone (the stack was dropped).
    Closed,
}

/// Receives one accepted connection from a listener's application end (blocking
/// or not, as the fd is).
pub(crate) fn recv_accepted(listener: BorrowedFd<'_>) -> io::Result<Accepted> {
    loop {
        let mut data = [0u8; AcceptMsg::LEN];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = match rnet::recvmsg(
            listener,
            &mut [IoSliceMut::new(&mut data)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => r,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fd = None;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    fd.get_or_insert(f);
                }
            }
        }
        return match (fd, AcceptMsg::decode(&data[..got.bytes])) {
            (Some(fd), Some(msg)) => Ok(Accepted::Conn(msg, fd)),
            (None, _) if got.bytes == 0 => Ok(Accepted::Closed),
            _ => Err(io::Error::from_raw_os_error(libc::EPROTO)),
        };
    }
}

/// Whether `fd`'s peer hung up (closed or shut both ways).
pub(super) fn hung_up(fd: impl AsFd) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut p = [PollFd::new(&fd, PollFlags::empty())];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut p, Some(&zero)).is_ok() && p[0].revents().intersects(PollFlags::HUP | PollFlags::ERR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_messages_round_trip() {
        for peer in ["10.0.0.1:80", "[fc00::1]:65535", "[fe80::1%7]:1"] {
            let m = AcceptMsg {
                id: 0xdead_beef,
                peer: peer.parse().unwrap(),
            };
            assert_eq!(AcceptMsg::decode(&m.encode()), Some(m));
        }
        assert_eq!(AcceptMsg::decode(&[0u8; 3]), None);
        assert_eq!(AcceptMsg::decode(&[0u8; AcceptMsg::LEN]), None, "family 0");
    }

    #[test]
    fn filler_accounting() {
        let mut f = Filler::new(10);
        f.dropped(4);
        assert_eq!(f.left(), 6);
        f.dropped(100);
        assert_eq!(f.left(), 0);
    }

    /// The filler makes the application's end unwritable until the engine drops
    /// exactly the filler, and no byte of the application's is lost.
    #[test]
    fn filler_blocks_writes_until_drained() {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let (app, engine) = pair(SocketType::STREAM).unwrap();
        let n = fill(app.as_fd()).unwrap();
        assert!(n > 0);
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let writable = |fd: &OwnedFd| {
            let mut p = [PollFd::new(fd, PollFlags::OUT)];
            poll(&mut p, Some(&zero)).unwrap();
            p[0].revents().contains(PollFlags::OUT)
        };
        assert!(!writable(&app));
        let mut f = Filler::new(n);
        assert!(f.drain(engine.as_fd()));
        assert!(writable(&app));
        rustix::io::write(&app, b"hello").unwrap();
        let mut b = [0u8; 16];
        let k = rustix::io::read(&engine, &mut b).unwrap();
        assert_eq!(&b[..k], b"hello");
    }

    #[test]
    fn accepted_fds_travel() {
        let (app, engine) = pair(SocketType::SEQPACKET).unwrap();
        let (conn_app, conn_engine) = pair(SocketType::STREAM).unwrap();
        let m = AcceptMsg {
            id: 3,
            peer: "10.0.0.2:4000".parse().unwrap(),
        };
        send_accepted(engine.as_fd(), &m, conn_app.as_fd()).unwrap();
        drop(conn_app);
        let Accepted::Conn(got, fd) = recv_accepted(app.as_fd()).unwrap() else {
            panic!("no connection")
        };
        assert_eq!(got, m);
        rustix::io::write(&fd, b"x").unwrap();
        let mut b = [0u8; 1];
        assert_eq!(rustix::io::read(&conn_engine, &mut b).unwrap(), 1);
        drop(engine);
        assert!(matches!(
            recv_accepted(app.as_fd()).unwrap(),
            Accepted::Closed
        ));
    }
}
