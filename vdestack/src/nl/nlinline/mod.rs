//! nlinline in Rust, under nlinline's own (C) names on purpose, the only place in
//! the crate's API that keeps them: its messages, byte for byte, as pure builders
//! `build_*(seq, ...) -> Vec<u8>`, and its calls over an [`NlClient`]
//! (`if_nametoindex`, `ipaddr_add`, `iproute_add`, `iplink_add`, `nldialog`, ...;
//! `calls.rs`), for code ported from C. Rust code uses the typed [`NlClient`]
//! methods.
//!
//! Each builder produces exactly what nlinline (HEAD, `upstream.md` §3.3) sends, with
//! the sequence number as a parameter (nlinline always sends 1; a kernel dialog
//! numbers its requests upward so replies can be matched) and port id 0. Bad input
//! (an unknown family, an address of the wrong size, a prefix too long for the
//! family, an interface name over 15 bytes) is `EINVAL` here, before anything is
//! sent: nlinline would send it, or read past its arguments.
//!
//! One deliberate difference from the table in `upstream.md`: `linksetaddr` is 44
//! bytes, not 42. nlinline sends `sizeof` of a C struct whose tail is padded to 4;
//! compiled with gcc and traced with strace, Debian's nlinline sends
//! `nlmsg_len=44`, `nla_len=10`. We match the real bytes.

use std::io;

use super::wire::*;
#[allow(unused_imports)] // for the docs
use super::NlClient;

mod calls;

pub use calls::*;

/// `AF_INET`.
pub const AF_INET: i32 = libc::AF_INET;
/// `AF_INET6`.
pub const AF_INET6: i32 = libc::AF_INET6;
/// The longest interface name (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;
/// For `build_iplink_add`: ask the kernel (or stack) to report the new index
/// (nlinline's `(unsigned)-1`).
pub const IFINDEX_ASK: u32 = u32::MAX;

const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// `nl_addrdata2prefix`: a prefix length that also carries `ifa_flags` and
/// `ifa_scope` for [`build_ipaddr`] (`0x70 << 24 | flags << 16 | scope << 8 | prefix`).
pub const fn nl_addrdata2prefix(prefixlen: u8, flags: u8, scope: u8) -> u32 {
    (0x70 << 24) | (flags as u32) << 16 | (scope as u32) << 8 | prefixlen as u32
}

/// `nl_routedata2prefix`: a prefix length that also overrides `rtm_type` and
/// `rtm_scope` for [`build_iproute`] (`0x60 << 24 | type << 16 | scope << 8 | prefix`).
pub const fn nl_routedata2prefix(prefixlen: u8, kind: u8, scope: u8) -> u32 {
    (0x60 << 24) | (kind as u32) << 16 | (scope as u32) << 8 | prefixlen as u32
}

/// Whether an add or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `RTM_NEW*` with `NLM_F_EXCL | NLM_F_CREATE`.
    Add,
    /// `RTM_DEL*`.
    Del,
}

/// One attribute inside `IFLA_INFO_DATA` for [`build_iplink_add`] (nlinline's
/// `struct nl_iplink_data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IplinkData {
    /// The attribute type (e.g. `IFLA_VXLAN_ID`).
    pub tag: u16,
    /// Its payload.
    pub data: Vec<u8>,
}

impl IplinkData {
    /// `nl_iplink_strdata(tag, s)`: a NUL-terminated string payload.
    pub fn string(tag: u16, s: &str) -> Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        IplinkData { tag, data }
    }
}

pub(crate) fn einval(what: impl Into<String>) -> io::Error {
    crate::error::context(io::Error::from_raw_os_error(libc::EINVAL), what)
}

/// Checks an interface name: 1 to 15 bytes, no NUL, no '/' and no whitespace.
pub fn check_ifname(name: &str) -> io::Result<()> {
    let bad = name.is_empty()
        || name.len() > IFNAME_MAX
        || name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace());
    if bad {
        return Err(einval(format!(
            "bad interface name {name:?} (1 to {IFNAME_MAX} bytes, no '/', NUL or space)"
        )));
    }
    Ok(())
}

/// The address size of `family` (4 or 16), or `EINVAL`.
pub fn family_addrlen(family: i32) -> io::Result<usize> {
    match family {
        AF_INET => Ok(4),
        AF_INET6 => Ok(16),
        _ => Err(einval(format!(
            "address family {family} is neither AF_INET nor AF_INET6"
        ))),
    }
}

fn check_addr(family: i32, addr: &[u8], what: &str) -> io::Result<()> {
    let n = family_addrlen(family)?;
    if addr.len() != n {
        return Err(einval(format!(
            "{what}: {} bytes for a {n}-byte family",
            addr.len()
        )));
    }
    Ok(())
}

fn check_prefix(family: i32, prefix: u8) -> io::Result<()> {
    let max = family_addrlen(family)? * 8;
    if prefix as usize > max {
        return Err(einval(format!("prefix length {prefix} over {max}")));
    }
    Ok(())
}

/// Splits an address prefix length that may carry the 0x70 magic into
/// (prefix, ifa_flags, ifa_scope).
pub fn addr_prefix(prefixlen: u32) -> io::Result<(u8, u8, u8)> {
    if prefixlen >> 24 == 0x70 {
        Ok((
            prefixlen as u8,
            (prefixlen >> 16) as u8,
            (prefixlen >> 8) as u8,
        ))
    } else if prefixlen <= 255 {
        Ok((prefixlen as u8, 0, RT_SCOPE_UNIVERSE))
    } else {
        Err(einval(format!("prefix length {prefixlen} out of range")))
    }
}

/// Splits a route prefix length that may carry the 0x60 magic into
/// (dst_len, rtm_type, rtm_scope).
pub fn route_prefix(prefixlen: u32) -> io::Result<(u8, u8, u8)> {
    if prefixlen >> 24 == 0x60 {
        Ok((
            prefixlen as u8,
            (prefixlen >> 16) as u8,
            (prefixlen >> 8) as u8,
        ))
    } else if prefixlen <= 255 {
        Ok((prefixlen as u8, RTN_UNICAST, RT_SCOPE_UNIVERSE))
    } else {
        Err(einval(format!("prefix length {prefixlen} out of range")))
    }
}

/// `if_nametoindex`: RTM_GETLINK, REQUEST|ACK, zero ifinfomsg, IFLA_IFNAME.
pub fn build_if_nametoindex(seq: u32, name: &str) -> io::Result<Vec<u8>> {
    check_ifname(name)?;
    Ok(Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .ifinfomsg(0, 0, 0, 0)
        .attr_str(IFLA_IFNAME, name)
        .finish())
}

/// `linksetupdown`: RTM_SETLINK, REQUEST|ACK, flags IFF_UP or 0, change IFF_UP.
pub fn build_linksetupdown(seq: u32, ifindex: u32, up: bool) -> Vec<u8> {
    let flags = if up { IFF_UP } else { 0 };
    Builder::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .ifinfomsg(0, ifindex, flags, IFF_UP)
        .finish()
}

/// `linksetaddr`: RTM_NEWLINK, REQUEST|ACK, IFLA_ADDRESS (nla_len 10), 44 bytes.
pub fn build_linksetaddr(seq: u32, ifindex: u32, mac: [u8; 6]) -> Vec<u8> {
    Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .ifinfomsg(0, ifindex, 0, 0)
        .attr(IFLA_ADDRESS, &mac)
        .finish()
}

/// `linkgetaddr`: RTM_GETLINK, REQUEST only (no ACK), by index.
pub fn build_linkgetaddr(seq: u32, ifindex: u32) -> Vec<u8> {
    Builder::new(RTM_GETLINK, NLM_F_REQUEST, seq)
        .ifinfomsg(0, ifindex, 0, 0)
        .finish()
}

/// `linksetmtu`: RTM_NEWLINK, REQUEST|ACK, IFLA_MTU.
pub fn build_linksetmtu(seq: u32, ifindex: u32, mtu: u32) -> Vec<u8> {
    Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .ifinfomsg(0, ifindex, 0, 0)
        .attr_u32(IFLA_MTU, mtu)
        .finish()
}

fn op_flags(op: Op) -> u16 {
    match op {
        Op::Add => NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
        Op::Del => NLM_F_REQUEST | NLM_F_ACK,
    }
}

/// `ipaddr_add`/`ipaddr_del`: ifaddrmsg, then IFA_LOCAL and IFA_ADDRESS = `addr`.
/// `prefixlen` may carry the [`nl_addrdata2prefix`] magic.
pub fn build_ipaddr(
    seq: u32,
    op: Op,
    family: i32,
    addr: &[u8],
    prefixlen: u32,
    ifindex: u32,
) -> io::Result<Vec<u8>> {
    check_addr(family, addr, "address")?;
    let (prefix, flags, scope) = addr_prefix(prefixlen)?;
    check_prefix(family, prefix)?;
    let kind = if op == Op::Add {
        RTM_NEWADDR
    } else {
        RTM_DELADDR
    };
    let mut h = [0u8; 8];
    h[0] = family as u8;
    h[1] = prefix;
    h[2] = flags;
    h[3] = scope;
    h[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    Ok(Builder::new(kind, op_flags(op), seq)
        .raw(&h)
        .attr(IFA_LOCAL, addr)
        .attr(IFA_ADDRESS, addr)
        .finish())
}

/// `iproute_add`/`iproute_del`: rtmsg (main table, RTPROT_BOOT, universe, unicast
/// unless the [`nl_routedata2prefix`] magic says otherwise), then RTA_OIF (or the
/// RTA_UNSPEC filler when `ifindex` is 0), RTA_DST when a prefix is given, and
/// RTA_GATEWAY when `gw` is.
pub fn build_iproute(
    seq: u32,
    op: Op,
    family: i32,
    dst: Option<&[u8]>,
    prefixlen: u32,
    gw: Option<&[u8]>,
    ifindex: u32,
) -> io::Result<Vec<u8>> {
    family_addrlen(family)?;
    let (dst_len, kind, scope) = route_prefix(prefixlen)?;
    check_prefix(family, dst_len)?;
    if let Some(d) = dst {
        check_addr(family, d, "destination")?;
    }
    if let Some(g) = gw {
        check_addr(family, g, "gateway")?;
    }
    // nlinline adds RTA_DST whenever the raw prefix argument is > 0 (so always with
    // the magic); without a destination it would read through NULL: we refuse.
    let dst = match (prefixlen > 0, dst) {
        (true, Some(d)) => Some(d),
        (true, None) if dst_len > 0 => {
            return Err(einval(format!(
                "prefix length {dst_len} without a destination"
            )))
        }
        _ => None,
    };
    let msg = if op == Op::Add {
        RTM_NEWROUTE
    } else {
        RTM_DELROUTE
    };
    let h = [
        family as u8,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        scope,
        kind,
        0,
        0,
        0,
        0,
    ];
    let oif = if ifindex == 0 { RTA_UNSPEC } else { RTA_OIF };
    let mut b = Builder::new(msg, op_flags(op), seq)
        .raw(&h)
        .attr_u32(oif, ifindex);
    if let Some(d) = dst {
        b = b.attr(RTA_DST, d);
    }
    if let Some(g) = gw {
        b = b.attr(RTA_GATEWAY, g);
    }
    Ok(b.finish())
}

/// `iplink_add`: RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE; IFLA_IFNAME if given;
/// IFLA_NEW_IFINDEX ("" string) when `ifindex` is [`IFINDEX_ASK`]; IFLA_LINKINFO {
/// IFLA_INFO_KIND, IFLA_INFO_DATA { `data` } when `data` is not empty }, no
/// NLA_F_NESTED.
pub fn build_iplink_add(
    seq: u32,
    name: Option<&str>,
    ifindex: u32,
    kind: &str,
    data: &[IplinkData],
) -> io::Result<Vec<u8>> {
    if let Some(n) = name {
        check_ifname(n)?;
    }
    if kind.is_empty() || kind.bytes().any(|b| b == 0) {
        return Err(einval(format!("bad link type {kind:?}")));
    }
    let ask = ifindex == IFINDEX_ASK;
    let mut b = Builder::new(RTM_NEWLINK, op_flags(Op::Add), seq).ifinfomsg(
        0,
        if ask { 0 } else { ifindex },
        0,
        0,
    );
    if let Some(n) = name {
        b = b.attr_str(IFLA_IFNAME, n);
    }
    if ask {
        b = b.attr(IFLA_NEW_IFINDEX, &[0]);
    }
    let info = b.begin_nested(IFLA_LINKINFO);
    let mut k = kind.as_bytes().to_vec();
    k.push(0);
    b.push(IFLA_INFO_KIND, &k);
    if !data.is_empty() {
        let d = b.begin_nested(IFLA_INFO_DATA);
        for a in data {
            if a.data.len() > 0xfff0 {
                return Err(einval("link data attribute too long"));
            }
            b.push(a.tag, &a.data);
        }
        b.end_nested(d);
    }
    b.end_nested(info);
    let msg = b.finish();
    // Attribute lengths are 16 bits: a LINKINFO that does not fit is refused.
    if msg.len() > 0xffff {
        return Err(einval("link data too long"));
    }
    Ok(msg)
}

/// `iplink_del`: RTM_DELLINK, REQUEST|ACK, by index, plus IFLA_IFNAME if given.
pub fn build_iplink_del(seq: u32, name: Option<&str>, ifindex: u32) -> io::Result<Vec<u8>> {
    let mut b =
        Builder::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq).ifinfomsg(0, ifindex, 0, 0);
    if let Some(n) = name {
        check_ifname(n)?;
        b = b.attr_str(IFLA_IFNAME, n);
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests;
