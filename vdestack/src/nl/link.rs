//! Links: names and indexes, up/down, MTU, MAC, add/delete by kind, listing.
//!
//! The nlinline calls use the byte-exact builders of [`super::nlinline`]; creating
//! a link of a typed [`LinkKind`] encodes its `IFLA_LINKINFO` with
//! `netlink-packet-route` (the kernel accepts nested attributes with or without
//! `NLA_F_NESTED`); replies are decoded with it too, in [`super::decode`].

use std::io;
use std::net::IpAddr;

use netlink_packet_core::Emitable;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, InfoVxlan, LinkAttribute, LinkInfo,
    LinkMessage, MacVlanMode as PrMacVlanMode,
};

use super::decode::{self, Link};
use super::nlinline::{self, check_ifname, IplinkData};
use super::socket::{NlClient, Until};
use super::wire::{
    Builder, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_GETLINK, RTM_NEWLINK,
};
use crate::error::context;

/// The kind of link to create, with its kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkKind {
    /// A veth pair; `peer` names the other end.
    Veth {
        /// The peer's name.
        peer: String,
    },
    /// A bridge.
    Bridge,
    /// A dummy interface (the `dummy` module).
    Dummy,
    /// A macvlan on `parent` (an ifindex).
    Macvlan {
        /// The lower link's index.
        parent: u32,
        /// The mode.
        mode: MacvlanMode,
    },
    /// An 802.1Q vlan `id` on `parent` (an ifindex; the `8021q` module).
    Vlan {
        /// The lower link's index.
        parent: u32,
        /// The vlan id (0..=4095).
        id: u16,
    },
    /// A VXLAN tunnel.
    Vxlan(VxlanSpec),
}

/// The macvlan modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MacvlanMode {
    /// `private`.
    Private,
    /// `vepa`.
    Vepa,
    /// `bridge`.
    Bridge,
    /// `passthru`.
    Passthru,
    /// `source`.
    Source,
}

/// A VXLAN link's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VxlanSpec {
    /// The VNI (24 bits).
    pub id: u32,
    /// The multicast group, or the unicast remote (both go in `IFLA_VXLAN_GROUP[6]`).
    pub group: Option<IpAddr>,
    /// The local source address.
    pub local: Option<IpAddr>,
    /// The UDP destination port (the kernel's default is 8472; IANA's is 4789).
    pub dstport: Option<u16>,
    /// The underlying link's index.
    pub dev: Option<u32>,
}

impl VxlanSpec {
    /// A VXLAN with VNI `id` and nothing else set.
    pub fn new(id: u32) -> Self {
        VxlanSpec {
            id,
            ..Default::default()
        }
    }
}

impl LinkKind {
    fn info(&self) -> io::Result<(Vec<LinkInfo>, Vec<LinkAttribute>)> {
        let mut top = Vec::new();
        let info = match self {
            LinkKind::Veth { peer } => {
                check_ifname(peer)?;
                let mut p = LinkMessage::default();
                p.attributes.push(LinkAttribute::IfName(peer.clone()));
                vec![
                    LinkInfo::Kind(InfoKind::Veth),
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
                ]
            }
            LinkKind::Bridge => vec![LinkInfo::Kind(InfoKind::Bridge)],
            LinkKind::Dummy => vec![LinkInfo::Kind(InfoKind::Dummy)],
            LinkKind::Macvlan { parent, mode } => {
                top.push(LinkAttribute::Link(*parent));
                let m = match mode {
                    MacvlanMode::Private => PrMacVlanMode::Private,
                    MacvlanMode::Vepa => PrMacVlanMode::Vepa,
                    MacvlanMode::Bridge => PrMacVlanMode::Bridge,
                    MacvlanMode::Passthru => PrMacVlanMode::Passthrough,
                    MacvlanMode::Source => PrMacVlanMode::Source,
                };
                vec![
                    LinkInfo::Kind(InfoKind::MacVlan),
                    LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(m)])),
                ]
            }
            LinkKind::Vlan { parent, id } => {
                if *id > 4095 {
                    return Err(nlinline::einval(format!("vlan id {id} over 4095")));
                }
                top.push(LinkAttribute::Link(*parent));
                vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(*id)])),
                ]
            }
            LinkKind::Vxlan(v) => {
                if v.id >= 1 << 24 {
                    return Err(nlinline::einval(format!("VNI {} over 24 bits", v.id)));
                }
                let mut d = vec![InfoVxlan::Id(v.id)];
                match v.group {
                    Some(IpAddr::V4(a)) => d.push(InfoVxlan::Group(a)),
                    Some(IpAddr::V6(a)) => d.push(InfoVxlan::Group6(a)),
                    None => {}
                }
                match v.local {
                    Some(IpAddr::V4(a)) => d.push(InfoVxlan::Local(a)),
                    Some(IpAddr::V6(a)) => d.push(InfoVxlan::Local6(a)),
                    None => {}
                }
                if let Some(p) = v.dstport {
                    d.push(InfoVxlan::Port(p));
                }
                if let Some(l) = v.dev {
                    d.push(InfoVxlan::Link(l));
                }
                vec![
                    LinkInfo::Kind(InfoKind::Vxlan),
                    LinkInfo::Data(InfoData::Vxlan(d)),
                ]
            }
        };
        Ok((info, top))
    }
}

/// Builds the RTM_NEWLINK request that creates `name` of `kind` (pure; for tests).
pub fn build_link_add(seq: u32, name: &str, kind: &LinkKind) -> io::Result<Vec<u8>> {
    check_ifname(name)?;
    let (info, top) = kind.info()?;
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.extend(top);
    m.attributes.push(LinkAttribute::LinkInfo(info));
    let mut body = vec![0u8; m.buffer_len()];
    m.emit(&mut body);
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE;
    Ok(Builder::new(RTM_NEWLINK, flags, seq).raw(&body).finish())
}

impl NlClient {
    pub(crate) fn ack(
        &self,
        what: impl FnOnce() -> String,
        build: impl FnOnce(u32) -> io::Result<Vec<u8>>,
    ) -> io::Result<i32> {
        let seq = self.next_seq();
        let msg = build(seq)?;
        let ans = self
            .dialog(&msg, seq, Until::Ack)
            .map_err(|e| context(e, what()))?;
        Ok(ans.ack.unwrap_or(0))
    }

    /// The index of link `name` (nlinline's `if_nametoindex` request); `ENODEV` if
    /// there is none.
    pub fn if_nametoindex(&self, name: &str) -> io::Result<u32> {
        let seq = self.next_seq();
        let msg = nlinline::build_if_nametoindex(seq, name)?;
        let ans = self
            .dialog(&msg, seq, Until::Ack)
            .map_err(|e| context(e, format!("if_nametoindex {name}")))?;
        ans.msgs
            .iter()
            .find(|(k, _)| *k == RTM_NEWLINK)
            .map(|(_, p)| decode::link_index(p))
            .unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ENODEV)))
    }

    /// The name of link `index`; `ENODEV` if there is none.
    pub fn if_indextoname(&self, index: u32) -> io::Result<String> {
        Ok(self.link(index)?.name)
    }

    /// Every link as (index, name), like `if_nameindex(3)`.
    pub fn if_nameindex(&self) -> io::Result<Vec<(u32, String)>> {
        Ok(self
            .links()?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect())
    }

    /// One link by index.
    pub fn link(&self, index: u32) -> io::Result<Link> {
        let seq = self.next_seq();
        let msg = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
            .ifinfomsg(0, index, 0, 0)
            .finish();
        let ans = self
            .dialog(&msg, seq, Until::Ack)
            .map_err(|e| context(e, format!("get link {index}")))?;
        match ans.msgs.iter().find(|(k, _)| *k == RTM_NEWLINK) {
            Some((_, p)) => decode::link(p),
            None => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        }
    }

    /// Every link (a dump).
    pub fn links(&self) -> io::Result<Vec<Link>> {
        self.dump(RTM_GETLINK, &[0; 16], RTM_NEWLINK, "dump links")?
            .iter()
            .map(|p| decode::link(p))
            .collect()
    }

    /// Sets link `index` up or down (nlinline's `linksetupdown`).
    pub fn link_set_up(&self, index: u32, up: bool) -> io::Result<()> {
        let what = || format!("set link {index} {}", if up { "up" } else { "down" });
        self.ack(what, |s| Ok(nlinline::build_linksetupdown(s, index, up)))?;
        Ok(())
    }

    /// Sets the MTU of link `index` (nlinline's `linksetmtu`).
    pub fn link_set_mtu(&self, index: u32, mtu: u32) -> io::Result<()> {
        let what = || format!("set mtu {mtu} on link {index}");
        self.ack(what, |s| Ok(nlinline::build_linksetmtu(s, index, mtu)))?;
        Ok(())
    }

    /// Sets the MAC address of link `index` (nlinline's `linksetaddr`).
    pub fn link_set_mac(&self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        let what = || format!("set mac on link {index}");
        self.ack(what, |s| Ok(nlinline::build_linksetaddr(s, index, mac)))?;
        Ok(())
    }

    /// The MAC address of link `index` (nlinline's `linkgetaddr`); `ENOENT` if the
    /// link has none of 6 bytes.
    pub fn link_get_mac(&self, index: u32) -> io::Result<[u8; 6]> {
        let seq = self.next_seq();
        let msg = nlinline::build_linkgetaddr(seq, index);
        let ans = self
            .dialog(&msg, seq, Until::First)
            .map_err(|e| context(e, format!("get mac of link {index}")))?;
        let l = match ans.msgs.first() {
            Some((RTM_NEWLINK, p)) => decode::link(p)?,
            _ => return Err(io::Error::from_raw_os_error(libc::ENODEV)),
        };
        match l.mac.as_deref() {
            Some(m) if m.len() >= 6 => Ok([m[0], m[1], m[2], m[3], m[4], m[5]]),
            _ => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }

    /// Creates link `name` of `kind`; returns its index.
    pub fn link_add(&self, name: &str, kind: &LinkKind) -> io::Result<u32> {
        self.ack(
            || format!("add link {name} ({kind:?})"),
            |s| build_link_add(s, name, kind),
        )?;
        self.if_nametoindex(name)
    }

    /// Deletes link `index`.
    pub fn link_del(&self, index: u32) -> io::Result<()> {
        self.iplink_del_raw(None, index)
    }

    /// Deletes link `name`.
    pub fn link_del_by_name(&self, name: &str) -> io::Result<()> {
        self.iplink_del_raw(Some(name), 0)
    }

    /// nlinline's `iplink_add`: creates a link of type `kind` named `name` (or
    /// named by the kernel), with index `ifindex` (0: any; [`super::IFINDEX_ASK`]: ask for
    /// it) and `data` inside `IFLA_INFO_DATA`. Returns the ack's value: 0, or the
    /// new index from a stack that reports it.
    pub fn iplink_add_raw(
        &self,
        name: Option<&str>,
        ifindex: u32,
        kind: &str,
        data: &[IplinkData],
    ) -> io::Result<i32> {
        let what = || format!("add link {} type {kind}", name.unwrap_or("(any)"));
        self.ack(what, |s| {
            nlinline::build_iplink_add(s, name, ifindex, kind, data)
        })
    }

    /// nlinline's `iplink_del`: by name, by index, or both.
    pub fn iplink_del_raw(&self, name: Option<&str>, ifindex: u32) -> io::Result<()> {
        let what = || {
            format!(
                "delete link {}",
                name.map(str::to_string).unwrap_or(ifindex.to_string())
            )
        };
        self.ack(what, |s| nlinline::build_iplink_del(s, name, ifindex))?;
        Ok(())
    }
}
