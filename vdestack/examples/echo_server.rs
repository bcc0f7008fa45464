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
//! Usage: `echo_server [--user] URL [ADDR/PREFIX...] [GATEWAY...] [--once]`: every
//! `ADDR/PREFIX` is an address of `vde0` (default 192.168.250.100/24), every bare
//! address a default gateway. With `--once` it serves one connection and exits.
//! With `--user` the stack is a user-space one (`Backend::User`: no namespace, no
//! tap, no privilege); the code is otherwise the same.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

use vdestack::net::{TcpListener, TcpStream};
use vdestack::nl::config::Cidr;
use vdestack::nl::{AddrSpec, RouteSpec};
use vdestack::stack::{Backend, Stack};

fn main() {
    if let Err(e) = run() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}

fn usage() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "usage: echo_server [--user] URL [ADDR/PREFIX...] [GATEWAY...] [--once]",
    )
}

fn run() -> io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let backend = match args.iter().any(|a| a == "--user") {
        true => Backend::User,
        false => Backend::Kernel,
    };
    args.retain(|a| a != "--once" && a != "--user");
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

    let stack = Stack::builder().spec_str(url).backend(backend).build()?;
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
    let listeners = listen(&stack, &addrs)?;
    let shown: Vec<String> = addrs.iter().map(|c| c.to_string()).collect();
    let kind = match backend {
        Backend::User => " (user-space stack)",
        _ => "",
    };
    println!("echo server on {url}{kind}: {} port 5000", shown.join(" "));
    io::stdout().flush()?;
    // One thread per listener, one per connection; with --once, the first
    // connection served ends the program. A listener that fails ends it too.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    for listener in listeners {
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = done_tx.send(Err(e));
                        return;
                    }
                };
                let worker = std::thread::spawn(move || serve(conn));
                if once {
                    let _ = worker.join();
                    let _ = done_tx.send(Ok(()));
                    return;
                }
            }
        });
    }
    drop(done_tx);
    done_rx.recv().unwrap_or(Ok(()))
}

/// A wildcard listener on port 5000 per address family the stack has. A kernel
/// stack's IPv6 one takes IPv4 connections too (v4-mapped, as Linux does by
/// default), so the IPv4 one is then refused with `EADDRINUSE` and not needed.
fn listen(stack: &Stack, addrs: &[Cidr]) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let v6: SocketAddr = "[::]:5000".parse().expect("a valid address");
    let v4: SocketAddr = "0.0.0.0:5000".parse().expect("a valid address");
    listeners.push(stack.tcp_listener(v6)?);
    if addrs.iter().any(|c| c.addr.is_ipv4()) {
        match stack.tcp_listener(v4) {
            Ok(l) => listeners.push(l),
            Err(e) if vdestack::error::errno_of(&e) == libc::EADDRINUSE => {}
            Err(e) => return Err(e),
        }
    }
    Ok(listeners)
}

/// Echoes what `conn` sends until it closes.
fn serve(mut conn: TcpStream) {
    let mut buf = [0u8; 16384];
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
}
