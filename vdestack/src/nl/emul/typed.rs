//! The typed face of the ioctl emulation: one function per request, each built
//! on [`super::ioctl`] with a fresh `struct ifreq`, so both faces behave the same.
//! Names longer than 15 bytes are cut as a C caller's `strncpy` into `ifr_name`
//! would have them cut by the kernel.

use std::io;
use std::net::Ipv4Addr;

use super::super::dialog::Dialog;
use super::ifreq::*;
use super::ioctl::ioctl;

fn on_name(d: &mut dyn Dialog, request: u64, name: &str) -> io::Result<IfReq> {
    let mut r = IfReq::named(name);
    ioctl(d, request, &mut r.0)?;
    Ok(r)
}

fn set_int(d: &mut dyn Dialog, request: u64, name: &str, v: i32) -> io::Result<()> {
    let mut r = IfReq::named(name);
    r.set_int(v);
    ioctl(d, request, &mut r.0)
}

fn set_ipv4(d: &mut dyn Dialog, request: u64, name: &str, a: Ipv4Addr) -> io::Result<()> {
    let mut r = IfReq::named(name);
    r.set_ipv4(a);
    ioctl(d, request, &mut r.0)
}

/// `SIOCGIFINDEX`: the index of link `name` (`ENODEV` if none).
pub fn get_index(d: &mut dyn Dialog, name: &str) -> io::Result<i32> {
    Ok(on_name(d, SIOCGIFINDEX, name)?.int())
}

/// `SIOCGIFNAME`: the name of link `index` (`ENODEV` if none).
pub fn get_name(d: &mut dyn Dialog, index: i32) -> io::Result<String> {
    let mut r = IfReq::with_index(index);
    ioctl(d, SIOCGIFNAME, &mut r.0)?;
    Ok(String::from_utf8_lossy(r.name()).into_owned())
}

/// `SIOCGIFFLAGS`: the low 16 `IFF_*` flags (the kernel's `short ifr_flags`).
pub fn get_flags(d: &mut dyn Dialog, name: &str) -> io::Result<u16> {
    Ok(on_name(d, SIOCGIFFLAGS, name)?.flags())
}

/// `SIOCSIFFLAGS`: sets the flags (`IFF_UP`, `IFF_PROMISC`, ...); on an alias
/// (`eth0:1`) a flag set without `IFF_UP` deletes the alias's address.
pub fn set_flags(d: &mut dyn Dialog, name: &str, flags: u16) -> io::Result<()> {
    let mut r = IfReq::named(name);
    r.set_flags(flags);
    ioctl(d, SIOCSIFFLAGS, &mut r.0)
}

/// `SIOCGIFMTU`.
pub fn get_mtu(d: &mut dyn Dialog, name: &str) -> io::Result<i32> {
    Ok(on_name(d, SIOCGIFMTU, name)?.int())
}

/// `SIOCSIFMTU`.
pub fn set_mtu(d: &mut dyn Dialog, name: &str, mtu: i32) -> io::Result<()> {
    set_int(d, SIOCSIFMTU, name, mtu)
}

/// `SIOCGIFTXQLEN`.
pub fn get_txqlen(d: &mut dyn Dialog, name: &str) -> io::Result<i32> {
    Ok(on_name(d, SIOCGIFTXQLEN, name)?.int())
}

/// `SIOCSIFTXQLEN` (`EINVAL` if negative).
pub fn set_txqlen(d: &mut dyn Dialog, name: &str, qlen: i32) -> io::Result<()> {
    set_int(d, SIOCSIFTXQLEN, name, qlen)
}

/// `SIOCGIFMETRIC`: always 0 for an existing link, as in the kernel.
pub fn get_metric(d: &mut dyn Dialog, name: &str) -> io::Result<i32> {
    Ok(on_name(d, SIOCGIFMETRIC, name)?.int())
}

/// A link-layer address as `SIOCGIFHWADDR` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwAddr {
    /// `sa_family`: the device type (`ARPHRD_ETHER` = 1, `ARPHRD_LOOPBACK` = 772, ...).
    pub family: u16,
    /// `sa_data`, all 14 bytes (an Ethernet address is the first 6).
    pub data: [u8; 14],
}

/// `SIOCGIFHWADDR`.
pub fn get_hwaddr(d: &mut dyn Dialog, name: &str) -> io::Result<HwAddr> {
    let r = on_name(d, SIOCGIFHWADDR, name)?;
    let mut data = [0u8; 14];
    data.copy_from_slice(r.sa_data());
    Ok(HwAddr {
        family: r.family(),
        data,
    })
}

/// `SIOCSIFHWADDR`: `family` must be the device type (`EINVAL` otherwise); `addr`
/// is at most 14 bytes (the device takes its own address length of them).
pub fn set_hwaddr(d: &mut dyn Dialog, name: &str, family: u16, addr: &[u8]) -> io::Result<()> {
    if addr.len() > 14 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut r = IfReq::named(name);
    r.0[UNION..UNION + 2].copy_from_slice(&family.to_ne_bytes());
    r.0[UNION + 2..UNION + 2 + addr.len()].copy_from_slice(addr);
    ioctl(d, SIOCSIFHWADDR, &mut r.0)
}

/// `SIOCSIFNAME`: renames link `name` to `new` (which the kernel cuts at 15 bytes).
pub fn set_name(d: &mut dyn Dialog, name: &str, new: &str) -> io::Result<()> {
    let mut r = IfReq::named(name);
    let n = new.len().min(IFNAMSIZ);
    r.0[UNION..UNION + n].copy_from_slice(&new.as_bytes()[..n]);
    ioctl(d, SIOCSIFNAME, &mut r.0)
}

/// `SIOCGIFADDR`: the local address labelled `name` (`EADDRNOTAVAIL` if none).
pub fn get_addr(d: &mut dyn Dialog, name: &str) -> io::Result<Ipv4Addr> {
    Ok(on_name(d, SIOCGIFADDR, name)?.ipv4())
}

/// `SIOCSIFADDR`: replaces the address labelled `name`, or adds one with the
/// classful prefix; `0.0.0.0` deletes it.
pub fn set_addr(d: &mut dyn Dialog, name: &str, a: Ipv4Addr) -> io::Result<()> {
    set_ipv4(d, SIOCSIFADDR, name, a)
}

/// `SIOCGIFDSTADDR`: the address's `IFA_ADDRESS` (the peer on a point-to-point
/// address, else the local address).
pub fn get_dstaddr(d: &mut dyn Dialog, name: &str) -> io::Result<Ipv4Addr> {
    Ok(on_name(d, SIOCGIFDSTADDR, name)?.ipv4())
}

/// `SIOCSIFDSTADDR`.
pub fn set_dstaddr(d: &mut dyn Dialog, name: &str, a: Ipv4Addr) -> io::Result<()> {
    set_ipv4(d, SIOCSIFDSTADDR, name, a)
}

/// `SIOCGIFBRDADDR` (`0.0.0.0` when the address has none).
pub fn get_brdaddr(d: &mut dyn Dialog, name: &str) -> io::Result<Ipv4Addr> {
    Ok(on_name(d, SIOCGIFBRDADDR, name)?.ipv4())
}

/// `SIOCSIFBRDADDR`.
pub fn set_brdaddr(d: &mut dyn Dialog, name: &str, a: Ipv4Addr) -> io::Result<()> {
    set_ipv4(d, SIOCSIFBRDADDR, name, a)
}

/// `SIOCGIFNETMASK`.
pub fn get_netmask(d: &mut dyn Dialog, name: &str) -> io::Result<Ipv4Addr> {
    Ok(on_name(d, SIOCGIFNETMASK, name)?.ipv4())
}

/// `SIOCSIFNETMASK` (`EINVAL` for a mask that is not contiguous).
pub fn set_netmask(d: &mut dyn Dialog, name: &str, mask: Ipv4Addr) -> io::Result<()> {
    set_ipv4(d, SIOCSIFNETMASK, name, mask)
}
