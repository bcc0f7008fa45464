//! Bulk TCP over relayed datagram transports, with every byte checked: the relay
//! takes large segments from the taps and sends their frames in batches
//! (`vde::batch`), and joins received frames into large segments (`vde::gro`).
//! Between two of our stacks on `vxvde://` and on a Debian `vde_switch`, and with a
//! Debian `vdens` (C) peer on `vxvde://` and on a `switch://` our stack serves, both
//! ways.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;

use common::stacks::*;
use common::*;

use vdestack::stack::Stack;

/// Bytes that differ along the stream (a lost, doubled or reordered piece shows).
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

/// Sends `len` pattern bytes from `b` to a listener of `a` at `addr`; checks them.
fn send_checked(a: &Stack, b: &Stack, addr: &str, len: usize) {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = a.tcp_listener(addr).unwrap();
    let sink = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        got
    });
    let data = pattern(len);
    let mut s = b.tcp_connect(addr).unwrap();
    s.write_all(&data).unwrap();
    drop(s);
    let got = sink.join().unwrap();
    assert_eq!(got.len(), data.len(), "bytes received");
    assert!(got == data, "the bytes received differ from those sent");
}

fn between_our_stacks(url: &str, net: u8) {
    let a = Stack::with_interfaces(&[url]).unwrap();
    let b = Stack::with_interfaces(&[url]).unwrap();
    configure(&a, "vde0", &[(&format!("10.{net}.0.1"), 24)]);
    configure(&b, "vde0", &[(&format!("10.{net}.0.2"), 24)]);
    send_checked(&a, &b, &format!("10.{net}.0.1:7020"), 24 << 20);
    send_checked(&b, &a, &format!("10.{net}.0.2:7021"), 24 << 20);
}

sandbox_test! {
    fn bulk_tcp_between_our_stacks_over_vxvde() {
        if !have_tun("bulk_tcp_between_our_stacks_over_vxvde") {
            return;
        }
        between_our_stacks("vxvde://239.77.0.1/port=14791", 77);
    }
}

sandbox_test! {
    fn bulk_tcp_between_our_stacks_over_a_debian_switch() {
        const T: &str = "bulk_tcp_between_our_stacks_over_a_debian_switch";
        if !have_tool(T, "vde_switch") || !have_tun(T) {
            return;
        }
        let dir = TempDir::new("bulk-sw");
        let _sw = debian_vde_switch(&dir.0);
        between_our_stacks(&format!("vde://{}", dir.0.display()), 78);
    }
}

/// Our stack on `our_url` and a Debian `vdens` on `their_url` exchange bulk TCP
/// both ways (10.`net`.0.1 and .2), every byte checked.
fn with_a_debian_vdens_peer(our_url: &str, their_url: &str, net: u8) {
    let ours = Stack::with_interfaces(&[our_url]).unwrap();
    let (me, peer) = (format!("10.{net}.0.1"), format!("10.{net}.0.2"));
    configure(&ours, "vde0", &[(&me, 24)]);
    // C to us: `seq` output, checked here.
    let l_in = ours
        .tcp_listener(format!("{me}:5000").parse().unwrap())
        .unwrap();
    let sink = std::thread::spawn(move || {
        let (mut c, _) = l_in.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        got
    });
    // Us to C: the pattern, checked there with cmp against a copy.
    let dir = TempDir::new("bulk-vdens");
    let data = pattern(8 << 20);
    std::fs::write(dir.path("expected"), &data).unwrap();
    let l_out = ours
        .tcp_listener(format!("{me}:5001").parse().unwrap())
        .unwrap();
    let source = std::thread::spawn(move || {
        let (mut c, _) = l_out.accept().unwrap();
        c.write_all(&data).unwrap();
    });
    let script = format!(
        "ip link set vde0 up && ip addr add {peer}/24 dev vde0 && \
         ping -c 1 -w 20 {me} >/dev/null && \
         seq 1 1000000 | nc -N -w 10 {me} 5000 && \
         nc -d -w 10 {me} 5001 > {got} && cmp {got} {exp} && echo same",
        got = dir.join_str("got"),
        exp = dir.join_str("expected"),
    );
    let out = common::vdens::vdens_run(their_url, &script, std::time::Duration::from_secs(120));
    assert!(out.ok(), "vdens peer failed: {out}");
    assert!(out.stdout.lines().any(|l| l == "same"), "{out}");
    source.join().unwrap();
    let got = sink.join().unwrap();
    let expected: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(got.len(), expected.len(), "bytes from the C peer");
    assert!(
        got == expected.as_bytes(),
        "the bytes from the C peer differ"
    );
}

sandbox_test! {
    fn bulk_tcp_with_a_debian_vdens_peer_over_vxvde() {
        const T: &str = "bulk_tcp_with_a_debian_vdens_peer_over_vxvde";
        if !have_tool(T, "vdens") || !have_tool(T, "nc") || !have_tun(T) {
            return;
        }
        let url = "vxvde://239.79.0.1/port=14792";
        with_a_debian_vdens_peer(url, url, 79);
    }
}

sandbox_test! {
    /// Our stack is the host port of a `switch://` it runs; vdens joins as a client.
    fn bulk_tcp_with_a_debian_vdens_peer_on_our_switch() {
        const T: &str = "bulk_tcp_with_a_debian_vdens_peer_on_our_switch";
        if !have_tool(T, "vdens") || !have_tool(T, "nc") || !have_tun(T) {
            return;
        }
        let dir = TempDir::new("bulk-oursw");
        let sw = dir.join_str("sw");
        with_a_debian_vdens_peer(&format!("switch://{sw}"), &format!("vde://{sw}"), 80);
    }
}
