//! Typed results, decoded from the kernel's replies with `netlink-packet-route`.
//!
//! Unknown attributes are ignored; a payload the crate cannot parse (truncated,
//! wrong lengths) is an `EPROTO` error, never a panic.
//!
//! With the `serde` feature, [`Link`], [`LinkStats`], [`Addr`] and [`Route`] are
//! `Serialize` and `Deserialize`, under their Rust field names (`vdestack ip -j`
//! prints iproute2's keys instead).

use std::io;
use std::net::IpAddr;

use netlink_packet_core::Parseable;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};

use super::wire::malformed;

/// A link, as listed by the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Link {
    /// The index.
    pub index: u32,
    /// The name.
    pub name: String,
    /// The `IFF_*` flags (`IFF_UP` = 1, ...).
    pub flags: u32,
    /// The MTU.
    pub mtu: Option<u32>,
    /// The link-layer address (6 bytes for Ethernet).
    pub mac: Option<Vec<u8>>,
    /// The kind (`veth`, `bridge`, `macvlan`, `vxlan`, ...), if it has one.
    pub kind: Option<String>,
    /// The lower link's index (`IFLA_LINK`), e.g. a macvlan's parent or a veth's peer.
    pub parent: Option<u32>,
    /// The link's bridge, if it is a bridge port (`IFLA_MASTER`).
    pub master: Option<u32>,
    /// Traffic counters.
    pub stats: LinkStats,
    /// The link-layer broadcast address.
    pub broadcast: Option<Vec<u8>>,
    /// The RFC 2863 operational state (`IFLA_OPERSTATE`): 0 unknown, 2 down,
    /// 3 lower layer down, 6 up, ...
    pub operstate: Option<u8>,
}

impl Link {
    /// The operational state as iproute2 names it (`UP`, `DOWN`, `UNKNOWN`, ...).
    pub fn operstate_name(&self) -> &'static str {
        match self.operstate {
            Some(1) => "NOTPRESENT",
            Some(2) => "DOWN",
            Some(3) => "LOWERLAYERDOWN",
            Some(4) => "TESTING",
            Some(5) => "DORMANT",
            Some(6) => "UP",
            _ => "UNKNOWN",
        }
    }

    /// Whether `IFF_UP` is set.
    pub fn is_up(&self) -> bool {
        self.flags & super::wire::IFF_UP != 0
    }
}

/// A link's traffic counters (from `IFLA_STATS64`, else `IFLA_STATS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LinkStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Packets to send dropped.
    pub tx_dropped: u64,
}

/// An interface address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Addr {
    /// The link's index.
    pub index: u32,
    /// The address (`IFA_LOCAL` if present, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
    /// The `IFA_F_*` flags (from `IFA_FLAGS` when present, which has all 32 bits).
    pub flags: u32,
    /// The scope (`RT_SCOPE_*`: 0 universe, 253 link, 254 host).
    pub scope: u8,
    /// The label (IPv4).
    pub label: Option<String>,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Route {
    /// The destination (the unspecified address for a default route).
    pub dst: IpAddr,
    /// The destination prefix length.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// The output interface.
    pub oif: Option<u32>,
    /// The table (`RTA_TABLE` when present: it has 32 bits).
    pub table: u32,
    /// The protocol (`RTPROT_*`: 2 kernel, 3 boot, 4 static).
    pub protocol: u8,
    /// The scope (`RT_SCOPE_*`).
    pub scope: u8,
    /// The type (`RTN_*`: 1 unicast, 2 local, 3 broadcast, 6 blackhole, ...).
    pub kind: u8,
    /// The metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> io::Error {
    malformed(&format!("{what}: {e}"))
}

/// The index in an `ifinfomsg` payload.
pub fn link_index(payload: &[u8]) -> io::Result<u32> {
    match payload.get(4..8) {
        Some(b) => Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(malformed("link message shorter than ifinfomsg")),
    }
}

/// Decodes an `RTM_NEWLINK` payload.
pub fn link(payload: &[u8]) -> io::Result<Link> {
    if payload.len() < 16 {
        return Err(malformed("link message shorter than ifinfomsg"));
    }
    let m = LinkMessage::parse(payload).map_err(|e| bad("link", e))?;
    let mut l = Link {
        index: m.header.index,
        flags: m.header.flags.bits(),
        ..Default::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = Some(*v),
            LinkAttribute::Address(v) => l.mac = Some(v.clone()),
            LinkAttribute::Broadcast(v) => l.broadcast = Some(v.clone()),
            LinkAttribute::OperState(st) => l.operstate = Some(u8::from(*st)),
            LinkAttribute::Link(v) => l.parent = Some(*v),
            LinkAttribute::Controller(v) => l.master = Some(*v),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(kind_name(k));
                    }
                }
            }
            LinkAttribute::Stats64(s) => {
                l.stats = LinkStats {
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                    rx_dropped: s.rx_dropped,
                    tx_dropped: s.tx_dropped,
                }
            }
            LinkAttribute::Stats(s) if l.stats == LinkStats::default() => {
                l.stats = LinkStats {
                    rx_packets: s.rx_packets.into(),
                    tx_packets: s.tx_packets.into(),
                    rx_bytes: s.rx_bytes.into(),
                    tx_bytes: s.tx_bytes.into(),
                    rx_errors: s.rx_errors.into(),
                    tx_errors: s.tx_errors.into(),
                    rx_dropped: s.rx_dropped.into(),
                    tx_dropped: s.tx_dropped.into(),
                }
            }
            _ => {}
        }
    }
    Ok(l)
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Other(s) => s.clone(),
        // The crate's Display prints the kernel's kind string.
        k => k.to_string(),
    }
}

/// Decodes an `RTM_NEWADDR` payload.
pub fn addr(payload: &[u8]) -> io::Result<Addr> {
    if payload.len() < 8 {
        return Err(malformed("address message shorter than ifaddrmsg"));
    }
    let m = AddressMessage::parse(payload).map_err(|e| bad("address", e))?;
    let (mut local, mut address, mut label, mut flags) = (None, None, None, None);
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(s) => label = Some(s.clone()),
            AddressAttribute::Flags(f) => flags = Some(f.bits()),
            _ => {}
        }
    }
    let addr = local
        .or(address)
        .ok_or_else(|| malformed("address message without an address"))?;
    Ok(Addr {
        index: m.header.index,
        addr,
        prefix_len: m.header.prefix_len,
        flags: flags.unwrap_or(m.header.flags.bits() as u32),
        scope: m.header.scope.into(),
        label,
    })
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

/// Decodes an `RTM_NEWROUTE` payload; `None` for families other than IPv4/IPv6.
pub fn route(payload: &[u8]) -> io::Result<Option<Route>> {
    if payload.len() < 12 {
        return Err(malformed("route message shorter than rtmsg"));
    }
    let family = payload[0] as i32;
    let unspecified: IpAddr = match family {
        libc::AF_INET => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        libc::AF_INET6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return Ok(None),
    };
    let m = RouteMessage::parse(payload).map_err(|e| bad("route", e))?;
    let mut r = Route {
        dst: unspecified,
        prefix_len: m.header.destination_prefix_length,
        gateway: None,
        oif: None,
        table: m.header.table.into(),
        protocol: m.header.protocol.into(),
        scope: m.header.scope.into(),
        kind: m.header.kind.into(),
        metric: None,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => r.dst = route_ip(d).unwrap_or(unspecified),
            RouteAttribute::Gateway(g) => r.gateway = route_ip(g),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::Priority(p) => r.metric = Some(*p),
            _ => {}
        }
    }
    Ok(Some(r))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
