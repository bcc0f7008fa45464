//! The `vu` library API on a user-space stack: a test makes two user-space
//! stacks joined by `inproc://` (no kernel network at all: frames go between
//! them inside this process), serves one to unmodified programs
//! (`Vu::new(UserNet::new(stack))`) and talks to them from the other with
//! the Rust sockets. No namespace, no privilege: this runs anywhere seccomp
//! user notification does, as any user.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::stacks::configure;
use common::*;
use vdestack::stack::{Backend, Stack};
use vdestack::vu::{UserNet, Vu};

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).stdin(Stdio::null());
    c
}

fn user_stack(url: &str) -> Stack {
    Stack::builder()
        .interface("vde0", url)
        .backend(Backend::User)
        .build()
        .expect("a user-space stack")
}

/// Echoes one connection on `addr` of `stack`, in a thread.
fn echo_once(stack: &Stack, addr: &str) -> std::thread::JoinHandle<usize> {
    let l = stack.tcp_listener(addr.parse().unwrap()).unwrap();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                return total;
            }
            c.write_all(&buf[..n]).unwrap();
            total += n;
        }
    })
}

#[test]
fn programs_on_a_user_stack_talk_to_a_rust_peer_in_process() {
    const T: &str = "programs_on_a_user_stack_talk_to_a_rust_peer_in_process";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    for tool in ["ip", "nc", "ping", "python3"] {
        if !have_tool(T, tool) {
            return;
        }
    }
    let lan = format!("inproc://vu-user-api-{}", std::process::id());
    let peer = user_stack(&lan);
    configure(&peer, "vde0", &[("10.0.0.2", 24), ("fd00::2", 64)]);
    let mut vu = Vu::new(UserNet::new(user_stack(&lan)).unwrap());

    let dir = TempDir::new("vu-user-api");
    let input = dir.path("in");
    let mut r = Rng::new(21);
    let data: Vec<u8> = (0..1 << 20).map(|_| r.next() as u8).collect();
    std::fs::write(&input, &data).unwrap();
    let e4 = echo_once(&peer, "10.0.0.2:7");
    let e6 = echo_once(&peer, "[fd00::2]:7");
    let script = format!(
        "ip link set lo up && ip addr add 10.0.0.1/24 dev vde0 && \
         ip -6 addr add fd00::1/64 dev vde0 && ip link set vde0 up && \
         ping -c 2 -i 0.2 -w 20 10.0.0.2 && ping -6 -c 2 -i 0.2 -w 20 fd00::2 && \
         nc -N 10.0.0.2 7 < {i} > {o}4 && nc -N fd00::2 7 < {i} > {o}6",
        i = input.display(),
        o = dir.join_str("out"),
    );
    let st = vu.run(sh(&script)).unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(e4.join().unwrap(), data.len());
    assert_eq!(e6.join().unwrap(), data.len());
    assert!(
        std::fs::read(dir.path("out4")).unwrap() == data,
        "IPv4 echo differs"
    );
    assert!(
        std::fs::read(dir.path("out6")).unwrap() == data,
        "IPv6 echo differs"
    );
    // What the program configured, the caller sees.
    let nl = vu.net().stack().netlink().unwrap();
    let vde0 = nl.link_index("vde0").unwrap();
    let addrs = format!("{:?}", nl.addrs().unwrap());
    assert!(addrs.contains("10.0.0.1"), "{addrs} (vde0 is {vde0})");

    // A server under vu (python's http.server), a Rust client on the peer.
    let www = dir.path("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("file"), &data[..200_000]).unwrap();
    let done = dir.join_str("done");
    let done_flag = done.clone();
    let server = std::thread::spawn(move || {
        let st = vu.run(sh(&format!(
            "python3 -m http.server --bind 10.0.0.1 8000 --directory {} 2>/dev/null & p=$!; \
             until [ -e {done} ]; do sleep 0.1; done; kill $p",
            www.display()
        )));
        (vu, st)
    });
    let to: SocketAddr = "10.0.0.1:8000".parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        assert!(Instant::now() < deadline, "python's server never answered");
        let Ok(mut c) = peer.tcp_connect(to) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        c.write_all(b"GET /file HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).unwrap();
        break answer;
    };
    std::fs::write(&done_flag, b"").unwrap();
    let (_vu, st) = server.join().unwrap();
    assert!(st.unwrap().success());
    assert!(
        body.starts_with(b"HTTP/1.0 200"),
        "{:?}",
        &body[..body.len().min(80)]
    );
    assert!(body.ends_with(&data[..200_000]), "the file differs");
}

/// Echoes every TCP connection on `addr` of `stack` (a thread each) and every
/// UDP datagram on `udp`, for the rest of the test.
fn echo_servers(stack: &Stack, tcp: &[&str], udp: &str) {
    for a in tcp {
        let l = stack.tcp_listener(a.parse().unwrap()).unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }
    let u = stack.udp_bind(udp.parse().unwrap()).unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = u.recv_from(&mut buf) {
            let _ = u.send_to(&buf[..n], from);
        }
    });
}

#[test]
fn the_socket_calls_of_a_program_on_a_user_stack() {
    const T: &str = "the_socket_calls_of_a_program_on_a_user_stack";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    for tool in ["ip", "python3", "cat"] {
        if !have_tool(T, tool) {
            return;
        }
    }
    let lan = format!("inproc://vu-user-calls-{}", std::process::id());
    let peer = user_stack(&lan);
    configure(&peer, "vde0", &[("10.0.0.2", 24), ("fd00::2", 64)]);
    echo_servers(&peer, &["10.0.0.2:7", "[fd00::2]:7"], "10.0.0.2:9");
    let mut vu = Vu::new(UserNet::new(user_stack(&lan)).unwrap());
    let dir = TempDir::new("vu-user-calls");
    let out = dir.path("out");
    let script = format!(
        "ip link set lo up && ip addr add 10.0.0.1/24 dev vde0 && \
         ip -6 addr add fd00::1/64 dev vde0 && ip link set vde0 up && \
         python3 {} > {} 2>&1",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vu_sockets.py"),
        out.display()
    );
    // The stack lives until the peer has read its echoes: the program may
    // end (its last `cat` gone) before the stack has sent what `cat` wrote,
    // and a dropped stack sends nothing more.
    let run = std::thread::spawn(move || (vu.run(sh(&script)), vu));
    // The inetd-style server: two connections from the peer, each echoed by
    // its own `cat`.
    let deadline = Instant::now() + Duration::from_secs(90);
    let port = loop {
        let said = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(p) = said.lines().find_map(|l| l.strip_prefix("LISTEN ")) {
            break p.trim().parse::<u16>().unwrap();
        }
        assert!(
            Instant::now() < deadline && !run.is_finished(),
            "the program never listened:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for i in 0..2 {
        let mut c = peer
            .tcp_connect(SocketAddr::from(([10, 0, 0, 1], port)))
            .unwrap();
        let msg = format!("connection {i}");
        c.write_all(msg.as_bytes()).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        if back != msg {
            // What the program said (its checks) tells which side stalled.
            let _ = run.join();
            let said = std::fs::read_to_string(&out).unwrap_or_default();
            panic!("connection {i} echoed {back:?}; the program said:\n{said}");
        }
    }
    let (st, _vu) = run.join().unwrap();
    let st = st.unwrap();
    let said = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(st.success(), "{st}\n{said}");
    assert!(said.ends_with("OK\n"), "{said}");
}

#[test]
fn a_user_stack_where_no_namespace_can_be_made() {
    const T: &str = "a_user_stack_where_no_namespace_can_be_made";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    for tool in ["ip", "nc", "unshare"] {
        if !have_tool(T, tool) {
            return;
        }
    }
    // `vdestack vu -` (only lo) as Docker's default profile runs it: no
    // unshare, setns, or clone with CLONE_NEW*. The program talks to itself
    // over the stack's lo.
    let dir = TempDir::new("vu-user-nons");
    let out = dir.join_str("out");
    let mut c = Command::new(vdestack_bin());
    vdestack::diagnostics::deny_namespaces_on_exec(&mut c).unwrap();
    c.args([
        "vu",
        "-",
        "--",
        "/bin/sh",
        "-c",
        &format!(
            "unshare -Urn true 2>/dev/null; echo unshare $?; ip link set lo up && \
             {{ nc -l 127.0.0.1 5000 > {out} & }} && n=0; \
             until echo over-lo | nc -N 127.0.0.1 5000; do \
             n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done; wait; cat {out}"
        ),
    ])
    .stdin(Stdio::null());
    let o = output_within(c, Duration::from_secs(60)).expect("vdestack vu hung");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    assert_ne!(lines.next(), Some("unshare 0"), "a namespace could be made");
    assert_eq!(lines.next(), Some("over-lo"), "{stdout}\n{stderr}");
}

/// A DNS server on `addr` of `stack` that answers every A question with
/// `answer` (and others with no record), for the rest of the test.
fn dns_server(stack: &Stack, addr: &str, answer: [u8; 4]) {
    let u = stack.udp_bind(addr.parse().unwrap()).unwrap();
    std::thread::spawn(move || {
        let mut q = vec![0u8; 1500];
        while let Ok((n, from)) = u.recv_from(&mut q) {
            let q = &q[..n];
            // The name ends at its 0 label; then type and class.
            let Some(end) = q.get(12..).and_then(|r| r.iter().position(|&b| b == 0)) else {
                continue;
            };
            let qend = 12 + end + 1 + 4;
            if qend > q.len() {
                continue;
            }
            let a = q[qend - 4..qend - 2] == [0, 1];
            let mut r = Vec::new();
            r.extend_from_slice(&q[..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, a as u8, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..qend]);
            if a {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer);
            }
            let _ = u.send_to(&r, from);
        }
    });
}

#[test]
fn the_resolver_asks_the_served_resolv_confs_name_server_through_the_stack() {
    const T: &str = "the_resolver_asks_the_served_resolv_confs_name_server_through_the_stack";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    for tool in ["ip", "getent"] {
        if !have_tool(T, tool) {
            return;
        }
    }
    let lan = format!("inproc://vu-user-dns-{}", std::process::id());
    let peer = user_stack(&lan);
    configure(&peer, "vde0", &[("10.0.0.2", 24)]);
    dns_server(&peer, "10.0.0.2:53", [10, 0, 0, 99]);
    let mut vu = Vu::new(UserNet::new(user_stack(&lan)).unwrap());
    vu.resolv_conf("nameserver 10.0.0.2\n");
    let dir = TempDir::new("vu-user-dns");
    let out = dir.path("out");
    let st = vu
        .run(sh(&format!(
            "ip link set lo up && ip addr add 10.0.0.1/24 dev vde0 && ip link set vde0 up && \
             cat /etc/resolv.conf > {o} && getent ahostsv4 vu-test.example >> {o}",
            o = out.display()
        )))
        .unwrap();
    let said = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(st.success(), "{st}\n{said}");
    assert!(said.starts_with("nameserver 10.0.0.2\n"), "{said}");
    assert!(
        said.contains("10.0.0.99") && said.contains("vu-test.example"),
        "{said}"
    );
}

#[test]
fn vdestack_vu_r_serves_a_resolv_conf() {
    const T: &str = "vdestack_vu_r_serves_a_resolv_conf";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    let run = |args: &[&str]| {
        let mut c = Command::new(vdestack_bin());
        c.arg("vu").args(args).stdin(Stdio::null());
        output_within(c, Duration::from_secs(60)).expect("vdestack vu hung")
    };
    let o = run(&[
        "-R",
        "192.0.2.53, 2001:db8::53",
        "-",
        "--",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"
    );
    // Relative to /etc, and through `..`: the same file.
    let o = run(&[
        "-R",
        "192.0.2.53",
        "-",
        "--",
        "sh",
        "-c",
        "cd /etc && cat ./resolv.conf ../etc/resolv.conf",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "nameserver 192.0.2.53\nnameserver 192.0.2.53\n"
    );
    let o = run(&["-R", "not-an-address", "-", "--", "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not-an-address"));
    // -i names the interfaces.
    let o = run(&[
        "-i",
        "net",
        "inproc://vu-cli-prefix",
        "--",
        "ip",
        "-o",
        "link",
        "show",
        "net0",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("2: net0:"),
        "{o:?}"
    );
    // --stack mem takes no URL.
    let o = run(&["--stack", "mem", "vxvde://239.0.0.1", "--", "true"]);
    assert!(!o.status.success());
}
