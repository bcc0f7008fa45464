//! The fast data path: stacks on `inproc://` pass large (GSO) TCP segments through
//! the relay; plain plugs on the same segment still get MTU-sized frames.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::stacks::*;
use common::*;

use vdestack::stack::Stack;
use vdestack::vde::{self, inproc, Recv};

/// Whether this run has the fast path (`VDESTACK_OFFLOAD=0` turns it off).
fn offload_on() -> bool {
    std::env::var("VDESTACK_OFFLOAD").map_or(true, |v| v != "0")
}

sandbox_test! {
    fn inproc_throughput_figure() {
        if !have_tun("inproc_throughput_figure") {
            return;
        }
        let a = Stack::with_interfaces(&["inproc://fig"]).unwrap();
        let b = Stack::with_interfaces(&["inproc://fig"]).unwrap();
        configure(&a, "vde0", &[("10.31.0.1", 24), ("fc00:31::1", 64)]);
        configure(&b, "vde0", &[("10.31.0.2", 24), ("fc00:31::2", 64)]);
        let v4 = throughput(&a, &b, "10.31.0.1:7010", 256);
        let v6 = throughput(&a, &b, "[fc00:31::1]:7011", 256);
        let st = inproc::stats("fig").unwrap();
        eprintln!(
            "FIGURES TCP between two stacks on inproc:// (offload {}): IPv4 {v4:.0} MB/s, \
             IPv6 {v6:.0} MB/s; segment: {st:?}",
            offload_on()
        );
        if offload_on() {
            assert!(st.largest > 1514 && st.passed_whole > 0, "no large segment crossed: {st:?}");
            assert_eq!(st.made_plain, 0, "nobody here needed plain frames: {st:?}");
        } else {
            assert!(st.largest <= 1514 && st.passed_whole == 0, "{st:?}");
        }
    }
}

/// One's-complement sum, the slow way (independent of `vde::gso`).
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut s: u32 = 0;
    let mut odd: Option<u8> = None;
    for p in parts {
        for &b in p.iter() {
            match odd.take() {
                Some(hi) => {
                    s += u16::from_be_bytes([hi, b]) as u32;
                    s = (s & 0xffff) + (s >> 16);
                }
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        s += (hi as u32) << 8;
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Checks an Ethernet frame as a wire would carry it: at most 1514 bytes, and for
/// IPv4/IPv6 TCP, every length and checksum right. Returns whether it was TCP with
/// payload.
fn check_wire_frame(f: &[u8]) -> bool {
    assert!(
        f.len() <= 1514,
        "a frame of {} bytes left the fast path",
        f.len()
    );
    if f.len() < 14 {
        return false;
    }
    let ty = u16::from_be_bytes([f[12], f[13]]);
    let (l4, pseudo_addrs, proto, ip_end) = match ty {
        0x0800 => {
            let ihl = (f[14] & 15) as usize * 4;
            assert_eq!(
                ones_sum(&[&f[14..14 + ihl]]),
                0xffff,
                "IPv4 header checksum"
            );
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            assert!(14 + total <= f.len(), "IPv4 length past the frame");
            (14 + ihl, f[26..34].to_vec(), f[23], 14 + total)
        }
        0x86dd => {
            let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
            assert!(54 + plen <= f.len(), "IPv6 length past the frame");
            (54, f[22..54].to_vec(), f[20], 54 + plen)
        }
        _ => return false,
    };
    if proto != 6 {
        return false;
    }
    let seg = &f[l4..ip_end];
    let mut pseudo = pseudo_addrs;
    if ty == 0x0800 {
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 6]);
    }
    assert_eq!(ones_sum(&[&pseudo, seg]), 0xffff, "TCP checksum");
    seg.len() > (seg[12] >> 4) as usize * 4
}

sandbox_test! {
    /// Two stacks on a hub, and a plain plug (this test) on it too: the stacks pass
    /// large segments, the plug sees every frame cut to wire size, checksums right.
    fn plain_plug_beside_the_fast_path_sees_wire_frames() {
        if !have_tun("plain_plug_beside_the_fast_path_sees_wire_frames") {
            return;
        }
        let a = Stack::with_interfaces(&["inproc://mixed/hub"]).unwrap();
        let b = Stack::with_interfaces(&["inproc://mixed"]).unwrap();
        let mut plain = vde::open("inproc://mixed").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let watcher = std::thread::spawn(move || {
            let mut buf = vec![0u8; vde::MAX_FRAME];
            let (mut frames, mut tcp) = (0u64, 0u64);
            while !stop2.load(Ordering::Relaxed) {
                if !vde::wait_readable(&*plain, Some(Duration::from_millis(50))).unwrap() {
                    continue;
                }
                while let Ok(Recv::Frame(n)) = plain.recv(&mut buf) {
                    frames += 1;
                    tcp += u64::from(check_wire_frame(&buf[..n]));
                }
            }
            (frames, tcp)
        });
        configure(&a, "vde0", &[("10.32.0.1", 24), ("fc00:32::1", 64)]);
        configure(&b, "vde0", &[("10.32.0.2", 24), ("fc00:32::2", 64)]);
        let v4 = throughput(&a, &b, "10.32.0.1:7010", 64);
        let v6 = throughput(&a, &b, "[fc00:32::1]:7011", 64);
        stop.store(true, Ordering::Relaxed);
        let (frames, tcp) = watcher.join().unwrap();
        let st = inproc::stats("mixed").unwrap();
        eprintln!(
            "FIGURES with a plain plug watching: IPv4 {v4:.0} MB/s, IPv6 {v6:.0} MB/s; \
             the plug checked {frames} frames ({tcp} TCP with data); segment: {st:?}"
        );
        assert!(tcp > 1000, "the plain plug saw the flow: {tcp} TCP frames");
        if offload_on() {
            assert!(st.passed_whole > 0 && st.made_plain > 0 && st.refused == 0, "{st:?}");
            assert!(st.plain_pieces > st.made_plain, "large segments were cut: {st:?}");
        }
    }
}

sandbox_test! {
    /// A stack on `inproc://`, a cable from that segment to a VDE switch (Debian's
    /// `vde_switch` if installed, else our `switch://` hosted by the other stack),
    /// and a stack on `vde://`: TCP both ways over IPv4 and IPv6.
    fn fast_path_stack_talks_to_a_vde_peer() {
        let name = "fast_path_stack_talks_to_a_vde_peer";
        if !have_tun(name) {
            return;
        }
        let dir = TempDir::new("offload-vde");
        let sw = dir.join_str("sw");
        let debian = which("vde_switch");
        let _switch = debian.then(|| debian_vde_switch(&dir.path("sw")));
        let a = Stack::with_interfaces(&["inproc://tovde"]).unwrap();
        let b = if debian {
            Stack::with_interfaces(&[&format!("vde://{sw}")]).unwrap()
        } else {
            Stack::with_interfaces(&[&format!("switch://{sw}")]).unwrap()
        };
        if !debian {
            wait_for_switch(&dir.path("sw"));
        }
        let mut seg = vde::open("inproc://tovde").unwrap();
        let mut wire = vde::open(&format!("vde://{sw}")).unwrap();
        let stop = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let stop_w = stop.try_clone().unwrap();
        let cable = std::thread::spawn(move || {
            vde::cable::run(&mut *seg, &mut *wire, Some(std::os::fd::AsFd::as_fd(&stop))).unwrap()
        });
        configure(&a, "vde0", &[("10.33.0.1", 24), ("fc00:33::1", 64)]);
        configure(&b, "vde0", &[("10.33.0.2", 24), ("fc00:33::2", 64)]);
        tcp_echo(&a, &b, "10.33.0.1:7000", "tcp");
        tcp_echo(&b, &a, "10.33.0.2:7001", "tcp");
        tcp_echo(&a, &b, "[fc00:33::1]:7002", "tcp");
        tcp_echo(&b, &a, "[fc00:33::2]:7003", "tcp");
        // UDP and ICMP: the kernel leaves UDP checksums to the offloading tap too.
        let udp = [
            (&a, &b, "10.33.0.2:7020"),
            (&b, &a, "10.33.0.1:7021"),
            (&a, &b, "[fc00:33::2]:7022"),
        ];
        for (from, rx, to) in udp {
            let to: SocketAddr = to.parse().unwrap();
            let r = rx.udp_bind(to).unwrap();
            r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let any: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
            let s = from.udp_bind(any).unwrap();
            let msg = vec![0x5au8; 3000]; // IP-fragmented on the way
            s.send_to(&msg, to).unwrap();
            s.send_to(b"small", to).unwrap();
            let mut buf = [0u8; 4000];
            let n = r.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg[..], "UDP to {to}");
            let n = r.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"small", "UDP to {to}");
        }
        for (from, to) in [(&a, "10.33.0.2"), (&b, "fc00:33::1")] {
            let st = from
                .command("/bin/ping")
                .args(["-c", "1", "-s", "2000", "-W", "5", to])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "ping {to}: {st}");
        }
        let ab = throughput(&b, &a, "10.33.0.2:7010", 32);
        let ba = throughput(&a, &b, "10.33.0.1:7011", 32);
        rustix::io::write(&stop_w, &1u64.to_ne_bytes()).unwrap();
        let (_, cst) = cable.join().unwrap();
        let st = inproc::stats("tovde").unwrap();
        eprintln!(
            "FIGURES stack on inproc:// to a stack on vde:// ({}): {ab:.0} MB/s out, \
             {ba:.0} MB/s in; cable {cst:?}; segment {st:?}",
            if debian { "Debian vde_switch" } else { "our switch://" }
        );
        if offload_on() {
            assert!(st.made_plain > 0 && st.refused == 0, "{st:?}");
        }
    }
}

fn which(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
