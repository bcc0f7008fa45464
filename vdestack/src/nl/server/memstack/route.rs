//! Routes of the [`MemStack`]: any table, unicast with a device and/or a gateway,
//! and the local, broadcast and prohibiting kinds; the kernel's rules for adding,
//! deleting (`fib_table_delete`, `ip6_route_del`), dumping and looking up.

use std::net::IpAddr;

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric,
    RoutePreference, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

use super::addr::network;
use super::{family_of, MemStack, RT_TABLE_MAIN};
use crate::nl::server::handler::{Errno, Handler, Intent};

/// `RTN_UNICAST`.
pub const RTN_UNICAST: u8 = 1;
/// `RTN_LOCAL`.
pub const RTN_LOCAL: u8 = 2;
/// `RTN_BROADCAST`.
pub const RTN_BROADCAST: u8 = 3;
/// `RTPROT_KERNEL`.
pub const RTPROT_KERNEL: u8 = 2;
/// `RTPROT_BOOT`.
const RTPROT_BOOT: u8 = 3;
/// `RTN_MAX`.
const RTN_MAX: u8 = 11;
/// `RT_SCOPE_NOWHERE`.
const SCOPE_NOWHERE: u8 = 255;
/// `RT_TABLE_COMPAT`: what `rtm_table` says for tables above 255.
const RT_TABLE_COMPAT: u8 = 252;
/// `RTNH_F_LINKDOWN`.
const RTNH_F_LINKDOWN: u32 = 0x10;
/// `RTM_F_CLONED`: a lookup's answer.
const RTM_F_CLONED: u32 = 0x200;
/// `RTCF_LOCAL`: a lookup's answer for a local destination.
const RTCF_LOCAL: u32 = 0x8000_0000;
/// The metric IPv6 gives user routes without one (`IP6_RT_PRIO_USER`).
const V6_USER_METRIC: u32 = 1024;

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemRoute {
    /// The table.
    pub table: u32,
    /// The destination (its network part).
    pub dst: IpAddr,
    /// The destination prefix length.
    pub prefix: u8,
    /// The type (`RTN_*`).
    pub kind: u8,
    /// The scope (`RT_SCOPE_*`).
    pub scope: u8,
    /// The protocol (`RTPROT_*`).
    pub protocol: u8,
    /// The output link.
    pub oif: Option<u32>,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// The preferred source (`RTA_PREFSRC`).
    pub prefsrc: Option<IpAddr>,
    /// The metric (`RTA_PRIORITY`).
    pub metric: u32,
    /// The route's metrics (`RTA_METRICS`: MTU, window, RTT, advertised MSS, ...),
    /// kept and reported as given.
    pub metrics: Vec<RouteMetric>,
}

/// The least scope a route type may have (the kernel's `fib_props`).
fn least_scope(kind: u8) -> u8 {
    match kind {
        RTN_LOCAL => 254,
        RTN_BROADCAST | 4 => 253,
        10 => SCOPE_NOWHERE,
        _ => 0,
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

fn addr_of(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

/// What a route request says.
struct RouteReq {
    family: u8,
    table: u32,
    dst: IpAddr,
    prefix: u8,
    kind: u8,
    scope: u8,
    protocol: u8,
    oif: Option<u32>,
    gateway: Option<IpAddr>,
    prefsrc: Option<IpAddr>,
    metric: Option<u32>,
    metrics: Vec<RouteMetric>,
}

fn read_req(req: &RouteMessage) -> Result<RouteReq, Errno> {
    let h = &req.header;
    let family = u8::from(h.address_family);
    let unspecified = match i32::from(family) {
        libc::AF_INET => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        libc::AF_INET6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return Err(Errno::AFNOSUPPORT),
    };
    let max = if unspecified.is_ipv4() { 32 } else { 128 };
    if h.destination_prefix_length > max {
        return Err(Errno::INVAL);
    }
    let mut r = RouteReq {
        family,
        table: u32::from(h.table),
        dst: unspecified,
        prefix: h.destination_prefix_length,
        kind: u8::from(h.kind),
        scope: u8::from(h.scope),
        protocol: u8::from(h.protocol),
        oif: None,
        gateway: None,
        prefsrc: None,
        metric: None,
        metrics: Vec::new(),
    };
    let same = |ip: Option<IpAddr>| match ip {
        Some(ip) if family_of(&ip) == family => Ok(ip),
        _ => Err(Errno::INVAL),
    };
    for a in &req.attributes {
        match a {
            RouteAttribute::Destination(d) => r.dst = same(ip_of(d))?,
            RouteAttribute::Gateway(g) => r.gateway = Some(same(ip_of(g))?),
            RouteAttribute::PrefSource(s) => r.prefsrc = Some(same(ip_of(s))?),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Priority(p) => r.metric = Some(*p),
            RouteAttribute::Metrics(m) => r.metrics = m.clone(),
            RouteAttribute::Table(t) => r.table = *t,
            _ => {}
        }
    }
    if r.table == 0 {
        r.table = RT_TABLE_MAIN;
    }
    r.dst = network(r.dst, r.prefix);
    Ok(r)
}

impl MemStack {
    /// Adds `r` unless the very same route is there.
    pub(super) fn insert_route(&mut self, r: MemRoute) {
        if !self.routes.contains(&r) {
            self.routes.push(r);
        }
    }

    fn route_message(&self, r: &MemRoute) -> RouteMessage {
        let v4 = r.dst.is_ipv4();
        let mut m = RouteMessage::default();
        let h: &mut RouteHeader = &mut m.header;
        h.address_family = AddressFamily::from(family_of(&r.dst));
        h.destination_prefix_length = r.prefix;
        h.table = u8::try_from(r.table).unwrap_or(RT_TABLE_COMPAT);
        h.protocol = RouteProtocol::from(r.protocol);
        h.scope = RouteScope::from(r.scope);
        h.kind = RouteType::from(r.kind);
        let down = r.kind != RTN_LOCAL && r.oif.is_some_and(|i| !self.has_carrier(i));
        h.flags = RouteFlags::from_bits_retain(if down { RTNH_F_LINKDOWN } else { 0 });
        let mut a = vec![RouteAttribute::Table(r.table)];
        if r.prefix > 0 {
            a.push(RouteAttribute::Destination(addr_of(r.dst)));
        }
        if v4 && r.metric > 0 {
            a.push(RouteAttribute::Priority(r.metric));
        }
        // The kernel puts the metrics after the priority (IPv4) or the preferred
        // source (IPv6), before the next hop.
        let metrics = (!r.metrics.is_empty()).then(|| RouteAttribute::Metrics(r.metrics.clone()));
        if v4 {
            a.extend(metrics.clone());
        }
        if let Some(s) = r.prefsrc {
            a.push(RouteAttribute::PrefSource(addr_of(s)));
        }
        if !v4 {
            a.extend(metrics);
        }
        if let Some(g) = r.gateway {
            a.push(RouteAttribute::Gateway(addr_of(g)));
        }
        if let Some(i) = r.oif {
            a.push(RouteAttribute::Oif(i));
        }
        if !v4 {
            a.push(RouteAttribute::Priority(r.metric));
            a.push(RouteAttribute::Preference(RoutePreference::Medium));
        }
        m.attributes = a;
        m
    }

    /// The route a lookup for `dst` picks: the longest prefix in the local, then
    /// the main table.
    fn lookup(&self, dst: IpAddr) -> Option<&MemRoute> {
        self.routes
            .iter()
            .filter(|r| family_of(&r.dst) == family_of(&dst))
            .filter(|r| r.table == super::RT_TABLE_LOCAL || r.table == RT_TABLE_MAIN)
            .filter(|r| network(dst, r.prefix) == r.dst)
            .filter(|r| r.oif.is_none_or(|i| self.has_carrier(i)) || r.kind == RTN_LOCAL)
            .max_by_key(|r| {
                (
                    r.prefix,
                    r.table == super::RT_TABLE_LOCAL,
                    u32::MAX - r.metric,
                )
            })
    }

    /// The output link for `gw`: a directly connected route's.
    fn connected(&self, gw: IpAddr, oif: Option<u32>) -> Option<u32> {
        self.routes
            .iter()
            .filter(|r| r.gateway.is_none() && r.kind == RTN_UNICAST)
            .filter(|r| family_of(&r.dst) == family_of(&gw) && network(gw, r.prefix) == r.dst)
            .filter(|r| oif.is_none() || r.oif == oif)
            .max_by_key(|r| r.prefix)
            .and_then(|r| r.oif)
    }

    fn new_route(&self, r: &RouteReq) -> Result<MemRoute, Errno> {
        let v4 = i32::from(r.family) == libc::AF_INET;
        if r.kind == 0 || r.kind > RTN_MAX || (v4 && least_scope(r.kind) > r.scope) {
            return Err(Errno::INVAL);
        }
        let mut oif = r.oif;
        if let Some(i) = oif {
            let l = self.link(i).ok_or(Errno::NODEV)?;
            if v4 && r.gateway.is_none() && !l.is_up() && r.kind == RTN_UNICAST {
                return Err(Errno::NETDOWN);
            }
        }
        let needs_nexthop = matches!(r.kind, RTN_UNICAST | RTN_LOCAL | RTN_BROADCAST);
        let link_local =
            |ip: &IpAddr| matches!(ip, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
        if let Some(gw) = r.gateway {
            // An IPv6 link-local gateway needs only its link (link-local routes are
            // not modelled); any other gateway, a connected route to it.
            if !(link_local(&gw) && oif.is_some()) {
                oif = Some(self.connected(gw, oif).ok_or(Errno::NETUNREACH)?);
            }
        } else if needs_nexthop && oif.is_none() {
            return Err(Errno::NODEV);
        }
        let protocol = if !v4 && r.protocol == 0 {
            RTPROT_BOOT
        } else {
            r.protocol
        };
        Ok(MemRoute {
            table: r.table,
            dst: r.dst,
            prefix: r.prefix,
            kind: r.kind,
            scope: if v4 { r.scope } else { 0 },
            protocol,
            oif,
            gateway: r.gateway,
            prefsrc: r.prefsrc,
            metric: r.metric.unwrap_or(if v4 { 0 } else { V6_USER_METRIC }),
            metrics: r.metrics.clone(),
        })
    }
}

impl Handler<RouteMessage> for MemStack {
    type Key = usize;

    fn find(&self, req: &RouteMessage, intent: Intent) -> Result<Option<usize>, Errno> {
        let q = read_req(req)?;
        let v4 = i32::from(q.family) == libc::AF_INET;
        let found = self.routes.iter().position(|r| {
            if family_of(&r.dst) != q.family
                || r.table != q.table
                || r.dst != q.dst
                || r.prefix != q.prefix
            {
                return false;
            }
            if intent == Intent::Del {
                // Every field the request sets must match (unset: any).
                q.metric.is_none_or(|m| m == r.metric || (!v4 && m == 0))
                    && q.oif.is_none_or(|i| Some(i) == r.oif)
                    && q.gateway.is_none_or(|g| Some(g) == r.gateway)
                    && (q.kind == 0 || q.kind == r.kind || !v4)
                    && (q.protocol == 0 || q.protocol == r.protocol)
                    && (!v4 || q.scope == SCOPE_NOWHERE || q.scope == r.scope)
            } else {
                let metric = q.metric.unwrap_or(if v4 { 0 } else { V6_USER_METRIC });
                metric == r.metric
            }
        });
        Ok(found)
    }

    fn get(&self, req: &RouteMessage) -> Result<RouteMessage, Errno> {
        let q = read_req(req)?;
        let r = self.lookup(q.dst).ok_or(Errno::NETUNREACH)?;
        // What a packet meets on a route that does not forward.
        match r.kind {
            6 => return Err(Errno::INVAL),
            7 => return Err(Errno::HOSTUNREACH),
            8 => return Err(Errno::ACCESS),
            9 => return Err(Errno::NETUNREACH),
            _ => {}
        }
        // The answer is the route a packet would take (Linux: a "cloned" route):
        // main table, no protocol, universe scope, no metric; local delivery goes
        // through `lo`.
        let mut hit = r.clone();
        hit.dst = q.dst;
        hit.prefix = if q.dst.is_ipv4() { 32 } else { 128 };
        (hit.table, hit.protocol, hit.scope) = (RT_TABLE_MAIN, 0, 0);
        if hit.dst.is_ipv4() {
            hit.metric = 0;
        }
        if hit.kind == RTN_LOCAL {
            hit.oif = Some(1);
        }
        if hit.prefsrc.is_none() && hit.dst.is_ipv4() {
            hit.prefsrc = self
                .addrs
                .iter()
                .find(|a| Some(a.index) == hit.oif && a.local.is_ipv4())
                .map(|a| a.local);
        }
        let mut m = self.route_message(&hit);
        let local = if hit.kind == RTN_LOCAL { RTCF_LOCAL } else { 0 };
        m.header.flags = RouteFlags::from_bits_retain(m.header.flags.bits() | RTM_F_CLONED | local);
        Ok(m)
    }

    fn dump(&self, req: &RouteMessage) -> Vec<RouteMessage> {
        let fam = u8::from(req.header.address_family);
        let mut v: Vec<&MemRoute> = self
            .routes
            .iter()
            .filter(|r| fam == 0 || family_of(&r.dst) == fam)
            .collect();
        // The kernel walks IPv4 then IPv6, tables by id modulo 256, then its trie.
        v.sort_by_key(|r| {
            (
                r.dst.is_ipv6(),
                r.table & 0xff,
                r.dst,
                u8::MAX - r.prefix,
                r.metric,
            )
        });
        v.into_iter().map(|r| self.route_message(r)).collect()
    }

    fn create(&mut self, req: &RouteMessage) -> Result<(), Errno> {
        let q = read_req(req)?;
        let r = self.new_route(&q)?;
        self.routes.push(r);
        Ok(())
    }

    fn change(&mut self, i: usize, req: &RouteMessage) -> Result<(), Errno> {
        let q = read_req(req)?;
        let r = self.new_route(&q)?;
        match self.routes.get_mut(i) {
            Some(old) => *old = r,
            None => return Err(Errno::SRCH),
        }
        Ok(())
    }

    fn delete(&mut self, i: usize, _req: &RouteMessage) -> Result<(), Errno> {
        if i >= self.routes.len() {
            return Err(Errno::SRCH);
        }
        self.routes.remove(i);
        Ok(())
    }
}
