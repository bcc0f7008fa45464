//! `vdestack vu URL -- CMD` on a user-space stack: unmodified programs (`ip`,
//! `ping`, `nc`, `curl`, `python3 -m http.server`, `iperf3`) with every IP
//! socket served by the stack, against real Debian peers (`vdens`, a C echo
//! server built on Debian's libvdestack) on `vxvde://` inside the test's own
//! network namespace; and the isolation: the machine's own network (here: the
//! test namespace's loopback) is out of reach. `vdestack vu` runs under a
//! Docker-like filter that refuses new namespaces (the peers make theirs).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::vdens::vdens_run;
use common::*;

const LIMIT: Duration = Duration::from_secs(120);

/// `vdestack vu URL -- /bin/sh -c SCRIPT` where no namespace can be made (a
/// Docker-like seccomp filter refuses them to `vdestack vu` and all it runs).
fn vu_command(url: &str, script: &str) -> Command {
    let mut c = Command::new(vdestack_bin());
    c.args(["vu", url, "--", "/bin/sh", "-c", script])
        .stdin(Stdio::null());
    vdestack::diagnostics::deny_namespaces_on_exec(&mut c).unwrap();
    c
}

/// `vdestack vu URL -- /bin/sh -c SCRIPT`: (exit code, stdout, stderr).
fn vu_sh(url: &str, script: &str) -> (i32, String, String) {
    let c = vu_command(url, script);
    let out = output_within(c, LIMIT).unwrap_or_else(|| panic!("vdestack vu hung on {script}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The same, started in the background (killed on drop).
fn vu_spawn(url: &str, script: &str) -> Proc {
    let mut c = vu_command(url, script);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    Proc::spawn(c)
}

/// Waits for `p` to end; its (status, stdout, stderr).
fn finish(mut p: Proc, limit: Duration) -> (i32, String, String) {
    use std::io::Read;
    let mut out = String::new();
    let mut err = String::new();
    let status = p.wait_exit(limit);
    if let Some(mut o) = p.child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = p.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.and_then(|s| s.code()).unwrap_or(-1), out, err)
}

/// The configuration of our side: vde0 with 10.0.0.1/24 and fd00::1/64, up,
/// through the program's own `ip` (served by the stack's netlink server).
const OUR_CONFIG: &str = "ip link set lo up && ip addr add 10.0.0.1/24 dev vde0 && \
    ip -6 addr add fd00::1/64 dev vde0 && ip link set vde0 up";

/// The peer's: 10.0.0.2/24 and fd00::2/64.
const PEER_CONFIG: &str = "ip link set vde0 up && ip addr add 10.0.0.2/24 dev vde0 && \
    ip -6 addr add fd00::2/64 dev vde0 nodad";

/// A `vdens` peer on `url`, configured, running `script` then sleeping (killed
/// on drop).
fn vdens_peer(url: &str, script: &str) -> Proc {
    let mut c = Command::new("vdens");
    c.arg(url)
        .args([
            "/bin/sh",
            "-c",
            &format!("{PEER_CONFIG} && {{ {script} ; }} ; sleep 120"),
        ])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc::spawn(c)
}

fn peers_ready(test: &str) -> bool {
    vdestack::vu::check_support()
        .map_err(|e| skip(test, &format!("{e}")))
        .is_ok()
        && have_tool(test, "vdens")
        && have_tool(test, "ip")
        && have_tun(test)
}

/// A file of `n` pseudo-random bytes.
fn random_file(path: &Path, n: usize, seed: u64) {
    let mut r = Rng::new(seed);
    let data: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
    std::fs::write(path, data).unwrap();
}

fn same_files(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) if x == y => true,
        (Ok(x), Ok(y)) => {
            let first = x.iter().zip(&y).position(|(p, q)| p != q);
            eprintln!(
                "{} has {} bytes, {} has {} (first difference at {first:?})",
                a.display(),
                x.len(),
                b.display(),
                y.len()
            );
            false
        }
        (x, y) => {
            eprintln!(
                "reading {}: {:?}, {}: {:?}",
                a.display(),
                x.err(),
                b.display(),
                y.err()
            );
            false
        }
    }
}

/// The packets received, from each `N packets transmitted, M received` line.
fn ping_received(out: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| l.split(" packets transmitted, ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect()
}

/// The `ttl=` of each reply line (`None` for a line without one).
fn ping_ttls(out: &str) -> Vec<Option<u32>> {
    out.lines()
        .filter(|l| l.contains(" bytes from "))
        .map(|l| {
            let t = l.split(" ttl=").nth(1)?;
            t.split(' ').next()?.parse().ok()
        })
        .collect()
}

sandbox_test! {
    fn ip_configures_vde0_and_ping_reaches_a_vdens_peer() {
        const T: &str = "ip_configures_vde0_and_ping_reaches_a_vdens_peer";
        if !peers_ready(T) || !have_tool(T, "ping") {
            return;
        }
        let url = "vxvde://239.1.16.1";
        let _peer = vdens_peer(url, "true");
        let (code, out, err) = vu_sh(
            url,
            &format!(
                "{OUR_CONFIG} && ip -o addr show dev vde0 && ip -o link show vde0 && \
                 ping -c 3 -i 0.2 -w 30 10.0.0.2 && ping -6 -c 3 -i 0.2 -w 30 fd00::2"
            ),
        );
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("inet 10.0.0.1/24"), "{out}");
        assert!(out.contains("inet6 fd00::1/64"), "{out}");
        assert!(out.contains("state UP") || out.contains(",UP"), "{out}");
        let got = ping_received(&out);
        assert!(got.len() == 2 && got.iter().all(|&n| n >= 3), "{out}");
        // The hop limit the replies came with (IP_RECVTTL, IPV6_RECVHOPLIMIT):
        // the peer's 64, no router between.
        let ttls = ping_ttls(&out);
        assert!(ttls.len() >= 6, "{out}");
        assert!(ttls.iter().all(|t| t.is_some_and(|t| t > 0)), "{out}");
    }
}

sandbox_test! {
    fn nc_echoes_a_megabyte_with_a_libvdestack_server() {
        const T: &str = "nc_echoes_a_megabyte_with_a_libvdestack_server";
        if !peers_ready(T) || !have_tool(T, "gcc") || !have_tool(T, "nc")
            || !have_tool(T, "busybox")
        {
            return;
        }
        if !Path::new("/usr/include/vdestack.h").exists() {
            return skip(T, "Debian's libvdestack-dev is not installed");
        }
        let dir = TempDir::new("vu-user-echo");
        let prog = dir.path("libvdestack_echo");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/libvdestack_echo.c");
        let st = Command::new("gcc")
            .arg(src)
            .arg("-o")
            .arg(&prog)
            .arg("-lvdestack")
            .status()
            .unwrap();
        assert!(st.success(), "gcc failed");
        let url = "vxvde://239.1.16.2";
        let mut c = Command::new(&prog);
        c.arg(url).stdout(Stdio::piped());
        let mut server = Proc::spawn(c);
        let mut ready = String::new();
        BufReader::new(server.child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready, "ready\n");

        let input = dir.path("in");
        random_file(&input, 1 << 20, 16);
        let (i, o4, o6) = (input.display(), dir.join_str("out4"), dir.join_str("out6"));
        // The server's addresses: 10.77.2.1, fc00:77::1 (tests/c/libvdestack_echo.c).
        let script = format!(
            "ip link set vde0 up && ip addr add 10.77.2.2/24 dev vde0 && \
             ip -6 addr add fc00:77::2/64 dev vde0 && \
             ping -c 1 -w 30 10.77.2.1 >/dev/null && \
             nc -N -w 30 10.77.2.1 5000 < {i} > {o4} && \
             ping -6 -c 1 -w 30 fc00:77::1 >/dev/null && \
             nc -N -w 30 fc00:77::1 5000 < {i} > {o6}"
        );
        let (code, out, err) = vu_sh(url, &script);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(same_files(&input, &dir.path("out4")), "IPv4 echo differs");
        assert!(same_files(&input, &dir.path("out6")), "IPv6 echo differs");
        assert!(server.child.try_wait().unwrap().is_none(), "the C server died");
    }
}

sandbox_test! {
    fn nc_listens_and_receives_a_megabyte_from_a_vdens_peer() {
        const T: &str = "nc_listens_and_receives_a_megabyte_from_a_vdens_peer";
        if !peers_ready(T) || !have_tool(T, "nc") {
            return;
        }
        let dir = TempDir::new("vu-user-ncl");
        let input = dir.path("in");
        random_file(&input, 1 << 20, 17);
        let url = "vxvde://239.1.16.3";
        let ours = vu_spawn(
            url,
            &format!("{OUR_CONFIG} && nc -l 10.0.0.1 5001 > {}", dir.join_str("out")),
        );
        // Once our side answers pings, refused until nc listens: the peer
        // tries again.
        let peer = vdens_run(
            url,
            &format!(
                "{PEER_CONFIG} && n=0; until ping -c 1 -W 1 10.0.0.1 >/dev/null; do \
                 n=$((n+1)); [ $n -gt 60 ] && exit 1; done; \
                 n=0; until nc -N -w 30 10.0.0.1 5001 < {}; do \
                 n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.2; done",
                input.display()
            ),
            LIMIT,
        );
        assert!(peer.ok(), "{peer}");
        let (code, out, err) = finish(ours, LIMIT);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(same_files(&input, &dir.path("out")), "what nc -l received differs");
    }
}

sandbox_test! {
    fn what_a_program_sends_before_it_exits_reaches_the_peer() {
        const T: &str = "what_a_program_sends_before_it_exits_reaches_the_peer";
        if !peers_ready(T) || !have_tool(T, "nc") || !have_tool(T, "python3") {
            return;
        }
        // The program writes 1 MiB and exits at once, without closing: the
        // stack must still deliver it all, and the FIN, as the kernel would
        // after the process is gone (`vdestack vu` waits for the peer's ACKs
        // before it drops the stack).
        let dir = TempDir::new("vu-user-exit");
        let input = dir.path("in");
        random_file(&input, 1 << 20, 19);
        let (got, done) = (dir.join_str("got"), dir.join_str("done"));
        let url = "vxvde://239.1.16.6";
        let _peer = vdens_peer(url, &format!("nc -l 10.0.0.2 5003 > {got}; touch {done}"));
        let send = dir.path("send.py");
        std::fs::write(
            &send,
            format!(
                "import os, socket, time\n\
                 data = open({:?}, 'rb').read()\n\
                 for _ in range(300):\n\
                 \x20   try:\n\
                 \x20       s = socket.create_connection(('10.0.0.2', 5003))\n\
                 \x20       break\n\
                 \x20   except OSError:\n\
                 \x20       time.sleep(0.1)\n\
                 s.sendall(data)\n\
                 os._exit(0)\n",
                input.display().to_string()
            ),
        )
        .unwrap();
        let (code, out, err) = vu_sh(url, &format!("{OUR_CONFIG} && python3 {}", send.display()));
        assert_eq!(code, 0, "{out}\n{err}");
        let deadline = std::time::Instant::now() + LIMIT;
        while !Path::new(&done).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(Path::new(&done).exists(), "the peer's nc -l never ended (no FIN)");
        assert!(same_files(&input, Path::new(&got)), "what the peer received differs");
    }
}

sandbox_test! {
    fn python_http_server_serves_curl_in_a_vdens_peer() {
        const T: &str = "python_http_server_serves_curl_in_a_vdens_peer";
        if !peers_ready(T) || !have_tool(T, "python3") || !have_tool(T, "curl") {
            return;
        }
        let dir = TempDir::new("vu-user-http");
        let www = dir.path("www");
        std::fs::create_dir(&www).unwrap();
        random_file(&www.join("file"), 300_000, 18);
        let done = dir.join_str("done");
        let url = "vxvde://239.1.16.4";
        let ours = vu_spawn(
            url,
            &format!(
                "{OUR_CONFIG} && {{ python3 -m http.server --bind 10.0.0.1 8000 \
                 --directory {} & p=$!; until [ -e {done} ]; do sleep 0.1; done; kill $p; }}",
                www.display()
            ),
        );
        let got = dir.join_str("got");
        let peer = vdens_run(
            url,
            &format!(
                "{PEER_CONFIG} && n=0; until curl -sf -o {got} http://10.0.0.1:8000/file; do \
                 n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.2; done"
            ),
            LIMIT,
        );
        std::fs::write(&done, b"").unwrap();
        let (_, out, err) = finish(ours, LIMIT);
        assert!(peer.ok(), "{peer}\n--- ours\n{out}\n{err}");
        assert!(same_files(&www.join("file"), &dir.path("got")), "the file differs");
        // The server logged the peer's request with its address.
        assert!(err.contains("10.0.0.2") && err.contains("GET /file"), "{err}");
    }
}

sandbox_test! {
    fn iperf3_client_and_server_with_a_vdens_peer() {
        const T: &str = "iperf3_client_and_server_with_a_vdens_peer";
        if !peers_ready(T) || !have_tool(T, "iperf3") {
            return;
        }
        let url = "vxvde://239.1.16.5";
        // Ours serves, the peer sends.
        let ours = vu_spawn(url, &format!("{OUR_CONFIG} && iperf3 -s -1 -B 10.0.0.1"));
        let peer = vdens_run(
            url,
            &format!(
                "{PEER_CONFIG} && n=0; until iperf3 -c 10.0.0.1 -t 2; do \
                 n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.2; done"
            ),
            LIMIT,
        );
        assert!(peer.ok(), "{peer}");
        assert!(peer.stdout.contains("receiver"), "{peer}");
        let (code, out, err) = finish(ours, LIMIT);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("receiver"), "{out}");

        // The peer serves, ours sends (4 streams).
        let _server = vdens_peer(url, "iperf3 -s -1 -B 10.0.0.2");
        let (code, out, err) = vu_sh(
            url,
            &format!(
                "{OUR_CONFIG} && n=0; until iperf3 -c 10.0.0.2 -t 2 -P 4; do \
                 n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.2; done"
            ),
        );
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("[SUM]") && out.contains("receiver"), "{out}");
    }
}

sandbox_test! {
    fn the_machines_own_loopback_is_out_of_reach() {
        const T: &str = "the_machines_own_loopback_is_out_of_reach";
        if let Err(e) = vdestack::vu::check_support() {
            return skip(T, &format!("{e}"));
        }
        if !have_tool(T, "nc") || !have_tool(T, "ip") {
            return;
        }
        // A listener on the test namespace's loopback, and a UDP socket.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let uport = u.local_addr().unwrap().port();
        u.set_nonblocking(true).unwrap();
        // Unsupervised, nc reaches them (so the check below can fail).
        let st = Command::new("nc")
            .args(["-z", "-w", "5", "127.0.0.1", &port.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "nc does not reach the listener even unsupervised");
        assert!(l.accept().is_ok());
        // Under vu, lo is the stack's own: up, with 127.0.0.1, and nobody there.
        let (code, out, err) = vu_sh(
            "-",
            &format!(
                "ip link set lo up; \
                 if nc -z -w 5 127.0.0.1 {port}; then echo REACHED; else echo refused; fi; \
                 echo x | nc -u -w 1 127.0.0.1 {uport}; \
                 if nc -z -w 5 10.1.2.3 {port}; then echo REACHED; else echo unreachable; fi"
            ),
        );
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(!out.contains("REACHED"), "{out}\n{err}");
        assert!(out.contains("refused") && out.contains("unreachable"), "{out}\n{err}");
        assert!(l.accept().is_err(), "a connection reached the kernel's listener");
        let mut b = [0u8; 16];
        assert!(u.recv_from(&mut b).is_err(), "a datagram reached the kernel's socket");
    }
}
