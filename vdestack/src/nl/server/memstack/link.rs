//! Links of the [`MemStack`]: `lo`, created `dummy`, `bridge` and `veth` links,
//! and devices added through the API (a VDE interface's model),
//! answered with the attributes iproute2 and our client read: `IFLA_IFNAME`,
//! `TXQLEN`, `OPERSTATE`, `LINKMODE`, `MTU`, `MIN_MTU`, `MAX_MTU`, `GROUP`,
//! `PROMISCUITY`, `CARRIER`, `ADDRESS`, `BROADCAST`, `STATS64`, `STATS`, `LINK` (a
//! veth's peer) and `LINKINFO` { `INFO_KIND` }, in the kernel's order.

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo,
    LinkLayerType, LinkMessage, LinkMode, State, Stats, Stats64,
};
use netlink_packet_route::AddressFamily;

use super::{
    MemStack, IFF_BROADCAST, IFF_LOOPBACK, IFF_LOWER_UP, IFF_MULTICAST, IFF_RUNNING, IFF_UP,
};
use crate::nl::server::handler::{Errno, Handler, Intent};
use crate::nl::server::validate::name_fits;

/// The flags `SETLINK` may change (`dev_change_flags`; `IFF_UP` is handled apart).
const CHANGEABLE: u32 = 0x1 | 0x4 | 0x20 | 0x80 | 0x8000 | 0x1000 | 0x2000 | 0x4000;

/// What a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemLinkKind {
    /// `lo`.
    Loopback,
    /// A `dummy` link (always has a carrier).
    Dummy,
    /// A `bridge` (no ports are modelled).
    Bridge,
    /// One end of a `veth` pair (a carrier when both ends are up).
    Veth {
        /// The other end's index.
        peer: u32,
    },
    /// An Ethernet interface whose carrier its data path reports, as a VDE
    /// plug's interface (libnlq's `netlinktest` `vde0`); made only through
    /// [`MemStack::add_device`], never by a NEWLINK.
    Device {
        /// Whether the data path has a carrier ([`MemStack::set_carrier`]).
        carrier: bool,
    },
}

/// One link.
#[derive(Debug, Clone)]
pub struct MemLink {
    /// The index.
    pub index: u32,
    /// The name.
    pub name: String,
    /// What it is.
    pub kind: MemLinkKind,
    /// The configured `IFF_*` flags (`IFF_RUNNING` and `IFF_LOWER_UP` are derived).
    pub flags: u32,
    /// The MTU.
    pub mtu: u32,
    /// The transmit queue length.
    pub txqlen: u32,
    /// The MAC address.
    pub mac: [u8; 6],
    /// The counters (a stack's data path updates them through
    /// [`MemStack::link_mut`]).
    pub stats: Stats64,
}

impl MemLink {
    /// A fresh namespace's `lo`: index 1, down.
    pub fn loopback() -> Self {
        MemLink {
            index: 1,
            name: "lo".into(),
            kind: MemLinkKind::Loopback,
            flags: IFF_LOOPBACK,
            mtu: 65536,
            txqlen: 1000,
            mac: [0; 6],
            stats: Stats64::default(),
        }
    }

    /// Whether `IFF_UP` is set.
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    fn mtu_range(&self) -> (u32, u32) {
        match self.kind {
            MemLinkKind::Loopback => (0, 0),
            _ => (68, 65535),
        }
    }

    fn kind_name(&self) -> Option<InfoKind> {
        match self.kind {
            MemLinkKind::Loopback | MemLinkKind::Device { .. } => None,
            MemLinkKind::Dummy => Some(InfoKind::Dummy),
            MemLinkKind::Bridge => Some(InfoKind::Bridge),
            MemLinkKind::Veth { .. } => Some(InfoKind::Veth),
        }
    }
}

impl MemStack {
    /// Adds an Ethernet device `name` with address `mac`, down, with no carrier,
    /// MTU 1500 and `BROADCAST|MULTICAST`, at the next free index; returns the
    /// index. `EEXIST` if the name is taken, `EINVAL` if it is not a valid name.
    pub fn add_device(&mut self, name: &str, mac: [u8; 6]) -> Result<u32, Errno> {
        if name.is_empty() || !name_fits(name.as_bytes()) || name.contains(['/', ':', ' ']) {
            return Err(Errno::INVAL);
        }
        if self.link_by_name(name).is_some() {
            return Err(Errno::EXIST);
        }
        let index = self.alloc_index(0)?;
        self.insert_link(MemLink {
            index,
            name: name.into(),
            kind: MemLinkKind::Device { carrier: false },
            flags: IFF_BROADCAST | IFF_MULTICAST,
            mtu: 1500,
            txqlen: 1000,
            mac,
            stats: Stats64::default(),
        });
        Ok(index)
    }

    /// Sets the carrier of device `index` (made by [`MemStack::add_device`]), as
    /// its data path would; `ENODEV` if there is no such device.
    pub fn set_carrier(&mut self, index: u32, carrier: bool) -> Result<(), Errno> {
        match self.link_mut(index) {
            Some(l) if matches!(l.kind, MemLinkKind::Device { .. }) => {
                l.kind = MemLinkKind::Device { carrier };
                Ok(())
            }
            _ => Err(Errno::NODEV),
        }
    }

    /// Whether `l` has a carrier (`lo`, dummies and bridges (no ports are
    /// modelled; Linux 6.x reports a carrier for a bridge without ports) always do,
    /// up or not; a veth when both ends are up).
    pub(super) fn carrier_of(&self, l: &MemLink) -> bool {
        match l.kind {
            MemLinkKind::Loopback | MemLinkKind::Dummy | MemLinkKind::Bridge => true,
            MemLinkKind::Veth { peer } => l.is_up() && self.link(peer).is_some_and(MemLink::is_up),
            MemLinkKind::Device { carrier } => carrier,
        }
    }

    fn link_message(&self, l: &MemLink, skip_stats: bool) -> LinkMessage {
        let up = l.is_up();
        let carrier_ok = self.carrier_of(l);
        let carrier = up && carrier_ok;
        let mut m = LinkMessage::default();
        m.header.interface_family = AddressFamily::Unspec;
        m.header.index = l.index;
        m.header.link_layer_type = match l.kind {
            MemLinkKind::Loopback => LinkLayerType::Loopback,
            _ => LinkLayerType::Ether,
        };
        let derived = if carrier {
            IFF_RUNNING | IFF_LOWER_UP
        } else {
            0
        };
        m.header.flags = LinkFlags::from_bits_retain(l.flags | derived);
        let oper = match (up, carrier, l.kind) {
            (false, _, _) => State::Down,
            (true, _, MemLinkKind::Loopback | MemLinkKind::Dummy | MemLinkKind::Bridge) => {
                State::Unknown
            }
            (true, true, _) => State::Up,
            (true, false, MemLinkKind::Veth { .. }) => State::LowerLayerDown,
            // A device without a lower link and without carrier (IF_OPER_DOWN).
            (true, false, MemLinkKind::Device { .. }) => State::Down,
        };
        let (min, max) = l.mtu_range();
        let bcast = match l.kind {
            MemLinkKind::Loopback => vec![0; 6],
            _ => vec![0xff; 6],
        };
        let s = &l.stats;
        let mut s32 = Stats::default();
        (s32.rx_packets, s32.tx_packets) = (s.rx_packets as u32, s.tx_packets as u32);
        (s32.rx_bytes, s32.tx_bytes) = (s.rx_bytes as u32, s.tx_bytes as u32);
        (s32.rx_errors, s32.tx_errors) = (s.rx_errors as u32, s.tx_errors as u32);
        (s32.rx_dropped, s32.tx_dropped) = (s.rx_dropped as u32, s.tx_dropped as u32);
        (s32.multicast, s32.collisions) = (s.multicast as u32, s.collisions as u32);
        let mut a = vec![
            LinkAttribute::IfName(l.name.clone()),
            LinkAttribute::TxQueueLen(l.txqlen),
            LinkAttribute::OperState(oper),
            LinkAttribute::Mode(LinkMode::Default),
            LinkAttribute::Mtu(l.mtu),
            LinkAttribute::MinMtu(min),
            LinkAttribute::MaxMtu(max),
            LinkAttribute::Group(0),
            LinkAttribute::Promiscuity(0),
            LinkAttribute::Carrier(carrier_ok as u8),
            LinkAttribute::Address(l.mac.to_vec()),
            LinkAttribute::Broadcast(bcast),
        ];
        if !skip_stats {
            a.push(LinkAttribute::Stats64(l.stats));
            a.push(LinkAttribute::Stats(s32));
        }
        if let MemLinkKind::Veth { peer } = l.kind {
            a.push(LinkAttribute::Link(peer));
        }
        if let Some(k) = l.kind_name() {
            a.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(k)]));
        }
        m.attributes = a;
        m
    }

    fn next_mac(&mut self) -> [u8; 6] {
        // Locally administered, unicast, and unlike any other of this stack.
        let n = self.next_mac;
        self.next_mac = n.wrapping_add(1);
        let b = n.to_be_bytes();
        [0x02, 0x76, b[0], b[1], b[2], b[3]]
    }

    /// Builds a new link from `req` (not yet inserted): checks and defaults.
    fn new_link(&mut self, req: &LinkMessage, kind: MemLinkKind) -> Result<MemLink, Errno> {
        let a = LinkAttrs::of(req)?;
        let index = self.alloc_index(req.header.index)?;
        let name = match a.name {
            Some(n) => n,
            None => self.free_name(kind)?,
        };
        if self.link_by_name(&name).is_some() {
            return Err(Errno::EXIST);
        }
        let mac = match a.mac {
            Some(m) => m,
            None => self.next_mac(),
        };
        let mut l = MemLink {
            index,
            name,
            kind,
            flags: IFF_BROADCAST | IFF_MULTICAST,
            mtu: 1500,
            txqlen: a.txqlen.unwrap_or(1000),
            mac,
            stats: Stats64::default(),
        };
        if let Some(mtu) = a.mtu {
            check_mtu(&l, mtu)?;
            l.mtu = mtu;
        }
        l.flags = combine_flags(l.flags, req);
        Ok(l)
    }

    fn free_name(&self, kind: MemLinkKind) -> Result<String, Errno> {
        let stem = match kind {
            MemLinkKind::Dummy => "dummy",
            MemLinkKind::Bridge => "bridge",
            _ => "veth",
        };
        (0..1000)
            .map(|i| format!("{stem}{i}"))
            .find(|n| self.link_by_name(n).is_none())
            .ok_or(Errno::NFILE)
    }

    fn insert_link(&mut self, l: MemLink) {
        let at = self.links.partition_point(|x| x.index < l.index);
        self.links.insert(at, l);
    }
}

/// The attributes of a link request that the stack reads.
#[derive(Default)]
struct LinkAttrs<'a> {
    name: Option<String>,
    mtu: Option<u32>,
    txqlen: Option<u32>,
    mac: Option<[u8; 6]>,
    kind: Option<&'a InfoKind>,
    peer: Option<&'a LinkMessage>,
}

impl<'a> LinkAttrs<'a> {
    fn of(req: &'a LinkMessage) -> Result<Self, Errno> {
        let mut a = LinkAttrs::default();
        for attr in &req.attributes {
            match attr {
                LinkAttribute::IfName(n) => {
                    if n.is_empty() || !name_fits(n.as_bytes()) || n.contains(['/', ':', ' ']) {
                        return Err(Errno::INVAL);
                    }
                    a.name = Some(n.clone());
                }
                LinkAttribute::Mtu(v) => a.mtu = Some(*v),
                LinkAttribute::TxQueueLen(v) => a.txqlen = Some(*v),
                LinkAttribute::Address(v) => {
                    a.mac = Some(v.as_slice().try_into().map_err(|_| Errno::INVAL)?)
                }
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => a.kind = Some(k),
                            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => a.peer = Some(p),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(a)
    }
}

/// Whether the request's `IFLA_EXT_MASK` has `RTEXT_FILTER_SKIP_STATS` (iproute2
/// sets it): the kernel then leaves the counters out.
fn skip_stats(req: &LinkMessage) -> bool {
    req.attributes
        .iter()
        .any(|a| matches!(a, LinkAttribute::ExtMask(m) if m.contains(&LinkExtentMask::SkipStats)))
}

fn check_mtu(l: &MemLink, mtu: u32) -> Result<(), Errno> {
    let (min, max) = l.mtu_range();
    if mtu < min || (max > 0 && mtu > max) {
        return Err(Errno::INVAL);
    }
    Ok(())
}

/// The kernel's `rtnl_dev_combine_flags` then `dev_change_flags`: the new flags,
/// of which only the changeable ones and `IFF_UP` are taken.
fn combine_flags(old: u32, req: &LinkMessage) -> u32 {
    let (f, change) = (req.header.flags.bits(), req.header.change_mask.bits());
    if f == 0 && change == 0 {
        return old;
    }
    let want = if change != 0 {
        (f & change) | (old & !change)
    } else {
        f
    };
    (old & !(CHANGEABLE | IFF_UP)) | (want & (CHANGEABLE | IFF_UP))
}

impl Handler<LinkMessage> for MemStack {
    type Key = u32;

    fn find(&self, req: &LinkMessage, intent: Intent) -> Result<Option<u32>, Errno> {
        if req.header.index > 0 {
            return Ok(self.link(req.header.index).map(|l| l.index));
        }
        for a in &req.attributes {
            if let LinkAttribute::IfName(n) = a {
                return Ok(self.link_by_name(n).map(|l| l.index));
            }
        }
        // Neither index nor name: a NEW finds nothing (and creates, with a made-up
        // name, if it may); the others are EINVAL.
        match intent {
            Intent::New => Ok(None),
            _ => Err(Errno::INVAL),
        }
    }

    fn get(&self, req: &LinkMessage) -> Result<LinkMessage, Errno> {
        let index = self.find(req, Intent::Set)?.ok_or(Errno::NODEV)?;
        let l = self.link(index).ok_or(Errno::NODEV)?;
        Ok(self.link_message(l, skip_stats(req)))
    }

    fn dump(&self, req: &LinkMessage) -> Vec<LinkMessage> {
        let skip = skip_stats(req);
        self.links
            .iter()
            .map(|l| self.link_message(l, skip))
            .collect()
    }

    fn create(&mut self, req: &LinkMessage) -> Result<(), Errno> {
        let a = LinkAttrs::of(req)?;
        let kind = match a.kind {
            Some(InfoKind::Dummy) => MemLinkKind::Dummy,
            Some(InfoKind::Bridge) => MemLinkKind::Bridge,
            Some(InfoKind::Veth) => MemLinkKind::Veth { peer: 0 },
            _ => return Err(Errno::OPNOTSUPP),
        };
        if let MemLinkKind::Veth { .. } = kind {
            // The kernel registers the peer first: it gets the lower index.
            let default_peer = LinkMessage::default();
            let peer_req = a.peer.unwrap_or(&default_peer);
            let mut peer = self.new_link(peer_req, MemLinkKind::Veth { peer: 0 })?;
            let name_taken = a.name.as_deref() == Some(peer.name.as_str());
            self.insert_link(peer.clone());
            let me = match self.new_link(req, kind) {
                Ok(_) if name_taken => Err(Errno::EXIST),
                r => r,
            };
            let mut me = match me {
                Ok(me) => me,
                Err(e) => {
                    self.forget_link(peer.index);
                    return Err(e);
                }
            };
            peer.kind = MemLinkKind::Veth { peer: me.index };
            me.kind = MemLinkKind::Veth { peer: peer.index };
            let (pi, mi, pup, mup) = (peer.index, me.index, peer.is_up(), me.is_up());
            self.forget_link(pi);
            self.insert_link(peer);
            self.insert_link(me);
            if pup {
                self.on_up(pi);
            }
            if mup {
                self.on_up(mi);
            }
            return Ok(());
        }
        let l = self.new_link(req, kind)?;
        let (i, up) = (l.index, l.is_up());
        self.insert_link(l);
        if up {
            self.on_up(i);
        }
        Ok(())
    }

    fn change(&mut self, index: u32, req: &LinkMessage) -> Result<(), Errno> {
        let a = LinkAttrs::of(req)?;
        let l = self.link(index).ok_or(Errno::NODEV)?.clone();
        if let Some(k) = a.kind {
            if l.kind_name().as_ref() != Some(k) {
                return Err(Errno::OPNOTSUPP);
            }
        }
        // Check everything first, so that a refused request changes nothing.
        let rename = a.name.filter(|n| *n != l.name && req.header.index > 0);
        if let Some(n) = &rename {
            if self.link_by_name(n).is_some() {
                return Err(Errno::EXIST);
            }
            if l.is_up() {
                return Err(Errno::BUSY);
            }
        }
        if let Some(mtu) = a.mtu {
            check_mtu(&l, mtu)?;
        }
        if a.mac.is_some() && l.kind == MemLinkKind::Loopback {
            return Err(Errno::OPNOTSUPP);
        }
        let flags = combine_flags(l.flags, req);
        let was_up = l.is_up();
        let Some(m) = self.link_mut(index) else {
            return Err(Errno::NODEV);
        };
        if let Some(n) = rename {
            m.name = n;
        }
        if let Some(mtu) = a.mtu {
            m.mtu = mtu;
        }
        if let Some(q) = a.txqlen {
            m.txqlen = q;
        }
        if let Some(mac) = a.mac {
            m.mac = mac;
        }
        m.flags = flags;
        let now_up = flags & IFF_UP != 0;
        match (was_up, now_up) {
            (false, true) => self.on_up(index),
            (true, false) => self.on_down(index),
            _ => {}
        }
        Ok(())
    }

    fn delete(&mut self, index: u32, _req: &LinkMessage) -> Result<(), Errno> {
        let l = self.link(index).ok_or(Errno::NODEV)?;
        match l.kind {
            MemLinkKind::Loopback => Err(Errno::OPNOTSUPP),
            MemLinkKind::Veth { peer } => {
                self.forget_link(peer);
                self.forget_link(index);
                Ok(())
            }
            _ => {
                self.forget_link(index);
                Ok(())
            }
        }
    }
}
