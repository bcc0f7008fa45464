//! The IPv6 address ioctls of an `AF_INET6` socket (`addrconf_add_ifaddr` and
//! `addrconf_del_ifaddr` in `net/ipv6/addrconf.c`): `SIOCSIFADDR` adds and
//! `SIOCDIFADDR` deletes the address of a `struct in6_ifreq` (net-tools'
//! `ifconfig IF add ADDR/LEN`), asked of the dialog as the equivalent
//! `RTM_NEWADDR` / `RTM_DELADDR`, which the kernel serves with the same function.

use std::io;
use std::net::Ipv6Addr;

use super::super::dialog::Dialog;
use super::super::wire::{
    self, Builder, IFA_ADDRESS, IFA_LOCAL, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
    RTM_DELADDR, RTM_NEWADDR,
};
use super::rt;

/// `sizeof(struct in6_ifreq)`: the address, a u32 prefix length, an int index.
pub const IN6_IFREQ_SIZE: usize = 24;
/// `SIOCSIFADDR` on an `AF_INET6` socket: add.
pub const SIOCSIFADDR6: u64 = 0x8916;
/// `SIOCDIFADDR`: delete.
pub const SIOCDIFADDR6: u64 = 0x8936;
/// `IFA_F_PERMANENT`.
const IFA_F_PERMANENT: u32 = 0x80;

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Serves `request` (`SIOCSIFADDR6` or `SIOCDIFADDR6`) on a `struct in6_ifreq`
/// image (at least 24 bytes; `EFAULT` if shorter), as the kernel does:
/// `EINVAL` for a prefix over 128, `ENODEV` for an unknown index, `EEXIST` for
/// an address already there, `EADDRNOTAVAIL` for one to delete that is not.
pub fn ioctl6(d: &mut dyn Dialog, request: u64, in6_ifreq: &[u8]) -> io::Result<()> {
    let r = in6_ifreq
        .get(..IN6_IFREQ_SIZE)
        .ok_or_else(|| err(libc::EFAULT))?;
    let mut a = [0u8; 16];
    a.copy_from_slice(&r[..16]);
    let prefixlen = u32::from_ne_bytes([r[16], r[17], r[18], r[19]]);
    let index = i32::from_ne_bytes([r[20], r[21], r[22], r[23]]);
    let create = match request {
        SIOCSIFADDR6 => true,
        SIOCDIFADDR6 => false,
        _ => return Err(err(libc::ENOTTY)),
    };
    if prefixlen > 128 {
        return Err(err(libc::EINVAL));
    }
    rt::link_by_index(d, index)?;
    change(d, create, index as u32, Ipv6Addr::from(a), prefixlen as u8)
}

fn change(
    d: &mut dyn Dialog,
    create: bool,
    index: u32,
    a: Ipv6Addr,
    prefixlen: u8,
) -> io::Result<()> {
    let (kind, flags) = if create {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    let mut h = [0u8; 8];
    h[0] = libc::AF_INET6 as u8;
    h[1] = prefixlen;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    let mut b = Builder::new(kind, flags, 0)
        .raw(&h)
        .attr(IFA_LOCAL, &a.octets())
        .attr(IFA_ADDRESS, &a.octets());
    if create {
        b = b.attr_u32(wire::IFA_FLAGS, IFA_F_PERMANENT);
    }
    rt::change(d, &b.finish())
}

/// `SIOCSIFADDR` on an `AF_INET6` socket: adds `a/prefixlen` to link `index`.
pub fn add_addr6(d: &mut dyn Dialog, index: i32, a: Ipv6Addr, prefixlen: u32) -> io::Result<()> {
    ioctl6(d, SIOCSIFADDR6, &in6_ifreq(a, prefixlen, index))
}

/// `SIOCDIFADDR`: deletes `a/prefixlen` from link `index`.
pub fn del_addr6(d: &mut dyn Dialog, index: i32, a: Ipv6Addr, prefixlen: u32) -> io::Result<()> {
    ioctl6(d, SIOCDIFADDR6, &in6_ifreq(a, prefixlen, index))
}

fn in6_ifreq(a: Ipv6Addr, prefixlen: u32, index: i32) -> [u8; IN6_IFREQ_SIZE] {
    let mut r = [0u8; IN6_IFREQ_SIZE];
    r[..16].copy_from_slice(&a.octets());
    r[16..20].copy_from_slice(&prefixlen.to_ne_bytes());
    r[20..24].copy_from_slice(&index.to_ne_bytes());
    r
}
