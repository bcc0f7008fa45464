//! The state machine against a scripted server.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::client::*;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn decode(o: &Outgoing) -> Message {
    Message::decode(&mut Decoder::new(&o.bytes)).unwrap()
}

/// A server's reply of `kind` to `req`.
fn reply(req: &Message, kind: MessageType, lease: u32, t1: Option<u32>) -> Vec<u8> {
    let z = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(req.xid(), z, ADDR, SERVER, z, &req.chaddr()[..6]);
    m.set_opcode(Opcode::BootReply);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(SERVER));
    o.insert(DhcpOption::AddressLeaseTime(lease));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    o.insert(DhcpOption::Router(vec![SERVER]));
    o.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
        10, 0, 2, 3,
    )]));
    if let Some(t1) = t1 {
        o.insert(DhcpOption::Renewal(t1));
    }
    let mut b = Vec::new();
    m.encode(&mut Encoder::new(&mut b)).unwrap();
    b
}

fn kind(m: &Message) -> MessageType {
    m.opts().msg_type().unwrap()
}

/// Runs the client to BOUND with a 600 s lease at t = 0.
fn bound() -> (Client, Lease) {
    let mut c = Client::new(MAC, 77, Some("box".into()), s(0));
    let (out, _) = c.poll(s(0));
    let disc = decode(&out.unwrap());
    assert_eq!(
        c.handle(&reply(&disc, MessageType::Offer, 600, None), s(0)),
        None
    );
    let (out, _) = c.poll(s(0));
    let req = decode(&out.unwrap());
    let ev = c.handle(&reply(&req, MessageType::Ack, 600, None), s(0));
    let Some(Event::Bound(lease)) = ev else {
        panic!("{ev:?}")
    };
    (c, lease)
}

#[test]
fn discover_offer_request_ack() {
    let mut c = Client::new(MAC, 77, Some("box".into()), s(0));
    assert_eq!(c.state(), State::Selecting);
    let (out, ev) = c.poll(s(0));
    assert_eq!(ev, None);
    let out = out.unwrap();
    assert_eq!(out.to, Ipv4Addr::BROADCAST);
    let disc = decode(&out);
    assert_eq!(kind(&disc), MessageType::Discover);
    assert!(disc.flags().broadcast(), "replies must come broadcast");
    assert_eq!(&disc.chaddr()[..6], &MAC);
    assert!(
        matches!(disc.opts().get(OptionCode::Hostname), Some(DhcpOption::Hostname(h)) if h == "box")
    );
    // Nothing more until the retransmission.
    assert_eq!(c.poll(s(0)), (None, None));
    assert_eq!(c.next_wake(), Some(s(1)));
    c.handle(&reply(&disc, MessageType::Offer, 600, None), s(0));
    assert_eq!(c.state(), State::Requesting);
    let (out, _) = c.poll(s(0));
    let req = decode(&out.unwrap());
    assert_eq!(kind(&req), MessageType::Request);
    assert!(
        matches!(req.opts().get(OptionCode::RequestedIpAddress), Some(DhcpOption::RequestedIpAddress(a)) if *a == ADDR)
    );
    assert!(
        matches!(req.opts().get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(a)) if *a == SERVER)
    );
    let Some(Event::Bound(l)) = c.handle(&reply(&req, MessageType::Ack, 600, None), s(0)) else {
        panic!("not bound")
    };
    assert_eq!(
        l,
        Lease {
            addr: ADDR,
            prefix: 24,
            router: Some(SERVER),
            dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
            domain: None,
            server: SERVER,
            lease_secs: 600,
            t1: 300,
            t2: 525,
        }
    );
    assert_eq!(c.state(), State::Bound);
    assert_eq!(c.next_wake(), Some(s(300)));
}

#[test]
fn replies_to_others_and_garbage_are_ignored() {
    let mut c = Client::new(MAC, 77, None, s(0));
    let (out, _) = c.poll(s(0));
    let disc = decode(&out.unwrap());
    let mut other = disc.clone();
    other.set_xid(78);
    assert_eq!(
        c.handle(&reply(&other, MessageType::Offer, 600, None), s(0)),
        None
    );
    assert_eq!(c.handle(b"not dhcp", s(0)), None);
    assert_eq!(c.handle(&[], s(0)), None);
    // Our own request looped back (a BootRequest) is not a reply.
    assert_eq!(c.handle(&out_bytes(&disc), s(0)), None);
    assert_eq!(c.state(), State::Selecting);
}

fn out_bytes(m: &Message) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut Encoder::new(&mut b)).unwrap();
    b
}

#[test]
fn retransmissions_back_off() {
    let mut c = Client::new(MAC, 1, None, s(0));
    let mut sent = Vec::new();
    for t in 0..60 {
        if c.poll(s(t)).0.is_some() {
            sent.push(t);
        }
    }
    assert_eq!(sent, vec![0, 1, 3, 7, 15, 31, 47]);
}

#[test]
fn renew_at_t1_rebind_at_t2_expire_at_the_end() {
    let (mut c, lease) = bound();
    assert_eq!(c.poll(s(299)), (None, None));
    let (out, _) = c.poll(s(300));
    let out = out.unwrap();
    assert_eq!(out.to, SERVER, "renewing is unicast to the server");
    let req = decode(&out);
    assert_eq!(req.ciaddr(), ADDR);
    assert!(req.opts().get(OptionCode::RequestedIpAddress).is_none());
    assert_eq!(c.state(), State::Renewing);
    // No answer: retries at half the time to T2, then rebinding broadcasts.
    let mut t = s(300);
    while c.state() == State::Renewing {
        t = c.next_wake().unwrap();
        c.poll(t);
    }
    assert_eq!(c.state(), State::Rebinding);
    assert!(t >= s(525));
    // An ACK while rebinding renews (and rebases the timers).
    let (out, _) = c.poll(c.next_wake().unwrap());
    let req = decode(&out.unwrap());
    let ev = c.handle(&reply(&req, MessageType::Ack, 600, Some(100)), s(550));
    assert_eq!(
        ev,
        Some(Event::Renewed(Lease {
            t1: 100,
            ..lease.clone()
        }))
    );
    assert_eq!(c.next_wake(), Some(s(650)));
    // Unanswered to the end: expired, and discovery starts over.
    let mut last = None;
    for t in 650..1200 {
        if let (_, Some(e)) = c.poll(s(t)) {
            last = Some((t, e));
            break;
        }
    }
    let (t, e) = last.unwrap();
    assert_eq!(t, 1150);
    assert!(matches!(e, Event::Expired(l) if l.addr == ADDR));
    assert_eq!(c.state(), State::Selecting);
    assert!(c.lease().is_none());
}

#[test]
fn a_nak_starts_over_and_release_gives_the_lease_back() {
    let (mut c, _) = bound();
    let (out, _) = c.poll(s(300));
    let req = decode(&out.unwrap());
    let ev = c.handle(&reply(&req, MessageType::Nak, 0, None), s(301));
    assert!(matches!(ev, Some(Event::Nak(Some(l))) if l.addr == ADDR));
    assert_eq!(c.state(), State::Selecting);

    let (mut c, _) = bound();
    let out = c.release().unwrap();
    assert_eq!(out.to, SERVER);
    let m = decode(&out);
    assert_eq!(kind(&m), MessageType::Release);
    assert_eq!(m.ciaddr(), ADDR);
    assert_eq!(c.state(), State::Released);
    assert_eq!(c.next_wake(), None);
    assert_eq!(c.release(), None, "nothing left to give back");
}

#[test]
fn a_lease_held_elsewhere_is_renewed() {
    let (_, lease) = bound();
    let mut c = Client::with_lease(MAC, 5, lease, s(1000));
    assert_eq!(c.state(), State::Bound);
    assert_eq!(c.next_wake(), Some(s(1300)));
    let (out, _) = c.poll(s(1300));
    assert_eq!(out.unwrap().to, SERVER);
}
