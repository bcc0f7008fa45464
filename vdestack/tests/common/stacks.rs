//! Helpers shared by the stack tests: configuration, a TCP echo, a throughput figure.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vdestack::nl::AddrSpec;
use vdestack::stack::Stack;

/// Brings `lo` and `ifname` up and gives `ifname` the addresses (no duplicate
/// address detection: usable at once).
pub fn configure(s: &Stack, ifname: &str, addrs: &[(&str, u8)]) {
    let nl = s.netlink().unwrap();
    let lo = nl.link_index("lo").unwrap();
    nl.link_set_up(lo, true).unwrap();
    let i = nl.link_index(ifname).unwrap();
    nl.link_set_up(i, true).unwrap();
    for (a, p) in addrs {
        nl.addr_add(&AddrSpec::new(i, a.parse().unwrap(), *p).no_dad())
            .unwrap();
    }
}

/// 1 MB to `a` at `listen` from `b` and back (written and read at once), compared.
pub fn tcp_echo(a: &Stack, b: &Stack, listen: &str, what: &str) {
    let addr: SocketAddr = listen.parse().unwrap();
    let l = a.tcp_listener(addr).unwrap();
    const N: usize = 1_000_000;
    let srv = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; N];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
    });
    let mut c = b.tcp_connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let data: Vec<u8> = (0..N as u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut c = c.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || c.write_all(&data).unwrap())
    };
    let mut back = vec![0u8; N];
    c.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == data, "{what} ({listen}): echo differs");
    srv.join().unwrap();
}

/// Sends `mib` MiB from `b` to `a` at `addr` over TCP; returns MB/s (a figure to
/// print, never to assert on).
pub fn throughput(a: &Stack, b: &Stack, addr: &str, mib: usize) -> f64 {
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
    for _ in 0..mib {
        s.write_all(&chunk).unwrap();
    }
    drop(s);
    let total = sink.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(total, mib << 20, "bytes lost");
    total as f64 / secs / 1e6
}
