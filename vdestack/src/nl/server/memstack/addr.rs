//! Addresses of the [`MemStack`] (IPv4 as `devinet.c`, IPv6 as `addrconf.c` keeps
//! them), and the routes the kernel derives from them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::AddressFamily;

use super::route::{MemRoute, RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, RTPROT_KERNEL};
use super::{family_of, MemLinkKind, MemStack, RT_TABLE_LOCAL, RT_TABLE_MAIN};
use crate::nl::server::handler::{Errno, Handler, Intent};
use crate::nl::server::validate::name_fits;

/// `IFA_F_SECONDARY`.
const IFA_F_SECONDARY: u32 = 0x01;
/// `IFA_F_PERMANENT`.
const IFA_F_PERMANENT: u32 = 0x80;
/// `IFA_F_NOPREFIXROUTE`.
const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// The IPv6 flags a request may set (`inet6_rtm_newaddr`).
const V6_SETTABLE: u32 = 0x02 | 0x04 | 0x100 | 0x200 | 0x400;
/// `RT_SCOPE_HOST`, `RT_SCOPE_LINK`, `RT_SCOPE_UNIVERSE`.
const SCOPE_HOST: u8 = 254;
const SCOPE_LINK: u8 = 253;

/// One address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemAddr {
    /// The link's index.
    pub index: u32,
    /// The local address (`IFA_LOCAL`).
    pub local: IpAddr,
    /// The peer, or the local address again (`IFA_ADDRESS`).
    pub peer: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// The scope (`RT_SCOPE_*`).
    pub scope: u8,
    /// The `IFA_F_*` flags.
    pub flags: u32,
    /// The label (IPv4).
    pub label: Option<String>,
    /// The broadcast address (IPv4, when given).
    pub broadcast: Option<Ipv4Addr>,
}

/// The network part of `ip` under a `prefix`-bit mask.
pub(super) fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The kernel's scope for an IPv6 address (`ipv6_addr_scope`, as a route scope).
fn v6_scope(a: &Ipv6Addr) -> u8 {
    if a.is_loopback() {
        SCOPE_HOST
    } else if a.segments()[0] & 0xffc0 == 0xfe80 {
        SCOPE_LINK
    } else {
        0
    }
}

/// What an address request says.
struct AddrReq {
    local: Option<IpAddr>,
    address: Option<IpAddr>,
    label: Option<String>,
    broadcast: Option<Ipv4Addr>,
    flags: u32,
}

fn read_req(req: &AddressMessage) -> Result<AddrReq, Errno> {
    let mut r = AddrReq {
        local: None,
        address: None,
        label: None,
        broadcast: None,
        flags: u32::from(req.header.flags.bits()),
    };
    let fam = u8::from(req.header.family);
    for a in &req.attributes {
        match a {
            AddressAttribute::Local(ip) => r.local = Some(*ip),
            AddressAttribute::Address(ip) => r.address = Some(*ip),
            AddressAttribute::Label(l) => {
                if !name_fits(l.as_bytes()) {
                    return Err(libc::ERANGE);
                }
                r.label = Some(l.clone());
            }
            AddressAttribute::Broadcast(b) => r.broadcast = Some(*b),
            AddressAttribute::Flags(f) => r.flags = f.bits(),
            _ => {}
        }
    }
    // An address of the other family than the header's is refused.
    if [r.local, r.address]
        .iter()
        .flatten()
        .any(|ip| family_of(ip) != fam)
    {
        return Err(libc::EINVAL);
    }
    Ok(r)
}

impl MemStack {
    fn addr_message(&self, a: &MemAddr) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::from(family_of(&a.local));
        m.header.prefix_len = a.prefix;
        m.header.flags = AddressHeaderFlags::from_bits_retain(a.flags as u8);
        m.header.scope = AddressScope::from(a.scope);
        m.header.index = a.index;
        let mut cache = CacheInfo::default();
        (cache.ifa_preferred, cache.ifa_valid) = (u32::MAX, u32::MAX);
        let flags = AddressFlags::from_bits_retain(a.flags);
        m.attributes = if a.local.is_ipv4() {
            let mut v = vec![
                AddressAttribute::Address(a.peer),
                AddressAttribute::Local(a.local),
            ];
            if let Some(b) = a.broadcast {
                v.push(AddressAttribute::Broadcast(b));
            }
            if let Some(l) = &a.label {
                v.push(AddressAttribute::Label(l.clone()));
            }
            v.push(AddressAttribute::Flags(flags));
            v.push(AddressAttribute::CacheInfo(cache));
            v
        } else {
            let mut v = Vec::new();
            if a.peer != a.local {
                v.push(AddressAttribute::Local(a.local));
            }
            v.push(AddressAttribute::Address(a.peer));
            v.push(AddressAttribute::CacheInfo(cache));
            v.push(AddressAttribute::Flags(flags));
            v
        };
        m
    }

    /// The address a request names (`Ok(None)`: none), and its position.
    fn find_addr(&self, req: &AddressMessage, deleting: bool) -> Result<Option<usize>, Errno> {
        let index = req.header.index;
        if self.link(index).is_none() {
            return Err(libc::ENODEV);
        }
        let r = read_req(req)?;
        let fam = u8::from(req.header.family);
        let plen = req.header.prefix_len;
        let found = self.addrs.iter().position(|a| {
            if a.index != index || family_of(&a.local) != fam {
                return false;
            }
            if fam == libc::AF_INET as u8 {
                if deleting {
                    // inet_rtm_deladdr: every attribute given must match.
                    r.local.is_none_or(|l| l == a.local)
                        && r.label.as_ref().is_none_or(|l| Some(l) == a.label.as_ref())
                        && r.address.is_none_or(|p| {
                            plen == a.prefix && network(p, plen) == network(a.peer, plen)
                        })
                } else {
                    let local = r.local.or(r.address);
                    local == Some(a.local) && plen == a.prefix
                }
            } else {
                // IPv6: IFA_LOCAL is the address when given, IFA_ADDRESS otherwise.
                let addr = r.local.or(r.address);
                addr == Some(a.local) && (!deleting || plen == a.prefix)
            }
        });
        Ok(found)
    }

    /// The routes the kernel adds for address `a` (on an up link).
    pub(super) fn add_addr_routes(&mut self, a: &MemAddr) {
        let Some(link) = self.link(a.index) else {
            return;
        };
        if !link.is_up() {
            return;
        }
        let loopback = link.kind == MemLinkKind::Loopback;
        let mut new = Vec::new();
        let base = MemRoute {
            table: RT_TABLE_LOCAL,
            dst: a.local,
            prefix: if a.local.is_ipv4() { 32 } else { 128 },
            kind: RTN_LOCAL,
            scope: 0,
            protocol: RTPROT_KERNEL,
            oif: Some(a.index),
            gateway: None,
            prefsrc: None,
            metric: 0,
        };
        match a.local {
            IpAddr::V4(local) => {
                // A secondary address's routes name the primary as their source.
                let src = Some(self.primary_of(a).unwrap_or(a.local));
                new.push(MemRoute {
                    scope: SCOPE_HOST,
                    prefsrc: src,
                    ..base.clone()
                });
                let net = network(a.peer, a.prefix);
                if a.flags & IFA_F_SECONDARY == 0 && a.prefix < 32 && !net.is_unspecified() {
                    if a.flags & IFA_F_NOPREFIXROUTE == 0 {
                        let (table, kind, scope) = if loopback {
                            (RT_TABLE_LOCAL, RTN_LOCAL, SCOPE_HOST)
                        } else {
                            (RT_TABLE_MAIN, RTN_UNICAST, SCOPE_LINK)
                        };
                        new.push(MemRoute {
                            table,
                            dst: net,
                            prefix: a.prefix,
                            kind,
                            scope,
                            prefsrc: src,
                            ..base.clone()
                        });
                    }
                    if a.prefix < 31 {
                        let host = u32::MAX >> a.prefix;
                        let b = Ipv4Addr::from(u32::from(local) & !host | host);
                        new.push(MemRoute {
                            dst: IpAddr::V4(b),
                            kind: RTN_BROADCAST,
                            scope: SCOPE_LINK,
                            prefsrc: src,
                            ..base.clone()
                        });
                    }
                }
                if let Some(b) = a.broadcast.filter(|b| !b.is_broadcast()) {
                    new.push(MemRoute {
                        dst: IpAddr::V4(b),
                        kind: RTN_BROADCAST,
                        scope: SCOPE_LINK,
                        prefsrc: src,
                        ..base.clone()
                    });
                }
            }
            IpAddr::V6(_) => {
                new.push(base.clone());
                if a.prefix < 128 && a.flags & IFA_F_NOPREFIXROUTE == 0 {
                    new.push(MemRoute {
                        table: RT_TABLE_MAIN,
                        dst: network(a.local, a.prefix),
                        prefix: a.prefix,
                        kind: RTN_UNICAST,
                        metric: 256,
                        ..base
                    });
                }
            }
        }
        for r in new {
            self.insert_route(r);
        }
    }

    /// The local address of the primary IPv4 address in `a`'s subnet, if `a` is
    /// secondary.
    fn primary_of(&self, a: &MemAddr) -> Option<IpAddr> {
        if a.flags & IFA_F_SECONDARY == 0 {
            return None;
        }
        let net = network(a.peer, a.prefix);
        self.addrs
            .iter()
            .find(|o| {
                o.index == a.index
                    && o.flags & IFA_F_SECONDARY == 0
                    && o.local.is_ipv4()
                    && o.prefix == a.prefix
                    && network(o.peer, o.prefix) == net
            })
            .map(|o| o.local)
    }

    /// Deletes address `i` as the kernel does: an IPv4 primary takes its
    /// secondaries with it (`promote_secondaries` is 0 in a new namespace), and a
    /// link left without IPv4 addresses loses every IPv4 route through it.
    fn remove_addr(&mut self, i: usize) {
        let a = self.addrs.remove(i);
        let mut gone = vec![a.clone()];
        if a.local.is_ipv4() && a.flags & IFA_F_SECONDARY == 0 {
            let net = network(a.peer, a.prefix);
            let (sec, keep): (Vec<MemAddr>, Vec<MemAddr>) =
                std::mem::take(&mut self.addrs).into_iter().partition(|o| {
                    o.index == a.index
                        && o.flags & IFA_F_SECONDARY != 0
                        && o.prefix == a.prefix
                        && network(o.peer, o.prefix) == net
                });
            self.addrs = keep;
            gone.extend(sec);
        }
        for g in &gone {
            self.del_addr_routes(g);
        }
        if a.local.is_ipv4()
            && !self
                .addrs
                .iter()
                .any(|o| o.index == a.index && o.local.is_ipv4())
        {
            self.routes
                .retain(|r| !(r.dst.is_ipv4() && r.oif == Some(a.index)));
        }
    }

    /// Removes the routes the kernel derived from address `a`.
    fn del_addr_routes(&mut self, a: &MemAddr) {
        let others: Vec<MemAddr> = self
            .addrs
            .iter()
            .filter(|o| o.index == a.index && *o != a)
            .cloned()
            .collect();
        self.routes.retain(|r| {
            if r.protocol != RTPROT_KERNEL || r.oif != Some(a.index) {
                return true;
            }
            if a.local.is_ipv4() {
                r.prefsrc != Some(a.local) && !(r.kind == RTN_LOCAL && r.dst == a.local)
            } else {
                let mine_local = r.kind == RTN_LOCAL && r.dst == a.local;
                let mine_prefix = r.kind == RTN_UNICAST
                    && r.prefix == a.prefix
                    && r.dst == network(a.local, a.prefix)
                    && !others
                        .iter()
                        .any(|o| o.prefix == a.prefix && network(o.local, o.prefix) == r.dst);
                !(mine_local || mine_prefix)
            }
        });
    }

    /// `lo` going up: `127.0.0.1/8` (kept while down, like the kernel's) and `::1`.
    pub(super) fn add_loopback_addrs(&mut self, index: u32) {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let name = self.link(index).map(|l| l.name.clone());
        if !self.addrs.iter().any(|a| a.index == index && a.local == v4) {
            self.addrs.push(MemAddr {
                index,
                local: v4,
                peer: v4,
                prefix: 8,
                scope: SCOPE_HOST,
                flags: IFA_F_PERMANENT,
                label: name,
                broadcast: None,
            });
        }
        if !self.addrs.iter().any(|a| a.index == index && a.local == v6) {
            self.addrs.push(MemAddr {
                index,
                local: v6,
                peer: v6,
                prefix: 128,
                scope: SCOPE_HOST,
                flags: IFA_F_PERMANENT,
                label: None,
                broadcast: None,
            });
        }
    }

    /// Addresses in the kernel's dump order: IPv4 then IPv6, by link; IPv4 in
    /// insertion order with secondaries last, IPv6 by scope (global first), newest
    /// first.
    fn ordered_addrs(&self) -> Vec<&MemAddr> {
        let mut v: Vec<(usize, &MemAddr)> = self.addrs.iter().enumerate().collect();
        v.sort_by_key(|(pos, a)| {
            let v6 = a.local.is_ipv6();
            let rank = if v6 {
                (255 - v6_rank(a), usize::MAX - pos)
            } else {
                (u8::from(a.flags & IFA_F_SECONDARY != 0), *pos)
            };
            (v6, a.index, rank)
        });
        v.into_iter().map(|(_, a)| a).collect()
    }
}

/// The kernel's IPv6 source scope order (global 0xe, link 0x2, host 0x1).
fn v6_rank(a: &MemAddr) -> u8 {
    match a.scope {
        0 => 0xe,
        SCOPE_LINK => 0x2,
        _ => 0x1,
    }
}

impl Handler<AddressMessage> for MemStack {
    type Key = usize;

    fn find(&self, req: &AddressMessage, intent: Intent) -> Result<Option<usize>, Errno> {
        self.find_addr(req, intent == Intent::Del)
    }

    fn get(&self, req: &AddressMessage) -> Result<AddressMessage, Errno> {
        let i = self.find_addr(req, false)?.ok_or(libc::EADDRNOTAVAIL)?;
        Ok(self.addr_message(&self.addrs[i]))
    }

    fn dump(&self, req: &AddressMessage) -> Vec<AddressMessage> {
        let fam = u8::from(req.header.family);
        self.ordered_addrs()
            .into_iter()
            .filter(|a| fam == 0 || family_of(&a.local) == fam)
            .map(|a| self.addr_message(a))
            .collect()
    }

    fn create(&mut self, req: &AddressMessage) -> Result<(), Errno> {
        let r = read_req(req)?;
        let index = req.header.index;
        let link = self.link(index).ok_or(libc::ENODEV)?;
        let fam = u8::from(req.header.family);
        let plen = req.header.prefix_len;
        let v4 = fam == libc::AF_INET as u8;
        if plen > if v4 { 32 } else { 128 } {
            return Err(libc::EINVAL);
        }
        let (local, peer) = match (r.local, r.address) {
            (Some(l), p) => (l, p.unwrap_or(l)),
            (None, Some(a)) if !v4 => (a, a),
            _ => return Err(libc::EINVAL),
        };
        let mut a = MemAddr {
            index,
            local,
            peer,
            prefix: plen,
            scope: u8::from(req.header.scope),
            flags: 0,
            label: None,
            broadcast: r.broadcast,
        };
        if v4 {
            let label = r.label.unwrap_or_else(|| link.name.clone());
            if !label.starts_with(&link.name) {
                return Err(libc::EINVAL);
            }
            a.label = Some(label);
            a.flags = (r.flags & !IFA_F_SECONDARY) | IFA_F_PERMANENT;
            // A second address in a subnet already there is secondary.
            let net = network(peer, plen);
            if self.addrs.iter().any(|o| {
                o.index == index
                    && o.local.is_ipv4()
                    && o.prefix == plen
                    && network(o.peer, plen) == net
            }) {
                a.flags |= IFA_F_SECONDARY;
            }
        } else {
            let IpAddr::V6(l6) = local else {
                return Err(libc::EINVAL);
            };
            a.scope = v6_scope(&l6);
            a.flags = (r.flags & V6_SETTABLE) | IFA_F_PERMANENT;
            a.broadcast = None;
        }
        self.addrs.push(a.clone());
        self.add_addr_routes(&a);
        Ok(())
    }

    fn change(&mut self, i: usize, req: &AddressMessage) -> Result<(), Errno> {
        let r = read_req(req)?;
        let Some(a) = self.addrs.get_mut(i) else {
            return Err(libc::EADDRNOTAVAIL);
        };
        if a.local.is_ipv4() {
            a.scope = u8::from(req.header.scope);
            if let Some(l) = r.label {
                a.label = Some(l);
            }
            a.broadcast = r.broadcast.or(a.broadcast);
            a.flags = (r.flags & !IFA_F_SECONDARY) | (a.flags & IFA_F_SECONDARY) | IFA_F_PERMANENT;
        } else {
            a.flags = (r.flags & V6_SETTABLE) | IFA_F_PERMANENT;
        }
        Ok(())
    }

    fn delete(&mut self, i: usize, _req: &AddressMessage) -> Result<(), Errno> {
        if i >= self.addrs.len() {
            return Err(libc::EADDRNOTAVAIL);
        }
        self.remove_addr(i);
        Ok(())
    }
}
