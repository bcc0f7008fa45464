//! Sockets made in a [`Stack`](crate::stack::Stack), with std's names and
//! manners: [`TcpListener`], [`TcpStream`], [`UdpSocket`] and [`IcmpSocket`] (ICMP
//! echo, as `ping` uses without privilege).
//!
//! They have the methods of `std::net`'s types (`accept`, `incoming`,
//! `local_addr`, `peer_addr`, `set_nonblocking`, `shutdown`, `send_to`,
//! `recv_from`, `connect`, `send`, `recv`, `peek`, `set_read_timeout`, `ttl`,
//! `nodelay`, `try_clone`, `take_error`, ...), `Read` and `Write` (also on `&T`),
//! `AsFd` and `AsRawFd`, and are `Send + Sync`. Each is one fd whose readiness is
//! the socket's, so `poll`, `epoll`, mio and tokio (the `tokio` feature,
//! `vdestack::tokio`) work unchanged.
//!
//! They are one type whatever the stack's backend: on a kernel stack there is a
//! std socket inside, made in the stack's namespace (`into_std` gives it back); a
//! user-space stack (issue 15) serves the same calls over the application's end of
//! a socket pair.
//!
//! [`Stack::socket`](crate::stack::Stack::socket) makes a raw socket of any kind
//! (kernel stacks), with rustix's typed [`AddressFamily`], [`SocketType`],
//! [`Protocol`] and [`SocketFlags`], re-exported here.

mod icmp;
mod tcp;
mod udp;

pub use icmp::IcmpSocket;
pub use rustix::net::{AddressFamily, Protocol, SocketFlags, SocketType};
pub(crate) use tcp::connect_timeout;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// An IP version: which ICMP an [`IcmpSocket`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (ICMP).
    V4,
    /// IPv6 (ICMPv6).
    V6,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<TcpListener>();
    send_sync::<TcpStream>();
    send_sync::<UdpSocket>();
    send_sync::<IcmpSocket>();
};
