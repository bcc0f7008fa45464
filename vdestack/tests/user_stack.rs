//! What only the user-space backend (issue 15) has, on `inproc://`: calls that
//! are the kernel backend's fail with `EOPNOTSUPP` or give the socket back, its
//! netlink emulation configures it (64 addresses, 256 routes), one interface
//! holds 64 addresses and claims only those, a reset is kept for `take_error`;
//! and a kernel stack of ours pings a user stack and talks TCP to it (in a
//! namespace sandbox, where kernel stacks can be made).
//!
//! What both backends do alike (TCP, UDP, ICMP, non-blocking sockets, shutdown,
//! errors, `tokio`) is in `both_backends.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::stacks::{configure, tcp_echo};
use vdestack::error::errno_of;
use vdestack::net::IpVersion;
use vdestack::stack::{Backend, Stack};

fn user(url: &str) -> Stack {
    Stack::builder()
        .backend(Backend::User)
        .interface("eth0", url)
        .build()
        .unwrap()
}

fn user_pair(net: &str) -> (Stack, Stack) {
    let url = format!("inproc://{net}");
    let (a, b) = (user(&url), user(&url));
    configure(&a, "eth0", &[("10.9.0.1", 24), ("fc00:9::1", 64)]);
    configure(&b, "eth0", &[("10.9.0.2", 24), ("fc00:9::2", 64)]);
    (a, b)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Pings `to` from `from` with an ICMP echo socket; the reply's sequence number.
fn ping(from: &Stack, to: IpAddr, seq: u16) -> u16 {
    let v = if to.is_ipv4() {
        IpVersion::V4
    } else {
        IpVersion::V6
    };
    let s = from.icmp_socket(v).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ty = if to.is_ipv4() { 8 } else { 128 };
    let mut req = vec![ty, 0, 0, 0, 0, 0];
    req.extend_from_slice(&seq.to_be_bytes());
    req.extend_from_slice(b"vdestack ping");
    // The first request may wait for ARP/NDP; send a few.
    for _ in 0..5 {
        s.send_to(&req, to).unwrap();
        let mut buf = [0u8; 256];
        match s.recv_from(&mut buf) {
            Ok((n, who)) => {
                assert_eq!(who, to);
                assert_eq!(&buf[8..n], b"vdestack ping");
                assert_eq!(buf[0], if to.is_ipv4() { 0 } else { 129 }, "an echo reply");
                return u16::from_be_bytes([buf[6], buf[7]]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("ping {to}: {e}"),
        }
    }
    panic!("no reply from {to}");
}

/// Raw sockets, commands and std sockets are the kernel backend's: a user
/// stack says `EOPNOTSUPP`, and `into_std` gives the socket back.
#[test]
fn what_only_kernel_stacks_have() {
    let (a, b) = user_pair("user-kernel-only");
    let raw = a.socket(
        vdestack::net::AddressFamily::INET,
        vdestack::net::SocketType::RAW,
        None,
    );
    assert_eq!(errno_of(&raw.unwrap_err()), libc::EOPNOTSUPP);
    let cmd = a.command("true").status().unwrap_err();
    assert_eq!(cmd.raw_os_error(), Some(libc::EOPNOTSUPP));
    let l = a.tcp_listener(sa("10.9.0.1:7010")).unwrap();
    let c = b.tcp_connect(sa("10.9.0.1:7010")).unwrap();
    let c = c
        .into_std()
        .expect_err("a user socket has no std socket inside");
    assert_eq!(
        c.peer_addr().unwrap(),
        sa("10.9.0.1:7010"),
        "given back whole"
    );
    let l = l.into_std().expect_err("nor has a user listener");
    assert_eq!(l.local_addr().unwrap(), sa("10.9.0.1:7010"));
    let u = b.udp_bind(sa("10.9.0.2:0")).unwrap();
    assert!(u.into_std().is_err());
}

#[test]
fn netlink_configures_a_user_stack() {
    let s = user("inproc://user-nl");
    let nl = s.netlink().unwrap();
    let names: Vec<String> = nl
        .link_names()
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, ["lo", "eth0"]);
    vdestack::nl::config::configure(&nl, "iface=eth0,eth,ip=10.9.9.1/24,gw=10.9.9.254").unwrap();
    let addrs = nl.addrs().unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a.addr == "10.9.9.1".parse::<IpAddr>().unwrap()),
        "{addrs:?}"
    );
    let routes = nl.routes().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r.gateway == Some("10.9.9.254".parse().unwrap())),
        "{routes:?}"
    );
    // 64 addresses and 256 routes fit.
    let i = nl.link_index("eth0").unwrap();
    for n in 0..64u32 {
        let ip = IpAddr::from([10, 20, (n >> 8) as u8, n as u8]);
        nl.addr_add(&vdestack::nl::AddrSpec::new(i, ip, 16))
            .unwrap();
    }
    for n in 0..256u32 {
        let dst = IpAddr::from([172, 16, n as u8, 0]);
        nl.route_add(&vdestack::nl::RouteSpec::new(dst, 24).via("10.9.9.254".parse().unwrap()))
            .unwrap();
    }
    assert!(nl.addrs().unwrap().len() >= 65);
    assert!(nl.routes().unwrap().len() >= 256);
}

sandbox_test! {
    fn a_kernel_stack_and_a_user_stack() {
        if !common::have_tun("a_kernel_stack_and_a_user_stack") {
            return;
        }
        let url = "inproc://user-kernel";
        let k = Stack::builder().interface("eth0", url).build().unwrap();
        let u = user(url);
        configure(&k, "eth0", &[("10.9.1.1", 24), ("fc00:91::1", 64)]);
        configure(&u, "eth0", &[("10.9.1.2", 24), ("fc00:91::2", 64)]);
        // The kernel stack pings the user stack.
        assert_eq!(ping(&k, "10.9.1.2".parse().unwrap(), 1), 1);
        assert_eq!(ping(&k, "fc00:91::2".parse().unwrap(), 2), 2);
        assert_eq!(ping(&u, "10.9.1.1".parse().unwrap(), 3), 3);
        tcp_echo(&u, &k, "10.9.1.2:7100", "kernel to user, v4");
        tcp_echo(&k, &u, "[fc00:91::1]:7101", "user to kernel, v6");
    }
}

/// 64 addresses on one interface: each answers; an address nobody has does
/// not (the interface claims only its own).
#[test]
fn sixty_four_addresses() {
    let url = "inproc://user-many-addrs";
    let (a, b) = (user(url), user(url));
    let addrs: Vec<(String, u8)> = (1..=64).map(|i| (format!("10.9.3.{i}"), 24)).collect();
    let refs: Vec<(&str, u8)> = addrs.iter().map(|(s, p)| (s.as_str(), *p)).collect();
    configure(&a, "eth0", &refs);
    configure(&b, "eth0", &[("10.9.3.200", 24)]);
    assert_eq!(ping(&b, "10.9.3.40".parse().unwrap(), 40), 40);
    assert_eq!(ping(&b, "10.9.3.64".parse().unwrap(), 64), 64);
    // TCP to the 50th.
    tcp_echo(&a, &b, "10.9.3.50:7500", "to the 50th address");
    let s = b.icmp_socket(IpVersion::V4).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let req = [8u8, 0, 0, 0, 0, 0, 0, 1, b'x'];
    for _ in 0..3 {
        s.send_to(&req, "10.9.3.100".parse().unwrap()).unwrap();
    }
    let mut buf = [0u8; 64];
    assert!(s.recv_from(&mut buf).is_err(), "10.9.3.100 is nobody's");
}

/// A connection closed with data unread in the stack is reset, as the kernel
/// does: the peer's writes fail, its reads give EOF, and `take_error` says
/// `ECONNRESET` (documented: not the read).
#[test]
fn a_reset_is_kept_for_take_error() {
    let (a, b) = user_pair("user-reset");
    let l = a.tcp_listener(sa("10.9.0.1:7600")).unwrap();
    let c = b.tcp_connect(sa("10.9.0.1:7600")).unwrap();
    let (s, _) = l.accept().unwrap();
    // More than the server's pair and window hold: the writer blocks.
    let writer = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = vec![1u8; 1 << 20];
            for _ in 0..8 {
                if c.write_all(&chunk).is_err() {
                    return true;
                }
            }
            false
        })
    };
    // The server's window fills (its application never reads), then it closes
    // (data still arriving after it is reset too).
    std::thread::sleep(Duration::from_millis(500));
    drop(s);
    assert!(
        writer.join().unwrap(),
        "the writer's writes fail after the reset"
    );
    let e = c.take_error().unwrap().expect("the reset is kept");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET));
    assert!(c.take_error().unwrap().is_none(), "taken once");
    let mut buf = [0u8; 16];
    assert_eq!((&c).read(&mut buf).unwrap(), 0);
}
