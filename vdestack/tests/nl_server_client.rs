//! Our netlink client, unchanged, against the netlink server and its in-memory
//! stack, over a socket pair (`nl::server::spawn_socket`) and in process
//! (`NlClient::from_dialog`: no socket, no thread): the calls that
//! `tests/nl_client.rs` makes against the kernel, with the kernel's answers and
//! errors. No namespace needed: nothing here touches the host's network.

#[allow(dead_code)]
#[path = "common/nl.rs"]
mod nl_helpers;

use nl_helpers::*;
use std::net::IpAddr;

use vdestack::nl::nlinline::{nl_addrdata2prefix, nl_routedata2prefix, IFINDEX_ASK};
use vdestack::nl::server::{spawn_socket, MemStack, Server};
use vdestack::nl::{AddrSpec, LinkKind, NlClient, RouteSpec};

const AF_INET: i32 = libc::AF_INET;
const AF_INET6: i32 = libc::AF_INET6;

/// The same fresh stack's server twice: over a socket pair served by a thread,
/// and in this thread (no socket, no thread).
fn clients() -> [NlClient; 2] {
    let (fd, _thread) = spawn_socket(Server::new(MemStack::new(), 0)).unwrap();
    [
        NlClient::from_fd(fd),
        NlClient::from_dialog(Server::new(MemStack::new(), 0)),
    ]
}

#[test]
fn names_and_indexes() {
    for c in clients() {
        assert_eq!(c.link_index("lo").unwrap(), 1);
        assert_eq!(c.link_name(1).unwrap(), "lo");
        assert_eq!(errno(c.link_index("nosuchlink")), libc::ENODEV);
        assert_eq!(errno(c.link_name(4242)), libc::ENODEV);
        let (a, b) = veth_up(&c);
        assert_eq!((a, b), (3, 2), "the kernel registers a veth's peer first");
        let mut all = c.link_names().unwrap();
        all.sort();
        assert_eq!(
            all,
            vec![(1, "lo".into()), (2, "vb".into()), (3, "va".into())]
        );
    }
}

#[test]
fn veth_bridge_updown_mtu_mac() {
    for c in clients() {
        let (a, b) = veth_up(&c);
        let br = c.link_add("br0", &LinkKind::Bridge).unwrap();
        let l = c.link(a).unwrap();
        assert_eq!((l.name.as_str(), l.kind.as_deref()), ("va", Some("veth")));
        assert_eq!(l.parent, Some(b));
        assert!(l.is_up());
        assert_eq!((l.operstate_name(), l.mtu), ("UP", Some(1500)));
        assert_eq!(c.link(br).unwrap().kind.as_deref(), Some("bridge"));

        c.link_set_mtu(a, 1400).unwrap();
        let mac = [0x02, 0x76, 0x64, 0, 0, 0x11];
        c.link_set_mac(a, mac).unwrap();
        assert_eq!(c.link_mac(a).unwrap(), mac);
        assert_eq!(c.link(a).unwrap().mtu, Some(1400));

        c.link_set_up(a, false).unwrap();
        assert!(!c.link(a).unwrap().is_up());
        assert_eq!(c.link(b).unwrap().operstate_name(), "LOWERLAYERDOWN");

        assert_eq!(errno(c.link_set_up(4242, true)), libc::ENODEV);
        assert_eq!(errno(c.link_set_mtu(4242, 1400)), libc::ENODEV);
        assert_eq!(errno(c.link_mac(4242)), libc::ENODEV);
        assert_eq!(errno(c.link_add("br0", &LinkKind::Bridge)), libc::EEXIST);
        assert_eq!(errno(c.link_set_mtu(a, 10)), libc::EINVAL);
        assert_eq!(c.link(a).unwrap().mtu, Some(1400));
        // A dummy (this machine's kernel lacks it; the stack has it); kinds the stack
        // does not model are refused like a kernel without the module.
        c.link_add("dm0", &LinkKind::Dummy).unwrap();
        assert_eq!(
            errno(vdestack::nl::nlinline::iplink_add(
                &c,
                Some("x0"),
                0,
                "no-such-kind",
                &[]
            )),
            libc::EOPNOTSUPP
        );
        assert_eq!(
            errno(c.link_del(1)),
            libc::EOPNOTSUPP,
            "lo cannot be deleted"
        );

        c.link_del(br).unwrap();
        c.link_del_by_name("va").unwrap();
        assert_eq!(errno(c.link_del(br)), libc::ENODEV);
        let names: Vec<String> = c.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, vec!["lo", "dm0"], "deleting va took its peer vb too");
    }
}

#[test]
fn addresses() {
    for c in clients() {
        let (a, b) = veth_up(&c);
        c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        c.addr_add(&AddrSpec::new(a, v6("fd00::1"), 64).no_dad())
            .unwrap();
        c.addr_add(&AddrSpec::new(b, v4("10.9.0.2"), 24).scope(253))
            .unwrap();
        vdestack::nl::nlinline::ipaddr_add(
            &c,
            AF_INET6,
            &v6b("fd00::2"),
            nl_addrdata2prefix(64, AddrSpec::NODAD as u8, 0),
            b,
        )
        .unwrap();
        let ours = c.addrs().unwrap();
        let find = |ip: IpAddr| {
            ours.iter()
                .find(|x| x.addr == ip)
                .unwrap_or_else(|| panic!("{ip} missing in {ours:?}"))
        };
        assert_eq!(
            (find(v4("10.9.0.1")).index, find(v4("10.9.0.1")).prefix_len),
            (a, 24)
        );
        assert_eq!(find(v4("10.9.0.1")).label.as_deref(), Some("va"));
        assert_eq!(find(v4("10.9.0.2")).scope, 253);
        assert!(find(v6("fd00::1")).flags & AddrSpec::NODAD != 0);
        assert_eq!(find(v6("fd00::2")).index, b);

        let before = c.addrs().unwrap();
        assert_eq!(
            errno(c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24))),
            libc::EEXIST
        );
        assert_eq!(
            errno(c.addr_add(&AddrSpec::new(4242, v4("10.9.1.1"), 24))),
            libc::ENODEV
        );
        assert_eq!(
            errno(vdestack::nl::nlinline::ipaddr_add(
                &c,
                99,
                &[10, 9, 1, 1],
                24,
                a
            )),
            libc::EINVAL
        );
        assert_eq!(
            errno(c.addr_del(&AddrSpec::new(a, v4("10.9.7.7"), 24))),
            libc::EADDRNOTAVAIL
        );
        assert_eq!(
            c.addrs().unwrap(),
            before,
            "a failed request changed nothing"
        );

        c.addr_del(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        vdestack::nl::nlinline::ipaddr_del(&c, AF_INET6, &v6b("fd00::2"), 64, b).unwrap();
        let after = c.addrs().unwrap();
        assert!(!after
            .iter()
            .any(|x| x.addr == v4("10.9.0.1") || x.addr == v6("fd00::2")));
        assert!(after.iter().any(|x| x.addr == v6("fd00::1")));
    }
}

#[test]
fn routes() {
    for c in clients() {
        let (a, _) = veth_up(&c);
        c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        c.addr_add(&AddrSpec::new(a, v6("fd00::1"), 64).no_dad())
            .unwrap();
        c.route_add(&RouteSpec::default_v4().via(v4("10.9.0.254")))
            .unwrap();
        c.route_add(&RouteSpec::new(v4("10.10.0.0"), 16).dev(a))
            .unwrap();
        c.route_add(
            &RouteSpec::new(v4("10.11.0.0"), 16)
                .via(v4("10.9.0.253"))
                .dev(a)
                .metric(50),
        )
        .unwrap();
        c.route_add(&RouteSpec::new(v6("fd01::"), 64).via(v6("fd00::fe")))
            .unwrap();
        c.route_add(&RouteSpec::default_v6().via(v6("fe80::1")).dev(a))
            .unwrap();
        c.route_add(&RouteSpec::new(v4("10.12.0.0"), 16).dev(a).table(1000))
            .unwrap();
        vdestack::nl::nlinline::iproute_add(
            &c,
            AF_INET,
            Some(&[10, 13, 0, 0]),
            16,
            Some(&[10, 9, 0, 252]),
            0,
        )
        .unwrap();
        vdestack::nl::nlinline::iproute_add(
            &c,
            AF_INET,
            Some(&[10, 14, 0, 0]),
            nl_routedata2prefix(16, 6, 0),
            None,
            0,
        )
        .unwrap();

        let ours = c.routes().unwrap();
        let find = |dst: IpAddr, len: u8| {
            ours.iter()
                .find(|r| r.dst == dst && r.prefix_len == len && r.kind != 2 && r.table != 255)
                .unwrap_or_else(|| panic!("{dst}/{len} missing in {ours:?}"))
        };
        let d = find(v4("0.0.0.0"), 0);
        assert_eq!(
            (d.gateway, d.oif, d.table, d.protocol),
            (Some(v4("10.9.0.254")), Some(a), 254, 3)
        );
        assert_eq!(find(v4("10.10.0.0"), 16).oif, Some(a));
        assert_eq!(find(v4("10.11.0.0"), 16).metric, Some(50));
        assert_eq!(find(v6("fd01::"), 64).gateway, Some(v6("fd00::fe")));
        assert_eq!(find(v6("::"), 0).gateway, Some(v6("fe80::1")));
        assert_eq!(find(v4("10.12.0.0"), 16).table, 1000);
        assert_eq!(find(v4("10.13.0.0"), 16).gateway, Some(v4("10.9.0.252")));
        assert_eq!(find(v4("10.14.0.0"), 16).kind, 6);
        // The kernel's own: the connected prefix, with the address as source.
        assert_eq!(find(v4("10.9.0.0"), 24).protocol, 2);

        let before = c.routes().unwrap();
        assert_eq!(
            errno(c.route_add(&RouteSpec::new(v4("10.20.0.0"), 16).via(v4("192.168.77.1")))),
            libc::ENETUNREACH
        );
        assert_eq!(
            errno(c.route_add(&RouteSpec::default_v4().via(v4("10.9.0.254")))),
            libc::EEXIST
        );
        assert_eq!(
            errno(c.route_add(&RouteSpec::new(v4("10.21.0.0"), 16).dev(4242))),
            libc::ENODEV
        );
        assert_eq!(
            errno(c.route_add(&RouteSpec::new(v4("10.23.0.0"), 16).via(v6("fd00::fe")))),
            libc::EINVAL
        );
        assert_eq!(
            errno(c.route_del(&RouteSpec::new(v4("10.99.0.0"), 16).dev(a))),
            libc::ESRCH
        );
        assert_eq!(
            c.routes().unwrap(),
            before,
            "a failed request changed nothing"
        );

        c.route_del(&RouteSpec::default_v4().via(v4("10.9.0.254")))
            .unwrap();
        c.route_del(&RouteSpec::new(v6("fd01::"), 64).via(v6("fd00::fe")))
            .unwrap();
        vdestack::nl::nlinline::iproute_del(
            &c,
            AF_INET,
            Some(&[10, 13, 0, 0]),
            16,
            Some(&[10, 9, 0, 252]),
            0,
        )
        .unwrap();
        let after = c.routes().unwrap();
        assert!(!after
            .iter()
            .any(|r| r.dst == v4("10.13.0.0") || r.dst == v6("fd01::")));
        assert!(!after.iter().any(|r| r.dst == v4("0.0.0.0")));
    }
}

#[test]
fn nlinline_link_calls() {
    for c in clients() {
        // A chosen index, and no name: the stack names it.
        vdestack::nl::nlinline::iplink_add(&c, None, 4000, "bridge", &[]).unwrap();
        assert_eq!(c.link(4000).unwrap().kind.as_deref(), Some("bridge"));
        assert_eq!(c.link(4000).unwrap().name, "bridge0");
        // Asking for the new index (libnlq's extension; Linux refuses it with ERANGE):
        // the ACK carries it.
        let asked = vdestack::nl::nlinline::iplink_add(&c, Some("br9"), IFINDEX_ASK, "bridge", &[])
            .unwrap();
        assert_eq!(c.link_index("br9").unwrap() as i32, asked);
        c.link_del_by_name("br9").unwrap();
        vdestack::nl::nlinline::iplink_del(&c, None, 4000).unwrap();
        assert_eq!(
            errno(vdestack::nl::nlinline::iplink_del(&c, None, 4000)),
            libc::ENODEV
        );
    }
}

#[test]
fn the_thread_ends_with_the_client() {
    let (fd, thread) = spawn_socket(Server::new(MemStack::new(), 0)).unwrap();
    let c = NlClient::from_fd(fd);
    c.link_add("d0", &LinkKind::Dummy).unwrap();
    drop(c);
    let server = thread.join().unwrap();
    assert_eq!(server.stack().links().len(), 2);
}
