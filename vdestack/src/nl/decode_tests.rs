//! Decoding constructed replies, malformed ones included, and the dialog over a
//! fake peer (a datagram socket pair) that answers with canned datagrams.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use netlink_packet_core::Emitable;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteHeader, RouteMessage};
use netlink_packet_route::AddressFamily;
use rustix::net::{socketpair, AddressFamily as Af, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::*;
use crate::error::errno_of;
use crate::nl::wire::{self, Builder, NLM_F_MULTI, RTM_NEWLINK};
use crate::nl::NlClient;

fn emit(m: &impl Emitable) -> Vec<u8> {
    let mut b = vec![0u8; m.buffer_len()];
    m.emit(&mut b);
    b
}

fn a_link() -> Vec<u8> {
    let mut m = LinkMessage::default();
    m.header.index = 7;
    m.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
    m.attributes.push(LinkAttribute::IfName("veth0".into()));
    m.attributes.push(LinkAttribute::Mtu(1400));
    m.attributes
        .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 9]));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Veth,
        )]));
    let mut bytes = emit(&m);
    // An attribute type no one knows (0x3ff0): ignored.
    bytes.extend_from_slice(&[8, 0, 0xf0, 0x3f, 1, 2, 3, 4]);
    bytes
}

#[test]
fn decodes_a_link_and_ignores_unknown_attributes() {
    let l = link(&a_link()).unwrap();
    assert_eq!(l.index, 7);
    assert_eq!(l.name, "veth0");
    assert!(l.is_up());
    assert_eq!(l.mtu, Some(1400));
    assert_eq!(l.mac.as_deref(), Some(&[2, 0, 0, 0, 0, 9][..]));
    assert_eq!(l.kind.as_deref(), Some("veth"));
    assert_eq!(link_index(&a_link()).unwrap(), 7);
}

#[test]
fn decodes_an_address_and_a_route() {
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.prefix_len = 24;
    a.header.index = 3;
    a.attributes
        .push(AddressAttribute::Address(Ipv4Addr::new(10, 0, 0, 9).into()));
    a.attributes
        .push(AddressAttribute::Local(Ipv4Addr::new(10, 0, 0, 1).into()));
    let got = addr(&emit(&a)).unwrap();
    assert_eq!(got.addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!((got.prefix_len, got.index), (24, 3));

    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.destination_prefix_length = 16;
    r.header.table = RouteHeader::RT_TABLE_MAIN;
    r.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(
            Ipv4Addr::new(10, 1, 0, 0),
        )));
    r.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
            10, 0, 0, 254,
        ))));
    r.attributes.push(RouteAttribute::Oif(3));
    let got = route(&emit(&r)).unwrap().unwrap();
    assert_eq!(got.dst, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)));
    assert_eq!(got.gateway, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))));
    assert_eq!((got.prefix_len, got.oif, got.table), (16, Some(3), 254));
}

/// The `serde` feature: each decoded type goes to JSON and back unchanged.
#[cfg(feature = "serde")]
#[test]
fn decoded_objects_round_trip_through_serde() {
    let l = link(&a_link()).unwrap();
    let json = serde_json::to_string(&l).unwrap();
    assert!(json.contains("\"name\":"), "{json}");
    assert_eq!(serde_json::from_str::<Link>(&json).unwrap(), l);
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet6;
    a.header.prefix_len = 64;
    a.attributes.push(AddressAttribute::Address(
        "fc00::1".parse::<std::net::Ipv6Addr>().unwrap().into(),
    ));
    let a = addr(&emit(&a)).unwrap();
    let back: Addr = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
    assert_eq!(back, a);
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.table = RouteHeader::RT_TABLE_MAIN;
    let r = route(&emit(&r)).unwrap().unwrap();
    let back: Route = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

/// Every truncation and many corruptions of valid replies: an error or a value,
/// never a panic.
#[test]
fn malformed_replies_are_errors_not_panics() {
    let good = a_link();
    for n in 0..good.len() {
        let _ = link(&good[..n]);
        let _ = addr(&good[..n]);
        let _ = route(&good[..n]);
        let _ = wire::split(&good[..n]);
    }
    assert!(link(&good[..10]).is_err());
    let e = link(&good[..10]).unwrap_err();
    assert_eq!(errno_of(&e), libc::EPROTO);
    // Corrupt each byte in turn with a few values.
    for i in 0..good.len() {
        for v in [0u8, 1, 3, 0x7f, 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = link(&b);
            let _ = addr(&b);
            let _ = route(&b);
        }
    }
    // A wrong attribute length inside: the crate reports it, we pass an error on.
    let mut b = good.clone();
    b[16] = 0xff;
    assert!(link(&b).is_err());
}

fn fake_pair() -> (NlClient, OwnedFd) {
    let (a, b) = socketpair(Af::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC, None).unwrap();
    (NlClient::from_fd(a), b)
}

/// A canned message: type, flags, seq (negative: a stale one), payload.
type Canned = (u16, u16, i64, Vec<u8>);

fn reply(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    Builder::new(kind, flags, seq).raw(payload).finish()
}

/// Answers the next request on `peer` with `datagrams`, where seq 0 means "the
/// request's sequence number".
fn serve(peer: OwnedFd, datagrams: Vec<Vec<Canned>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut req = [0u8; 4096];
        let (n, _) = rustix::net::recv(&peer, &mut req[..], RecvFlags::empty()).unwrap();
        let seq = u32::from_ne_bytes(req[8..12].try_into().unwrap());
        assert!(n >= 16);
        for d in datagrams {
            let mut out = Vec::new();
            for (kind, flags, s, payload) in d {
                let s = if s < 0 { seq.wrapping_add(7) } else { seq };
                out.extend(reply(kind, flags, s, &payload));
            }
            rustix::net::send(&peer, &out, SendFlags::empty()).unwrap();
        }
    })
}

#[test]
fn dump_across_datagrams_skips_stale_messages() {
    let (c, peer) = fake_pair();
    let l = a_link();
    let m = NLM_F_MULTI;
    let t = serve(
        peer,
        vec![
            vec![
                (RTM_NEWLINK, m, -1, l.clone()),
                (RTM_NEWLINK, m, 0, l.clone()),
            ],
            vec![(RTM_NEWLINK, m, 0, l.clone())],
            vec![(wire::NLMSG_DONE, m, 0, vec![0; 4])],
        ],
    );
    let links = c.links().unwrap();
    t.join().unwrap();
    assert_eq!(
        links.len(),
        2,
        "the stale message is skipped, both parts kept"
    );
}

#[test]
fn kernel_errors_keep_their_errno() {
    let (c, peer) = fake_pair();
    let t = serve(
        peer,
        vec![vec![(
            wire::NLMSG_ERROR,
            0,
            0,
            (-libc::EEXIST).to_ne_bytes().to_vec(),
        )]],
    );
    let e = c.link_set_up(3, true).unwrap_err();
    t.join().unwrap();
    assert_eq!(e.raw_os_error().or(Some(errno_of(&e))), Some(libc::EEXIST));
    assert!(e.to_string().contains("set link 3 up"), "{e}");
}

#[test]
fn truncated_replies_are_errors() {
    let (c, peer) = fake_pair();
    let t = std::thread::spawn(move || {
        let mut req = [0u8; 256];
        rustix::net::recv(&peer, &mut req[..], RecvFlags::empty()).unwrap();
        // A header claiming 100 bytes in a 20-byte datagram.
        let mut r = reply(wire::NLMSG_ERROR, 0, 1, &[0; 4]);
        r[0] = 100;
        rustix::net::send(&peer, &r, SendFlags::empty()).unwrap();
        peer
    });
    let e = c.link_set_mtu(3, 1400).unwrap_err();
    drop(t.join().unwrap());
    assert_eq!(errno_of(&e), libc::EPROTO);

    let (c, peer) = fake_pair();
    let t = serve(peer, vec![vec![(wire::NLMSG_ERROR, 0, 0, vec![1, 2])]]);
    let e = c.link_set_mtu(3, 1400).unwrap_err();
    t.join().unwrap();
    assert_eq!(errno_of(&e), libc::EPROTO);

    // A NEWLINK reply too short for ifinfomsg.
    let (c, peer) = fake_pair();
    let t = serve(peer, vec![vec![(RTM_NEWLINK, 0, 0, vec![0; 6])]]);
    let e = c.link_mac(3).unwrap_err();
    t.join().unwrap();
    assert_eq!(errno_of(&e), libc::EPROTO);
}

#[test]
fn a_silent_peer_times_out() {
    let (mut c, _peer) = fake_pair();
    c.set_timeout(Some(std::time::Duration::from_millis(100)));
    let e = c.links().unwrap_err();
    assert_eq!(errno_of(&e), libc::ETIMEDOUT);
}

#[test]
fn an_interrupted_dump_is_retried() {
    let (c, peer) = fake_pair();
    let l = a_link();
    let m = NLM_F_MULTI;
    let intr = m | wire::NLM_F_DUMP_INTR;
    let t = std::thread::spawn(move || {
        let first = serve(
            peer.try_clone().unwrap(),
            vec![vec![
                (RTM_NEWLINK, intr, 0, l.clone()),
                (wire::NLMSG_DONE, intr, 0, vec![0; 4]),
            ]],
        );
        first.join().unwrap();
        let second = serve(
            peer,
            vec![vec![
                (RTM_NEWLINK, m, 0, l.clone()),
                (RTM_NEWLINK, m, 0, l),
                (wire::NLMSG_DONE, m, 0, vec![0; 4]),
            ]],
        );
        second.join().unwrap();
    });
    let links = c.links().unwrap();
    t.join().unwrap();
    assert_eq!(links.len(), 2, "the answer of the second, clean dump");
}

/// Bad input is refused before anything reaches the peer.
#[test]
fn bad_input_sends_nothing() {
    use crate::nl::{AddrSpec, LinkKind, RouteSpec};
    let (c, peer) = fake_pair();
    let a4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let einval = |e: std::io::Error| assert_eq!(errno_of(&e), libc::EINVAL, "{e}");
    einval(c.addr_add(&AddrSpec::new(1, a4, 33)).unwrap_err());
    einval(c.route_add(&RouteSpec::new(a4, 33)).unwrap_err());
    einval(c.link_index("sixteen-bytes-xx").unwrap_err());
    einval(
        c.link_add(
            "ok",
            &LinkKind::Veth {
                peer: "sixteen-bytes-xx".into(),
            },
        )
        .unwrap_err(),
    );
    einval(crate::nl::nlinline::ipaddr_add(&c, libc::AF_INET, &[1, 2, 3], 8, 1).unwrap_err());
    einval(c.request(&[1, 2, 3]).unwrap_err());
    let mut buf = [0u8; 64];
    let r = rustix::net::recv(&peer, &mut buf[..], RecvFlags::DONTWAIT);
    assert_eq!(
        r.err(),
        Some(rustix::io::Errno::AGAIN),
        "something was sent"
    );
}
