//! nlinline's calls over an [`NlClient`], with nlinline's names and arguments:
//! families as `AF_*` integers, addresses as 4 or 16 bytes in network order,
//! prefix lengths that may carry the [`nl_addrdata2prefix`] and
//! [`nl_routedata2prefix`] magic. Each returns an `io::Result` where nlinline
//! returns -1 and sets errno.

use std::io;

use super::{build_ipaddr, build_iplink_add, build_iproute, build_linkgetaddr, IplinkData, Op};
#[allow(unused_imports)] // for the docs
use super::{nl_addrdata2prefix, nl_routedata2prefix, IFINDEX_ASK};
use crate::nl::NlClient;

/// `nlinline_if_nametoindex`: the index of link `name` (`ENODEV` if none).
pub fn if_nametoindex(nl: &NlClient, name: &str) -> io::Result<u32> {
    nl.link_index(name)
}

/// `nlinline_linksetupdown`.
pub fn linksetupdown(nl: &NlClient, ifindex: u32, up: bool) -> io::Result<()> {
    nl.link_set_up(ifindex, up)
}

/// `nlinline_linksetaddr`.
pub fn linksetaddr(nl: &NlClient, ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
    nl.link_set_mac(ifindex, mac)
}

/// `nlinline_linkgetaddr`: the link's MAC address (`ENOENT` if it has none of 6
/// bytes).
pub fn linkgetaddr(nl: &NlClient, ifindex: u32) -> io::Result<[u8; 6]> {
    let _ = build_linkgetaddr; // the request it sends
    nl.link_mac(ifindex)
}

/// `nlinline_linksetmtu`.
pub fn linksetmtu(nl: &NlClient, ifindex: u32, mtu: u32) -> io::Result<()> {
    nl.link_set_mtu(ifindex, mtu)
}

/// `nlinline_ipaddr_add`: `addr` is 4 or 16 bytes in network order; `prefixlen`
/// may carry the [`nl_addrdata2prefix`] magic.
pub fn ipaddr_add(
    nl: &NlClient,
    family: i32,
    addr: &[u8],
    prefixlen: u32,
    ifindex: u32,
) -> io::Result<()> {
    let what = || format!("add address on link {ifindex}");
    nl.ack(what, |s| {
        build_ipaddr(s, Op::Add, family, addr, prefixlen, ifindex)
    })?;
    Ok(())
}

/// `nlinline_ipaddr_del`.
pub fn ipaddr_del(
    nl: &NlClient,
    family: i32,
    addr: &[u8],
    prefixlen: u32,
    ifindex: u32,
) -> io::Result<()> {
    let what = || format!("delete address on link {ifindex}");
    nl.ack(what, |s| {
        build_ipaddr(s, Op::Del, family, addr, prefixlen, ifindex)
    })?;
    Ok(())
}

/// `nlinline_iproute_add`: `dst` and `gw` are 4 or 16 bytes in network order;
/// `prefixlen` 0 is a default route and may carry the [`nl_routedata2prefix`]
/// magic; `ifindex` 0 means none.
pub fn iproute_add(
    nl: &NlClient,
    family: i32,
    dst: Option<&[u8]>,
    prefixlen: u32,
    gw: Option<&[u8]>,
    ifindex: u32,
) -> io::Result<()> {
    let what = || "add route".to_string();
    nl.ack(what, |s| {
        build_iproute(s, Op::Add, family, dst, prefixlen, gw, ifindex)
    })?;
    Ok(())
}

/// `nlinline_iproute_del`.
pub fn iproute_del(
    nl: &NlClient,
    family: i32,
    dst: Option<&[u8]>,
    prefixlen: u32,
    gw: Option<&[u8]>,
    ifindex: u32,
) -> io::Result<()> {
    let what = || "delete route".to_string();
    nl.ack(what, |s| {
        build_iproute(s, Op::Del, family, dst, prefixlen, gw, ifindex)
    })?;
    Ok(())
}

/// `nlinline_iplink_add`: creates a link of type `kind` named `name` (or named
/// by the kernel), with index `ifindex` (0: any; [`IFINDEX_ASK`]: ask for it) and
/// `data` inside `IFLA_INFO_DATA`. Returns the ack's value: 0, or the new index
/// from a stack that reports it.
pub fn iplink_add(
    nl: &NlClient,
    name: Option<&str>,
    ifindex: u32,
    kind: &str,
    data: &[IplinkData],
) -> io::Result<i32> {
    let what = || format!("add link {} type {kind}", name.unwrap_or("(any)"));
    nl.ack(what, |s| build_iplink_add(s, name, ifindex, kind, data))
}

/// `nlinline_iplink_del`: by name, by index, or both.
pub fn iplink_del(nl: &NlClient, name: Option<&str>, ifindex: u32) -> io::Result<()> {
    nl.link_del_named(name, ifindex)
}

/// `nlinline_nldialog`: sends a prebuilt message and returns the ack's value or
/// the index of an `RTM_NEWLINK` reply ([`NlClient::request`]).
pub fn nldialog(nl: &NlClient, msg: &[u8]) -> io::Result<i32> {
    nl.request(msg)
}
