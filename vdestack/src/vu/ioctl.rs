//! Which socket ioctls in the `0x89xx` range (the ones the filter traps) are
//! answered from the served stack, and with which semantics, as the kernel
//! routes them (`sock_ioctl` -> the family's ioctl -> `dev_ioctl`):
//!
//! - per-socket requests (`FIOSETOWN`, `SIOCGPGRP`, `SIOCATMARK`, `SIOCGSTAMP`,
//!   ...) and, on sockets we do not serve, the protocol's private ones
//!   (`SIOCPROTOPRIVATE..`, e.g. `SIOCUNIXFILE`) are the socket's business: the
//!   kernel runs them;
//! - `SIOCGIFCONF` and the link requests (`SIOCGIFINDEX`, `SIOCGIFNAME`,
//!   `SIOCGIFFLAGS`, `SIOCSIFMTU`, ...) work on any socket (`dev_ioctl`):
//!   glibc's `if_nametoindex` and `if_indextoname` use an `AF_UNIX` datagram
//!   socket for them (its `__opensock`), so they are served whatever the socket;
//! - the IPv4 address requests (`SIOC[GS]IFADDR`, `..BRDADDR`, `..NETMASK`,
//!   `..DSTADDR`, and `SIOCSIFFLAGS` on an alias) are `devinet_ioctl`'s: served
//!   on our `AF_INET` sockets, `ENOTTY` on other sockets (as on an `AF_UNIX` or
//!   netlink socket);
//! - on our `AF_INET6` sockets, `SIOCSIFADDR`/`SIOCDIFADDR` add and delete an
//!   IPv6 address (`struct in6_ifreq`, net-tools' `ifconfig IF add ADDR/LEN`);
//! - on our `AF_INET` sockets, `SIOCADDRT`/`SIOCDELRT` add and delete an IPv4
//!   route (`struct rtentry`, net-tools' and busybox's `route add`/`del`); the
//!   IPv6 ones (`struct in6_rtmsg`) are not emulated (`EOPNOTSUPP`);
//! - on a file that is not a socket the kernel answers (`ENOTTY` for most).
//!
//! What the kernel would do on a socket family we do not see (an `AF_PACKET`
//! socket answers the IPv4 address requests from the machine's interfaces) is
//! not reproduced: every socket but ours gets `ENOTTY` for them, so the
//! machine's addresses never show.

/// `SIOCDIFADDR` (IPv6 address deletion on an `AF_INET6` socket).
pub(crate) const SIOCDIFADDR: u32 = 0x8936;

/// The semantics a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The socket's own business: the kernel runs it on the real socket.
    PerSocket,
    /// Protocol-private: the kernel's on its sockets, `ENOTTY` on ours.
    ProtoPrivate,
    /// `SIOCGIFCONF` (a `struct ifconf`).
    IfConf,
    /// A request on a `struct ifreq` that works on any socket.
    Link,
    /// `SIOCSIFFLAGS`: by label on `AF_INET`, by device elsewhere.
    SetFlags,
    /// An IPv4 address request (`devinet_ioctl`).
    Addr,
    /// `SIOCSIFADDR`/`SIOCDIFADDR`, IPv6 on an `AF_INET6` socket.
    Addr6,
    /// `SIOCADDRT`/`SIOCDELRT` on an `AF_INET` socket (a `struct rtentry`).
    Route,
}

/// The class of request `req` (the low 32 bits of the argument) on a socket of
/// `family` (`AF_INET`, `AF_INET6`, or another value for the others).
pub(crate) fn classify(req: u32, family: i32) -> Class {
    match req {
        0x8901..=0x8907 => Class::PerSocket,
        0x890b | 0x890c if family == libc::AF_INET => Class::Route,
        // IPv6 routes (`struct in6_rtmsg`): not emulated (EOPNOTSUPP).
        0x890b | 0x890c if family == libc::AF_INET6 => Class::Link,
        // A socket of another family answers ENOTTY, as for address requests.
        0x890b | 0x890c => Class::Addr,
        0x89e0..=0x89ef => Class::ProtoPrivate,
        0x8912 => Class::IfConf,
        0x8914 => Class::SetFlags,
        0x8916 if family == libc::AF_INET6 => Class::Addr6,
        SIOCDIFADDR if family == libc::AF_INET6 => Class::Addr6,
        0x8915..=0x891c => Class::Addr,
        _ => Class::Link,
    }
}

/// The 40-byte `struct ifreq` of an `SIOCSIFFLAGS` on a socket that is not
/// `AF_INET`: an alias name (`eth0:1`) means its device (`dev_ioctl` cuts the
/// name at the colon), so the name is cut here before the `AF_INET` emulation
/// sees it.
pub(crate) fn device_name_only(ifreq: &mut [u8]) {
    let end = ifreq.iter().take(16).position(|&c| c == 0).unwrap_or(16);
    if let Some(colon) = ifreq[..end].iter().position(|&c| c == b':') {
        ifreq[colon..16].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let (i4, i6, ux) = (libc::AF_INET, libc::AF_INET6, libc::AF_UNIX);
        assert_eq!(classify(0x8933, ux), Class::Link);
        assert_eq!(classify(0x8910, ux), Class::Link);
        assert_eq!(classify(0x8915, ux), Class::Addr);
        assert_eq!(classify(0x8916, i4), Class::Addr);
        assert_eq!(classify(0x8916, i6), Class::Addr6);
        assert_eq!(classify(0x8936, i6), Class::Addr6);
        assert_eq!(classify(0x8936, i4), Class::Link);
        assert_eq!(classify(0x8906, i4), Class::PerSocket);
        assert_eq!(classify(0x89e0, ux), Class::ProtoPrivate);
        assert_eq!(classify(0x8912, ux), Class::IfConf);
        assert_eq!(classify(0x8914, ux), Class::SetFlags);
        assert_eq!(classify(0x890b, i4), Class::Route);
        assert_eq!(classify(0x890c, i6), Class::Link);
        assert_eq!(classify(0x890c, ux), Class::Addr);
    }

    #[test]
    fn alias_names_are_cut() {
        let mut r = [0u8; 40];
        r[..6].copy_from_slice(b"eth0:1");
        r[20] = 7;
        device_name_only(&mut r);
        assert_eq!(&r[..6], b"eth0\0\0");
        assert_eq!(r[20], 7);
    }
}
