//! The raw entry point: [`ioctl`] serves one netdevice request on a `struct
//! ifreq` image as the kernel does for an `AF_INET` datagram socket, asking the
//! [`Dialog`] instead of the kernel's tables.
//!
//! What the caller sees matches the kernel (Linux 6.x `net/core/dev_ioctl.c`,
//! `net/ipv4/devinet.c`), not libnlq where the two differ:
//! - the bytes written: only the field the kernel writes (`SIOCGIFFLAGS` writes 2
//!   bytes, `SIOCGIFADDR` the 16 of a `sockaddr_in`, `SIOCGIFHWADDR` the family and
//!   `min(addr_len, 14)` bytes, ...), `ifr_name[15]` forced to NUL, and nothing
//!   at all on an error;
//! - a `name:alias` is the base device for link requests, and an address label
//!   for address requests (`SIOCGIFADDR` on `eth0:1` reads the address labelled
//!   `eth0:1`; `SIOCSIFFLAGS` without `IFF_UP` on it deletes that address);
//! - `SIOCGIFADDR` and friends first look for the address whose label matches
//!   *and* whose local address is the one passed in (if its family is
//!   `AF_INET`), then for the first one with the label (4.4BSD style);
//! - set requests check `EPERM` (no `CAP_NET_ADMIN`), then `EINVAL` for a wrong
//!   family, then `ENODEV`, in the kernel's order; `SIOCSIFADDR` with no address
//!   yet adds one with the classful prefix and the broadcast the kernel would
//!   compute; setting `0.0.0.0` deletes the address;
//! - errors: `ENODEV` for an unknown device, `EADDRNOTAVAIL` for a missing
//!   address, `EINVAL` for a bad mask, family or address class.
//!
//! Requests that are not netdevice ioctls (whose type byte is not `0x89`) fail
//! with `ENOTTY`, the kernel's answer to an ioctl it does not know; netdevice
//! requests the kernel knows but this emulation does not (`SIOCSIFMAP`,
//! `SIOCADDMULTI`, `SIOCETHTOOL`, bridge and bonding ioctls, ...) fail with
//! `EOPNOTSUPP`, libnlq's answer, which tells the caller "not emulated". A layer
//! that interposes `ioctl` should hand the non-`0x89` ones (`FIONREAD`, ...) to the
//! real socket.
//!
//! The semantics are those of an `AF_INET` socket, the one programs use for
//! these requests (on an `AF_NETLINK` or `AF_UNIX` socket the kernel refuses the
//! address requests with `ENOTTY`, and `SIOCSIFFLAGS` on `eth0:1` sets `eth0`).
//!
//! Known differences from the kernel, which a dialog cannot see:
//! - `SIOCSIFTXQLEN` (and `SIOCSIFMAP`) need `CAP_NET_ADMIN` in the *initial*
//!   user namespace for the real ioctl; netlink, and so the emulation, want it
//!   only in the user namespace owning the network namespace: inside a user
//!   namespace the emulation allows what the real ioctl refuses with `EPERM`;
//! - `SIOCSIFHWADDR` with a wrong family on a device that cannot change its
//!   address at all: the kernel says `EOPNOTSUPP`, the emulation `EINVAL`;
//! - an address changed by `SIOCSIF{BRD,DST}ADDR` or `SIOCSIFNETMASK` is deleted
//!   and added again: its creation time stamp (`ip -s addr`) is new, and its
//!   remaining lifetimes are kept to the second;
//! - no module is loaded on demand for a name (`dev_load`).

use std::io;

use super::super::dialog::Dialog;
use super::super::wire::{IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU};
use super::ifreq::*;
use super::rt::{self, V4Addr, IFLA_TXQLEN};
use crate::error::errno_of;

/// `IFF_UP`.
const IFF_UP: u16 = 1;
/// `IFF_BROADCAST`.
const IFF_BROADCAST: u32 = 0x2;
/// `IFF_POINTOPOINT`.
const IFF_POINTOPOINT: u32 = 0x10;
/// `sizeof(struct sockaddr)`: the longest hardware address `SIOCSIFHWADDR` takes.
const SOCKADDR_SIZE: usize = 16;

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Serves netdevice ioctl `request` on `ifreq_bytes` (at least 40 bytes: a
/// `struct ifreq`) like the kernel does on an `AF_INET` socket. On success the
/// image holds what the kernel would have copied back; on error it is unchanged.
/// `SIOCGIFCONF` takes a `struct ifconf`: use [`super::ifconf`].
pub fn ioctl(d: &mut dyn Dialog, request: u64, ifreq_bytes: &mut [u8]) -> io::Result<()> {
    if (request >> 8) & 0xff != 0x89 || request >> 16 != 0 {
        return Err(err(libc::ENOTTY));
    }
    let mut r = image(ifreq_bytes)?;
    serve(d, request, &mut r)?;
    ifreq_bytes[..IFREQ_SIZE].copy_from_slice(&r);
    Ok(())
}

/// The names of a request: the whole (`eth0:1`) and the device's (`eth0`).
struct Names {
    full: Vec<u8>,
    base: Vec<u8>,
}

fn names(r: &mut [u8; IFREQ_SIZE]) -> Names {
    r[IFNAMSIZ - 1] = 0;
    let full = IfReq(*r).name().to_vec();
    let base = full.split(|&c| c == b':').next().unwrap_or(&[]).to_vec();
    Names { full, base }
}

fn put_int(r: &mut [u8; IFREQ_SIZE], v: i32) {
    r[UNION..UNION + 4].copy_from_slice(&v.to_ne_bytes());
}

fn int_of(r: &[u8; IFREQ_SIZE]) -> i32 {
    i32::from_ne_bytes([r[UNION], r[UNION + 1], r[UNION + 2], r[UNION + 3]])
}

fn serve(d: &mut dyn Dialog, request: u64, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    match request {
        SIOCGIFNAME => get_name(d, r),
        SIOCGIFINDEX | SIOCGIFFLAGS | SIOCGIFMTU | SIOCGIFTXQLEN | SIOCGIFMETRIC | SIOCGIFMAP
        | SIOCGIFSLAVE | SIOCGIFHWADDR => get_link(d, request, r),
        SIOCSIFFLAGS => set_flags(d, r),
        SIOCSIFMTU | SIOCSIFTXQLEN | SIOCSIFHWADDR | SIOCSIFNAME | SIOCSIFMETRIC => {
            set_link(d, request, r)
        }
        SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK => get_addr(d, request, r),
        SIOCSIFADDR | SIOCSIFDSTADDR | SIOCSIFBRDADDR | SIOCSIFNETMASK => set_addr(d, request, r),
        // devinet_ioctl knows no private flags for IPv4.
        SIOCSIFPFLAGS | SIOCGIFPFLAGS => Err(err(libc::EINVAL)),
        SIOCGIFCONF => Err(crate::error::context(
            err(libc::EINVAL),
            "SIOCGIFCONF takes a struct ifconf: use nl::emul::ifconf",
        )),
        r if known_not_emulated(r) => Err(err(libc::EOPNOTSUPP)),
        // SIOCSIFLINK, SIOCGIFMEM, SIOCSIFMEM, and numbers nobody serves.
        _ => Err(err(libc::ENOTTY)),
    }
}

/// Netdevice requests the kernel serves that this emulation does not: routes,
/// ARP, `SIOCSIFMAP`, slaves and multicast lists, `SIOCSIFHWBROADCAST`, bridges,
/// ethtool and MII, `SIOCWANDEV`, `SIOCOUTQNSD`, `SIOCGSKNS`, VLANs, bonding,
/// hardware time stamps, protocol and device private requests.
fn known_not_emulated(request: u64) -> bool {
    matches!(
        request,
        0x890b | 0x890c | 0x8953..=0x8955 | 0x8971 | 0x8930..=0x8932 | 0x8937 | 0x8940 | 0x8941
            | 0x8946..=0x894c | 0x8982 | 0x8983 | 0x8990..=0x8996 | 0x89a0..=0x89a3 | 0x89b0
            | 0x89b1 | 0x89e0..=0x89ff
    )
}

/// `SIOCGIFNAME`: `dev_ifname` (`ifr_name[15] = 0`, then `strcpy` of the name).
fn get_name(d: &mut dyn Dialog, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    let link = rt::link_by_index(d, int_of(r))?;
    if link.name.len() >= IFNAMSIZ {
        return Err(crate::error::context(
            err(libc::EPROTO),
            "link name longer than IFNAMSIZ",
        ));
    }
    r[IFNAMSIZ - 1] = 0;
    r[..link.name.len()].copy_from_slice(&link.name);
    r[link.name.len()] = 0;
    Ok(())
}

/// The link requests that `dev_ioctl` answers from `struct net_device`.
fn get_link(d: &mut dyn Dialog, request: u64, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    let n = names(r);
    let link = rt::link_by_name(d, &n.base)?;
    match request {
        SIOCGIFINDEX => put_int(r, link.index),
        // dev_get_flags() truncated to a short, as ifr_flags is.
        SIOCGIFFLAGS => r[UNION..UNION + 2].copy_from_slice(&(link.flags as u16).to_ne_bytes()),
        SIOCGIFMTU => put_int(r, link.mtu.unwrap_or(0) as i32),
        SIOCGIFTXQLEN => put_int(r, link.txqlen.unwrap_or(0) as i32),
        SIOCGIFMETRIC => put_int(r, 0),
        SIOCGIFSLAVE => return Err(err(libc::EINVAL)),
        SIOCGIFMAP => put_map(r, link.map.as_deref()),
        _ => {
            // SIOCGIFHWADDR: dev_get_mac_address() copies min(addr_len, 14) bytes,
            // or zeroes sa_data when the device has no address.
            let data = &mut r[UNION + 2..UNION + 16];
            match &link.hwaddr {
                Some(a) if !a.is_empty() => {
                    let k = a.len().min(data.len());
                    data[..k].copy_from_slice(&a[..k]);
                }
                _ => data.fill(0),
            }
            r[UNION..UNION + 2].copy_from_slice(&link.hwtype.to_ne_bytes());
        }
    }
    Ok(())
}

/// `struct ifmap` from `struct rtnl_link_ifmap` (three u64, a u16 irq, dma, port):
/// `mem_start`, `mem_end` (u64), `base_addr` (u16), `irq`, `dma`, `port` (u8).
fn put_map(r: &mut [u8; IFREQ_SIZE], map: Option<&[u8]>) {
    let mut m = [0u8; 28];
    if let Some(src) = map {
        let k = src.len().min(28);
        m[..k].copy_from_slice(&src[..k]);
    }
    let base_addr = u64::from_ne_bytes(m[16..24].try_into().unwrap_or([0; 8]));
    let irq = u16::from_ne_bytes([m[24], m[25]]);
    r[UNION..UNION + 16].copy_from_slice(&m[..16]);
    r[UNION + 16..UNION + 18].copy_from_slice(&(base_addr as u16).to_ne_bytes());
    r[UNION + 18] = irq as u8;
    r[UNION + 19] = m[26];
    r[UNION + 20] = m[27];
}

/// Asks the peer, with a change that changes nothing, whether the caller may
/// change link `name` and whether it exists: `EPERM`, then `ENODEV`, as the
/// kernel's ioctls check them.
fn probe(d: &mut dyn Dialog, name: &[u8]) -> io::Result<()> {
    rt::setlink_by_name(d, name, 0, 0, &[])
}

/// `SIOCSIFFLAGS` as `devinet_ioctl` serves it on an `AF_INET` socket.
fn set_flags(d: &mut dyn Dialog, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    let n = names(r);
    let flags = u16::from_ne_bytes([r[UNION], r[UNION + 1]]);
    if n.full.len() == n.base.len() {
        // dev_change_flags(dev, ifr_flags): the short is sign-extended, and
        // ifi_change = ~0 makes rtnetlink pass ifi_flags through unchanged.
        let wide = flags as i16 as i32 as u32;
        return rt::setlink_by_name(d, &n.base, wide, u32::MAX, &[]);
    }
    // An alias: only "down" means something, and it deletes the address.
    probe(d, &n.base)?;
    let link = rt::link_by_name(d, &n.base)?;
    let a = labelled(d, link.index, &n.full, None)?.ok_or_else(|| err(libc::EADDRNOTAVAIL))?;
    if flags & IFF_UP == 0 {
        rt::change(d, &rt::build_addr(&a, false))?;
    }
    Ok(())
}

/// The link requests that `dev_ioctl` serves through `dev_ifsioc`.
fn set_link(d: &mut dyn Dialog, request: u64, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    let n = names(r);
    let v = int_of(r);
    match request {
        SIOCSIFMTU => rt::setlink_by_name(d, &n.base, 0, 0, &[(IFLA_MTU, &v.to_ne_bytes())]),
        SIOCSIFTXQLEN => {
            if v < 0 {
                probe(d, &n.base)?;
                return Err(err(libc::EINVAL));
            }
            rt::setlink_by_name(d, &n.base, 0, 0, &[(IFLA_TXQLEN, &v.to_ne_bytes())])
        }
        SIOCSIFMETRIC => {
            probe(d, &n.base)?;
            Err(err(libc::EOPNOTSUPP))
        }
        SIOCSIFNAME => {
            probe(d, &n.base)?;
            let mut new = r[UNION..UNION + IFNAMSIZ].to_vec();
            new[IFNAMSIZ - 1] = 0;
            let end = new.iter().position(|&c| c == 0).unwrap_or(IFNAMSIZ);
            new.truncate(end);
            // rtnetlink ignores an empty IFLA_IFNAME; dev_change_name refuses it.
            if new.is_empty() {
                return Err(err(libc::EINVAL));
            }
            let link = rt::link_by_name(d, &n.base)?;
            new.push(0);
            rt::setlink_by_index(d, link.index, &[(IFLA_IFNAME, &new)])
        }
        _ => {
            // SIOCSIFHWADDR: dev_set_mac_address() wants sa_family == dev->type;
            // rtnetlink supplies dev->type itself, so the check is made here.
            probe(d, &n.base)?;
            let link = rt::link_by_name(d, &n.base)?;
            let family = u16::from_ne_bytes([r[UNION], r[UNION + 1]]);
            let len = link.hwaddr.as_ref().map_or(0, |a| a.len());
            if len > SOCKADDR_SIZE || family != link.hwtype {
                return Err(err(libc::EINVAL));
            }
            let data = r[UNION + 2..UNION + 2 + len].to_vec();
            rt::setlink_by_index(d, link.index, &[(IFLA_ADDRESS, &data)])
        }
    }
}

/// The address of link `index` labelled `label`: first one whose local address
/// is `prefer` too (if given), else the first with the label.
fn labelled(
    d: &mut dyn Dialog,
    index: i32,
    label: &[u8],
    prefer: Option<[u8; 4]>,
) -> io::Result<Option<V4Addr>> {
    let mine: Vec<V4Addr> = rt::v4_addrs(d)?
        .into_iter()
        .filter(|a| a.index as i32 == index && a.label == label)
        .collect();
    let hit = prefer
        .and_then(|p| mine.iter().position(|a| a.local == p))
        .or(if mine.is_empty() { None } else { Some(0) });
    Ok(hit.map(|i| mine[i].clone()))
}

fn sin_addr(r: &[u8; IFREQ_SIZE]) -> [u8; 4] {
    [r[UNION + 4], r[UNION + 5], r[UNION + 6], r[UNION + 7]]
}

fn sin_family(r: &[u8; IFREQ_SIZE]) -> u16 {
    u16::from_ne_bytes([r[UNION], r[UNION + 1]])
}

/// The netmask of a prefix length.
fn mask_of(prefixlen: u8) -> [u8; 4] {
    let p = prefixlen.min(32) as u32;
    let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    m.to_be_bytes()
}

/// `SIOCGIF{ADDR,DSTADDR,BRDADDR,NETMASK}` as `devinet_ioctl` serves them.
fn get_addr(d: &mut dyn Dialog, request: u64, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    let n = names(r);
    let prefer = (sin_family(r) == libc::AF_INET as u16).then(|| sin_addr(r));
    let link = rt::link_by_name(d, &n.base)?;
    let a = labelled(d, link.index, &n.full, prefer)?.ok_or_else(|| err(libc::EADDRNOTAVAIL))?;
    let v = match request {
        SIOCGIFADDR => a.local,
        SIOCGIFDSTADDR => a.address,
        SIOCGIFBRDADDR => a.broadcast,
        _ => mask_of(a.prefixlen),
    };
    let mut img = IfReq(*r);
    img.set_ipv4(v.into());
    *r = img.0;
    Ok(())
}

/// `inet_abc_len`: the classful prefix of an address; `None` for class D
/// (multicast), which the kernel refuses.
fn abc_len(a: [u8; 4]) -> Option<u8> {
    let h = u32::from_be_bytes(a);
    if a[0] == 0 || h == u32::MAX {
        return Some(0);
    }
    match h >> 28 {
        0..=7 => Some(8),
        8..=11 => Some(16),
        12..=13 => Some(24),
        14 => None,
        _ => Some(32),
    }
}

/// `bad_mask(mask, 0)`: a mask whose ones are not contiguous from the top.
fn bad_mask(mask: [u8; 4]) -> bool {
    let inv = !u32::from_be_bytes(mask);
    inv & inv.wrapping_add(1) != 0
}

fn or_not(a: [u8; 4], mask: [u8; 4]) -> [u8; 4] {
    (u32::from_be_bytes(a) | !u32::from_be_bytes(mask)).to_be_bytes()
}

/// `IFA_F_SECONDARY | IFA_F_DEPRECATED | IFA_F_PERMANENT`: flags the kernel
/// computes itself when an address is (re)inserted.
const COMPUTED_FLAGS: u32 = 0x01 | 0x20 | 0x80;

/// `SIOCSIF{ADDR,DSTADDR,BRDADDR,NETMASK}` as `devinet_ioctl` serves them: the
/// kernel takes the address out of the list, changes it, and puts it back, which
/// over netlink is a delete followed by an add of the changed copy.
fn set_addr(d: &mut dyn Dialog, request: u64, r: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    let n = names(r);
    let probed = probe(d, &n.base);
    if sin_family(r) != libc::AF_INET as u16 {
        return match probed {
            Err(e) if errno_of(&e) == libc::EPERM => Err(e),
            _ => Err(err(libc::EINVAL)),
        };
    }
    probed?;
    let link = rt::link_by_name(d, &n.base)?;
    let new = sin_addr(r);
    let found = labelled(d, link.index, &n.full, None)?;
    let Some(old) = found else {
        if request != SIOCSIFADDR {
            return Err(err(libc::EADDRNOTAVAIL));
        }
        let prefix = abc_len(new).ok_or_else(|| err(libc::EINVAL))?;
        if new == [0; 4] {
            return Ok(()); // the kernel frees an address of 0.0.0.0 unseen
        }
        let a = V4Addr {
            index: link.index as u32,
            label: n.full.clone(),
            ..Default::default()
        };
        return rt::change(
            d,
            &rt::build_addr(&readdressed(a, new, prefix, link.flags), true),
        );
    };
    let mut a = old.clone();
    a.flags &= !COMPUTED_FLAGS;
    match request {
        SIOCSIFADDR => {
            let prefix = abc_len(new).ok_or_else(|| err(libc::EINVAL))?;
            if old.local == new {
                return Ok(());
            }
            a.broadcast = [0; 4];
            a.scope = 0;
            // A fresh lifetime, as set_ifa_lifetime(INFINITY) gives.
            a.cacheinfo = None;
            a = readdressed(a, new, prefix, link.flags);
        }
        SIOCSIFBRDADDR => {
            if old.broadcast == new {
                return Ok(());
            }
            a.broadcast = new;
        }
        SIOCSIFDSTADDR => {
            if old.address == new {
                return Ok(());
            }
            abc_len(new).ok_or_else(|| err(libc::EINVAL))?;
            a.address = new;
            a.has_address = true;
        }
        _ => {
            if bad_mask(new) {
                return Err(err(libc::EINVAL));
            }
            let old_mask = mask_of(old.prefixlen);
            if old_mask == new {
                return Ok(());
            }
            a.prefixlen = (!u32::from_be_bytes(new)).leading_zeros() as u8;
            // A broadcast that followed the old mask follows the new one.
            if link.flags & IFF_BROADCAST != 0
                && a.prefixlen < 31
                && old.broadcast == or_not(old.local, old_mask)
            {
                a.broadcast = or_not(old.local, new);
            }
        }
    }
    rt::change(d, &rt::build_addr(&old, false))?;
    if a.local == [0; 4] {
        return Ok(()); // SIOCSIFADDR 0.0.0.0: the kernel drops the address
    }
    rt::change(d, &rt::build_addr(&a, true))
}

/// `a` given local and peer address `new` the way SIOCSIFADDR does: the
/// classful prefix and its broadcast, or /32 on a point-to-point link; host
/// scope for a loopback address.
fn readdressed(mut a: V4Addr, new: [u8; 4], prefix: u8, link_flags: u32) -> V4Addr {
    a.local = new;
    a.address = new;
    a.has_address = true;
    if link_flags & IFF_POINTOPOINT == 0 {
        a.prefixlen = prefix;
        if link_flags & IFF_BROADCAST != 0 && prefix < 31 {
            a.broadcast = or_not(new, mask_of(prefix));
        }
    } else {
        a.prefixlen = 32;
    }
    if new[0] == 127 {
        a.scope = libc::RT_SCOPE_HOST;
    }
    a
}
