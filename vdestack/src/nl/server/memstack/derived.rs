//! What the kernel derives from addresses: their routes (local, connected prefix,
//! subnet broadcast; the IPv6 local and prefix routes), the primary/secondary
//! relation of IPv4 addresses, what deleting one takes with it, and `lo`'s own
//! addresses when it goes up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::addr::{
    network, MemAddr, IFA_F_NOPREFIXROUTE, IFA_F_PERMANENT, IFA_F_SECONDARY, SCOPE_HOST, SCOPE_LINK,
};
use super::route::{MemRoute, RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, RTPROT_KERNEL};
use super::{MemLinkKind, MemStack, RT_TABLE_LOCAL, RT_TABLE_MAIN};

impl MemStack {
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
            metrics: Vec::new(),
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
    pub(super) fn primary_of(&self, a: &MemAddr) -> Option<IpAddr> {
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
    pub(super) fn remove_addr(&mut self, i: usize) {
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
}
