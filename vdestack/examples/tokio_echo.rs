//! The echo server of `echo_server`, on tokio (the `tokio` feature): a stack of its
//! own on a VDE network, `vde0` configured with the addresses given, a TCP echo on
//! port 5000 over IPv4 and IPv6 (one `[::]` listener takes both), one task per
//! connection.
//!
//! ```sh
//! cargo run --features tokio --example tokio_echo -- vxvde://239.1.2.3 10.0.0.1/24 fc00::1/64
//! # from a peer on the same network, e.g. a Debian vdens:
//! vdens vxvde://239.1.2.3   # then: ip link set vde0 up; ip addr add 10.0.0.2/24 dev vde0
//! #                                 nc 10.0.0.1 5000
//! ```
//!
//! Usage: `tokio_echo URL ADDR/PREFIX...`. It prints one line when it serves, and
//! runs until it is killed.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vdestack::nl::config::Cidr;
use vdestack::nl::AddrSpec;
use vdestack::stack::Stack;
use vdestack::tokio::TcpListener;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("tokio_echo: {e}");
        std::process::exit(1);
    }
}

fn usage() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "usage: tokio_echo URL ADDR/PREFIX...",
    )
}

async fn run() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, rest) = args.split_first().ok_or_else(usage)?;
    let addrs = rest
        .iter()
        .map(|a| {
            a.parse::<Cidr>()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        })
        .collect::<io::Result<Vec<Cidr>>>()?;
    if addrs.is_empty() {
        return Err(usage());
    }

    let stack = Stack::builder().interface("vde0", url).build()?;
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

    let listener = TcpListener::bind(&stack, "[::]:5000".parse().expect("a valid address"))?;
    let shown: Vec<String> = addrs.iter().map(|c| c.to_string()).collect();
    println!("tokio echo server on {url}: {} port 5000", shown.join(" "));
    loop {
        let (mut conn, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            eprintln!("tokio_echo: {peer} done");
        });
    }
}
