//! The rtnetlink objects the `/proc/net` files show besides links: IPv6
//! addresses and routes (of either family), parsed from dump replies.

use std::io;

use super::super::dialog::Dialog;
use super::super::wire::{self, IFA_ADDRESS, IFA_LOCAL, RTM_GETADDR, RTM_GETROUTE, RTM_NEWROUTE};
use super::rt;

/// `RTA_DST`.
const RTA_DST: u16 = 1;
/// `RTA_OIF`.
const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
const RTA_GATEWAY: u16 = 5;
/// `RTA_PRIORITY`.
const RTA_PRIORITY: u16 = 6;
/// `RTA_METRICS` (nested `RTAX_*`).
const RTA_METRICS: u16 = 8;
/// `RTA_TABLE` (the full table id; `rtm_table` holds only 8 bits).
const RTA_TABLE: u16 = 15;
/// `RTA_CACHEINFO` (`struct rta_cacheinfo`: `rta_expires` is its 4th u32).
const RTA_CACHEINFO: u16 = 12;
/// `RTA_EXPIRES` (seconds left, IPv6 routes).
const RTA_EXPIRES: u16 = 23;
/// `RTAX_WINDOW`.
const RTAX_WINDOW: u16 = 3;
/// `RTAX_RTT`.
const RTAX_RTT: u16 = 4;
/// `RTAX_ADVMSS`.
const RTAX_ADVMSS: u16 = 8;

/// What a route's `/proc` line needs (`RTM_NEWROUTE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteInfo {
    pub family: u8,
    pub dst_len: u8,
    /// `rtm_type` (`RTN_*`).
    pub kind: u8,
    /// The table id (`RTA_TABLE`, else `rtm_table`).
    pub table: u32,
    /// The destination prefix (4 or 16 bytes; zeros when absent).
    pub dst: Vec<u8>,
    pub gateway: Option<Vec<u8>>,
    pub oif: Option<u32>,
    pub priority: u32,
    pub advmss: u32,
    pub window: u32,
    pub rtt: u32,
    /// Whether the route expires (IPv6 routes learnt from router advertisements).
    pub expires: bool,
}

/// What an `/proc/net/if_inet6` line needs (`RTM_NEWADDR`, `AF_INET6`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct V6Addr {
    pub index: u32,
    pub prefixlen: u8,
    /// `rtm_scope`-style scope (`RT_SCOPE_*`).
    pub scope: u8,
    /// `IFA_FLAGS` when present, else the header's 8 bits.
    pub flags: u32,
    pub addr: [u8; 16],
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?))
}

/// Parses an `RTM_NEWROUTE` payload.
pub(crate) fn parse_route(p: &[u8]) -> io::Result<RouteInfo> {
    if p.len() < 12 {
        return Err(wire::malformed("route message shorter than rtmsg"));
    }
    let alen = if p[0] as i32 == libc::AF_INET6 { 16 } else { 4 };
    let mut r = RouteInfo {
        family: p[0],
        dst_len: p[1],
        table: p[4] as u32,
        kind: p[7],
        dst: vec![0; alen],
        ..Default::default()
    };
    for (kind, data) in wire::attrs(&p[12..])? {
        match kind {
            RTA_DST => r.dst = data.to_vec(),
            RTA_OIF => r.oif = u32_of(data),
            RTA_GATEWAY => r.gateway = Some(data.to_vec()),
            RTA_PRIORITY => r.priority = u32_of(data).unwrap_or(0),
            RTA_TABLE => r.table = u32_of(data).unwrap_or(r.table),
            RTA_EXPIRES => r.expires = u32_of(data).unwrap_or(0) != 0,
            RTA_CACHEINFO => r.expires |= data.get(12..16).and_then(u32_of).unwrap_or(0) != 0,
            RTA_METRICS => {
                for (m, v) in wire::attrs(data)? {
                    let v = u32_of(v).unwrap_or(0);
                    match m {
                        RTAX_ADVMSS => r.advmss = v,
                        RTAX_WINDOW => r.window = v,
                        RTAX_RTT => r.rtt = v,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(r)
}

/// Parses an `RTM_NEWADDR` payload; `None` for families other than IPv6.
pub(crate) fn parse_v6addr(p: &[u8]) -> io::Result<Option<V6Addr>> {
    if p.len() < 8 {
        return Err(wire::malformed("address message shorter than ifaddrmsg"));
    }
    if p[0] as i32 != libc::AF_INET6 {
        return Ok(None);
    }
    let mut a = V6Addr {
        prefixlen: p[1],
        flags: p[2] as u32,
        scope: p[3],
        index: u32::from_ne_bytes([p[4], p[5], p[6], p[7]]),
        ..Default::default()
    };
    let (mut address, mut local) = (None, None);
    for (kind, data) in wire::attrs(&p[8..])? {
        match kind {
            IFA_ADDRESS => address = data.get(..16).and_then(|s| <[u8; 16]>::try_from(s).ok()),
            IFA_LOCAL => local = data.get(..16).and_then(|s| <[u8; 16]>::try_from(s).ok()),
            wire::IFA_FLAGS => a.flags = u32_of(data).unwrap_or(a.flags),
            _ => {}
        }
    }
    // The kernel reports an IPv6 address as IFA_ADDRESS (IFA_LOCAL too, for a
    // point-to-point address, where IFA_ADDRESS is the peer).
    a.addr = local.or(address).unwrap_or([0; 16]);
    Ok(Some(a))
}

/// Every IPv6 address, in the peer's dump order.
pub(crate) fn v6_addrs(d: &mut dyn Dialog) -> io::Result<Vec<V6Addr>> {
    let fixed = [libc::AF_INET6 as u8, 0, 0, 0, 0, 0, 0, 0];
    let mut out = Vec::new();
    for p in rt::dump(d, RTM_GETADDR, &fixed, wire::RTM_NEWADDR)? {
        out.extend(parse_v6addr(&p)?);
    }
    Ok(out)
}

/// Every route of `family` (`AF_INET` or `AF_INET6`), of every table.
pub(crate) fn routes(d: &mut dyn Dialog, family: u8) -> io::Result<Vec<RouteInfo>> {
    let mut fixed = [0u8; 12];
    fixed[0] = family;
    rt::dump(d, RTM_GETROUTE, &fixed, RTM_NEWROUTE)?
        .iter()
        .map(|p| parse_route(p))
        .filter(|r| !matches!(r, Ok(r) if r.family != family))
        .collect()
}

/// Whether `ip` is an address of the stack, as the kernel decides it for
/// `bind`: a `local` route of the local table covers it (so `127.0.0.5` is
/// local once `lo` is up with `127.0.0.1/8`).
pub fn is_local(d: &mut dyn Dialog, ip: std::net::IpAddr) -> io::Result<bool> {
    let (family, bytes) = match ip {
        std::net::IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    Ok(routes(d, family)?.iter().any(|r| {
        r.kind == 2 // RTN_LOCAL
            && r.table == 255
            && covers(&r.dst, r.dst_len, &bytes)
    }))
}

/// Whether prefix `net/len` contains `addr` (same length in bytes).
fn covers(net: &[u8], len: u8, addr: &[u8]) -> bool {
    if net.len() != addr.len() {
        return false;
    }
    let bits = (len as usize).min(net.len() * 8);
    (0..bits).all(|i| {
        let m = 0x80u8 >> (i % 8);
        net[i / 8] & m == addr[i / 8] & m
    })
}
