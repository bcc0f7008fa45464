//! `SIOCGIFCONF`: one `struct ifreq` per IPv4 address, as `dev_ifconf` and
//! `inet_gifconf` write them.

use std::io;
use std::net::Ipv4Addr;

use super::super::dialog::Dialog;
use super::ifreq::{IfReq, IFNAMSIZ, IFREQ_SIZE};
use super::rt;

/// Serves `SIOCGIFCONF`. `buf` is the caller's `ifc_buf`, `ifc_len` bytes long
/// (`None` for a NULL `ifc_buf`: then only the size needed is computed). Every
/// IPv4 address whose whole `ifreq` fits is written (name = the address's label,
/// `ifr_addr` = `AF_INET` and its local address, every other byte zero), links in
/// the peer's order (ifindex order) and addresses in each link's list order;
/// bytes past the last whole entry are left alone. Returns the new `ifc_len`:
/// the bytes written, or the bytes needed for a NULL buffer.
///
/// One difference the emulation cannot avoid: the kernel walks links in the
/// order they joined the namespace, netlink dumps them by index; the two differ
/// only for a link moved in from another namespace after links of higher index.
pub fn ifconf(d: &mut dyn Dialog, buf: Option<&mut [u8]>) -> io::Result<usize> {
    let addrs = rt::v4_addrs(d)?;
    let Some(buf) = buf else {
        return Ok(addrs.len() * IFREQ_SIZE);
    };
    let mut done = 0;
    for a in &addrs {
        if buf.len() - done < IFREQ_SIZE {
            break;
        }
        let mut r = IfReq([0; IFREQ_SIZE]);
        let k = a.label.len().min(IFNAMSIZ - 1);
        r.0[..k].copy_from_slice(&a.label[..k]);
        r.set_ipv4(Ipv4Addr::from(a.local));
        buf[done..done + IFREQ_SIZE].copy_from_slice(&r.0);
        done += IFREQ_SIZE;
    }
    Ok(done)
}

/// `SIOCGIFCONF` decoded: (label, local address) of every IPv4 address.
pub fn get_conf(d: &mut dyn Dialog) -> io::Result<Vec<(String, Ipv4Addr)>> {
    Ok(rt::v4_addrs(d)?
        .into_iter()
        .map(|a| {
            (
                String::from_utf8_lossy(&a.label).into_owned(),
                Ipv4Addr::from(a.local),
            )
        })
        .collect())
}
