//! The user-space backend against C peers (issue 15's acceptance): the example
//! `echo_server --user` on `vxvde://` serves a Debian `vdens` on the same group,
//! which pings it (IPv4 and IPv6: ARP, NDP and ICMP echo answered by the
//! user-space stack) and echoes 1 MB through it over TCP, IPv4 and IPv6, with
//! `nc`, byte-exact. Four TCP streams at once from a user-space stack (each capped
//! at its share of what the peer's socket queues) reach a vdens's `nc` listeners
//! whole. Everything runs in the test's private network namespace (the multicast
//! goes over its `lo`); the vdens namespace is nested in it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// An example built by `cargo test` next to the test binaries
/// (`VDESTACK_EXAMPLES` names its folder for runs from copied binaries).
fn example(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("VDESTACK_EXAMPLES") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()
            .ok()?
            .parent()?
            .parent()?
            .join("examples"),
    };
    let p = dir.join(name);
    p.is_file().then_some(p)
}

/// How many replies each `ping` of a peer's output got.
fn replies(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.split(" packets transmitted, ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect()
}

sandbox_test! {
    fn debian_vdens_pings_and_echoes_1mb_through_a_user_stack() {
        const T: &str = "debian_vdens_pings_and_echoes_1mb_through_a_user_stack";
        if !have_tool(T, "vdens") || !have_tool(T, "nc") || !have_tool(T, "ping") || !have_tun(T) {
            return;
        }
        let Some(server) = example("echo_server") else {
            return skip(T, "the echo_server example is not built (cargo build --examples)");
        };
        let dir = TempDir::new("user-vdens");
        let data: Vec<u8> = {
            let mut rng = Rng::new(15);
            (0..1_000_000).map(|_| rng.next() as u8).collect()
        };
        std::fs::write(dir.path("in"), &data).unwrap();

        let url = "vxvde://239.76.0.15/port=14815";
        let mut cmd = Command::new(server);
        cmd.args(["--user", url, "10.77.1.1/24", "fc00:77::1/64"])
            .stdout(Stdio::piped());
        let mut server = Proc::spawn(cmd);
        let mut ready = String::new();
        BufReader::new(server.child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(ready.starts_with("echo server on") && ready.contains("user-space"), "{ready}");

        let d = dir.0.display();
        let script = format!(
            "ip link set vde0 up && ip addr add 10.77.1.2/24 dev vde0 && \
             ip addr add fc00:77::2/64 dev vde0 nodad && \
             ping -c 3 -i 0.2 -w 20 10.77.1.1 && ping -6 -c 3 -i 0.2 -w 20 fc00:77::1 && \
             nc -N -w 20 10.77.1.1 5000 < {d}/in > {d}/out4 && \
             nc -N -w 20 fc00:77::1 5000 < {d}/in > {d}/out6 && \
             echo DONE"
        );
        let out = common::vdens::vdens_run(url, &script, Duration::from_secs(120));
        assert!(out.ok() && out.stdout.contains("DONE"), "the vdens peer failed: {out}");
        let r = replies(&out.stdout);
        assert!(r.len() == 2 && r.iter().all(|&n| n >= 3), "ping v4 and v6: {out}");
        for f in ["out4", "out6"] {
            let back = std::fs::read(dir.path(f)).unwrap();
            assert_eq!(back.len(), data.len(), "{f}: {} bytes came back", back.len());
            assert!(back == data, "{f}: the echo differs");
        }
        assert!(server.child.try_wait().unwrap().is_none(), "the server still runs");
    }
}

sandbox_test! {
    fn four_streams_from_a_user_stack_reach_a_vdens_whole() {
        const T: &str = "four_streams_from_a_user_stack_reach_a_vdens_whole";
        if !have_tool(T, "vdens") || !have_tool(T, "nc") || !have_tun(T) {
            return;
        }
        use std::io::Write;
        use vdestack::stack::Backend;
        const PORT: u16 = 14816;
        const EACH: usize = 4 << 20;
        let url = format!("vxvde://239.76.0.16/port={PORT}");
        let dir = TempDir::new("user-vdens-4");
        let d = dir.0.display();
        // Four listeners; each writes how many bytes it got.
        let script = format!(
            "ip link set vde0 up && ip addr add 10.77.2.2/24 dev vde0 && \
             for p in 1 2 3 4; do (nc -l -N 500$p | wc -c > {d}/got$p) & done; wait; echo DONE"
        );
        let peer = {
            let url = url.clone();
            std::thread::spawn(move || common::vdens::vdens_run(&url, &script, Duration::from_secs(120)))
        };
        let stack = common::backends::stack_on(Backend::User, &url);
        common::stacks::configure(&stack, "eth0", &[("10.77.2.1", 24)]);
        let senders: Vec<_> = (1..=4)
            .map(|p| {
                let to: std::net::SocketAddr = format!("10.77.2.2:500{p}").parse().unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                let mut conn = loop {
                    match stack.tcp_connect(to) {
                        Ok(c) => break c,
                        Err(e) if std::time::Instant::now() > deadline => {
                            panic!("connecting to the vdens peer's {to}: {e}")
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                };
                std::thread::spawn(move || {
                    let chunk = vec![0x5au8; 64 << 10];
                    for _ in 0..EACH / chunk.len() {
                        conn.write_all(&chunk).unwrap();
                    }
                    conn.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut conn, &mut rest);
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let out = peer.join().unwrap();
        assert!(out.ok() && out.stdout.contains("DONE"), "the vdens peer failed: {out}");
        for p in 1..=4 {
            let got = std::fs::read_to_string(dir.path(&format!("got{p}"))).unwrap();
            assert_eq!(got.trim(), EACH.to_string(), "stream {p}: {got}");
        }
    }
}
