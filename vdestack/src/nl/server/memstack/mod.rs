//! [`MemStack`]: a reference network stack in memory, served by [`super::Server`]
//! and checked against the Linux kernel by `tests/nl_server_diff.rs`.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the state: links, addresses, routes; what the kernel does on link up/down |
//! | `link.rs` | links: `lo`, created `dummy`/`bridge`/`veth` links, flags, carrier, operstate, counters |
//! | `addr.rs` | IPv4 and IPv6 addresses |
//! | `derived.rs` | what the kernel derives from addresses: their routes, secondaries, `lo`'s addresses |
//! | `route.rs` | routes of any table; dumps, lookups |
//!
//! It behaves like a fresh network namespace: `lo` (index 1, `LOOPBACK`, MTU 65536)
//! is down at first; bringing it up adds `127.0.0.1/8` and `::1/128` with their
//! local-table routes. An IPv4 address on an up link adds the local route, the
//! connected prefix route and the subnet broadcast route; taking the link down
//! removes its routes except the local ones, and its IPv6 addresses (the kernel's
//! default `keep_addr_on_down=0`).
//!
//! Left out, on purpose (a test or a caller sees them missing, never wrong): IPv6
//! link-local addresses and their `fe80::/64` routes, the `ff00::/8` multicast
//! routes, duplicate address detection (addresses are never `tentative`), qdiscs,
//! neighbours, rules, multipath routes, the many link attributes beyond
//! those listed in `link.rs`, dump filters (only the address family selects).

mod addr;
mod derived;
mod link;
mod route;

use std::net::IpAddr;

use rustix::io::Errno;

pub use link::{MemLink, MemLinkKind};
pub use route::MemRoute;

pub use addr::MemAddr;

/// `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// `IFF_BROADCAST`.
pub const IFF_BROADCAST: u32 = 0x2;
/// `IFF_LOOPBACK`.
pub const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_RUNNING`.
pub const IFF_RUNNING: u32 = 0x40;
/// `IFF_MULTICAST`.
pub const IFF_MULTICAST: u32 = 0x1000;
/// `IFF_LOWER_UP`.
pub const IFF_LOWER_UP: u32 = 0x10000;

/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;

/// A network stack in memory: the links, addresses and routes of one namespace.
#[derive(Debug, Clone)]
pub struct MemStack {
    links: Vec<MemLink>,
    addrs: Vec<MemAddr>,
    routes: Vec<MemRoute>,
    /// The next index to try (the kernel allocates indexes cyclically upward).
    next_index: u32,
    /// Counter for generated MAC addresses.
    next_mac: u32,
}

impl Default for MemStack {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStack {
    /// A fresh stack: only `lo`, down, with no address and no route.
    pub fn new() -> Self {
        MemStack {
            links: vec![MemLink::loopback()],
            addrs: Vec::new(),
            routes: Vec::new(),
            next_index: 2,
            next_mac: 1,
        }
    }

    /// The links, by index.
    pub fn links(&self) -> &[MemLink] {
        &self.links
    }

    /// The addresses.
    pub fn addrs(&self) -> &[MemAddr] {
        &self.addrs
    }

    /// The routes.
    pub fn routes(&self) -> &[MemRoute] {
        &self.routes
    }

    /// Link `index`, to change it directly (e.g. its counters, which a stack's data
    /// path would update).
    pub fn link_mut(&mut self, index: u32) -> Option<&mut MemLink> {
        self.links.iter_mut().find(|l| l.index == index)
    }

    fn link(&self, index: u32) -> Option<&MemLink> {
        self.links.iter().find(|l| l.index == index)
    }

    fn link_by_name(&self, name: &str) -> Option<&MemLink> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Whether link `index` is up and has a carrier.
    fn has_carrier(&self, index: u32) -> bool {
        self.link(index)
            .is_some_and(|l| l.is_up() && self.carrier_of(l))
    }

    /// A free index: `want` if given, else the next one upward.
    fn alloc_index(&mut self, want: u32) -> Result<u32, Errno> {
        if want > 0 {
            return match self.link(want) {
                Some(_) => Err(Errno::BUSY),
                None => Ok(want),
            };
        }
        for _ in 0..u32::MAX {
            let i = self.next_index.max(2);
            self.next_index = i.checked_add(1).unwrap_or(2);
            if self.link(i).is_none() {
                return Ok(i);
            }
        }
        Err(Errno::NFILE)
    }

    /// What the kernel does when link `index` goes up: `lo` gets its loopback
    /// addresses, IPv4 addresses get their routes back.
    fn on_up(&mut self, index: u32) {
        let loopback = self
            .link(index)
            .is_some_and(|l| l.kind == MemLinkKind::Loopback);
        if loopback {
            self.add_loopback_addrs(index);
        }
        let v4: Vec<MemAddr> = self
            .addrs
            .iter()
            .filter(|a| a.index == index)
            .cloned()
            .collect();
        for a in v4 {
            self.add_addr_routes(&a);
        }
    }

    /// What the kernel does when link `index` goes down: its routes go, except the
    /// IPv4 local ones; its IPv6 addresses go.
    fn on_down(&mut self, index: u32) {
        self.routes
            .retain(|r| r.oif != Some(index) || (r.dst.is_ipv4() && r.kind == route::RTN_LOCAL));
        self.addrs.retain(|a| a.index != index || a.local.is_ipv4());
    }

    /// Removes everything of link `index` (it is being deleted).
    fn forget_link(&mut self, index: u32) {
        self.routes.retain(|r| r.oif != Some(index));
        self.addrs.retain(|a| a.index != index);
        self.links.retain(|l| l.index != index);
    }
}

/// The address family byte of an IP address.
fn family_of(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

#[cfg(test)]
mod tests;
