//! What smoltcp is given for one link, from the netlink state: its addresses
//! (at most smoltcp's table size; beyond, the interface takes any address and
//! our filter in front drops what is not ours) and its gateway routes. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpAddress, IpCidr};

use super::engine::cidr;
use super::route::LO;
use crate::nl::server::memstack::RT_TABLE_MAIN;
use crate::nl::server::MemStack;

/// smoltcp's address table size per interface (its `iface-max-addr-count-8`).
pub(super) const SMOL_ADDRS: usize = 8;
/// smoltcp's route table size per interface (its `iface-max-route-count-16`).
pub(super) const SMOL_ROUTES: usize = 16;

/// One link's smoltcp configuration.
#[derive(Debug, Default, PartialEq)]
pub(super) struct LinkConf {
    pub(super) addrs: Vec<IpCidr>,
    /// More addresses than smoltcp's table holds: take any, filter in front.
    pub(super) any_ip: bool,
    /// (destination, gateway).
    pub(super) routes: Vec<(IpCidr, IpAddress)>,
}

/// The configuration of link `link`.
pub(super) fn of_link(mem: &MemStack, link: u32) -> LinkConf {
    let mut addrs: Vec<IpCidr> = mem
        .addrs()
        .iter()
        .filter(|a| a.index == link && !a.local.is_multicast() && !a.local.is_unspecified())
        .map(|a| cidr(a.local, a.prefix))
        .collect();
    let any_ip = addrs.len() > SMOL_ADDRS;
    addrs.truncate(SMOL_ADDRS);
    // An Ethernet link answers its IPv6 link-local address too (from its MAC,
    // as the kernel makes it), so neighbours that speak from theirs get answers.
    if let Some(l) = mem
        .links()
        .iter()
        .find(|l| l.index == link && l.index != LO)
    {
        if addrs.len() < SMOL_ADDRS {
            addrs.push(cidr(IpAddr::V6(link_local(l.mac)), 64));
        }
    }
    let mut routes: Vec<(IpCidr, IpAddress)> = if link == LO {
        // Everything sent on lo is for the stack itself.
        vec![
            (
                cidr(Ipv4Addr::UNSPECIFIED.into(), 0),
                IpAddr::from(Ipv4Addr::LOCALHOST).into(),
            ),
            (
                cidr(Ipv6Addr::UNSPECIFIED.into(), 0),
                IpAddr::from(Ipv6Addr::LOCALHOST).into(),
            ),
        ]
    } else {
        mem.routes()
            .iter()
            .filter(|r| r.table == RT_TABLE_MAIN && r.oif == Some(link))
            .filter_map(|r| Some((cidr(r.dst, r.prefix), IpAddress::from(r.gateway?))))
            .collect()
    };
    // Longest prefixes first: smoltcp takes the first match... of the longest
    // prefix, but a full table must keep the most specific ones.
    routes.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
    routes.truncate(SMOL_ROUTES);
    LinkConf {
        addrs,
        any_ip,
        routes,
    }
}

/// The IPv6 link-local address of a MAC (modified EUI-64).
pub(super) fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::AddrSpec;

    #[test]
    fn a_link_gets_its_addresses_and_gateways() {
        let m = super::super::route::tests::stack();
        let c = of_link(&m, 2);
        assert_eq!(
            c.addrs,
            vec![
                cidr("10.0.0.1".parse().unwrap(), 24),
                cidr("fc00::1".parse().unwrap(), 64),
                cidr("fe80::ff:fe00:1".parse().unwrap(), 64),
            ]
        );
        assert!(!c.any_ip);
        assert_eq!(
            c.routes,
            vec![(
                cidr("0.0.0.0".parse().unwrap(), 0),
                IpAddress::from("10.0.0.254".parse::<IpAddr>().unwrap())
            )]
        );
        let lo = of_link(&m, LO);
        assert_eq!(lo.addrs.len(), 2, "{lo:?}");
        assert_eq!(lo.routes.len(), 2);
    }

    #[test]
    fn many_addresses_turn_any_ip_on() {
        let (nl, server) = super::super::netlink::test_client();
        let idx = server
            .lock()
            .unwrap()
            .stack_mut()
            .add_device("vde0", [2, 0, 0, 0, 0, 1])
            .unwrap();
        for i in 1..=64u8 {
            nl.addr_add(&AddrSpec::new(idx, IpAddr::from([10, 1, 0, i]), 16))
                .unwrap();
        }
        let m = server.lock().unwrap().stack().clone();
        assert_eq!(m.addrs().len(), 64);
        let c = of_link(&m, idx);
        assert_eq!(c.addrs.len(), SMOL_ADDRS);
        assert!(c.any_ip);
    }
}
