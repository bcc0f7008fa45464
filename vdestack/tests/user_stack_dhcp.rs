//! DHCPv4 on a user-space stack, through the configuration string as on a kernel
//! stack (`configure_with(&nl, "iface=vde0,eth,dhcp", &make)`: the user stack's
//! netlink client runs DHCP in the stack; `make` is not used):
//!
//! * against libslirp's DHCP server (`slirp://`): 10.0.2.15/24 via 10.0.2.2;
//! * against Debian's dnsmasq in a Debian `vdens` on a Debian `vde_switch`: a
//!   lease of the range, the router answers a ping, renewals (T1 2 s), and
//!   `-dhcp` gives the lease back (dnsmasq logs the DHCPRELEASE).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::vdens::{vdens_run, PeerOutput};
use common::*;
use vdestack::net::IpVersion;
use vdestack::nl::config::configure_with;
use vdestack::stack::{Backend, Stack};

fn user(url: &str) -> Stack {
    Stack::builder()
        .backend(Backend::User)
        .interface("vde0", url)
        .build()
        .unwrap()
}

/// One ping from `s` to `to`: whether a reply came.
fn pings(s: &Stack, to: Ipv4Addr) -> bool {
    let sock = s.icmp_socket(IpVersion::V4).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = [8u8, 0, 0, 0, 0, 0, 0, 1, b'h', b'i'];
    for _ in 0..5 {
        sock.send_to(&req, IpAddr::V4(to)).unwrap();
        let mut b = [0u8; 64];
        if let Ok((_, from)) = sock.recv_from(&mut b) {
            return from == IpAddr::V4(to);
        }
    }
    false
}

sandbox_test! {
    fn dhcp_from_slirp_on_a_user_stack() {
        const T: &str = "dhcp_from_slirp_on_a_user_stack";
        if let Err(e) = vdestack::diagnostics::slirp_version() {
            return skip(T, &format!("{e}"));
        }
        let s = user("slirp://");
        let nl = s.netlink().unwrap();
        let make = |d, t, p| s.socket(d, t, p);
        let c = configure_with(&nl, "iface=vde0,eth,dhcp", &make).unwrap();
        assert_eq!(c.done.0 & 4, 4, "{c:?}");
        let lease = &c.leases[0];
        assert_eq!(lease.addr, Ipv4Addr::new(10, 0, 2, 15), "{lease:?}");
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        let addrs = nl.addrs().unwrap();
        assert!(addrs.iter().any(|a| a.addr == IpAddr::from([10, 0, 2, 15])), "{addrs:?}");
        let routes = nl.routes().unwrap();
        assert!(routes.iter().any(|r| r.gateway == Some(IpAddr::from([10, 0, 2, 2]))), "{routes:?}");
        // Again: the same lease.
        let again = configure_with(&nl, "iface=vde0,dhcp", &make).unwrap();
        assert_eq!(again.leases[0].addr, lease.addr);
        // Given back: address and route gone.
        let c = configure_with(&nl, "iface=vde0,-dhcp", &make).unwrap();
        assert_eq!(c.done.0, 4);
        assert!(!nl.addrs().unwrap().iter().any(|a| a.addr == IpAddr::from([10, 0, 2, 15])));
    }
}

fn in_range(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[..3] == [10, 79, 0] && (100..=150).contains(&o[3])
}

/// dnsmasq in a Debian vdens on `switch`, until `dir/stop` exists; then it prints
/// its log.
fn dnsmasq(switch: &str, dir: &str) -> std::thread::JoinHandle<PeerOutput> {
    let url = format!("vde://{switch}");
    let script = format!(
        "ip link set vde0 up && ip addr add 10.79.0.1/24 dev vde0 && \
         dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=vde0 --bind-interfaces \
           --dhcp-range=10.79.0.100,10.79.0.150,255.255.255.0,2m \
           --dhcp-option=option:router,10.79.0.1 --dhcp-option=option:dns-server,10.79.0.53 \
           --dhcp-option=option:T1,2 --dhcp-option=option:T2,3 \
           --dhcp-leasefile={dir}/leases --log-dhcp --log-facility=- \
           --user=root --group=root --pid-file={dir}/dnsmasq.pid > {dir}/log 2>&1 & \
         touch {dir}/ready; \
         while [ ! -e {dir}/stop ]; do sleep 0.1; done; kill $!; wait; \
         echo LOG; cat {dir}/log; echo END"
    );
    std::thread::spawn(move || vdens_run(&url, &script, Duration::from_secs(120)))
}

sandbox_test! {
    fn dhcp_from_dnsmasq_on_a_user_stack() {
        const T: &str = "dhcp_from_dnsmasq_on_a_user_stack";
        if !(have_tool(T, "dnsmasq") && have_tool(T, "vdens") && have_tool(T, "vde_switch")) {
            return;
        }
        let dir = TempDir::new("udhcp");
        let d = dir.0.display().to_string();
        let sw = dir.join_str("sw");
        let _sw = debian_vde_switch(dir.path("sw").as_path());
        let peer = dnsmasq(&sw, &d);
        wait_for_path(&dir.path("ready"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(dir.path("log")).unwrap_or_default().contains("DHCP, IP range") {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = user(&format!("vde://{sw}"));
        let nl = s.netlink().unwrap();
        let make = |d, t, p| s.socket(d, t, p);
        let c = configure_with(&nl, "iface=vde0,eth,dhcp", &make).unwrap();
        let lease = c.leases[0].clone();
        assert!(in_range(lease.addr), "{lease:?}");
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 79, 0, 1)));
        assert_eq!(lease.dns, vec![Ipv4Addr::new(10, 79, 0, 53)]);
        assert!(pings(&s, Ipv4Addr::new(10, 79, 0, 1)), "the router answers");
        // Renewals: T1 is 2 s.
        std::thread::sleep(Duration::from_secs(5));
        let c = configure_with(&nl, "iface=vde0,-dhcp", &make).unwrap();
        assert_eq!(c.done.0, 4);
        // The release goes out with the next polls.
        std::thread::sleep(Duration::from_millis(500));
        std::fs::write(dir.path("stop"), "").unwrap();
        let out = peer.join().unwrap();
        let log = out.stdout.split("LOG").nth(1).unwrap_or("").to_string();
        let acks = log.matches(&format!("DHCPACK(vde0) {} ", lease.addr)).count();
        assert!(acks >= 2, "dnsmasq acknowledged {} {acks} times:\n{log}", lease.addr);
        assert!(log.contains(&format!("DHCPRELEASE(vde0) {} ", lease.addr)), "no release:\n{log}");
    }
}
