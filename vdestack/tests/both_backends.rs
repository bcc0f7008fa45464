//! One program, two backends (issue 15): each body below is written once against
//! the public API (`Stack::builder().backend(..)`, `tcp_listener`, `tcp_connect`,
//! `udp_bind`, `icmp_socket`, `netlink()`) and run on the kernel backend (in the
//! test's private namespace, skipped with a reason where namespaces or
//! `/dev/net/tun` are refused) and on the user-space backend (anywhere: its
//! frames stay in the process). Two stacks on one `inproc://` network:
//! TCP echo (v4, v6, `lo`, a stack's own address), a backlog of connections and
//! socket names and options, `[::]` listeners taking IPv4, UDP, ICMP echo
//! sockets (to the other stack and to itself), non-blocking sockets and poll
//! readiness, shutdown, the errnos a kernel gives for bad requests, and the
//! `tokio` feature's async sockets.
//!
//! What only the user-space backend has: `user_stack.rs`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::backends::pair;
use common::stacks::configure;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use vdestack::error::errno_of;
use vdestack::net::{IpVersion, TcpStream};
use vdestack::stack::Backend;

const T: Option<Duration> = Some(Duration::from_secs(20));

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Waits up to 20 s for `events` on `fd`; returns what poll reported.
fn wait_for(fd: impl AsFd, events: PollFlags) -> PollFlags {
    let mut p = [PollFd::new(&fd, events)];
    let t = Timespec {
        tv_sec: 20,
        tv_nsec: 0,
    };
    loop {
        match poll(&mut p, Some(&t)) {
            Ok(0) => panic!("no {events:?} within 20 s"),
            Ok(_) => return p[0].revents(),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Whether `fd` reports `events` right now.
fn ready_now(fd: impl AsFd, events: PollFlags) -> bool {
    let mut p = [PollFd::new(&fd, events)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut p, Some(&zero)).unwrap() > 0 && p[0].revents().intersects(events)
}

/// `n` bytes of a pattern that shows a shifted or lost stretch.
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

/// Echoes every byte back until EOF, then closes.
fn echo(mut c: TcpStream) {
    let mut buf = vec![0u8; 16384];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => c.write_all(&buf[..n]).unwrap(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("echo server read: {e}"),
        }
    }
}

/// Sends `data` through an echo at `to` from `stack`, checks what comes back.
fn echo_through(stack: &vdestack::stack::Stack, to: SocketAddr, data: &[u8]) -> TcpStream {
    let c = stack
        .tcp_connect(to)
        .unwrap_or_else(|e| panic!("connect {to}: {e}"));
    assert_eq!(c.peer_addr().unwrap(), to);
    c.set_read_timeout(T).unwrap();
    let writer = {
        let mut w = c.try_clone().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || w.write_all(&data).unwrap())
    };
    let mut back = vec![0u8; data.len()];
    (&c).read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == data, "the echo from {to} differs");
    c
}

fn tcp_echo(backend: Backend) {
    let (a, b) = pair(backend, "tcp", 11);
    for (listen, from) in [
        ("10.11.0.1:7000", "10.11.0.2"),
        ("[fc00:11::1]:7001", "fc00:11::2"),
    ] {
        let l = a.tcp_listener(sa(listen)).unwrap();
        assert_eq!(l.local_addr().unwrap(), sa(listen));
        let srv = std::thread::spawn(move || {
            let (c, peer) = l.accept().unwrap();
            assert_eq!(c.peer_addr().unwrap(), peer);
            assert_eq!(c.local_addr().unwrap(), l.local_addr().unwrap());
            echo(c);
            peer
        });
        let data = pattern(300_000, 1);
        let c = echo_through(&b, sa(listen), &data);
        let local = c.local_addr().unwrap();
        assert_eq!(local.ip(), from.parse::<IpAddr>().unwrap(), "{backend:?}");
        assert_ne!(local.port(), 0);
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        (&c).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "nothing after the echo");
        assert_eq!(
            srv.join().unwrap(),
            local,
            "the server saw the client's address"
        );
    }
    // Within one stack: over `lo`, and to its own address on `eth0`.
    for at in ["127.0.0.1:7002", "10.11.0.1:7003"] {
        let l = a.tcp_listener(sa(at)).unwrap();
        let srv = std::thread::spawn(move || echo(l.accept().unwrap().0));
        drop(echo_through(&a, sa(at), &pattern(50_000, 2)));
        srv.join().unwrap();
    }
}
both_backends!(tcp_echo, tcp_echo_kernel, tcp_echo_user);

/// Connections made before any is accepted wait in the backlog; names and
/// options of the sockets.
fn backlog_names_and_options(backend: Backend) {
    let (a, b) = pair(backend, "names", 19);
    let l = a.tcp_listener(sa("0.0.0.0:7010")).unwrap();
    assert_eq!(l.local_addr().unwrap(), sa("0.0.0.0:7010"));
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| b.tcp_connect(sa("10.19.0.1:7010")).unwrap())
        .collect();
    for c in &clients {
        assert_eq!(c.peer_addr().unwrap(), sa("10.19.0.1:7010"));
        assert_eq!(c.local_addr().unwrap().ip(), sa("10.19.0.2:0").ip());
    }
    let mut ports: Vec<u16> = (0..5)
        .map(|_| {
            let (s, peer) = l.accept().unwrap();
            assert_eq!(peer.ip(), sa("10.19.0.2:0").ip(), "{backend:?}");
            assert_eq!(s.peer_addr().unwrap(), peer);
            assert_eq!(s.local_addr().unwrap(), sa("10.19.0.1:7010"));
            peer.port()
        })
        .collect();
    let mut client_ports: Vec<u16> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    ports.sort_unstable();
    client_ports.sort_unstable();
    assert_eq!(ports, client_ports, "each connection accepted once");
    let c = &clients[0];
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    c.set_ttl(9).unwrap();
    assert_eq!(c.ttl().unwrap(), 9);
}
both_backends!(
    backlog_names_and_options,
    backlog_names_and_options_kernel,
    backlog_names_and_options_user
);

/// `[::]` is dual-stack, as on Linux: it takes IPv4 (peers shown IPv4-mapped)
/// and holds the IPv4 port.
fn dual_stack_wildcards(backend: Backend) {
    let (a, b) = pair(backend, "dual", 20);
    let l6 = a.tcp_listener(sa("[::]:7400")).unwrap();
    let e = a.tcp_listener(sa("0.0.0.0:7400")).unwrap_err();
    assert_eq!(errno_of(&e), libc::EADDRINUSE, "{backend:?}: {e}");
    let c = b.tcp_connect(sa("10.20.0.1:7400")).unwrap();
    let (s, peer) = l6.accept().unwrap();
    let port = c.local_addr().unwrap().port();
    assert_eq!(
        peer,
        SocketAddr::new("::ffff:10.20.0.2".parse().unwrap(), port)
    );
    assert_eq!(s.local_addr().unwrap(), sa("[::ffff:10.20.0.1]:7400"));
}
both_backends!(
    dual_stack_wildcards,
    dual_stack_wildcards_kernel,
    dual_stack_wildcards_user
);

fn udp_send_to_recv_from(backend: Backend) {
    let (a, b) = pair(backend, "udp", 12);
    for (at, from) in [
        ("10.12.0.1:7100", "10.12.0.2:0"),
        ("[fc00:12::1]:7101", "[fc00:12::2]:0"),
    ] {
        let ua = a.udp_bind(sa(at)).unwrap();
        let ub = b.udp_bind(sa(from)).unwrap();
        assert_eq!(ua.local_addr().unwrap(), sa(at));
        let b_addr = ub.local_addr().unwrap();
        assert_ne!(b_addr.port(), 0, "port 0 picks one");
        ua.set_read_timeout(T).unwrap();
        ub.set_read_timeout(T).unwrap();
        let mut buf = [0u8; 2048];
        for (i, len) in [1usize, 100, 1400].into_iter().enumerate() {
            let msg = pattern(len, i as u32);
            // The first datagram may wait for address resolution (ARP, NDP).
            assert_eq!(ub.send_to(&msg, sa(at)).unwrap(), len);
            let (n, src) = ua.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], src), (&msg[..], b_addr), "{backend:?} {at}");
            ua.send_to(&buf[..n], src).unwrap();
            let (n, src) = ub.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], src), (&msg[..], sa(at)));
        }
        // Connected: send and recv without addresses.
        ub.connect(sa(at)).unwrap();
        assert_eq!(ub.peer_addr().unwrap(), sa(at));
        ub.send(b"connected").unwrap();
        let (n, src) = ua.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], src), (&b"connected"[..], b_addr));
        ua.send_to(b"back", src).unwrap();
        let n = ub.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
        // A datagram cut to a small buffer gives what fits.
        ua.send_to(b"0123456789", src).unwrap();
        let mut small = [0u8; 4];
        let n = ub.recv(&mut small).unwrap();
        assert_eq!(&small[..n], b"0123");
    }
}
both_backends!(
    udp_send_to_recv_from,
    udp_send_to_recv_from_kernel,
    udp_send_to_recv_from_user
);

/// An ICMP echo request: type, code 0, checksum and identifier (the stack's),
/// sequence number, data.
fn echo_request(kind: u8, seq: u16) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0, 0, 0];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"both backends ping");
    m
}

fn icmp_echo(backend: Backend) {
    let (a, b) = pair(backend, "icmp", 13);
    // To the other stack, and from a stack to its own addresses.
    for (pinger, version, to) in [
        (&b, IpVersion::V4, "10.13.0.1"),
        (&b, IpVersion::V6, "fc00:13::1"),
        (&a, IpVersion::V4, "10.13.0.1"),
        (&a, IpVersion::V4, "127.0.0.1"),
    ] {
        let (request, reply) = match version {
            IpVersion::V4 => (8u8, 0u8),
            IpVersion::V6 => (128, 129),
        };
        let to: IpAddr = to.parse().unwrap();
        let ping = pinger.icmp_socket(version).unwrap();
        assert_eq!(ping.version(), version);
        ping.set_read_timeout(T).unwrap();
        for seq in 1..=3u16 {
            ping.send_to(&echo_request(request, seq), to).unwrap();
            let mut buf = [0u8; 256];
            let (n, from) = ping.recv_from(&mut buf).unwrap();
            assert_eq!(from, to, "{backend:?}");
            assert_eq!(buf[0], reply, "{backend:?} {to}: an echo reply");
            assert_eq!(
                &buf[6..n],
                &echo_request(request, seq)[6..],
                "same sequence and data"
            );
        }
        let other: IpAddr = match version {
            IpVersion::V4 => "fc00:13::1".parse().unwrap(),
            IpVersion::V6 => "10.13.0.1".parse().unwrap(),
        };
        assert_eq!(
            errno_of(&ping.send_to(b"x", other).unwrap_err()),
            libc::EAFNOSUPPORT
        );
    }
}
both_backends!(icmp_echo, icmp_echo_kernel, icmp_echo_user);

fn nonblocking_and_poll(backend: Backend) {
    let (a, b) = pair(backend, "poll", 14);
    let at = sa("10.14.0.1:7200");
    let l = a.tcp_listener(at).unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(!ready_now(&l, PollFlags::IN), "no connection yet");
    let c = b.tcp_connect_timeout(at, Duration::from_secs(20)).unwrap();
    let rev = wait_for(&l, PollFlags::IN);
    assert!(rev.contains(PollFlags::IN), "{rev:?}");
    let (s, _) = l.accept().unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);

    // A connected stream is writable at once, readable only once data came.
    s.set_nonblocking(true).unwrap();
    c.set_nonblocking(true).unwrap();
    assert!(wait_for(&c, PollFlags::OUT).contains(PollFlags::OUT));
    let mut buf = [0u8; 64];
    assert_eq!(
        (&s).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(!ready_now(&s, PollFlags::IN));
    (&c).write_all(b"ping").unwrap();
    assert!(wait_for(&s, PollFlags::IN).contains(PollFlags::IN));
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 4 {
        match (&s).read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the rest never came");
                wait_for(&s, PollFlags::IN);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, b"ping");

    // A writer that outruns its reader gets WouldBlock, then POLLOUT again once
    // the reader drains.
    let chunk = vec![9u8; 65536];
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match (&c).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "never full after {sent} bytes");
    }
    assert!(sent > 0);
    let mut drained = 0usize;
    let mut big = vec![0u8; 65536];
    while drained < sent {
        match (&s).read(&mut big) {
            Ok(0) => panic!("EOF"),
            Ok(n) => drained += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                wait_for(&s, PollFlags::IN);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(wait_for(&c, PollFlags::OUT).contains(PollFlags::OUT));

    // Blocking again: a read waits for the data, an accept for a connection.
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(T).unwrap();
    l.set_nonblocking(false).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| (&s).write_all(b"pong").unwrap());
        let mut four = [0u8; 4];
        (&c).read_exact(&mut four).unwrap();
        assert_eq!(&four, b"pong");
        let connector = scope.spawn(|| b.tcp_connect(at).unwrap());
        let (_, peer) = l.accept().unwrap();
        assert_eq!(peer, connector.join().unwrap().local_addr().unwrap());
    });

    // UDP: nothing to receive is WouldBlock; a datagram makes it readable.
    let ua = a.udp_bind(sa("10.14.0.1:7201")).unwrap();
    let ub = b.udp_bind(sa("10.14.0.2:0")).unwrap();
    ua.set_nonblocking(true).unwrap();
    assert_eq!(
        ua.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    ub.send_to(b"dgram", sa("10.14.0.1:7201")).unwrap();
    assert!(wait_for(&ua, PollFlags::IN).contains(PollFlags::IN));
    let (n, from) = ua.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"dgram"[..], ub.local_addr().unwrap()));
}
both_backends!(
    nonblocking_and_poll,
    nonblocking_and_poll_kernel,
    nonblocking_and_poll_user
);

fn shutdown(backend: Backend) {
    let (a, b) = pair(backend, "shut", 15);
    let at = sa("[fc00:15::1]:7300");
    let l = a.tcp_listener(at).unwrap();
    let srv = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        c.set_read_timeout(T).unwrap();
        // All the client wrote, then EOF (its shutdown(Write)).
        let mut all = Vec::new();
        (&c).read_to_end(&mut all).unwrap();
        // It can still be written to.
        (&c).write_all(&(all.len() as u64).to_be_bytes()).unwrap();
        (&c).write_all(b"bye").unwrap();
        // Our own shutdown(Write): the client reads EOF.
        c.shutdown(Shutdown::Write).unwrap();
        all
    });
    let c = b.tcp_connect(at).unwrap();
    c.set_read_timeout(T).unwrap();
    let data = pattern(100_000, 7);
    (&c).write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert!(
        (&c).write(b"late").is_err(),
        "written after shutdown(Write)"
    );
    let mut back = Vec::new();
    (&c).read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), 11);
    assert_eq!(u64::from_be_bytes(back[..8].try_into().unwrap()), 100_000);
    assert_eq!(&back[8..], b"bye");
    assert!(srv.join().unwrap() == data, "the server read what was sent");
    // Read: reads give EOF at once.
    let l = a.tcp_listener(sa("10.15.0.1:7301")).unwrap();
    let srv = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        c.set_read_timeout(T).unwrap();
        let mut rest = Vec::new();
        (&c).read_to_end(&mut rest).unwrap();
    });
    let c = b.tcp_connect(sa("10.15.0.1:7301")).unwrap();
    c.shutdown(Shutdown::Read).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!((&c).read(&mut buf).unwrap(), 0);
    drop(c);
    srv.join().unwrap();
}
both_backends!(shutdown, shutdown_kernel, shutdown_user);

fn errors(backend: Backend) {
    let (a, b) = pair(backend, "errors", 16);
    // A port in use.
    let _l = a.tcp_listener(sa("10.16.0.1:7400")).unwrap();
    let e = a.tcp_listener(sa("10.16.0.1:7400")).unwrap_err();
    assert_eq!(errno_of(&e), libc::EADDRINUSE, "{backend:?} tcp: {e}");
    let _u = a.udp_bind(sa("[fc00:16::1]:7401")).unwrap();
    let e = a.udp_bind(sa("[fc00:16::1]:7401")).unwrap_err();
    assert_eq!(errno_of(&e), libc::EADDRINUSE, "{backend:?} udp: {e}");
    // A wildcard holds the port on every address.
    let _w = a.udp_bind(sa("0.0.0.0:7405")).unwrap();
    let e = a.udp_bind(sa("10.16.0.1:7405")).unwrap_err();
    assert_eq!(
        errno_of(&e),
        libc::EADDRINUSE,
        "{backend:?} udp wildcard: {e}"
    );
    // No listener: the peer answers the SYN with a RST.
    for to in ["10.16.0.1:7402", "[fc00:16::1]:7402"] {
        let e = b.tcp_connect(sa(to)).unwrap_err();
        assert_eq!(errno_of(&e), libc::ECONNREFUSED, "{backend:?} {to}: {e}");
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    }
    // No route: nothing is sent.
    for to in ["192.0.2.1:80", "[2001:db8::1]:80"] {
        let e = b.tcp_connect(sa(to)).unwrap_err();
        assert_eq!(errno_of(&e), libc::ENETUNREACH, "{backend:?} {to}: {e}");
        let u = b
            .udp_bind(sa(if to.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            }))
            .unwrap();
        let e = u.send_to(b"x", sa(to)).unwrap_err();
        assert_eq!(errno_of(&e), libc::ENETUNREACH, "{backend:?} udp {to}: {e}");
    }
    // Bad addresses: a datagram to port 0, a link-local peer with no interface
    // named (Linux: EINVAL for both); an address the stack does not have.
    let u = b.udp_bind(sa("10.16.0.2:0")).unwrap();
    let e = u.send_to(b"x", sa("10.16.0.1:0")).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL, "{backend:?} port 0: {e}");
    let e = b.tcp_connect(sa("[fe80::1]:80")).unwrap_err();
    assert_eq!(
        errno_of(&e),
        libc::EINVAL,
        "{backend:?} fe80::1 without scope: {e}"
    );
    let e = b.tcp_listener(sa("10.16.0.1:7403")).unwrap_err();
    assert_eq!(
        errno_of(&e),
        libc::EADDRNOTAVAIL,
        "{backend:?} not ours: {e}"
    );
    let e = b.udp_bind(sa("10.16.0.1:7403")).unwrap_err();
    assert_eq!(
        errno_of(&e),
        libc::EADDRNOTAVAIL,
        "{backend:?} udp not ours: {e}"
    );
    // A stack stays usable after all this.
    let l = a.tcp_listener(sa("10.16.0.1:7404")).unwrap();
    let srv = std::thread::spawn(move || echo(l.accept().unwrap().0));
    drop(echo_through(&b, sa("10.16.0.1:7404"), b"still fine"));
    srv.join().unwrap();
}
both_backends!(errors, errors_kernel, errors_user);

/// The same stack answers on `lo` once it is up, and only then.
fn loopback_needs_lo_up(backend: Backend) {
    let s = common::backends::stack_on(backend, &common::backends::net("lo"));
    let nl = s.netlink().unwrap();
    let lo = nl.link_index("lo").unwrap();
    nl.link_set_up(lo, false).unwrap();
    let e = s.tcp_connect(sa("127.0.0.1:7500")).unwrap_err();
    assert_eq!(errno_of(&e), libc::ENETUNREACH, "{backend:?}: lo down: {e}");
    configure(&s, "eth0", &[]);
    let l = s.tcp_listener(sa("[::1]:7500")).unwrap();
    let srv = std::thread::spawn(move || echo(l.accept().unwrap().0));
    drop(echo_through(&s, sa("[::1]:7500"), b"over lo"));
    srv.join().unwrap();
}
both_backends!(
    loopback_needs_lo_up,
    loopback_needs_lo_up_kernel,
    loopback_needs_lo_up_user
);

/// The `tokio` feature's async sockets over either backend's sockets.
fn tokio_sockets(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = pair(backend, "tokio", 17);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (i, at) in ["[fc00:17::1]:7600", "10.17.0.1:7601"]
            .into_iter()
            .enumerate()
        {
            let at = sa(at);
            let l = vdestack::tokio::TcpListener::bind(&a, at).unwrap();
            let server = tokio::spawn(async move {
                let (mut c, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 200_000];
                c.read_exact(&mut buf).await.unwrap();
                c.write_all(&buf).await.unwrap();
                c.shutdown().await.unwrap();
            });
            let mut c = vdestack::tokio::TcpStream::connect(&b, at).await.unwrap();
            assert_eq!(c.peer_addr().unwrap(), at);
            let data = pattern(200_000, 17 + i as u32);
            c.write_all(&data).await.unwrap();
            let mut back = Vec::new();
            tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut back))
                .await
                .expect("the echo within 20 s")
                .unwrap();
            assert!(back == data, "{backend:?} {at}: the async echo differs");
            server.await.unwrap();
        }
        let e = vdestack::tokio::TcpStream::connect(&b, sa("10.17.0.1:7609"))
            .await
            .unwrap_err();
        assert_eq!(errno_of(&e), libc::ECONNREFUSED, "{backend:?}: {e}");

        let ua = vdestack::tokio::UdpSocket::bind(&a, sa("10.17.0.1:7602")).unwrap();
        let ub = vdestack::tokio::UdpSocket::bind(&b, sa("10.17.0.2:0")).unwrap();
        ub.send_to(b"async hello", sa("10.17.0.1:7602"))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(Duration::from_secs(20), ua.recv_from(&mut buf))
            .await
            .expect("a datagram within 20 s")
            .unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"async hello"[..], ub.local_addr().unwrap())
        );
    });
}
both_backends!(tokio_sockets, tokio_sockets_kernel, tokio_sockets_user);

/// A stack that was a client serves next, and the other way round, on one
/// network: each side's sockets come and go between the echoes.
fn roles_swap(backend: Backend) {
    let (a, b) = pair(backend, "swap", 18);
    for (round, (server, client, at)) in [
        (&a, &b, "10.18.0.1:7700"),
        (&b, &a, "10.18.0.2:7701"),
        (&a, &b, "[fc00:18::1]:7702"),
        (&b, &a, "[fc00:18::2]:7703"),
    ]
    .into_iter()
    .enumerate()
    {
        let l = server
            .tcp_listener(sa(at))
            .unwrap_or_else(|e| panic!("round {round}: listen {at}: {e}"));
        let srv = std::thread::spawn(move || {
            let (c, _) = l
                .accept()
                .unwrap_or_else(|e| panic!("round {round}: accept on {at}: {e}"));
            echo(c)
        });
        drop(echo_through(client, sa(at), &pattern(10_000, round as u32)));
        srv.join().unwrap();
    }
}
both_backends!(roles_swap, roles_swap_kernel, roles_swap_user);
