//! The user-space backend (issue 15) on `inproc://`: two user stacks ping, echo
//! over TCP and UDP (v4 and v6), and give the kernel's errors; a kernel stack of
//! ours pings a user stack and talks TCP to it (in a namespace sandbox, where
//! kernel stacks can be made).

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

#[test]
fn two_user_stacks_ping() {
    let (a, b) = user_pair("user-ping");
    assert_eq!(a.backend(), Backend::User);
    assert_eq!(ping(&b, "10.9.0.1".parse().unwrap(), 7), 7);
    assert_eq!(ping(&b, "fc00:9::1".parse().unwrap(), 8), 8);
    // Its own addresses, through lo.
    assert_eq!(ping(&a, "10.9.0.1".parse().unwrap(), 9), 9);
    assert_eq!(ping(&a, "127.0.0.1".parse().unwrap(), 10), 10);
}

#[test]
fn two_user_stacks_tcp_echo() {
    let (a, b) = user_pair("user-tcp");
    tcp_echo(&a, &b, "10.9.0.1:7000", "user v4");
    tcp_echo(&a, &b, "[fc00:9::1]:7001", "user v6");
    // Within one stack, through lo.
    tcp_echo(&a, &a, "10.9.0.1:7002", "user to itself");
    tcp_echo(&a, &a, "127.0.0.1:7003", "user on 127.0.0.1");
}

#[test]
fn tcp_names_shutdown_and_backlog() {
    let (a, b) = user_pair("user-names");
    let l = a.tcp_listener(sa("0.0.0.0:7010")).unwrap();
    assert_eq!(l.local_addr().unwrap(), sa("0.0.0.0:7010"));
    // Several connections made before any is accepted: a real backlog.
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(b.tcp_connect(sa("10.9.0.1:7010")).unwrap());
    }
    for c in &clients {
        assert_eq!(c.peer_addr().unwrap(), sa("10.9.0.1:7010"));
        assert_eq!(
            c.local_addr().unwrap().ip(),
            "10.9.0.2".parse::<IpAddr>().unwrap()
        );
    }
    let mut accepted = Vec::new();
    for _ in 0..5 {
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), "10.9.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.peer_addr().unwrap(), peer);
        assert_eq!(s.local_addr().unwrap(), sa("10.9.0.1:7010"));
        accepted.push(s);
    }
    // shutdown(Write): the peer reads what was sent, then EOF.
    let mut c = clients.pop().unwrap();
    let ports: Vec<u16> = accepted
        .iter()
        .map(|s| s.peer_addr().unwrap().port())
        .collect();
    let at = ports
        .iter()
        .position(|p| *p == c.local_addr().unwrap().port())
        .unwrap();
    let mut s = accepted.swap_remove(at);
    c.write_all(b"bye").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    // Still writable the other way.
    s.write_all(b"ok").unwrap();
    drop(s);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"ok");
    // Options.
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    c.set_ttl(9).unwrap();
    assert_eq!(c.ttl().unwrap(), 9);
    // A user socket has no std socket inside.
    assert!(c.into_std().is_err());
    assert!(l.into_std().is_err());
}

#[test]
fn nonblocking_accept_and_connect() {
    let (a, b) = user_pair("user-nonblock");
    let l = a.tcp_listener(sa("10.9.0.1:7020")).unwrap();
    l.set_nonblocking(true).unwrap();
    let e = l.accept().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    let c = b
        .tcp_connect_timeout(sa("10.9.0.1:7020"), Duration::from_secs(10))
        .unwrap();
    l.set_nonblocking(false).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        (&c).read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    (&s).write_all(b"ping").unwrap();
    c.set_nonblocking(false).unwrap();
    (&c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
fn udp_between_user_stacks() {
    let (a, b) = user_pair("user-udp");
    for (to, from) in [
        ("10.9.0.1:7030", "10.9.0.2:0"),
        ("[fc00:9::1]:7031", "[fc00:9::2]:0"),
    ] {
        let srv = a.udp_bind(sa(to)).unwrap();
        let cli = b.udp_bind(sa(from)).unwrap();
        let me = cli.local_addr().unwrap();
        assert_ne!(me.port(), 0);
        srv.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        cli.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        // The first datagrams may wait for ARP/NDP.
        let (n, peer) = loop {
            cli.send_to(b"hello udp", sa(to)).unwrap();
            match srv.recv_from(&mut buf) {
                Ok(r) => break r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"hello udp");
        assert_eq!(peer, me);
        srv.send_to(b"back", peer).unwrap();
        // Connected: only the peer's datagrams, send without an address.
        cli.connect(sa(to)).unwrap();
        assert_eq!(cli.peer_addr().unwrap(), sa(to));
        let n = loop {
            let n = cli.recv(&mut buf).unwrap();
            if &buf[..n] == b"back" {
                break n;
            }
        };
        assert_eq!(n, 4);
        cli.send(b"again").unwrap();
        srv.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        loop {
            let (n, p) = srv.recv_from(&mut buf).unwrap();
            if &buf[..n] == b"again" {
                assert_eq!(p, me);
                break;
            }
        }
    }
}

#[test]
fn errors_as_the_kernel_gives_them() {
    let (a, b) = user_pair("user-errors");
    let _l = a.tcp_listener(sa("10.9.0.1:7040")).unwrap();
    let e = a.tcp_listener(sa("10.9.0.1:7040")).unwrap_err();
    assert_eq!(errno_of(&e), libc::EADDRINUSE, "{e}");
    let _u = a.udp_bind(sa("0.0.0.0:7041")).unwrap();
    assert_eq!(
        errno_of(&a.udp_bind(sa("10.9.0.1:7041")).unwrap_err()),
        libc::EADDRINUSE
    );
    // Nobody listens there: the peer's reset.
    let e = b.tcp_connect(sa("10.9.0.1:7049")).unwrap_err();
    assert_eq!(errno_of(&e), libc::ECONNREFUSED, "{e}");
    // No route.
    let e = b.tcp_connect(sa("192.0.2.1:80")).unwrap_err();
    assert_eq!(errno_of(&e), libc::ENETUNREACH, "{e}");
    let u = b.udp_bind(sa("0.0.0.0:0")).unwrap();
    assert_eq!(
        errno_of(&u.send_to(b"x", sa("192.0.2.1:9")).unwrap_err()),
        libc::ENETUNREACH
    );
    // Not an address of the stack.
    let e = a.tcp_listener(sa("10.9.0.7:7042")).unwrap_err();
    assert_eq!(errno_of(&e), libc::EADDRNOTAVAIL, "{e}");
    // Raw sockets and commands are the kernel backend's.
    let raw = a.socket(
        vdestack::net::AddressFamily::INET,
        vdestack::net::SocketType::RAW,
        None,
    );
    assert_eq!(errno_of(&raw.unwrap_err()), libc::EOPNOTSUPP);
    let cmd = a.command("true").status().unwrap_err();
    assert_eq!(cmd.raw_os_error(), Some(libc::EOPNOTSUPP));
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

/// The `tokio` types on user stacks: the same code as on kernel stacks.
#[test]
fn tokio_on_user_stacks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = user_pair("user-tokio");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for listen in ["10.9.0.1:7300", "[fc00:9::1]:7301"] {
            let l = vdestack::tokio::TcpListener::bind(&a, sa(listen)).unwrap();
            let server = tokio::spawn(async move {
                let (mut c, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 100_000];
                c.read_exact(&mut buf).await.unwrap();
                c.write_all(&buf).await.unwrap();
                c.shutdown().await.unwrap();
            });
            let mut c = vdestack::tokio::TcpStream::connect(&b, sa(listen))
                .await
                .unwrap();
            assert_eq!(c.peer_addr().unwrap(), sa(listen));
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            c.write_all(&data).await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            assert!(back == data, "{listen}: the echo differs");
            server.await.unwrap();
        }
        let e = vdestack::tokio::TcpStream::connect(&b, sa("10.9.0.1:7309"))
            .await
            .unwrap_err();
        assert_eq!(errno_of(&e), libc::ECONNREFUSED, "{e}");
        let ua = vdestack::tokio::UdpSocket::bind(&a, sa("10.9.0.1:7302")).unwrap();
        let ub = vdestack::tokio::UdpSocket::bind(&b, sa("10.9.0.2:0")).unwrap();
        ub.send_to(b"async hello", sa("10.9.0.1:7302"))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = ua.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"async hello");
        assert_eq!(from, ub.local_addr().unwrap());
    });
}

/// `[::]` is dual-stack, as on Linux: it takes IPv4 (peers shown IPv4-mapped)
/// and holds the IPv4 port.
#[test]
fn dual_stack_wildcards() {
    let (a, b) = user_pair("user-dual");
    let l6 = a.tcp_listener(sa("[::]:7400")).unwrap();
    assert_eq!(
        errno_of(&a.tcp_listener(sa("0.0.0.0:7400")).unwrap_err()),
        libc::EADDRINUSE
    );
    let c = b.tcp_connect(sa("10.9.0.1:7400")).unwrap();
    let (s, peer) = l6.accept().unwrap();
    let port = c.local_addr().unwrap().port();
    assert_eq!(
        peer,
        SocketAddr::new("::ffff:10.9.0.2".parse().unwrap(), port)
    );
    assert_eq!(s.local_addr().unwrap(), sa("[::ffff:10.9.0.1]:7400"));
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
