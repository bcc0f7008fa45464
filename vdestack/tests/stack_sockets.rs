//! The typed sockets of `vdestack::net` between two stacks on `inproc://`: TCP
//! with std's manners (accept, incoming, addresses, options, shutdown, `&T` I/O,
//! `into_std`), a connect with a timeout, UDP, ICMP echo (ping sockets) v4 and v6,
//! raw sockets with typed arguments, and `Stack::close`.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::stacks::configure;
use vdestack::error::errno_of;
use vdestack::net::{AddressFamily, IpVersion, SocketFlags, SocketType};
use vdestack::stack::{Backend, Stack};

fn pair(net: &str) -> (Stack, Stack) {
    let url = format!("inproc://{net}");
    let a = Stack::builder().interface("eth0", &url).build().unwrap();
    let b = Stack::builder().interface("eth0", &url).build().unwrap();
    configure(&a, "eth0", &[("10.8.0.1", 24), ("fc00:8::1", 64)]);
    configure(&b, "eth0", &[("10.8.0.2", 24), ("fc00:8::2", 64)]);
    (a, b)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

sandbox_test! {
    fn tcp_with_std_manners() {
        let (a, b) = pair("sockets-tcp");
        assert_eq!(a.backend(), Backend::Kernel);
        for (listen, from) in [("10.8.0.1:7100", "10.8.0.2"), ("[fc00:8::1]:7101", "fc00:8::2")] {
            let l = a.tcp_listener(sa(listen)).unwrap();
            assert_eq!(l.local_addr().unwrap(), sa(listen));
            let srv = std::thread::spawn(move || {
                // `incoming`, and I/O on `&TcpStream`.
                let c = l.incoming().next().unwrap().unwrap();
                let mut line = [0u8; 5];
                (&c).read_exact(&mut line).unwrap();
                (&c).write_all(&line).unwrap();
                // After the peer's shutdown(Write), EOF.
                let mut rest = Vec::new();
                (&c).read_to_end(&mut rest).unwrap();
                rest
            });
            let mut c = b
                .tcp_connect_timeout(sa(listen), Duration::from_secs(10))
                .unwrap();
            assert_eq!(c.peer_addr().unwrap(), sa(listen));
            assert_eq!(c.local_addr().unwrap().ip(), from.parse::<IpAddr>().unwrap());
            c.set_nodelay(true).unwrap();
            assert!(c.nodelay().unwrap());
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_secs(10)));
            assert!(c.take_error().unwrap().is_none());
            c.write_all(b"hello").unwrap();
            let mut back = [0u8; 5];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello");
            let mut peeked = [0u8; 1];
            c.set_nonblocking(true).unwrap();
            let e = c.peek(&mut peeked).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
            c.set_nonblocking(false).unwrap();
            c.write_all(b" and goodbye").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            assert_eq!(srv.join().unwrap(), b" and goodbye");
            // The std stream inside (a kernel stack).
            let fd = c.as_raw_fd();
            let s = c.into_std().unwrap();
            assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&s), fd);
        }
    }
}

sandbox_test! {
    fn connect_with_a_timeout() {
        let (a, b) = pair("sockets-timeout");
        drop(a);
        // Nobody answers ARP for .99: the connect would wait for seconds.
        let e = b
            .tcp_connect_timeout(sa("10.8.0.99:7102"), Duration::from_millis(300))
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("10.8.0.99:7102"), "{e}");
        // No route at all: at once.
        let e = b
            .tcp_connect_timeout(sa("192.0.2.1:7"), Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(errno_of(&e), libc::ENETUNREACH, "{e}");
        // Nobody listens: refused.
        let e = b
            .tcp_connect_timeout(sa("10.8.0.2:7103"), Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(errno_of(&e), libc::ECONNREFUSED, "{e}");
        let e = b
            .tcp_connect_timeout(sa("10.8.0.2:7103"), Duration::ZERO)
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
}

sandbox_test! {
    fn udp_with_std_manners() {
        let (a, b) = pair("sockets-udp");
        let ua = a.udp_bind(sa("10.8.0.1:7104")).unwrap();
        let ub = b.udp_bind(sa("10.8.0.2:0")).unwrap();
        assert_ne!(ub.local_addr().unwrap().port(), 0);
        ua.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ub.send_to(b"one", "10.8.0.1:7104").unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = ua.peek_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], ub.local_addr().unwrap()));
        let (n, from) = ua.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        ua.connect(from).unwrap();
        assert_eq!(ua.peer_addr().unwrap(), from);
        ua.send(b"two").unwrap();
        assert_eq!(ub.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");
        assert!(ua.try_clone().unwrap().ttl().unwrap() > 0);
    }
}

/// An ICMP echo request: type, code 0, checksum and identifier (the kernel's),
/// sequence number, data.
fn echo_request(kind: u8, seq: u16) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0, 0, 0];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"vdestack ping");
    m
}

sandbox_test! {
    fn icmp_echo_v4_and_v6() {
        let (_a, b) = pair("sockets-icmp");
        for (version, to, request, reply) in [
            (IpVersion::V4, "10.8.0.1", 8u8, 0u8),
            (IpVersion::V6, "fc00:8::1", 128, 129),
        ] {
            let to: IpAddr = to.parse().unwrap();
            let ping = b.icmp_socket(version).unwrap();
            assert_eq!(ping.version(), version);
            ping.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            ping.send_to(&echo_request(request, 1), to).unwrap();
            let mut buf = [0u8; 128];
            let (n, from) = ping.recv_from(&mut buf).unwrap();
            assert_eq!(from, to);
            assert_eq!(buf[0], reply, "{version:?}: an echo reply");
            assert_eq!(&buf[6..n], &echo_request(request, 1)[6..], "same sequence and data");
            // The wrong family is refused before anything is sent.
            let other: IpAddr = match version {
                IpVersion::V4 => "fc00:8::1".parse().unwrap(),
                IpVersion::V6 => "10.8.0.1".parse().unwrap(),
            };
            assert_eq!(errno_of(&ping.send_to(b"x", other).unwrap_err()), libc::EAFNOSUPPORT);
        }
    }
}

sandbox_test! {
    fn raw_sockets_typed_and_close() {
        let s = Stack::builder()
            .interface("vde0", "null://")
            .spec_str("veth://sockets-close")
            .offload(false)
            .build()
            .unwrap();
        assert_eq!(s.interfaces(), ["vde0", "vde1"]);
        let fd = s
            .socket_with(
                AddressFamily::INET,
                SocketType::DGRAM,
                SocketFlags::NONBLOCK,
                None,
            )
            .unwrap();
        let fl = rustix::fs::fcntl_getfl(&fd).unwrap();
        assert!(fl.contains(rustix::fs::OFlags::NONBLOCK));
        assert!(rustix::io::fcntl_getfd(&fd).unwrap().contains(rustix::io::FdFlags::CLOEXEC));
        // A raw socket needs CAP_NET_RAW in the stack, which the helper has.
        let raw = s.socket(AddressFamily::PACKET, SocketType::RAW, None).unwrap();
        drop((fd, raw));
        // Teardown with its errors (none): the veth pair is deleted, so a stack
        // made next on the same network gets a fresh one.
        s.close().unwrap();
        let again = Stack::with_interfaces(&["veth://sockets-close"]).unwrap();
        again.close().unwrap();
    }
}

sandbox_test! {
    fn closing_a_stack_does_not_wait_long_for_a_stubborn_coprocess() {
        // A coprocess that ignores both EOF and SIGTERM: the stack gives it a
        // moment, then kills it (the bound below is generous on purpose).
        let s = Stack::with_interfaces(&["=/bin/sh -c 'trap \"\" TERM; while :; do sleep 1; done'"]).unwrap();
        let t = std::time::Instant::now();
        s.close().unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "close took {:?}", t.elapsed());
    }
}
