//! The few rtnetlink questions the emulation asks, over a [`Dialog`]: one link
//! (by name or index), every link, every IPv4 address, and requests that end in
//! an acknowledgement. Errors carry the peer's errno unwrapped (`raw_os_error()`
//! works), as an emulated ioctl must return it.

use std::io;

pub(crate) use super::super::answer::dump;
use super::super::answer::exchange;
use super::super::dialog::Dialog;
use super::super::wire::{
    self, Builder, IFA_ADDRESS, IFA_LOCAL, IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, NLM_F_ACK,
    NLM_F_REQUEST, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK,
};

/// `IFLA_TXQLEN`.
pub(crate) const IFLA_TXQLEN: u16 = 13;
/// `IFLA_MAP` (`struct rtnl_link_ifmap`).
pub(crate) const IFLA_MAP: u16 = 14;
/// `IFLA_STATS` (32-bit counters).
pub(crate) const IFLA_STATS: u16 = 7;
/// `IFLA_STATS64`.
pub(crate) const IFLA_STATS64: u16 = 23;
/// `IFA_LABEL`.
pub(crate) const IFA_LABEL: u16 = 3;
/// `IFA_BROADCAST`.
pub(crate) const IFA_BROADCAST: u16 = 4;
/// `IFA_CACHEINFO` (the remaining lifetimes).
pub(crate) const IFA_CACHEINFO: u16 = 6;
/// `IFA_RT_PRIORITY`.
pub(crate) const IFA_RT_PRIORITY: u16 = 9;
/// `IFA_PROTO`.
pub(crate) const IFA_PROTO: u16 = 11;

/// What the emulation needs of a link (`RTM_NEWLINK`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub index: i32,
    /// `ifi_type` (`ARPHRD_*`).
    pub hwtype: u16,
    pub flags: u32,
    pub name: Vec<u8>,
    pub mtu: Option<u32>,
    pub txqlen: Option<u32>,
    /// `IFLA_ADDRESS`: absent when the device has no link-layer address.
    pub hwaddr: Option<Vec<u8>>,
    pub map: Option<Vec<u8>>,
    pub stats64: Option<Vec<u8>>,
    pub stats32: Option<Vec<u8>>,
}

/// What the emulation needs of an IPv4 address (`RTM_NEWADDR`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct V4Addr {
    pub index: u32,
    pub prefixlen: u8,
    /// The 32-bit flags (`IFA_FLAGS` when present, else the header's 8).
    pub flags: u32,
    pub scope: u8,
    /// `ifa_local`, in network order (0 when absent).
    pub local: [u8; 4],
    /// `ifa_address` (the peer on point-to-point links).
    pub address: [u8; 4],
    pub broadcast: [u8; 4],
    pub has_address: bool,
    pub label: Vec<u8>,
    pub cacheinfo: Option<Vec<u8>>,
    pub rt_priority: Option<u32>,
    pub proto: Option<u8>,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?))
}

fn ipv4_of(b: &[u8]) -> [u8; 4] {
    b.get(0..4)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; 4])
}

/// The bytes of a string attribute up to its NUL.
fn cstr(b: &[u8]) -> Vec<u8> {
    b.iter().take_while(|&&c| c != 0).copied().collect()
}

/// Parses an `RTM_NEWLINK` payload.
pub(crate) fn parse_link(p: &[u8]) -> io::Result<LinkInfo> {
    if p.len() < 16 {
        return Err(wire::malformed("link message shorter than ifinfomsg"));
    }
    let mut l = LinkInfo {
        hwtype: u16::from_ne_bytes([p[2], p[3]]),
        index: i32::from_ne_bytes([p[4], p[5], p[6], p[7]]),
        flags: u32::from_ne_bytes([p[8], p[9], p[10], p[11]]),
        ..Default::default()
    };
    for (kind, data) in wire::attrs(&p[16..])? {
        match kind {
            IFLA_IFNAME => l.name = cstr(data),
            IFLA_MTU => l.mtu = u32_of(data),
            IFLA_TXQLEN => l.txqlen = u32_of(data),
            IFLA_ADDRESS => l.hwaddr = Some(data.to_vec()),
            IFLA_MAP => l.map = Some(data.to_vec()),
            IFLA_STATS64 => l.stats64 = Some(data.to_vec()),
            IFLA_STATS => l.stats32 = Some(data.to_vec()),
            _ => {}
        }
    }
    Ok(l)
}

/// Parses an `RTM_NEWADDR` payload; `None` for families other than IPv4.
pub(crate) fn parse_v4addr(p: &[u8]) -> io::Result<Option<V4Addr>> {
    if p.len() < 8 {
        return Err(wire::malformed("address message shorter than ifaddrmsg"));
    }
    if p[0] as i32 != libc::AF_INET {
        return Ok(None);
    }
    let mut a = V4Addr {
        prefixlen: p[1],
        flags: p[2] as u32,
        scope: p[3],
        index: u32::from_ne_bytes([p[4], p[5], p[6], p[7]]),
        ..Default::default()
    };
    for (kind, data) in wire::attrs(&p[8..])? {
        match kind {
            IFA_LOCAL => a.local = ipv4_of(data),
            IFA_ADDRESS => {
                a.address = ipv4_of(data);
                a.has_address = true;
            }
            IFA_BROADCAST => a.broadcast = ipv4_of(data),
            IFA_LABEL => a.label = cstr(data),
            wire::IFA_FLAGS => a.flags = u32_of(data).unwrap_or(a.flags),
            IFA_CACHEINFO => a.cacheinfo = Some(data.to_vec()),
            IFA_RT_PRIORITY => a.rt_priority = u32_of(data),
            IFA_PROTO => a.proto = data.first().copied(),
            _ => {}
        }
    }
    Ok(Some(a))
}

/// Sends a request that changes something (built with `NLM_F_ACK`); `Ok` on a
/// zero (or positive) acknowledgement.
pub(crate) fn change(d: &mut dyn Dialog, req: &[u8]) -> io::Result<()> {
    exchange(d, req).map(|_| ())
}

fn one_link(d: &mut dyn Dialog, req: &[u8]) -> io::Result<LinkInfo> {
    let ans = exchange(d, req)?;
    match ans.msgs.iter().find(|(k, _)| *k == RTM_NEWLINK) {
        Some((_, p)) => parse_link(p),
        None => Err(errno(libc::ENODEV)),
    }
}

/// A string attribute from raw name bytes (a NUL is added).
fn name_attr(b: Builder, kind: u16, name: &[u8]) -> Builder {
    let mut v = name.to_vec();
    v.push(0);
    b.attr(kind, &v)
}

/// The link called `name` (its main name or an alternative one); `ENODEV` if
/// there is none.
pub(crate) fn link_by_name(d: &mut dyn Dialog, name: &[u8]) -> io::Result<LinkInfo> {
    let b = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 0).ifinfomsg(0, 0, 0, 0);
    one_link(d, &name_attr(b, IFLA_IFNAME, name).finish())
}

/// The link of index `index`; `ENODEV` if there is none (or `index <= 0`).
pub(crate) fn link_by_index(d: &mut dyn Dialog, index: i32) -> io::Result<LinkInfo> {
    if index <= 0 {
        return Err(errno(libc::ENODEV));
    }
    let req = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 0)
        .ifinfomsg(0, index as u32, 0, 0)
        .finish();
    one_link(d, &req)
}

/// Every link, in the peer's dump order.
pub(crate) fn links(d: &mut dyn Dialog) -> io::Result<Vec<LinkInfo>> {
    dump(d, RTM_GETLINK, &[0; 16], RTM_NEWLINK)?
        .iter()
        .map(|p| parse_link(p))
        .collect()
}

/// Every IPv4 address, in the peer's dump order (by link, and within a link in
/// the kernel's list order: primaries first).
pub(crate) fn v4_addrs(d: &mut dyn Dialog) -> io::Result<Vec<V4Addr>> {
    let fixed = [libc::AF_INET as u8, 0, 0, 0, 0, 0, 0, 0];
    let mut out = Vec::new();
    for p in dump(d, RTM_GETADDR, &fixed, RTM_NEWADDR)? {
        out.extend(parse_v4addr(&p)?);
    }
    Ok(out)
}

/// An `RTM_NEWLINK` (no create) for the link called `name`, with `ifi_flags` and
/// `ifi_change` and the attributes `attrs`. With no attributes and no change it
/// does nothing, but the peer still checks the caller's `CAP_NET_ADMIN` (`EPERM`)
/// and that the link exists (`ENODEV`), in the kernel's ioctl order.
pub(crate) fn setlink_by_name(
    d: &mut dyn Dialog,
    name: &[u8],
    flags: u32,
    change_mask: u32,
    attrs: &[(u16, &[u8])],
) -> io::Result<()> {
    let mut b =
        Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0).ifinfomsg(0, 0, flags, change_mask);
    b = name_attr(b, IFLA_IFNAME, name);
    for (k, v) in attrs {
        b = b.attr(*k, v);
    }
    change(d, &b.finish())
}

/// An `RTM_NEWLINK` (no create) for link `index` with the attributes `attrs`.
pub(crate) fn setlink_by_index(
    d: &mut dyn Dialog,
    index: i32,
    attrs: &[(u16, &[u8])],
) -> io::Result<()> {
    let mut b =
        Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0).ifinfomsg(0, index as u32, 0, 0);
    for (k, v) in attrs {
        b = b.attr(*k, v);
    }
    change(d, &b.finish())
}

/// Builds an `RTM_NEWADDR` (`create`) or `RTM_DELADDR` for `a`, every attribute
/// it has carried over.
pub(crate) fn build_addr(a: &V4Addr, create: bool) -> Vec<u8> {
    let (kind, flags) = if create {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | wire::NLM_F_CREATE | wire::NLM_F_EXCL,
        )
    } else {
        (wire::RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    let mut h = [0u8; 8];
    h[0] = libc::AF_INET as u8;
    h[1] = a.prefixlen;
    h[2] = a.flags as u8;
    h[3] = a.scope;
    h[4..8].copy_from_slice(&a.index.to_ne_bytes());
    let mut b = Builder::new(kind, flags, 0)
        .raw(&h)
        .attr(IFA_LOCAL, &a.local);
    if a.has_address {
        b = b.attr(IFA_ADDRESS, &a.address);
    }
    if a.broadcast != [0; 4] {
        b = b.attr(IFA_BROADCAST, &a.broadcast);
    }
    if !a.label.is_empty() {
        b = name_attr(b, IFA_LABEL, &a.label);
    }
    if create {
        b = b.attr_u32(wire::IFA_FLAGS, a.flags);
        if let Some(ci) = &a.cacheinfo {
            b = b.attr(IFA_CACHEINFO, ci);
        }
        if let Some(p) = a.rt_priority {
            b = b.attr_u32(IFA_RT_PRIORITY, p);
        }
        if let Some(p) = a.proto {
            b = b.attr(IFA_PROTO, &[p]);
        }
    }
    b.finish()
}
