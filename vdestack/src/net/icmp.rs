//! [`IcmpSocket`]: ICMP echo, as `ping` does it without privilege (a datagram
//! socket of protocol ICMP or ICMPv6, "ping socket").

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::net::{self as rnet, RecvFlags, SendFlags, SocketAddrAny};

use super::udp::UserDgram;
use super::IpVersion;
use crate::stack::user::{SockOpt, Sources, UserSock};

/// An ICMP echo socket of a stack (`Stack::icmp_socket`).
///
/// What it sends is an ICMP message from its type on: an echo request is type 8
/// (ICMPv6: 128), code 0, a checksum (the kernel computes it), an identifier (the
/// kernel puts the socket's), a sequence number, then data. What it receives is
/// the echo reply, from its type on. Only echo replies for this socket arrive.
#[derive(Debug)]
pub struct IcmpSocket {
    inner: Repr,
}

#[derive(Debug)]
enum Repr {
    Kernel {
        fd: OwnedFd,
        version: IpVersion,
    },
    /// A user-space stack's (see [`UdpSocket`](super::UdpSocket)'s).
    User {
        u: UserDgram,
        version: IpVersion,
    },
}

/// A socket address for an ICMP peer (the port is unused).
fn peer(addr: IpAddr) -> SocketAddr {
    SocketAddr::new(addr, 0)
}

impl IcmpSocket {
    /// Wraps a ping socket made in a kernel stack.
    pub(crate) fn from_kernel(fd: OwnedFd, version: IpVersion) -> Self {
        IcmpSocket {
            inner: Repr::Kernel { fd, version },
        }
    }

    /// Wraps a user-space stack's echo socket.
    pub(crate) fn from_user(
        fd: OwnedFd,
        h: UserSock,
        sources: Sources,
        version: IpVersion,
    ) -> Self {
        IcmpSocket {
            inner: Repr::User {
                u: UserDgram::new(fd, h, sources),
                version,
            },
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Repr::Kernel { fd, .. } => fd.as_fd(),
            Repr::User { u, .. } => u.s.as_fd(),
        }
    }

    fn user(&self) -> Option<&UserDgram> {
        match &self.inner {
            Repr::User { u, .. } => Some(u),
            Repr::Kernel { .. } => None,
        }
    }

    /// Which ICMP it speaks.
    pub fn version(&self) -> IpVersion {
        match &self.inner {
            Repr::Kernel { version, .. } | Repr::User { version, .. } => *version,
        }
    }

    fn check(&self, addr: &IpAddr) -> io::Result<()> {
        let ok = matches!(
            (self.version(), addr),
            (IpVersion::V4, IpAddr::V4(_)) | (IpVersion::V6, IpAddr::V6(_))
        );
        match ok {
            true => Ok(()),
            false => Err(crate::error::context(
                io::Error::from_raw_os_error(libc::EAFNOSUPPORT),
                format!(
                    "{addr}: not an address of this {:?} ICMP socket",
                    self.version()
                ),
            )),
        }
    }

    /// Sends an ICMP message (an echo request) to `addr`.
    pub fn send_to(&self, msg: &[u8], addr: IpAddr) -> io::Result<usize> {
        self.check(&addr)?;
        if let Some(u) = self.user() {
            return u.send_to(msg, peer(addr));
        }
        Ok(rnet::sendto(
            self.fd(),
            msg,
            SendFlags::empty(),
            &peer(addr),
        )?)
    }

    /// Receives an ICMP message (an echo reply): its length and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        if let Some(u) = self.user() {
            return u.recv_from(buf).map(|(n, a)| (n, a.ip()));
        }
        let (n, _, from) = rnet::recvfrom(self.fd(), buf, RecvFlags::empty())?;
        Ok((n, ip_of(from)?))
    }

    /// Sets the default destination, and takes replies only from it.
    pub fn connect(&self, addr: IpAddr) -> io::Result<()> {
        self.check(&addr)?;
        if let Some(u) = self.user() {
            return u.h.connect(peer(addr));
        }
        Ok(rnet::connect(self.fd(), &peer(addr))?)
    }

    /// Sends an ICMP message to the connected peer.
    pub fn send(&self, msg: &[u8]) -> io::Result<usize> {
        if let Some(u) = self.user() {
            return u.send(msg);
        }
        Ok(rnet::send(self.fd(), msg, SendFlags::empty())?)
    }

    /// Receives an ICMP message from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(u) = self.user() {
            return u.recv_from(buf).map(|(n, _)| n);
        }
        Ok(rnet::recv(self.fd(), buf, RecvFlags::empty())?.0)
    }

    /// Makes sends and receives return `WouldBlock` rather than wait.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        Ok(rustix::io::ioctl_fionbio(self.fd(), nonblocking)?)
    }

    /// How long a receive waits (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let t = check_timeout(timeout)?;
        Ok(rnet::sockopt::set_socket_timeout(
            self.fd(),
            rnet::sockopt::Timeout::Recv,
            t,
        )?)
    }

    /// How long a send waits (`None`: for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let t = check_timeout(timeout)?;
        Ok(rnet::sockopt::set_socket_timeout(
            self.fd(),
            rnet::sockopt::Timeout::Send,
            t,
        )?)
    }

    /// The IP time-to-live (IPv6: hop limit) of what it sends.
    pub fn ttl(&self) -> io::Result<u32> {
        if let Some(u) = self.user() {
            return u.h.ttl();
        }
        Ok(match self.version() {
            IpVersion::V4 => rnet::sockopt::ip_ttl(self.fd())?,
            IpVersion::V6 => rnet::sockopt::ipv6_unicast_hops(self.fd())?.into(),
        })
    }

    /// Sets the IP time-to-live (IPv6: hop limit).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        if let Some(u) = self.user() {
            let t = u8::try_from(ttl).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            return u.h.set(SockOpt::Ttl((t > 0).then_some(t)));
        }
        match self.version() {
            IpVersion::V4 => rnet::sockopt::set_ip_ttl(self.fd(), ttl)?,
            IpVersion::V6 => {
                let hops =
                    u8::try_from(ttl).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                rnet::sockopt::set_ipv6_unicast_hops(self.fd(), Some(hops))?
            }
        }
        Ok(())
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        if let Some(u) = self.user() {
            return u.h.take_error();
        }
        Ok(rnet::sockopt::socket_error(self.fd())?
            .err()
            .map(io::Error::from))
    }

    /// Another handle on the same socket.
    pub fn try_clone(&self) -> io::Result<Self> {
        if let Repr::User { u, version } = &self.inner {
            return Ok(IcmpSocket {
                inner: Repr::User {
                    u: u.try_clone()?,
                    version: *version,
                },
            });
        }
        let fd = rustix::io::fcntl_dupfd_cloexec(self.fd(), 0)?;
        Ok(Self::from_kernel(fd, self.version()))
    }
}

/// A zero timeout is refused, as std refuses it.
fn check_timeout(t: Option<Duration>) -> io::Result<Option<Duration>> {
    match t {
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        t => Ok(t),
    }
}

fn ip_of(from: Option<SocketAddrAny>) -> io::Result<IpAddr> {
    from.and_then(|a| SocketAddr::try_from(a).ok())
        .map(|a| a.ip())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
}

impl AsFd for IcmpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for IcmpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<IcmpSocket> for std::os::fd::OwnedFd {
    fn from(s: IcmpSocket) -> Self {
        match s.inner {
            Repr::Kernel { fd, .. } => fd,
            Repr::User { u, .. } => u.s.into(),
        }
    }
}
