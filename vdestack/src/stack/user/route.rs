//! Routing, done by us in front of smoltcp (which knows one interface at a time):
//! which interface and source address a destination takes ([`choose`]), from the
//! stack's netlink state (the [`MemStack`]'s links, addresses and main-table
//! routes), as the kernel would. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rustix::io::Errno;

use crate::nl::server::memstack::{MemAddr, RT_TABLE_MAIN};
use crate::nl::server::MemStack;

/// `RTN_UNICAST`: an ordinary route.
const RTN_UNICAST: u8 = 1;

/// `lo`'s index.
pub(super) const LO: u32 = 1;

/// Where a destination goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Choice {
    /// The link (its netlink index; [`LO`] for the stack's own addresses).
    pub(super) link: u32,
    /// The source address to use.
    pub(super) src: IpAddr,
}

/// Whether `ip` is an address of the stack (on any link; `127.0.0.0/8` and `::1`
/// once `lo` is up, as the kernel's local routes say).
pub(super) fn is_local(mem: &MemStack, ip: IpAddr) -> bool {
    let lo_up = mem.links().iter().any(|l| l.index == LO && l.is_up());
    match ip {
        IpAddr::V4(a) if a.is_loopback() => lo_up,
        IpAddr::V6(a) if a.is_loopback() => lo_up,
        _ => mem.addrs().iter().any(|a| a.local == ip),
    }
}

fn link_up(mem: &MemStack, index: u32) -> bool {
    mem.links().iter().any(|l| l.index == index && l.is_up())
}

fn in_prefix(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The interface and source address for `dst`: the stack's own addresses go
/// through `lo` (with `dst` itself as source); any other takes the longest
/// matching main-table route of an up link (the lowest metric among equals), and
/// the route's preferred source or an address of the link in `dst`'s family (one
/// whose prefix holds `dst` first). `ENETUNREACH` when no route matches or the
/// link has no address of the family (the kernel's answers).
pub(super) fn choose(mem: &MemStack, dst: IpAddr) -> Result<Choice, Errno> {
    if dst.is_unspecified() || dst.is_multicast() {
        return Err(Errno::NETUNREACH);
    }
    if is_local(mem, dst) {
        if !link_up(mem, LO) {
            return Err(Errno::NETUNREACH);
        }
        return Ok(Choice { link: LO, src: dst });
    }
    let route = mem
        .routes()
        .iter()
        .filter(|r| r.table == RT_TABLE_MAIN && r.kind == RTN_UNICAST)
        .filter(|r| r.dst.is_ipv4() == dst.is_ipv4() && in_prefix(dst, r.dst, r.prefix))
        .filter(|r| r.oif.is_some_and(|i| link_up(mem, i)))
        .max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
        .ok_or(Errno::NETUNREACH)?;
    let link = route.oif.ok_or(Errno::NETUNREACH)?;
    let src = match route.prefsrc {
        Some(s) => s,
        None => source_for(mem.addrs(), link, dst, route.gateway).ok_or(Errno::NETUNREACH)?,
    };
    Ok(Choice { link, src })
}

/// [`choose`] for a socket address: an IPv6 link-local destination goes out the
/// link its scope id names, from the link's own link-local address; without a
/// scope id it is `EINVAL` (as the kernel says), with the scope of no up link
/// `ENODEV`.
pub(super) fn choose_addr(mem: &MemStack, dst: &SocketAddr) -> Result<Choice, Errno> {
    match dst {
        SocketAddr::V6(a) if is_link_local(IpAddr::V6(*a.ip())) => {
            if a.scope_id() == 0 {
                return Err(Errno::INVAL);
            }
            let link = mem
                .links()
                .iter()
                .find(|l| l.index == a.scope_id() && l.index != LO && l.is_up())
                .ok_or(Errno::NODEV)?;
            Ok(Choice {
                link: link.index,
                src: IpAddr::V6(super::config::link_local(link.mac)),
            })
        }
        _ => choose(mem, dst.ip()),
    }
}

/// An address of `link` for talking to `dst` (through `gateway`, if any): one
/// whose prefix holds the next hop first, then any of the family that is not
/// link-local.
fn source_for(
    addrs: &[MemAddr],
    link: u32,
    dst: IpAddr,
    gateway: Option<IpAddr>,
) -> Option<IpAddr> {
    let hop = gateway.unwrap_or(dst);
    let mine = || {
        addrs
            .iter()
            .filter(move |a| a.index == link && a.local.is_ipv4() == dst.is_ipv4())
    };
    mine()
        .find(|a| in_prefix(hop, a.local, a.prefix))
        .or_else(|| mine().find(|a| !is_link_local(a.local)))
        .or_else(|| mine().next())
        .map(|a| a.local)
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// The unspecified address of `dst`'s family.
pub(super) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::nl::{AddrSpec, RouteSpec};

    /// A stack with `vde0` (index 2) up, 10.0.0.1/24 and fc00::1/64 on it, a
    /// default route via 10.0.0.254, and `lo` up.
    pub(in crate::stack::user) fn stack() -> MemStack {
        let (nl, server) = super::super::netlink::test_client();
        let idx = server
            .lock()
            .unwrap()
            .stack_mut()
            .add_device("vde0", [2, 0, 0, 0, 0, 1])
            .unwrap();
        server
            .lock()
            .unwrap()
            .stack_mut()
            .set_carrier(idx, true)
            .unwrap();
        nl.link_set_up(1, true).unwrap();
        nl.link_set_up(idx, true).unwrap();
        nl.addr_add(&AddrSpec::new(idx, "10.0.0.1".parse().unwrap(), 24))
            .unwrap();
        nl.addr_add(&AddrSpec::new(idx, "fc00::1".parse().unwrap(), 64).no_dad())
            .unwrap();
        nl.route_add(&RouteSpec::default_v4().via("10.0.0.254".parse().unwrap()))
            .unwrap();
        let m = server.lock().unwrap().stack().clone();
        m
    }

    #[test]
    fn own_addresses_go_through_lo() {
        let m = stack();
        let c = choose(&m, "10.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(
            c,
            Choice {
                link: LO,
                src: "10.0.0.1".parse().unwrap()
            }
        );
        assert_eq!(choose(&m, "127.0.0.1".parse().unwrap()).unwrap().link, LO);
        assert_eq!(choose(&m, "::1".parse().unwrap()).unwrap().link, LO);
    }

    #[test]
    fn on_link_and_default_routes() {
        let m = stack();
        let c = choose(&m, "10.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(
            c,
            Choice {
                link: 2,
                src: "10.0.0.1".parse().unwrap()
            }
        );
        let c = choose(&m, "192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(
            c,
            Choice {
                link: 2,
                src: "10.0.0.1".parse().unwrap()
            }
        );
        let c = choose(&m, "fc00::9".parse().unwrap()).unwrap();
        assert_eq!(c.src, "fc00::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn no_route_is_enetunreach() {
        let m = stack();
        // No IPv6 default route.
        assert_eq!(
            choose(&m, "2001:db8::1".parse().unwrap()),
            Err(Errno::NETUNREACH)
        );
        assert_eq!(
            choose(&m, "0.0.0.0".parse().unwrap()),
            Err(Errno::NETUNREACH)
        );
        // A fresh stack: nothing is up.
        let fresh = MemStack::new();
        assert_eq!(
            choose(&fresh, "127.0.0.1".parse().unwrap()),
            Err(Errno::NETUNREACH)
        );
        assert_eq!(
            choose(&fresh, "10.0.0.1".parse().unwrap()),
            Err(Errno::NETUNREACH)
        );
    }

    #[test]
    fn link_local_needs_a_scope() {
        let m = stack();
        let no_scope: SocketAddr = "[fe80::1]:80".parse().unwrap();
        assert_eq!(choose_addr(&m, &no_scope), Err(Errno::INVAL));
        let on_vde0: SocketAddr = "[fe80::1%2]:80".parse().unwrap();
        let c = choose_addr(&m, &on_vde0).unwrap();
        assert_eq!(c.link, 2);
        assert_eq!(c.src, "fe80::ff:fe00:1".parse::<IpAddr>().unwrap());
        let nowhere: SocketAddr = "[fe80::1%9]:80".parse().unwrap();
        assert_eq!(choose_addr(&m, &nowhere), Err(Errno::NODEV));
    }

    #[test]
    fn prefixes() {
        assert!(in_prefix(
            "10.1.2.3".parse().unwrap(),
            "10.1.0.0".parse().unwrap(),
            16
        ));
        assert!(!in_prefix(
            "10.2.2.3".parse().unwrap(),
            "10.1.0.0".parse().unwrap(),
            16
        ));
        assert!(in_prefix(
            "1.2.3.4".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
        assert!(in_prefix(
            "fc00::5".parse().unwrap(),
            "fc00::".parse().unwrap(),
            64
        ));
        assert!(!in_prefix(
            "fc00::5".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            0
        ));
    }
}
