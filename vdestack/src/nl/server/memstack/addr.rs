//! Addresses of the [`MemStack`] (IPv4 as `devinet.c`, IPv6 as `addrconf.c` keeps
//! them), and the routes the kernel derives from them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::AddressFamily;

use super::{family_of, MemStack};
use crate::nl::server::handler::{Errno, Handler, Intent};
use crate::nl::server::validate::name_fits;

/// `IFA_F_SECONDARY`.
pub(super) const IFA_F_SECONDARY: u32 = 0x01;
/// `IFA_F_PERMANENT`.
pub(super) const IFA_F_PERMANENT: u32 = 0x80;
/// `IFA_F_NOPREFIXROUTE`.
pub(super) const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// The IPv6 flags a request may set (`inet6_rtm_newaddr`).
const V6_SETTABLE: u32 = 0x02 | 0x04 | 0x100 | 0x200 | 0x400;
/// `RT_SCOPE_HOST`, `RT_SCOPE_LINK`, `RT_SCOPE_UNIVERSE`.
pub(super) const SCOPE_HOST: u8 = 254;
pub(super) const SCOPE_LINK: u8 = 253;

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
                    return Err(Errno::RANGE);
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
        return Err(Errno::INVAL);
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
            return Err(Errno::NODEV);
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
        let i = self.find_addr(req, false)?.ok_or(Errno::ADDRNOTAVAIL)?;
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
        let link = self.link(index).ok_or(Errno::NODEV)?;
        let fam = u8::from(req.header.family);
        let plen = req.header.prefix_len;
        let v4 = fam == libc::AF_INET as u8;
        if plen > if v4 { 32 } else { 128 } {
            return Err(Errno::INVAL);
        }
        let (local, peer) = match (r.local, r.address) {
            (Some(l), p) => (l, p.unwrap_or(l)),
            (None, Some(a)) if !v4 => (a, a),
            _ => return Err(Errno::INVAL),
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
                return Err(Errno::INVAL);
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
                return Err(Errno::INVAL);
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
            return Err(Errno::ADDRNOTAVAIL);
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
            return Err(Errno::ADDRNOTAVAIL);
        }
        self.remove_addr(i);
        Ok(())
    }
}
