//! The stack's behaviour through the server: the seed example (create a link, set
//! it up, add an address, delete it) and what the kernel derives.

use std::net::IpAddr;

use crate::nl::server::{MemStack, Server};
use crate::nl::{decode, nlinline, wire};

fn ok(s: &mut Server<MemStack>, req: &[u8]) {
    let r = s.process(req);
    let last = wire::split(r.last().expect("an answer")).unwrap()[0];
    assert_eq!(last.kind, wire::NLMSG_ERROR);
    assert_eq!(wire::error_code(last.payload).unwrap(), 0, "{req:?}");
}

fn routes(s: &MemStack) -> Vec<(u32, String, u8, u8)> {
    s.routes()
        .iter()
        .map(|r| (r.table, format!("{}/{}", r.dst, r.prefix), r.kind, r.scope))
        .collect()
}

#[test]
fn seed_example_and_derived_routes() {
    let mut s = Server::new(MemStack::new(), 1);
    ok(
        &mut s,
        &nlinline::build_iplink_add(1, Some("vde0"), 0, "dummy", &[]).unwrap(),
    );
    let i = s.stack().links()[1].index;
    assert_eq!((i, s.stack().links()[1].name.as_str()), (2, "vde0"));
    ok(&mut s, &nlinline::build_linksetupdown(2, i, true));
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let IpAddr::V4(a4) = a else { unreachable!() };
    ok(
        &mut s,
        &nlinline::build_ipaddr(3, nlinline::Op::Add, libc::AF_INET, &a4.octets(), 24, i).unwrap(),
    );
    let r = routes(s.stack());
    assert!(r.contains(&(254, "10.0.0.0/24".into(), 1, 253)), "{r:?}");
    assert!(r.contains(&(255, "10.0.0.1/32".into(), 2, 254)), "{r:?}");
    assert!(r.contains(&(255, "10.0.0.255/32".into(), 3, 253)), "{r:?}");
    // Down: only the local route stays; the address stays.
    ok(&mut s, &nlinline::build_linksetupdown(4, i, false));
    assert_eq!(routes(s.stack()), vec![(255, "10.0.0.1/32".into(), 2, 254)]);
    ok(&mut s, &nlinline::build_linksetupdown(5, i, true));
    assert_eq!(routes(s.stack()).len(), 3);
    // Deleting the link takes addresses and routes with it.
    ok(&mut s, &nlinline::build_iplink_del(6, None, i).unwrap());
    assert!(s.stack().addrs().is_empty() && s.stack().routes().is_empty());
}

#[test]
fn lo_up_and_veth_carrier() {
    let mut s = Server::new(MemStack::new(), 1);
    ok(&mut s, &nlinline::build_linksetupdown(1, 1, true));
    let r = routes(s.stack());
    assert!(r.contains(&(255, "127.0.0.0/8".into(), 2, 254)), "{r:?}");
    assert_eq!(s.stack().addrs().len(), 2, "127.0.0.1/8 and ::1");
    let veth = crate::nl::build_link_add(2, "va", &crate::nl::LinkKind::Veth { peer: "vb".into() })
        .unwrap();
    ok(&mut s, &veth);
    let names: Vec<(u32, &str)> = s
        .stack()
        .links()
        .iter()
        .map(|l| (l.index, l.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [(1, "lo"), (2, "vb"), (3, "va")],
        "the peer is made first"
    );
    ok(&mut s, &nlinline::build_linksetupdown(3, 3, true));
    let get = |s: &mut Server<MemStack>, i| {
        let r = s.process(&nlinline::build_linkgetaddr(9, i));
        decode::link(wire::split(&r[0]).unwrap()[0].payload).unwrap()
    };
    let va = get(&mut s, 3);
    assert_eq!(
        (va.operstate, va.flags & 0x10040, va.parent),
        (Some(3), 0, Some(2))
    );
    ok(&mut s, &nlinline::build_linksetupdown(4, 2, true));
    let va = get(&mut s, 3);
    assert_eq!((va.operstate, va.flags & 0x10040), (Some(6), 0x10040));
    ok(
        &mut s,
        &nlinline::build_iplink_del(5, Some("vb"), 0).unwrap(),
    );
    assert_eq!(s.stack().links().len(), 1);
}
