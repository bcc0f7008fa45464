//! The netlink client against the real kernel, in a private network namespace:
//! every call on veth, bridge, macvlan and vxlan links, read back through our own
//! dumps and through iproute2's JSON; the kernel's errors, with nothing half-applied.

mod common;

use std::io;
use std::net::IpAddr;
use std::process::Command;

use common::nl::*;
use common::*;
use serde_json::Value;
use vdestack::error::errno_of;
use vdestack::nl::nlinline::{nl_addrdata2prefix, nl_routedata2prefix, IplinkData, IFINDEX_ASK};
use vdestack::nl::{AddrSpec, LinkKind, MacvlanMode, NlClient, RouteSpec, VxlanSpec};

const AF_INET: i32 = libc::AF_INET;
const AF_INET6: i32 = libc::AF_INET6;

fn ip_link(name: &str) -> Value {
    ipj(&format!("-d link show dev {name}"))[0].clone()
}

sandbox_test! {
    fn names_and_indexes() {
        let c = NlClient::new().unwrap();
        assert_eq!(c.link_index("lo").unwrap(), 1);
        assert_eq!(c.link_name(1).unwrap(), "lo");
        assert_eq!(errno(c.link_index("nosuchlink")), libc::ENODEV);
        assert_eq!(errno(c.link_name(4242)), libc::ENODEV);
        assert_eq!(errno(c.link_index("a-name-far-too-long")), libc::EINVAL);
        let (a, b) = veth_up(&c);
        let mut all = c.link_names().unwrap();
        all.sort();
        let mut want = vec![(1, "lo".to_string()), (a, "va".into()), (b, "vb".into())];
        want.sort();
        assert_eq!(all, want);
    }
}

sandbox_test! {
    fn veth_bridge_updown_mtu_mac() {
        let c = NlClient::new().unwrap();
        let (a, b) = veth_up(&c);
        let br = c.link_add("br0", &LinkKind::Bridge).unwrap();
        let l = c.link(a).unwrap();
        assert_eq!((l.name.as_str(), l.kind.as_deref()), ("va", Some("veth")));
        assert_eq!(l.parent, Some(b), "a veth's IFLA_LINK is its peer");
        assert!(l.is_up());
        assert_eq!(c.link(br).unwrap().kind.as_deref(), Some("bridge"));
        assert_eq!(ip_link("br0")["linkinfo"]["info_kind"], "bridge");
        assert_eq!(ip_link("vb")["linkinfo"]["info_kind"], "veth");

        // MTU and MAC, read back by us and by iproute2.
        c.link_set_mtu(a, 1400).unwrap();
        let mac = [0x02, 0x76, 0x64, 0, 0, 0x11];
        c.link_set_mac(a, mac).unwrap();
        assert_eq!(c.link_mac(a).unwrap(), mac);
        let l = c.link(a).unwrap();
        assert_eq!(l.mtu, Some(1400));
        assert_eq!(l.mac.as_deref(), Some(&mac[..]));
        let j = ip_link("va");
        assert_eq!(j["mtu"], 1400);
        assert_eq!(j["address"], "02:76:64:00:00:11");
        assert!(j["flags"].as_array().unwrap().iter().any(|f| f == "UP"));

        // Down again.
        c.link_set_up(a, false).unwrap();
        assert!(!c.link(a).unwrap().is_up());
        assert!(!ip_link("va")["flags"].as_array().unwrap().iter().any(|f| f == "UP"));

        // Errors: unknown link, duplicate name, bad MTU; nothing changed after them.
        assert_eq!(errno(c.link_set_up(4242, true)), libc::ENODEV);
        assert_eq!(errno(c.link_set_mtu(4242, 1400)), libc::ENODEV);
        assert_eq!(errno(c.link_mac(4242)), libc::ENODEV);
        assert_eq!(errno(c.link_add("br0", &LinkKind::Bridge)), libc::EEXIST);
        assert_eq!(errno(c.link_set_mtu(a, 10)), libc::EINVAL);
        assert_eq!(c.link(a).unwrap().mtu, Some(1400));
        assert_eq!(errno(c.link_add("x", &LinkKind::Veth { peer: "sixteen-bytes-xx".into() })), libc::EINVAL);
        assert_eq!(errno(c.link_index("x")), libc::ENODEV);
        let e = c.link_add("br0", &LinkKind::Bridge).unwrap_err();
        assert!(e.to_string().contains("add link br0"), "{e}");

        // Delete by index and by name.
        c.link_del(br).unwrap();
        c.link_del_by_name("va").unwrap();
        assert_eq!(errno(c.link_del(br)), libc::ENODEV);
        let names: Vec<String> = c.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, vec!["lo"], "deleting va took its peer vb too");
    }
}

sandbox_test! {
    fn macvlan_and_vxlan() {
        let c = NlClient::new().unwrap();
        let (a, _) = veth_up(&c);
        let mv = c.link_add("mv0", &LinkKind::Macvlan { parent: a, mode: MacvlanMode::Bridge }).unwrap();
        let l = c.link(mv).unwrap();
        assert_eq!((l.kind.as_deref(), l.parent), (Some("macvlan"), Some(a)));
        let j = ip_link("mv0");
        assert_eq!(j["linkinfo"]["info_kind"], "macvlan");
        assert_eq!(j["linkinfo"]["info_data"]["mode"], "bridge");
        assert_eq!(j["link"], "va");

        let mut spec = VxlanSpec::new(42);
        spec.group = Some(v4("239.1.1.42"));
        spec.local = Some(v4("10.9.0.1"));
        spec.dstport = Some(4789);
        spec.dev = Some(a);
        let vx = c.link_add("vx0", &LinkKind::Vxlan(spec)).unwrap();
        assert_eq!(c.link(vx).unwrap().kind.as_deref(), Some("vxlan"));
        let d = &ip_link("vx0")["linkinfo"]["info_data"];
        assert_eq!(d["id"], 42);
        assert_eq!(d["group"], "239.1.1.42");
        assert_eq!(d["local"], "10.9.0.1");
        assert_eq!(d["port"], 4789);
        assert_eq!(d["link"], "va");

        // A unicast remote over IPv6.
        let mut spec = VxlanSpec::new(43);
        spec.group = Some(v6("fd00::2"));
        let _ = c.link_add("vx1", &LinkKind::Vxlan(spec)).unwrap();
        let d = &ip_link("vx1")["linkinfo"]["info_data"];
        assert_eq!((d["id"].clone(), d["remote6"].clone()), (Value::from(43), Value::from("fd00::2")));

        // Errors: a macvlan on a link that does not exist; a VNI over 24 bits.
        assert_eq!(errno(c.link_add("mv1", &LinkKind::Macvlan { parent: 4242, mode: MacvlanMode::Vepa })), libc::ENODEV);
        assert_eq!(errno(c.link_add("vx2", &LinkKind::Vxlan(VxlanSpec::new(1 << 24)))), libc::EINVAL);
        assert_eq!(errno(c.link_index("mv1")), libc::ENODEV);
    }
}

// Kinds this kernel may lack (dummy, 802.1Q vlan): the kernel's refusal is a
// clean error; where the module exists, the link is made.
sandbox_test! {
    fn dummy_and_vlan_where_the_kernel_has_them() {
        const T: &str = "dummy_and_vlan_where_the_kernel_has_them";
        let c = NlClient::new().unwrap();
        let (a, _) = veth_up(&c);
        let missing = |e: &io::Error| matches!(errno_of(e), libc::EOPNOTSUPP | libc::ENOENT | libc::EAFNOSUPPORT);
        match c.link_add("dm0", &LinkKind::Dummy) {
            Ok(i) => assert_eq!(c.link(i).unwrap().kind.as_deref(), Some("dummy")),
            Err(e) if missing(&e) => skip(T, &format!("this kernel has no dummy links ({e})")),
            Err(e) => panic!("dummy: {e}"),
        }
        match c.link_add("va.7", &LinkKind::Vlan { parent: a, id: 7 }) {
            Ok(i) => {
                assert_eq!(c.link(i).unwrap().kind.as_deref(), Some("vlan"));
                assert_eq!(ip_link("va.7")["linkinfo"]["info_data"]["id"], 7);
            }
            Err(e) if missing(&e) => skip(T, &format!("this kernel has no 802.1Q vlans ({e})")),
            Err(e) => panic!("vlan: {e}"),
        }
        assert_eq!(errno(c.link_add("va.9", &LinkKind::Vlan { parent: a, id: 5000 })), libc::EINVAL);
    }
}

fn has_addr(j: &Value, name: &str, local: &str, prefix: u64) -> bool {
    j.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"] == name)
        .any(|l| {
            l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["local"] == local && a["prefixlen"] == prefix)
        })
}

sandbox_test! {
    fn addresses() {
        let c = NlClient::new().unwrap();
        let (a, b) = veth_up(&c);
        c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        c.addr_add(&AddrSpec::new(a, v6("fd00::1"), 64).no_dad()).unwrap();
        c.addr_add(&AddrSpec::new(b, v4("10.9.0.2"), 24).scope(253)).unwrap();
        // nlinline's form, with the 0x70 magic carrying IFA_F_NODAD.
        vdestack::nl::nlinline::ipaddr_add(&c, AF_INET6, &v6b("fd00::2"), nl_addrdata2prefix(64, AddrSpec::NODAD as u8, 0), b).unwrap();

        let ours = c.addrs().unwrap();
        let find = |ip: IpAddr| ours.iter().find(|x| x.addr == ip).unwrap_or_else(|| panic!("{ip} missing in {ours:?}"));
        assert_eq!((find(v4("10.9.0.1")).index, find(v4("10.9.0.1")).prefix_len), (a, 24));
        assert_eq!(find(v4("10.9.0.2")).scope, 253);
        assert!(find(v6("fd00::1")).flags & AddrSpec::NODAD != 0);
        assert!(find(v6("fd00::2")).flags & AddrSpec::NODAD != 0);
        assert_eq!(find(v6("fd00::2")).index, b);
        let j = ipj("addr show");
        assert!(has_addr(&j, "va", "10.9.0.1", 24));
        assert!(has_addr(&j, "va", "fd00::1", 64));
        assert!(has_addr(&j, "vb", "10.9.0.2", 24));
        assert!(has_addr(&j, "vb", "fd00::2", 64));
        let vb = j.as_array().unwrap().iter().find(|l| l["ifname"] == "vb").unwrap();
        let a2 = vb["addr_info"].as_array().unwrap().iter().find(|x| x["local"] == "10.9.0.2").unwrap();
        assert_eq!(a2["scope"], "link");

        // Errors, each read back: duplicate, unknown link, bad prefix (not sent), bad family.
        let before = c.addrs().unwrap();
        assert_eq!(errno(c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24))), libc::EEXIST);
        assert_eq!(errno(c.addr_add(&AddrSpec::new(4242, v4("10.9.1.1"), 24))), libc::ENODEV);
        assert_eq!(errno(c.addr_add(&AddrSpec::new(a, v4("10.9.1.1"), 33))), libc::EINVAL);
        assert_eq!(errno(c.addr_add(&AddrSpec::new(a, v6("fd00::9"), 129))), libc::EINVAL);
        assert_eq!(errno(vdestack::nl::nlinline::ipaddr_add(&c, 99, &[10, 9, 1, 1], 24, a)), libc::EINVAL);
        assert_eq!(errno(c.addr_del(&AddrSpec::new(a, v4("10.9.7.7"), 24))), libc::EADDRNOTAVAIL);
        assert_eq!(c.addrs().unwrap(), before, "a failed request changed nothing");

        // Delete, typed and raw.
        c.addr_del(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        vdestack::nl::nlinline::ipaddr_del(&c, AF_INET6, &v6b("fd00::2"), 64, b).unwrap();
        let after = c.addrs().unwrap();
        assert!(!after.iter().any(|x| x.addr == v4("10.9.0.1") || x.addr == v6("fd00::2")));
        let j = ipj("addr show");
        assert!(!has_addr(&j, "va", "10.9.0.1", 24));
        assert!(!has_addr(&j, "vb", "fd00::2", 64));
        assert!(has_addr(&j, "va", "fd00::1", 64));
    }
}

fn json_routes(v6: bool) -> Vec<Value> {
    ipj(if v6 { "-6 route show" } else { "route show" })
        .as_array()
        .unwrap()
        .clone()
}

fn json_has(routes: &[Value], dst: &str, gw: Option<&str>, dev: &str) -> bool {
    routes.iter().any(|r| {
        r["dst"] == dst
            && r["dev"] == dev
            && gw
                .map(|g| r["gateway"] == g)
                .unwrap_or(r.get("gateway").is_none())
    })
}

sandbox_test! {
    fn routes() {
        let c = NlClient::new().unwrap();
        let (a, _) = veth_up(&c);
        c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        c.addr_add(&AddrSpec::new(a, v6("fd00::1"), 64).no_dad()).unwrap();

        // Typed: default via a gateway, a prefix on a link, IPv6 both ways.
        c.route_add(&RouteSpec::default_v4().via(v4("10.9.0.254"))).unwrap();
        c.route_add(&RouteSpec::new(v4("10.10.0.0"), 16).dev(a)).unwrap();
        c.route_add(&RouteSpec::new(v4("10.11.0.0"), 16).via(v4("10.9.0.253")).dev(a).metric(50)).unwrap();
        c.route_add(&RouteSpec::new(v6("fd01::"), 64).via(v6("fd00::fe"))).unwrap();
        c.route_add(&RouteSpec::default_v6().via(v6("fe80::1")).dev(a)).unwrap();
        c.route_add(&RouteSpec::new(v4("10.12.0.0"), 16).dev(a).table(1000)).unwrap();
        // nlinline's form: a prefix route via a gateway, and a blackhole by the 0x60 magic.
        vdestack::nl::nlinline::iproute_add(&c, AF_INET, Some(&[10, 13, 0, 0]), 16, Some(&[10, 9, 0, 252]), 0).unwrap();
        vdestack::nl::nlinline::iproute_add(&c, AF_INET, Some(&[10, 14, 0, 0]), nl_routedata2prefix(16, 6, 0), None, 0).unwrap();

        let ours = c.routes().unwrap();
        let find = |dst: IpAddr, len: u8| {
            ours.iter().find(|r| r.dst == dst && r.prefix_len == len && r.kind != 2 && r.table != 255)
                .unwrap_or_else(|| panic!("{dst}/{len} missing in {ours:?}"))
        };
        let d = find(v4("0.0.0.0"), 0);
        assert_eq!((d.gateway, d.oif, d.table, d.protocol), (Some(v4("10.9.0.254")), Some(a), 254, 3));
        let p = find(v4("10.10.0.0"), 16);
        assert_eq!((p.gateway, p.oif), (None, Some(a)));
        assert_eq!(find(v4("10.11.0.0"), 16).metric, Some(50));
        assert_eq!(find(v6("fd01::"), 64).gateway, Some(v6("fd00::fe")));
        assert_eq!(find(v6("::"), 0).gateway, Some(v6("fe80::1")));
        assert_eq!(find(v4("10.12.0.0"), 16).table, 1000);
        assert_eq!(find(v4("10.13.0.0"), 16).gateway, Some(v4("10.9.0.252")));
        assert_eq!(find(v4("10.14.0.0"), 16).kind, 6);

        let j4 = json_routes(false);
        assert!(json_has(&j4, "default", Some("10.9.0.254"), "va"), "{j4:?}");
        assert!(json_has(&j4, "10.10.0.0/16", None, "va"), "{j4:?}");
        assert!(json_has(&j4, "10.13.0.0/16", Some("10.9.0.252"), "va"), "{j4:?}");
        assert!(j4.iter().any(|r| r["dst"] == "10.14.0.0/16" && r["type"] == "blackhole"), "{j4:?}");
        let j6 = json_routes(true);
        assert!(json_has(&j6, "fd01::/64", Some("fd00::fe"), "va"), "{j6:?}");
        assert!(json_has(&j6, "default", Some("fe80::1"), "va"), "{j6:?}");
        let t1000 = ipj("route show table 1000");
        assert_eq!(t1000[0]["dst"], "10.12.0.0/16");

        // Errors, each read back: unreachable gateway, duplicate, unknown link,
        // bad prefix (not sent), mixed families, deleting what is not there.
        let before = c.routes().unwrap();
        assert_eq!(errno(c.route_add(&RouteSpec::new(v4("10.20.0.0"), 16).via(v4("192.168.77.1")))), libc::ENETUNREACH);
        assert_eq!(errno(c.route_add(&RouteSpec::default_v4().via(v4("10.9.0.254")))), libc::EEXIST);
        assert_eq!(errno(c.route_add(&RouteSpec::new(v4("10.21.0.0"), 16).dev(4242))), libc::ENODEV);
        assert_eq!(errno(c.route_add(&RouteSpec::new(v4("10.22.0.0"), 33).dev(a))), libc::EINVAL);
        assert_eq!(errno(c.route_add(&RouteSpec::new(v4("10.23.0.0"), 16).via(v6("fd00::fe")))), libc::EINVAL);
        assert_eq!(errno(vdestack::nl::nlinline::iproute_add(&c, AF_INET, None, 16, None, a)), libc::EINVAL);
        assert_eq!(errno(c.route_del(&RouteSpec::new(v4("10.99.0.0"), 16).dev(a))), libc::ESRCH);
        assert_eq!(c.routes().unwrap(), before, "a failed request changed nothing");
        assert!(!json_routes(false).iter().any(|r| r["dst"] == "10.20.0.0/16"));

        // Delete, typed and raw, and read back.
        c.route_del(&RouteSpec::default_v4().via(v4("10.9.0.254"))).unwrap();
        c.route_del(&RouteSpec::new(v6("fd01::"), 64).via(v6("fd00::fe"))).unwrap();
        vdestack::nl::nlinline::iproute_del(&c, AF_INET, Some(&[10, 13, 0, 0]), 16, Some(&[10, 9, 0, 252]), 0).unwrap();
        let j4 = json_routes(false);
        assert!(!j4.iter().any(|r| r["dst"] == "default" || r["dst"] == "10.13.0.0/16"), "{j4:?}");
        assert!(!json_routes(true).iter().any(|r| r["dst"] == "fd01::/64"));
        assert!(!c.routes().unwrap().iter().any(|r| r.dst == v4("10.13.0.0")));
    }
}

sandbox_test! {
    fn nlinline_link_calls() {
        const T: &str = "nlinline_link_calls";
        let c = NlClient::new().unwrap();
        // iplink_add with IFLA_INFO_DATA: a vxlan with IFLA_VXLAN_ID (1) = 77.
        let id = IplinkData { tag: 1, data: 77u32.to_ne_bytes().to_vec() };
        assert_eq!(vdestack::nl::nlinline::iplink_add(&c, Some("vx9"), 0, "vxlan", &[id]).unwrap(), 0);
        assert_eq!(ip_link("vx9")["linkinfo"]["info_data"]["id"], 77);
        // A chosen index, and no name: the kernel names it.
        vdestack::nl::nlinline::iplink_add(&c, None, 4000, "bridge", &[]).unwrap();
        assert_eq!(c.link(4000).unwrap().kind.as_deref(), Some("bridge"));
        // Asking for the new index (IFLA_NEW_IFINDEX as a 1-byte string) is for
        // stacks that answer it; Linux validates IFLA_NEW_IFINDEX as an s32 and
        // refuses the 1-byte attribute (ERANGE on 6.x), creating nothing.
        match vdestack::nl::nlinline::iplink_add(&c, Some("br9"), IFINDEX_ASK, "bridge", &[]) {
            Ok(v) => assert!(v >= 0),
            Err(e) => {
                assert!(matches!(errno_of(&e), libc::ERANGE | libc::EINVAL), "{e}");
                eprintln!("{T}: Linux refuses IFLA_NEW_IFINDEX as nlinline sends it: {e}");
                assert_eq!(errno(c.link_index("br9")), libc::ENODEV);
            }
        }
        vdestack::nl::nlinline::iplink_del(&c, Some("vx9"), 0).unwrap();
        vdestack::nl::nlinline::iplink_del(&c, None, 4000).unwrap();
        assert_eq!(errno(vdestack::nl::nlinline::iplink_del(&c, Some("vx9"), 0)), libc::ENODEV);
        assert_eq!(errno(vdestack::nl::nlinline::iplink_add(&c, Some("x0"), 0, "no-such-kind", &[])), libc::EOPNOTSUPP);
    }
}

sandbox_test! {
    fn bridge_ports_namespaces_and_nldialog() {
        let c = NlClient::new().unwrap();
        let (a, b) = veth_up(&c);
        let br = c.link_add("br0", &LinkKind::Bridge).unwrap();
        c.link_set_master(a, Some(br)).unwrap();
        assert_eq!(c.link(a).unwrap().master, Some(br));
        assert_eq!(ip_link("va")["master"], "br0");
        assert_eq!(errno(c.link_set_master(a, Some(4242))), libc::ENODEV);
        assert_eq!(c.link(a).unwrap().master, Some(br), "unchanged by the failed request");
        c.link_set_master(a, None).unwrap();
        assert_eq!(c.link(a).unwrap().master, None);
        assert!(ip_link("va").get("master").is_none());

        // nldialog: nlinline's prebuilt messages, with and without an ack.
        let up = vdestack::nl::nlinline::build_linksetupdown(77, br, true);
        assert_eq!(c.request(&up).unwrap(), 0);
        assert!(c.link(br).unwrap().is_up());
        let name = vdestack::nl::nlinline::build_if_nametoindex(78, "br0").unwrap();
        assert_eq!(c.request(&name).unwrap(), br as i32);
        let get = vdestack::nl::nlinline::build_linkgetaddr(79, br);
        assert_eq!(c.request(&get).unwrap(), br as i32);
        let bad = vdestack::nl::nlinline::build_linksetupdown(80, 4242, true);
        assert_eq!(errno(c.request(&bad)), libc::ENODEV);

        // Move vb into another namespace (a child `unshare -n`), see it there.
        let mut child = Proc::spawn({
            let mut cmd = Command::new("unshare");
            cmd.args(["-n", "sleep", "30"]);
            cmd
        });
        let pid = child.child.id();
        let ns_path = format!("/proc/{pid}/ns/net");
        let mut ns = None;
        // Wait until the child has its own namespace (a new namespace waits for the
        // kernel's clean-up of old ones, which a busy machine makes slow).
        for _ in 0..500 {
            let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
            if std::fs::read_link(&ns_path).map(|l| l != mine).unwrap_or(false) {
                ns = Some(std::fs::File::open(&ns_path).unwrap());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let ns = ns.expect("the child never entered its namespace");
        use std::os::fd::AsFd;
        c.link_set_netns(b, ns.as_fd()).unwrap();
        assert_eq!(errno(c.link_index("vb")), libc::ENODEV);
        let out = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "ip", "-j", "link", "show", "vb"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j[0]["ifname"], "vb");
        let _ = child.child.kill();
    }
}

sandbox_test! {
    fn link_statistics() {
        let c = NlClient::new().unwrap();
        let before = c.link(1).unwrap().stats;
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..5 {
            s.send_to(b"x", s.local_addr().unwrap()).unwrap();
        }
        let after = c.link(1).unwrap().stats;
        assert!(after.tx_packets >= before.tx_packets + 5, "{before:?} -> {after:?}");
        assert!(after.rx_packets >= before.rx_packets + 5);
        assert!(after.tx_bytes > before.tx_bytes);
        let j = ipj("-s link show lo");
        let rx = j[0]["stats64"]["rx"]["packets"].as_u64().unwrap();
        assert!(rx >= after.rx_packets, "iproute2 read {rx} after our {}", after.rx_packets);
        assert_eq!(after.rx_errors + after.tx_errors + after.rx_dropped + after.tx_dropped, 0);
    }
}

sandbox_test! {
    fn client_over_a_socket_we_made() {
        use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
        let fd = socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None).unwrap();
        let c = NlClient::from_fd(fd);
        assert_eq!(c.link_index("lo").unwrap(), 1);
        let (a, _) = veth_up(&c);
        c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        assert!(has_addr(&ipj("addr show"), "va", "10.9.0.1", 24));
        // Many requests on one socket: sequence numbers and dumps stay in step.
        for _ in 0..50 {
            assert_eq!(c.links().unwrap().len(), 3);
            assert_eq!(c.link_index("va").unwrap(), a);
        }
        // Threads sharing one client take turns: nobody reads another's answer.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(c.links().unwrap().len(), 3);
                        assert_eq!(c.link_index("vb").unwrap(), c.link(a).unwrap().parent.unwrap());
                    }
                });
            }
        });
    }
}

fn ip_dst(r: &vdestack::nl::Route) -> String {
    let full = if r.dst.is_ipv4() { 32 } else { 128 };
    match r.prefix_len {
        0 => "default".into(),
        p if p == full => r.dst.to_string(),
        p => format!("{}/{p}", r.dst),
    }
}

// Everything our dumps list equals what iproute2 lists: links, addresses, and the
// main-table routes, over a namespace with several kinds of links.
sandbox_test! {
    fn dumps_match_iproute2() {
        let c = NlClient::new().unwrap();
        let (a, b) = veth_up(&c);
        let br = c.link_add("br0", &LinkKind::Bridge).unwrap();
        let mv = c.link_add("mv0", &LinkKind::Macvlan { parent: a, mode: MacvlanMode::Private }).unwrap();
        c.link_set_up(br, true).unwrap();
        c.link_set_up(mv, true).unwrap();
        c.link_set_mtu(b, 1280).unwrap();
        c.addr_add(&AddrSpec::new(a, v4("10.9.0.1"), 24)).unwrap();
        c.addr_add(&AddrSpec::new(b, v4("10.9.1.1"), 25)).unwrap();
        c.addr_add(&AddrSpec::new(mv, v6("fd00::5"), 80).no_dad()).unwrap();
        c.route_add(&RouteSpec::default_v4().via(v4("10.9.0.254"))).unwrap();
        c.route_add(&RouteSpec::new(v4("10.30.0.7"), 32).dev(b)).unwrap();
        c.route_add(&RouteSpec::new(v6("fd02::"), 48).via(v6("fd00::1")).dev(mv)).unwrap();

        let ours = c.links().unwrap();
        let mut mine: Vec<(u64, String, u64, String, bool)> = ours
            .iter()
            .map(|l| {
                let mac = l.mac.as_ref().unwrap().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
                (l.index as u64, l.name.clone(), l.mtu.unwrap() as u64, mac, l.is_up())
            })
            .collect();
        let mut theirs: Vec<(u64, String, u64, String, bool)> = ipj("link show")
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
                let name = l["ifname"].as_str().unwrap().to_string();
                (l["ifindex"].as_u64().unwrap(), name, l["mtu"].as_u64().unwrap(), l["address"].as_str().unwrap().to_string(), up)
            })
            .collect();
        mine.sort();
        theirs.sort();
        assert_eq!(mine, theirs);
        for l in &ours {
            let j = ip_link(&l.name);
            assert_eq!(l.kind.as_deref(), j["linkinfo"]["info_kind"].as_str(), "{}", l.name);
        }

        let name_of = |i: u32| ours.iter().find(|l| l.index == i).unwrap().name.clone();
        let mut mine: Vec<(String, String, u64)> = c
            .addrs()
            .unwrap()
            .iter()
            .map(|x| (name_of(x.index), x.addr.to_string(), x.prefix_len as u64))
            .collect();
        let mut theirs: Vec<(String, String, u64)> = Vec::new();
        for l in ipj("addr show").as_array().unwrap() {
            for x in l["addr_info"].as_array().unwrap() {
                let name = l["ifname"].as_str().unwrap().to_string();
                theirs.push((name, x["local"].as_str().unwrap().to_string(), x["prefixlen"].as_u64().unwrap()));
            }
        }
        mine.sort();
        theirs.sort();
        assert_eq!(mine, theirs);

        let mut mine: Vec<(String, Option<String>, String)> = c
            .routes()
            .unwrap()
            .iter()
            .filter(|r| r.table == 254)
            .map(|r| (ip_dst(r), r.gateway.map(|g| g.to_string()), name_of(r.oif.unwrap())))
            .collect();
        let mut theirs: Vec<(String, Option<String>, String)> = json_routes(false)
            .iter()
            .chain(json_routes(true).iter())
            .map(|r| {
                let gw = r["gateway"].as_str().map(str::to_string);
                (r["dst"].as_str().unwrap().to_string(), gw, r["dev"].as_str().unwrap().to_string())
            })
            .collect();
        mine.sort();
        theirs.sort();
        assert_eq!(mine, theirs);
        assert!(mine.iter().any(|r| r.0 == "10.30.0.7"));
    }
}

// A dump bigger than one datagram (the kernel sends about 32 KiB at a time, each
// link is over 1 KiB): every part is read, nothing is lost or repeated.
sandbox_test! {
    fn a_big_dump_spans_several_datagrams() {
        let c = NlClient::new().unwrap();
        for i in 0..120 {
            c.link_add(&format!("br{i}"), &LinkKind::Bridge).unwrap();
        }
        let links = c.links().unwrap();
        assert_eq!(links.len(), 121);
        let mut names: Vec<String> = links.into_iter().map(|l| l.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 121);
        assert_eq!(ipj("link show").as_array().unwrap().len(), 121);
        // The socket is clean afterwards: the next request gets its own answer.
        assert_eq!(c.link_index("lo").unwrap(), 1);
    }
}
