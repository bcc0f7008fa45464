//! The echo server of libvdestack's README, in Rust: a stack of its own on a VDE
//! network given on the command line, configured with an address (and optionally a
//! default gateway), serving a TCP echo on port 5000 with one thread per connection.
//!
//! ```sh
//! vdestack switch /tmp/sw &
//! cargo run --example echo_server -- vde:///tmp/sw 192.168.250.100/24 192.168.250.1
//! # from another stack on the same switch, e.g. a Debian vdens:
//! vdens vde:///tmp/sw   # then: ip link set vde0 up; ip addr add 192.168.250.2/24 dev vde0
//! #                           nc 192.168.250.100 5000
//! ```
//!
//! Usage: `echo_server URL [ADDR/PREFIX...] [GATEWAY...] [--once]`: every
//! `ADDR/PREFIX` is an address of `vde0` (default 192.168.250.100/24), every bare
//! address a default gateway. With `--once` it serves one connection and exits.

use std::io::{self, Read, Write};
use std::net::IpAddr;

use vdestack::nl::config::Cidr;
use vdestack::nl::{AddrSpec, RouteSpec};
use vdestack::stack::Stack;

fn main() {
    if let Err(e) = run() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}

fn usage() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "usage: echo_server URL [ADDR/PREFIX...] [GATEWAY...] [--once]",
    )
}

fn run() -> io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    args.retain(|a| a != "--once");
    let (url, rest) = args.split_first().ok_or_else(usage)?;
    let mut addrs: Vec<Cidr> = Vec::new();
    let mut gateways: Vec<IpAddr> = Vec::new();
    for a in rest {
        if a.contains('/') {
            addrs.push(
                a.parse()
                    .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            );
        } else {
            gateways.push(a.parse().map_err(|_| usage())?);
        }
    }
    if addrs.is_empty() {
        addrs.push("192.168.250.100/24".parse().expect("a valid default"));
    }

    let stack = Stack::with_interfaces(&[url])?;
    let nl = stack.netlink()?;
    nl.link_set_up(nl.link_index("lo")?, true)?;
    let vde0 = nl.link_index("vde0")?;
    nl.link_set_up(vde0, true)?;
    for cidr in &addrs {
        let mut spec = AddrSpec::new(vde0, cidr.addr, cidr.prefix);
        if cidr.addr.is_ipv6() {
            spec = spec.no_dad(); // usable at once
        }
        nl.addr_add(&spec)?;
    }
    for g in gateways {
        let r = if g.is_ipv4() {
            RouteSpec::default_v4()
        } else {
            RouteSpec::default_v6()
        };
        nl.route_add(&r.via(g))?;
    }
    // One IPv6 wildcard socket takes IPv4 connections too (v4-mapped), as on Linux
    // by default.
    let listener = stack.tcp_listener("[::]:5000".parse().expect("a valid address"))?;
    let shown: Vec<String> = addrs.iter().map(|c| c.to_string()).collect();
    println!("echo server on {url}: {} port 5000", shown.join(" "));
    io::stdout().flush()?;
    for conn in listener.incoming() {
        let mut conn = conn?;
        let worker = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        if once {
            let _ = worker.join();
            break;
        }
    }
    Ok(())
}
