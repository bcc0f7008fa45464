//! The fast data path: stacks on `inproc://` pass large (GSO) TCP segments through
//! the relay; plain plugs on the same segment still get MTU-sized frames.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use common::*;
use vdestack::nl::{AddrSpec, IFA_F_NODAD};
use vdestack::stack::Stack;

/// Brings `lo` and `ifname` up and gives `ifname` the addresses.
fn configure(s: &Stack, ifname: &str, addrs: &[(&str, u8)]) {
    let nl = s.netlink().unwrap();
    let lo = nl.if_nametoindex("lo").unwrap();
    nl.link_set_up(lo, true).unwrap();
    let i = nl.if_nametoindex(ifname).unwrap();
    nl.link_set_up(i, true).unwrap();
    for (a, p) in addrs {
        nl.addr_add(&AddrSpec::new(i, a.parse().unwrap(), *p).flags(IFA_F_NODAD))
            .unwrap();
    }
}

/// Sends `chunks` MiB from `b` to `a` at `addr`; returns MB/s.
fn throughput(a: &Stack, b: &Stack, addr: &str, chunks: usize) -> f64 {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = a.tcp_listener(addr).unwrap();
    let sink = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let mut s = b.tcp_connect(addr).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let t0 = Instant::now();
    for _ in 0..chunks {
        s.write_all(&chunk).unwrap();
    }
    drop(s);
    let total = sink.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(total, chunks << 20);
    total as f64 / secs / 1e6
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
        eprintln!("FIGURES TCP between two stacks on inproc:// : IPv4 {v4:.0} MB/s, IPv6 {v6:.0} MB/s");
    }
}
