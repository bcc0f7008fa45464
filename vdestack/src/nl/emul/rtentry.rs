//! The IPv4 route ioctls of an `AF_INET` socket, `SIOCADDRT` and `SIOCDELRT`
//! (net-tools' and busybox's `route add`/`del`), on a `struct rtentry`, asked
//! of the dialog as the `RTM_NEWROUTE`/`RTM_DELROUTE` that
//! `rtentry_to_fib_config` (Linux 6.x `net/ipv4/fib_frontend.c`) makes of it:
//! the prefix from `RTF_HOST` or the netmask (`EINVAL` if not contiguous or if
//! host bits are set, `EAFNOSUPPORT` for another family), protocol `boot`,
//! `metric - 1` as priority, `RTF_REJECT` as an unreachable route, the device
//! (`ENODEV`; an alias name `eth0:1` also gives its address as preferred
//! source), the gateway (universe scope if it is not local), `EINVAL` for
//! `RTF_GATEWAY` without one, and `RTF_MTU`/`RTF_WINDOW`/`RTF_IRTT` as metrics.
//! An add is `NLM_F_CREATE` without `NLM_F_EXCL`, as the kernel inserts it.

use std::io;

use super::super::dialog::Dialog;
use super::super::wire::{
    Builder, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY,
    RTA_TABLE, RTM_DELROUTE, RTM_NEWROUTE,
};
use super::rt;

/// `SIOCADDRT`.
pub const SIOCADDRT: u64 = 0x890b;
/// `SIOCDELRT`.
pub const SIOCDELRT: u64 = 0x890c;
/// `sizeof(struct rtentry)` on 64-bit Linux.
pub const RTENTRY_SIZE: usize = 120;
/// Where `rt_dev` (a pointer to the device name) lies in a `struct rtentry`.
pub const RTENTRY_DEV: usize = 88;

const RT_DST: usize = 8;
const RT_GATEWAY: usize = 24;
const RT_GENMASK: usize = 40;
const RT_FLAGS: usize = 56;
const RT_METRIC: usize = 80;
const RT_MTU: usize = 96;
const RT_WINDOW: usize = 104;
const RT_IRTT: usize = 112;

const RTF_GATEWAY: u16 = 0x2;
const RTF_HOST: u16 = 0x4;
const RTF_MTU: u16 = 0x40;
const RTF_WINDOW: u16 = 0x80;
const RTF_IRTT: u16 = 0x100;
const RTF_REJECT: u16 = 0x200;

const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTAX_WINDOW: u16 = 3;
const RTAX_RTT: u16 = 4;
const RTAX_ADVMSS: u16 = 8;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RT_SCOPE_NOWHERE: u8 = 255;
const RTN_UNICAST: u8 = 1;
const RTN_UNREACHABLE: u8 = 7;

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// The `sin_addr` of the `struct sockaddr` at `at`.
fn addr_at(b: &[u8], at: usize) -> [u8; 4] {
    [b[at + 4], b[at + 5], b[at + 6], b[at + 7]]
}

/// `bad_mask(mask, addr)`: not contiguous, or `addr` has bits outside it.
fn bad_mask(mask: [u8; 4], addr: [u8; 4]) -> bool {
    let (m, a) = (u32::from_be_bytes(mask), u32::from_be_bytes(addr));
    if a & !m != 0 {
        return true;
    }
    let inv = !m;
    inv & inv.wrapping_add(1) != 0
}

/// Serves `SIOCADDRT` or `SIOCDELRT` on a `struct rtentry` image (at least 120
/// bytes, `EFAULT` otherwise). `dev` is the name `rt_dev` points to (the 15
/// bytes the kernel copies; the caller reads them), `None` for a null `rt_dev`.
pub fn route_ioctl(
    d: &mut dyn Dialog,
    request: u64,
    rtentry: &[u8],
    dev: Option<&[u8]>,
) -> io::Result<()> {
    let r = rtentry
        .get(..RTENTRY_SIZE)
        .ok_or_else(|| err(libc::EFAULT))?;
    let add = match request {
        SIOCADDRT => true,
        SIOCDELRT => false,
        _ => return Err(err(libc::EINVAL)),
    };
    let family = |at: usize| u16_at(r, at) as i32;
    if family(RT_DST) != libc::AF_INET {
        return Err(err(libc::EAFNOSUPPORT));
    }
    let flags = u16_at(r, RT_FLAGS);
    let dst = addr_at(r, RT_DST);
    let mut plen = 32u8;
    if flags & RTF_HOST == 0 {
        let mask = addr_at(r, RT_GENMASK);
        if family(RT_GENMASK) != libc::AF_INET && (mask != [0; 4] || family(RT_GENMASK) != 0) {
            return Err(err(libc::EAFNOSUPPORT));
        }
        if bad_mask(mask, dst) {
            return Err(err(libc::EINVAL));
        }
        plen = u32::from_be_bytes(mask).leading_ones() as u8;
    }
    let metric = i16::from_ne_bytes([r[RT_METRIC], r[RT_METRIC + 1]]);
    let priority = (metric != 0).then(|| (metric as i32 - 1) as u32);
    let mut route = Route {
        add,
        dst,
        plen,
        priority,
        kind: RTN_UNICAST,
        scope: RT_SCOPE_NOWHERE,
        ..Default::default()
    };
    if flags & RTF_REJECT != 0 {
        route.kind = RTN_UNREACHABLE;
        route.scope = RT_SCOPE_HOST;
        return change(d, &route);
    }
    if let Some(name) = dev {
        let name: Vec<u8> = name
            .iter()
            .take(15)
            .take_while(|&&c| c != 0)
            .copied()
            .collect();
        let base: Vec<u8> = name.split(|&c| c == b':').next().unwrap_or(&[]).to_vec();
        let link = rt::link_by_name(d, &base).map_err(|_| err(libc::ENODEV))?;
        route.oif = Some(link.index as u32);
        if base.len() != name.len() {
            let a = rt::v4_addrs(d)?
                .into_iter()
                .find(|a| a.index == link.index as u32 && a.label == name)
                .ok_or_else(|| err(libc::ENODEV))?;
            route.prefsrc = Some(a.local);
        }
    }
    let gw = addr_at(r, RT_GATEWAY);
    if family(RT_GATEWAY) == libc::AF_INET && gw != [0; 4] {
        route.gateway = Some(gw);
        let unicast = !gw_is_special(gw) && !super::is_local(d, gw.into())?;
        if flags & RTF_GATEWAY != 0 && unicast {
            route.scope = RT_SCOPE_UNIVERSE;
        }
    }
    if add {
        if flags & RTF_GATEWAY != 0 && route.gateway.is_none() {
            return Err(err(libc::EINVAL));
        }
        if route.scope == RT_SCOPE_NOWHERE {
            route.scope = RT_SCOPE_LINK;
        }
        if flags & RTF_MTU != 0 {
            route
                .metrics
                .push((RTAX_ADVMSS, (u64_at(r, RT_MTU) as u32).wrapping_sub(40)));
        }
        if flags & RTF_WINDOW != 0 {
            route
                .metrics
                .push((RTAX_WINDOW, u64_at(r, RT_WINDOW) as u32));
        }
        if flags & RTF_IRTT != 0 {
            route
                .metrics
                .push((RTAX_RTT, (u16_at(r, RT_IRTT) as u32) << 3));
        }
    }
    change(d, &route)
}

/// Broadcast, multicast and zero addresses are not `RTN_UNICAST` gateways.
fn gw_is_special(a: [u8; 4]) -> bool {
    a == [255; 4] || (224..=239).contains(&a[0]) || a[0] == 0
}

/// A route request, as the kernel's `fib_config` holds it.
#[derive(Debug, Default)]
struct Route {
    add: bool,
    dst: [u8; 4],
    plen: u8,
    priority: Option<u32>,
    kind: u8,
    scope: u8,
    oif: Option<u32>,
    gateway: Option<[u8; 4]>,
    prefsrc: Option<[u8; 4]>,
    metrics: Vec<(u16, u32)>,
}

fn change(d: &mut dyn Dialog, r: &Route) -> io::Result<()> {
    let (kind, flags, protocol) = if r.add {
        (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
            RTPROT_BOOT,
        )
    } else {
        (RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, 0)
    };
    let h = [
        libc::AF_INET as u8,
        r.plen,
        0,
        0,
        RT_TABLE_MAIN,
        protocol,
        r.scope,
        r.kind,
        0,
        0,
        0,
        0,
    ];
    let mut b = Builder::new(kind, flags, 0)
        .raw(&h)
        .attr_u32(RTA_TABLE, RT_TABLE_MAIN as u32)
        .attr(RTA_DST, &r.dst);
    if let Some(p) = r.priority {
        b = b.attr_u32(RTA_PRIORITY, p);
    }
    if let Some(o) = r.oif {
        b = b.attr_u32(RTA_OIF, o);
    }
    if let Some(g) = r.gateway {
        b = b.attr(RTA_GATEWAY, &g);
    }
    if let Some(s) = r.prefsrc {
        b = b.attr(RTA_PREFSRC, &s);
    }
    if !r.metrics.is_empty() {
        let at = b.begin_nested(RTA_METRICS);
        for (k, v) in &r.metrics {
            b.push(*k, &v.to_ne_bytes());
        }
        b.end_nested(at);
    }
    // A delete of a route that is not there: ESRCH from the peer, as from the
    // kernel's ioctl (both run fib_table_delete).
    rt::change(d, &b.finish())
}
