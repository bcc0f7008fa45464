//! The DHCP client of the configuration string on kernel stacks against Debian's
//! dnsmasq (`common::dnsmasq`: in a Debian `vdens` on a Debian `vde_switch`, T1
//! 2 s so renewals come fast) and libslirp's DHCP server:
//!
//! * `vdestack ip config iface=vde0,eth,dhcp` in `vdestack ns` gets an address of
//!   the range and the router as its default route, reports the DNS server,
//!   renews (dnsmasq acknowledges again and again), and `-dhcp` gives the lease
//!   back (dnsmasq logs the DHCPRELEASE; the address and route are gone);
//! * the renewer that command leaves behind ends by itself when its namespace
//!   goes;
//! * a library stack (`configure_with` over the stack's sockets) gets a lease,
//!   reaches the router, and its renewer thread ends when the stack is dropped;
//! * from slirp: 10.0.2.15/24 via 10.0.2.2.
//!
//! A user-space stack's DHCP client: `user_stack_dhcp.rs`.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::dnsmasq::{self, in_range, Dnsmasq, DNS, ROUTER};
use common::*;
use vdestack::nl::config::configure_with;
use vdestack::stack::Stack;

/// The address in a `dhcp: A/24 router R ...` report line.
fn reported(text: &str) -> Option<(Ipv4Addr, String)> {
    let line = text.lines().find(|l| l.starts_with("dhcp: "))?;
    let addr = line
        .split_whitespace()
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    Some((addr, line.to_string()))
}

fn dhcp_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| t.ok())
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "vdestack-dhcp")
                })
                .count()
        })
        .unwrap_or(0)
}

sandbox_test! {
    fn dhcp_leases_from_dnsmasq_renew_and_release() {
        const T: &str = "dhcp_leases_from_dnsmasq_renew_and_release";
        if !(dnsmasq::can_run(T) && have_tool(T, "ping")) {
            return;
        }
        let dir = TempDir::new("dhcp");
        let d = dir.0.display().to_string();
        let server = Dnsmasq::start(&dir);
        let sw = server.url.as_str();

        // 1. The command line in `vdestack ns`: lease, renewals, release.
        let bin = vdestack_bin();
        let script = format!(
            "{bin} ip config iface=vde0,eth,dhcp && ip -4 addr show vde0 && ip route && \
             sleep 5 && {bin} ip config iface=vde0,-dhcp && echo AFTER && \
             ip -4 addr show vde0 && ip route"
        );
        let mut c = std::process::Command::new(&bin);
        c.args(["ns", sw, "/bin/sh", "-c", &script])
            .env("TMPDIR", &d);
        let out = output_within(c, Duration::from_secs(60)).expect("vdestack ns ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("{text}{err}");
        let (addr, line) = reported(&text).unwrap_or_else(|| panic!("no lease:\n{text}{err}"));
        assert!(in_range(addr), "{line}");
        assert!(line.contains("router 10.79.0.1"), "{line}");
        assert!(text.contains("nameserver 10.79.0.53"), "the DNS server is reported:\n{text}");
        let (before, after) = text.split_once("AFTER").expect("the -dhcp step ran");
        assert!(before.contains(&format!("inet {addr}/24")), "{before}");
        assert!(before.contains("default via 10.79.0.1 dev vde0"), "{before}");
        assert!(!after.contains("inet 10.79."), "the address is taken off:\n{after}");
        assert!(!after.contains("default via"), "the route is taken off:\n{after}");
        let first = addr;

        // 2. The renewer left behind ends with its namespace.
        let script = format!("{bin} ip config iface=vde0,eth,dhcp && echo PID $(cat $TMPDIR/vdestack-dhcp-*.pid)");
        let mut c = std::process::Command::new(&bin);
        c.args(["ns", sw, "/bin/sh", "-c", &script])
            .env("TMPDIR", &d);
        let out = output_within(c, Duration::from_secs(60)).expect("vdestack ns ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(reported(&text).is_some(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        let pid: u32 = text
            .lines()
            .find_map(|l| l.strip_prefix("PID "))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no renewer pid:\n{text}"));
        let renewing = || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--dhcp-renewer"))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while renewing() {
            assert!(Instant::now() < deadline, "renewer {pid} outlived its namespace");
            std::thread::sleep(Duration::from_millis(50));
        }

        // 3. A library stack: configure_with over the stack's own sockets.
        let stack = Stack::with_interfaces(&[sw]).unwrap();
        let nl = stack.netlink().unwrap();
        let make = |dom, ty, proto| stack.socket(dom, ty, proto);
        let c = configure_with(&nl, "iface=vde0,eth,dhcp", &make).unwrap();
        assert_eq!(c.leases.len(), 1, "{c:?}");
        let lease = &c.leases[0];
        assert!(in_range(lease.addr), "{lease:?}");
        assert_eq!(lease.router, Some(ROUTER));
        assert_eq!(lease.dns, vec![DNS]);
        assert_eq!(c.resolv_conf.as_deref(), Some("nameserver 10.79.0.53\n"));
        let out = stack
            .command("ping")
            .args(["-c", "1", "-w", "10", "10.79.0.1"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 received"), "the router answers");
        let deadline = Instant::now() + Duration::from_secs(5);
        while dhcp_threads() != 1 {
            assert!(Instant::now() < deadline, "one renewer thread");
            std::thread::sleep(Duration::from_millis(20));
        }
        let lib_addr = lease.addr;
        // Asking again changes nothing: the same lease, one renewer.
        let again = configure_with(&nl, "iface=vde0,dhcp", &make).unwrap();
        assert_eq!(again.leases[0].addr, lib_addr);
        assert_eq!(dhcp_threads(), 1);
        // -dhcp through the library gives it back.
        let c = configure_with(&nl, "iface=vde0,-dhcp", &make).unwrap();
        assert_eq!(c.done.0, 4);
        assert_eq!(dhcp_threads(), 0);
        // Again, then the stack goes: its renewer ends with it.
        let again = configure_with(&nl, "iface=vde0,dhcp", &make).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while dhcp_threads() != 1 {
            assert!(Instant::now() < deadline, "{again:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(nl);
        drop(stack);
        let deadline = Instant::now() + Duration::from_secs(10);
        while dhcp_threads() > 0 {
            assert!(Instant::now() < deadline, "the renewer outlived its stack");
            std::thread::sleep(Duration::from_millis(50));
        }

        let ended = server.stop();
        let (log, out) = (ended.log(), &ended.out);
        let acks = log.matches(&format!("DHCPACK(vde0) {first} ")).count();
        assert!(acks >= 3, "dnsmasq acknowledged {first} {acks} times (a lease and renewals):\n{out}");
        let release = log
            .lines()
            .find(|l| l.contains(&format!("DHCPRELEASE(vde0) {first} ")))
            .unwrap_or_else(|| panic!("no release of {first}:\n{out}"));
        let mac = release.split_whitespace().last().unwrap().to_string();
        assert!(log.contains(&format!("DHCPRELEASE(vde0) {lib_addr} ")), "no release of {lib_addr}:\n{out}");
        let leases = ended.leases();
        // (A later client may have been given the same address.)
        assert!(!leases.contains(&format!(" {mac} ")), "{mac} still holds a lease:\n{leases}");
    }
}

sandbox_test! {
    fn dhcp_from_slirp_gets_10_0_2_15_and_the_route_via_10_0_2_2() {
        const T: &str = "dhcp_from_slirp_gets_10_0_2_15_and_the_route_via_10_0_2_2";
        if !have_tun(T) {
            return;
        }
        if let Err(e) = vdestack::diagnostics::slirp_version() {
            return skip(T, &format!("{e}"));
        }
        // slirp reaches the host's network: here, the test's private namespace
        // (only its loopback). Nothing is sent but DHCP to slirp itself.
        let bin = vdestack_bin();
        let dir = TempDir::new("slirpdhcp");
        let script = format!(
            "{bin} ip config iface=vde0,eth,dhcp && ip -4 addr show vde0 && ip route && \
             {bin} ip config iface=vde0,-dhcp && echo AFTER && ip -4 addr show vde0"
        );
        let mut c = std::process::Command::new(&bin);
        c.args(["ns", "slirp://", "/bin/sh", "-c", &script])
            .env("TMPDIR", dir.0.as_os_str());
        let out = output_within(c, Duration::from_secs(60)).expect("vdestack ns ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("{text}{err}");
        let (before, after) = text
            .split_once("AFTER")
            .unwrap_or_else(|| panic!("{text}{err}"));
        assert!(before.contains("dhcp: 10.0.2.15/24 router 10.0.2.2"), "{text}{err}");
        assert!(before.contains("nameserver 10.0.2.3"), "slirp's DNS is reported:\n{text}");
        assert!(before.contains("inet 10.0.2.15/24"), "{before}");
        assert!(before.contains("default via 10.0.2.2 dev vde0"), "{before}");
        assert!(!after.contains("inet 10.0.2.15"), "released:\n{after}");
    }
}
