//! A user-space stack against C peers: a Debian `vdens` (the Linux kernel's
//! stack) on a Debian `vde_switch` pings it (IPv4, IPv6, and its IPv6
//! link-local address) and echoes 1 MB
//! through it over TCP with `nc`, byte-exact, both families.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::stacks::configure;
use common::vdens::vdens_run;
use common::*;
use vdestack::stack::{Backend, Stack};

sandbox_test! {
    fn vdens_pings_and_echoes_through_a_user_stack() {
        const T: &str = "vdens_pings_and_echoes_through_a_user_stack";
        if !(have_tool(T, "vdens") && have_tool(T, "vde_switch") && have_tool(T, "nc")
            && have_tool(T, "ping") && have_tool(T, "cmp"))
        {
            return;
        }
        let dir = TempDir::new("uinterop");
        let sw = dir.join_str("sw");
        let _sw = debian_vde_switch(dir.path("sw").as_path());
        let s = Stack::builder()
            .backend(Backend::User)
            .interface("vde0", &format!("vde://{sw}"))
            .build()
            .unwrap();
        configure(&s, "vde0", &[("10.77.0.1", 24), ("fd77::1", 64)]);
        // Its IPv6 link-local address, from its MAC (modified EUI-64).
        let nl = s.netlink().unwrap();
        let m = nl.link_mac(nl.link_index("vde0").unwrap()).unwrap();
        let ll = std::net::Ipv6Addr::from([
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5],
        ]);
        // An echo server: each connection's bytes back until its EOF.
        let l = s.tcp_listener("[::]:7000".parse::<SocketAddr>().unwrap()).unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { break };
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n @ 1..) = c.read(&mut buf) {
                        if c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        let d = dir.0.display().to_string();
        let out = vdens_run(
            &format!("vde://{sw}"),
            &format!(
                "ip link set vde0 up && ip addr add 10.77.0.2/24 dev vde0 && \
                 ip addr add fd77::2/64 dev vde0 nodad && \
                 ping -c 3 -i 0.2 -w 20 10.77.0.1 && ping -6 -c 3 -i 0.2 -w 20 fd77::1 && \
                 ping -6 -c 3 -i 0.2 -w 20 {ll}%vde0 && \
                 head -c 1000000 /dev/urandom > {d}/data && \
                 nc -N -w 20 10.77.0.1 7000 < {d}/data > {d}/back4 && cmp {d}/data {d}/back4 && echo SAME4 && \
                 nc -N -w 20 fd77::1 7000 < {d}/data > {d}/back6 && cmp {d}/data {d}/back6 && echo SAME6"
            ),
            Duration::from_secs(90),
        );
        assert!(out.ok(), "{out}");
        assert!(out.stdout.contains("SAME4") && out.stdout.contains("SAME6"), "{out}");
        let received: Vec<u32> = out
            .stdout
            .lines()
            .filter_map(|l| l.split(" packets transmitted, ").nth(1))
            .filter_map(|r| r.split(' ').next()?.parse().ok())
            .collect();
        assert!(received.len() == 3 && received.iter().all(|&n| n >= 3), "{out}");
    }
}
