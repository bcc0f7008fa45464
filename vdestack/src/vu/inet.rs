//! `AF_INET`/`AF_INET6` sockets of a served stack: [`InetSocket`] (what the
//! supervisor keeps of each), [`InetCall`] (the calls the stack answers), and
//! the default answers of a stack with no data path ([`no_route`]), which is
//! what `--stack mem` is.
//!
//! The program's fd is one end of an `AF_UNIX` socket pair (`SOCK_STREAM` for
//! stream sockets, `SOCK_SEQPACKET` for the others), never a kernel IP
//! socket; the stack makes it ([`super::ServedNet::inet_open`]). A stack with
//! a data path ([`super::UserNet`]) holds the other end and moves the bytes.
//!
//! A stack with no data path (`--stack mem`, [`no_route`]) keeps the other end
//! itself, shut for reading: `write` and `send` fail with `EPIPE`, a read waits
//! (as on an unconnected UDP socket), `accept` waits for ever. We learn that
//! the program closed it when our end hangs up. Every destination is
//! unreachable: `connect` and `sendto` with an address fail with
//! `ENETUNREACH` (`EPIPE` for `sendto` on a stream socket), `shutdown` with
//! `ENOTCONN`. `bind` takes the unspecified address or one of the stack's own
//! (`EADDRNOTAVAIL` otherwise). Options of levels other than `SOL_SOCKET` are
//! kept and read back (`SOL_SOCKET` ones go to the pair's socket, which keeps
//! them).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::nl::dialog::Dialog;
use crate::vu::Errno;

/// A served `AF_INET`/`AF_INET6` socket: what the supervisor keeps of it.
#[derive(Debug)]
pub struct InetSocket {
    /// Our end of the socket pair, for a stack that keeps none itself (no data
    /// path): the supervisor learns that the program closed the socket when it
    /// hangs up. `None` for a stack that holds the other end (it notices the
    /// close, and the supervisor asks [`super::ServedNet::inet_alive`]).
    pub ours: Option<OwnedFd>,
    /// The stack's name for the socket (0 where it has none).
    pub id: u64,
    /// `AF_INET` or `AF_INET6`.
    pub family: i32,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_RAW`.
    pub kind: i32,
    /// The protocol (`IPPROTO_TCP`, ...).
    pub protocol: i32,
    /// The address bound, if any.
    pub local: Option<SocketAddr>,
    /// The address connected to, if any.
    pub peer: Option<SocketAddr>,
    /// Options kept here (levels the stack does not implement): ((level, name),
    /// value).
    pub options: Vec<((i32, i32), Vec<u8>)>,
    /// `listen` was called: the program's fd is the listener's end.
    pub listening: bool,
}

impl InetSocket {
    /// A fresh socket (nothing bound, not connected, not listening).
    pub fn new(ours: Option<OwnedFd>, id: u64, family: i32, kind: i32, protocol: i32) -> Self {
        InetSocket {
            ours,
            id,
            family,
            kind,
            protocol,
            local: None,
            peer: None,
            options: Vec::new(),
            listening: false,
        }
    }
}

/// A call on a served `AF_INET`/`AF_INET6` socket, its arguments already read
/// from the program and checked (addresses by family and length, as the kernel
/// checks them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InetCall<'a> {
    /// `bind(2)` (port 0: the stack picks one).
    Bind(SocketAddr),
    /// `listen(2)` with this backlog.
    Listen(i32),
    /// `connect(2)`; `None` for `AF_UNSPEC` (dissolve the association).
    Connect(Option<SocketAddr>),
    /// `sendto(2)` or `sendmsg(2)` with a destination, on a datagram socket
    /// (stream sockets ignore the address, as TCP does).
    SendTo {
        /// The destination.
        to: SocketAddr,
        /// The payload.
        data: &'a [u8],
    },
    /// `shutdown(2)` (`SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`, or a bad value).
    Shutdown(i32),
    /// `getsockname(2)`.
    LocalAddr,
    /// `getpeername(2)`.
    PeerAddr,
    /// `setsockopt(2)`, but for `SO_TYPE`, `SO_DOMAIN`, `SO_PROTOCOL` and
    /// `SO_ACCEPTCONN`, which the supervisor answers.
    SetSockOpt {
        /// `SOL_SOCKET`, `IPPROTO_IP`, `IPPROTO_TCP`, ...
        level: i32,
        /// The option.
        name: i32,
        /// The bytes passed.
        value: &'a [u8],
    },
    /// `getsockopt(2)` (the same exceptions). `SOL_SOCKET`/`SO_ERROR` takes the
    /// pending error, as the kernel's does: the supervisor also asks it after
    /// a connect it waited for.
    GetSockOpt {
        /// `SOL_SOCKET`, `IPPROTO_IP`, `IPPROTO_TCP`, ...
        level: i32,
        /// The option.
        name: i32,
    },
}

/// How a call on a served socket ends.
#[derive(Debug)]
pub enum InetReply {
    /// The call returns this value (a getsockopt: this `int`).
    Value(i64),
    /// `getsockopt` returns these bytes (cut to the caller's length).
    Bytes(Vec<u8>),
    /// The answer comes later (a blocking call the stack itself waits on): the
    /// caller keeps waiting in its system call, and the stack reports the
    /// answer for the call's [`CallId`] through
    /// [`super::ServedNet::completions`], after making its
    /// [`super::ServedNet::wake_fd`] readable. The supervisor serves every other
    /// call meanwhile.
    Later,
    /// The kernel runs the call on the program's end of the socket pair, where
    /// it does the right thing (a `SOL_SOCKET` option the pair's socket keeps;
    /// `shutdown` of a connected stream, whose other end then sees it).
    Continue,
    /// `connect` started a connection: a non-blocking socket's call fails with
    /// `EINPROGRESS`; a blocking one waits (in the supervisor, which serves
    /// others meanwhile) until the program's end is writable, then returns what
    /// `SO_ERROR` says.
    InProgress,
    /// `listen` made the socket a listener whose program end is this fd: it
    /// takes the place of the program's fd (same number, same flags).
    Listening(OwnedFd),
    /// `getsockname`/`getpeername`: this address.
    Address(SocketAddr),
}

/// A connection taken from a listener ([`super::ServedNet::inet_accept`]).
#[derive(Debug)]
pub struct Accepted {
    /// The new socket.
    pub sock: InetSocket,
    /// Its end for the program.
    pub app: OwnedFd,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// One datagram received ([`super::ServedNet::inet_recv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied to the buffer.
    pub len: usize,
    /// The datagram's whole length (more than `len`: it was cut).
    pub full: usize,
    /// Where it came from (`None`: the stack does not say).
    pub from: Option<SocketAddr>,
    /// The hop limit (IPv4: TTL) its packet arrived with (`None`: the stack
    /// does not say): what `IP_RECVTTL` and `IPV6_RECVHOPLIMIT` ask for.
    pub hop_limit: Option<u8>,
}

/// Names one trapped call while it waits for its answer (the kernel's
/// notification id: unique among the calls waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(pub u64);

/// A free ephemeral port for a `bind` to port 0 in a stack without a data path
/// (the kernel's range is 32768-60999).
fn ephemeral_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    32768 + (NEXT.fetch_add(1, Ordering::Relaxed) % 28232) as u16
}

/// The kernel's `socket()` checks for `AF_INET`/`AF_INET6` (`inet_create`): the
/// protocol the socket gets. `EPROTONOSUPPORT` for a protocol the type does not
/// take, `ESOCKTNOSUPPORT` for an unknown type; raw sockets take any protocol
/// but 0.
pub fn check_socket(family: i32, kind: i32, protocol: i32) -> Result<i32, Errno> {
    let icmp = if family == libc::AF_INET6 {
        libc::IPPROTO_ICMPV6
    } else {
        libc::IPPROTO_ICMP
    };
    match kind {
        libc::SOCK_STREAM => match protocol {
            0 | libc::IPPROTO_TCP => Ok(libc::IPPROTO_TCP),
            _ => Err(libc::EPROTONOSUPPORT),
        },
        libc::SOCK_DGRAM => match protocol {
            0 | libc::IPPROTO_UDP => Ok(libc::IPPROTO_UDP),
            libc::IPPROTO_UDPLITE => Ok(libc::IPPROTO_UDPLITE),
            p if p == icmp => Ok(p),
            _ => Err(libc::EPROTONOSUPPORT),
        },
        libc::SOCK_RAW => match protocol {
            0 => Err(libc::EPROTONOSUPPORT),
            p if (0..256).contains(&p) => Ok(p),
            _ => Err(libc::EINVAL),
        },
        libc::SOCK_SEQPACKET => Err(libc::EPROTONOSUPPORT),
        _ => Err(libc::ESOCKTNOSUPPORT),
    }
}

/// The answers of a stack with addresses and routes but no data path (it never
/// answers [`InetReply::Later`]).
pub fn no_route(
    d: &mut dyn Dialog,
    sock: &mut InetSocket,
    call: InetCall<'_>,
) -> Result<InetReply, Errno> {
    match call {
        InetCall::Bind(mut a) => {
            if sock.local.is_some() {
                return Err(libc::EINVAL);
            }
            let ip = a.ip();
            if !ip.is_unspecified() && !crate::nl::emul::is_local(d, ip).unwrap_or(false) {
                return Err(libc::EADDRNOTAVAIL);
            }
            if a.port() == 0 {
                a.set_port(ephemeral_port());
            }
            sock.local = Some(a);
            Ok(InetReply::Value(0))
        }
        // A listener that never gets a connection (inet_listen binds an unbound
        // socket to an ephemeral port).
        InetCall::Listen(_) if sock.kind == libc::SOCK_STREAM => {
            if sock.local.is_none() {
                let any = crate::vu::sockaddr::unspecified(sock.family);
                sock.local = Some(SocketAddr::new(any.ip(), ephemeral_port()));
            }
            sock.listening = true;
            Ok(InetReply::Value(0))
        }
        InetCall::Listen(_) => Err(libc::EOPNOTSUPP),
        InetCall::Connect(None) => {
            sock.peer = None;
            Ok(InetReply::Value(0))
        }
        InetCall::Connect(Some(_)) => Err(libc::ENETUNREACH),
        InetCall::SendTo { .. } if sock.kind == libc::SOCK_STREAM => Err(libc::EPIPE),
        InetCall::SendTo { .. } => Err(libc::ENETUNREACH),
        InetCall::LocalAddr => {
            Ok(InetReply::Address(sock.local.unwrap_or_else(|| {
                crate::vu::sockaddr::unspecified(sock.family)
            })))
        }
        InetCall::PeerAddr => sock.peer.map(InetReply::Address).ok_or(libc::ENOTCONN),
        InetCall::Shutdown(how) if !(0..=2).contains(&how) => Err(libc::EINVAL),
        // Never connected (inet_shutdown on a closed socket).
        InetCall::Shutdown(_) => Err(libc::ENOTCONN),
        // The pair's socket keeps these (buffer sizes, SO_ERROR, ...).
        InetCall::SetSockOpt { level, .. } | InetCall::GetSockOpt { level, .. }
            if level == libc::SOL_SOCKET =>
        {
            Ok(InetReply::Continue)
        }
        InetCall::SetSockOpt { level, name, value } => {
            keep_option(sock, level, name, value);
            Ok(InetReply::Value(0))
        }
        InetCall::GetSockOpt { level, name } => {
            Ok(InetReply::Bytes(kept_option(sock, level, name)))
        }
    }
}

/// Keeps an option's value on the socket (a stack that does not implement it).
pub fn keep_option(sock: &mut InetSocket, level: i32, name: i32, value: &[u8]) {
    sock.options.retain(|(k, _)| *k != (level, name));
    sock.options.push(((level, name), value.to_vec()));
}

/// An option's kept value, or what it reads before it is set: the kernel's
/// defaults for the common ones, an int 0 for the others.
pub fn kept_option(sock: &InetSocket, level: i32, name: i32) -> Vec<u8> {
    sock.options
        .iter()
        .find(|(k, _)| *k == (level, name))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| default_option(level, name))
}

/// What an option reads before it is set: the kernel's defaults for the common
/// ones, an int 0 for the others.
fn default_option(level: i32, name: i32) -> Vec<u8> {
    let v: i32 = match (level, name) {
        (libc::IPPROTO_IP, libc::IP_TTL) => 64,
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => 64,
        (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) => 1,
        (libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP) => 1,
        (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS) => 1,
        (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP) => 1,
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => 536,
        _ => 0,
    };
    v.to_ne_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_checks() {
        let (i4, i6) = (libc::AF_INET, libc::AF_INET6);
        assert_eq!(check_socket(i4, libc::SOCK_STREAM, 0), Ok(6));
        assert_eq!(check_socket(i4, libc::SOCK_DGRAM, 0), Ok(17));
        assert_eq!(check_socket(i4, libc::SOCK_DGRAM, 1), Ok(1));
        assert_eq!(check_socket(i6, libc::SOCK_DGRAM, 58), Ok(58));
        assert_eq!(
            check_socket(i6, libc::SOCK_DGRAM, 1),
            Err(libc::EPROTONOSUPPORT)
        );
        assert_eq!(
            check_socket(i4, libc::SOCK_STREAM, 17),
            Err(libc::EPROTONOSUPPORT)
        );
        assert_eq!(
            check_socket(i4, libc::SOCK_RAW, 0),
            Err(libc::EPROTONOSUPPORT)
        );
        assert_eq!(check_socket(i4, 9, 0), Err(libc::ESOCKTNOSUPPORT));
    }
}
