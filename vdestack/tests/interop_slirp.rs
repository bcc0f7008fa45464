//! `slirp://` end to end, ours (`vdestack ns slirp://`) and Debian's C plugin
//! (`vdens slirp://`) through the same steps: an address from slirp's DHCP
//! (busybox `udhcpc`, the same client on both sides; our own client against slirp
//! is tested in `dhcp_dnsmasq.rs`), a file from an HTTP server
//! on the test namespace's loopback through 10.0.2.2, a name served by dnsmasq on
//! that loopback through slirp's DNS forwarder (10.0.2.3), the same file over
//! IPv6 through fd00::2 once the router advertisement configured an address, and
//! a `tcpfwd` port forward (the guest reaches its own listener through the
//! host's side of the forward).
//!
//! SAFETY: slirp reaches the host's network. Here the host is the test's private
//! namespace (`sandbox_test!`), whose only interface is its loopback; and the
//! plug runs in a private mount namespace whose `/etc/resolv.conf` names the
//! dnsmasq on that loopback, so slirp's DNS forwarder asks nobody else.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The name dnsmasq serves, and its addresses.
const NAME: &str = "vdestack-test.example";
const NAME_V4: &str = "10.99.0.7";
const NAME_V6: &str = "fd99::7";

/// The DHCP client's script: configure what was leased, and say it.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
	ip addr add "$ip/$mask" dev "$interface"
	[ -n "$router" ] && ip route add default via "$router" dev "$interface"
	echo "LEASE ip=$ip mask=$mask router=$router dns=$dns"
	;;
esac
"#;

fn ready(test: &str) -> bool {
    for tool in ["busybox", "python3", "dnsmasq", "unshare", "mount"] {
        if !have_tool(test, tool) {
            return false;
        }
    }
    if let Err(e) = vdestack::diagnostics::slirp_version() {
        skip(test, &format!("{e}"));
        return false;
    }
    have_tun(test)
}

/// The guest's steps; every result is a tagged line on stdout.
fn guest_script(dir: &Path, http: u16, fwd: u16) -> String {
    format!(
        r#"set -u
ip link set vde0 up
busybox udhcpc -i vde0 -n -q -t 10 -T 1 -s {dir}/udhcpc.sh 2>&1
echo "HTTP4 $(busybox wget -q -O - http://10.0.2.2:{http}/file.txt)"
busybox nslookup {NAME} 10.0.2.3 2>&1 | sed 's/^/DNS /'
i=0
while [ $i -lt 80 ] && ! ip -6 addr show dev vde0 scope global | grep -v tentative | grep -q 'inet6 fd00:'; do
	sleep 0.25; i=$((i+1))
done
ip -6 addr show dev vde0 scope global | sed 's/^/ADDR6 /'
echo "HTTP6 $(busybox wget -q -O - http://[fd00::2]:{http}/file.txt)"
busybox nc -l -p 7777 -e echo fwd-reached &
sleep 0.5
echo "FWD $(busybox nc 10.0.2.2 {fwd} </dev/null)"
wait
echo GUEST-DONE
"#,
        dir = dir.display()
    )
}

/// A free TCP port on the loopback (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The "host" side: an HTTP server and dnsmasq on the namespace's loopback.
struct Host {
    _http: Proc,
    _dns: Proc,
    http_port: u16,
    content: String,
}

fn start_host(dir: &TempDir) -> Host {
    let content = format!("slirp-test-file-{}", std::process::id());
    std::fs::write(dir.path("file.txt"), &content).unwrap();
    let http_port = free_port();
    let mut c = Command::new("python3");
    c.args(["-m", "http.server", "--bind", "::"])
        .arg(http_port.to_string())
        .arg("--directory")
        .arg(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let http = Proc::spawn(c);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTP server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut c = Command::new("dnsmasq");
    c.args([
        // Debug mode: in the foreground, and no change of user or group (which
        // fails in a user namespace, where setgroups is denied).
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--port=53",
        "--pid-file=",
        "--log-facility=-",
    ])
    .arg(format!("--address=/{NAME}/{NAME_V4}"))
    .arg(format!("--address=/{NAME}/{NAME_V6}"))
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut dns = Proc::spawn(c);
    let log = BufReader::new(dns.child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in log.lines() {
        let line = line.unwrap_or_default();
        let started = line.contains("started");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("started")),
        "dnsmasq did not start: {seen:#?}"
    );
    std::fs::write(dir.path("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    std::fs::write(dir.path("udhcpc.sh"), UDHCPC_SCRIPT).unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(dir.path("udhcpc.sh"))
        .status()
        .unwrap();
    Host {
        _http: http,
        _dns: dns,
        http_port,
        content,
    }
}

/// Runs `program ARGS` in a private mount namespace whose /etc/resolv.conf names
/// the dnsmasq on the loopback; returns its stdout.
fn run_guest(dir: &TempDir, program: &str, args: &[&str]) -> String {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/resolv.conf && shift && exec "$@""#)
        .arg("sh")
        .arg(dir.path("resolv.conf"))
        .arg(program)
        .args(args)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null());
    // What it printed is checked, not how it ended (Debian's vdens exits 0
    // whatever its command did): one that has not exited after 120 s is killed
    // and its output checked all the same; a guest that hung before its last
    // step lacks GUEST-DONE there. (Once in CI, Debian's vdens with its slirp
    // plugin had not ended after 120 s, and what it had printed was lost.)
    let (status, stdout, stderr) = output_or_killed(c, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&stdout).into_owned();
    let status = status.map_or_else(
        || "did not exit within 120 s: killed".to_string(),
        |s| s.to_string(),
    );
    eprintln!(
        "== {program}: {status}\n{text}\n== stderr:\n{}",
        String::from_utf8_lossy(&stderr)
    );
    text
}

/// Checks the guest's output, step by step.
fn check(who: &str, out: &str, host: &Host) {
    let line = |tag: &str| -> Vec<&str> {
        out.lines()
            .filter_map(|l| l.strip_prefix(tag))
            .map(str::trim)
            .collect()
    };
    let lease = line("LEASE");
    assert!(
        lease.iter().any(|l| l.contains("ip=10.0.2.15")
            && l.contains("router=10.0.2.2")
            && l.contains("dns=10.0.2.3")),
        "{who}: no DHCP lease of 10.0.2.15 from 10.0.2.2: {out}"
    );
    assert_eq!(
        line("HTTP4"),
        [host.content.as_str()],
        "{who}: HTTP over IPv4: {out}"
    );
    let dns = line("DNS");
    assert!(
        dns.iter().any(|l| l.contains(NAME)) && dns.iter().any(|l| l.contains(NAME_V4)),
        "{who}: {NAME} not resolved through the DNS forwarder: {out}"
    );
    assert!(
        line("ADDR6").iter().any(|l| l.contains("inet6 fd00:")),
        "{who}: no IPv6 address from slirp's router advertisement: {out}"
    );
    assert_eq!(
        line("HTTP6"),
        [host.content.as_str()],
        "{who}: HTTP over IPv6: {out}"
    );
    assert_eq!(line("FWD"), ["fwd-reached"], "{who}: tcpfwd: {out}");
    assert!(
        out.contains("GUEST-DONE"),
        "{who}: the guest did not finish: {out}"
    );
}

sandbox_test! {
    fn slirp_dhcp_http_dns_ipv6_and_tcpfwd_ours_and_debians() {
        const T: &str = "slirp_dhcp_http_dns_ipv6_and_tcpfwd_ours_and_debians";
        if !ready(T) {
            return;
        }
        let dir = TempDir::new("slirp");
        let host = start_host(&dir);
        let fwd = free_port();
        let url = format!("slirp:///tcpfwd=127.0.0.1:{fwd}:10.0.2.15:7777");
        let script = guest_script(&dir.0, host.http_port, fwd);

        let ours = run_guest(
            &dir,
            &vdestack_bin(),
            &["ns", &url, "/bin/sh", "-c", &script],
        );
        check("vdestack ns slirp://", &ours, &host);

        if !Path::new("/usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so").exists()
            || !have_tool(T, "vdens")
        {
            skip(T, "Debian's side needs vdens and libvdeplug-slirp");
            return;
        }
        // A new port: the first forward's listener is gone with its plug, but
        // the kernel may hold the port a moment.
        let fwd = free_port();
        let url = format!("slirp:///tcpfwd=127.0.0.1:{fwd}:10.0.2.15:7777");
        let script = guest_script(&dir.0, host.http_port, fwd);
        let theirs = run_guest(&dir, "vdens", &[&url, "/bin/sh", "-c", &script]);
        check("vdens slirp://", &theirs, &host);
    }
}

sandbox_test! {
    fn slirp_refuses_what_it_cannot_do_with_a_clear_error() {
        const T: &str = "slirp_refuses_what_it_cannot_do_with_a_clear_error";
        if vdestack::diagnostics::slirp_version().is_err() {
            skip(T, "libslirp is not installed");
            return;
        }
        // A port that is taken cannot be forwarded: an error naming the forward.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = vdestack::vde::open(&format!("slirp:///tcpfwd=127.0.0.1:{port}:10.0.2.15:80"))
            .expect_err("a forward from a port in use");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        let e = vdestack::vde::open("slirp:///mtu=9").expect_err("a bad MTU");
        assert!(e.to_string().contains("mtu"), "{e}");
        // Opening and dropping many plugs leaves no thread and no fd behind.
        let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
        let (f0, t0) = (fds(), threads());
        for _ in 0..20 {
            let p = vdestack::vde::open("slirp://").unwrap();
            drop(p);
        }
        assert_eq!((fds(), threads()), (f0, t0), "fds and threads before and after");
    }
}
