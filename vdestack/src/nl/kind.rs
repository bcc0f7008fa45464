//! Typed link kinds for [`super::NlClient::link_add`] and their encoding.
//!
//! `IFLA_LINKINFO` is encoded with `netlink-packet-route` (the kernel accepts nested
//! attributes with or without `NLA_F_NESTED`); the netlink header is ours.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::Emitable;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, InfoVxlan, LinkAttribute, LinkInfo,
    LinkMessage, MacVlanMode as PrMacVlanMode,
};

use super::nlinline::{self, check_ifname};
use super::wire::{Builder, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_NEWLINK};

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

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Parseable;

    fn decode(kind: &LinkKind) -> LinkMessage {
        let m = build_link_add(5, "x0", kind).unwrap();
        assert_eq!(
            &m[4..8],
            &[16, 0, 0x05, 0x06],
            "RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE"
        );
        LinkMessage::parse(&m[16..]).unwrap()
    }

    #[test]
    fn kinds_encode_what_the_kernel_expects() {
        let veth = decode(&LinkKind::Veth { peer: "x1".into() });
        let peer_named = format!("{:?}", veth.attributes).contains("IfName(\"x1\")");
        assert!(peer_named, "{:?}", veth.attributes);
        let mv = decode(&LinkKind::Macvlan {
            parent: 3,
            mode: MacvlanMode::Bridge,
        });
        assert!(mv.attributes.contains(&LinkAttribute::Link(3)));
        let vx = decode(&LinkKind::Vxlan(VxlanSpec {
            id: 42,
            dstport: Some(4789),
            dev: Some(3),
            ..Default::default()
        }));
        let s = format!("{:?}", vx.attributes);
        assert!(
            s.contains("Id(42)") && s.contains("Port(4789)") && s.contains("Link(3)"),
            "{s}"
        );
        let e = build_link_add(
            1,
            "x0",
            &LinkKind::Vlan {
                parent: 3,
                id: 4096,
            },
        )
        .unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
        let e = build_link_add(1, "x0", &LinkKind::Vxlan(VxlanSpec::new(1 << 24))).unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
        let e = build_link_add(1, "a/b", &LinkKind::Bridge).unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EINVAL);
    }
}
