//! The main job's stack part: two private stacks on an embedded in-process network,
//! configured through netlink, running the classic TCP echo over IPv4 and IPv6.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use vdestack::nl::AddrSpec;
use vdestack::stack::Stack;

/// Brings `lo` and `vde0` up and gives `vde0` the two addresses.
pub(super) fn configure(stack: &Stack, v4: &str, v6: &str) -> io::Result<()> {
    let nl = stack.netlink()?;
    let lo = nl.link_index("lo")?;
    nl.link_set_up(lo, true)?;
    let vde0 = nl.link_index("vde0")?;
    nl.link_set_up(vde0, true)?;
    nl.addr_add(&AddrSpec::new(vde0, v4.parse().unwrap(), 24))?;
    // No duplicate address detection: the address is usable at once.
    nl.addr_add(&AddrSpec::new(vde0, v6.parse().unwrap(), 64).no_dad())?;
    Ok(())
}

/// Serves one echo connection per thread, until `count` connections were served.
pub(super) fn echo_server(
    stack: &Stack,
    addr: SocketAddr,
    count: usize,
) -> io::Result<std::thread::JoinHandle<()>> {
    let listener = stack.tcp_listener(addr)?;
    Ok(std::thread::spawn(move || {
        for conn in listener.incoming().take(count).flatten() {
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().expect("clone a TCP stream");
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    if writeln!(writer, "{line}").is_err() {
                        break;
                    }
                }
            });
        }
    }))
}

pub(super) fn echo_once(stack: &Stack, to: SocketAddr, text: &str) -> io::Result<(String, f64)> {
    let t = Instant::now();
    let conn = stack.tcp_connect(to)?;
    let mut w = conn.try_clone()?;
    writeln!(w, "{text}")?;
    let mut back = String::new();
    BufReader::new(conn).read_line(&mut back)?;
    Ok((back.trim_end().to_string(), t.elapsed().as_secs_f64() * 1e3))
}

/// Runs the stack part of the demo.
pub fn run() -> io::Result<()> {
    let net = format!("inproc://vdestack-demo-{}", std::process::id());
    let t = Instant::now();
    let server = Stack::with_interfaces(&[&net])?;
    let client = Stack::with_interfaces(&[&net])?;
    println!(
        "- two stacks, each a private network namespace with interface vde0 on {net} \
         (an in-process switch: no external switch, no root), made in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    configure(&server, "10.0.0.1", "fc00::1")?;
    configure(&client, "10.0.0.2", "fc00::2")?;
    println!("- configured through netlink: server 10.0.0.1/24 fc00::1/64, client 10.0.0.2/24 fc00::2/64");
    let addrs: [IpAddr; 2] = ["10.0.0.1".parse().unwrap(), "fc00::1".parse().unwrap()];
    let mut servers = Vec::new();
    for a in addrs {
        servers.push(echo_server(&server, SocketAddr::new(a, 5000), 1)?);
    }
    println!(
        "- TCP echo servers listening in the server stack on 10.0.0.1:5000 and [fc00::1]:5000"
    );
    for a in addrs {
        let to = SocketAddr::new(a, 5000);
        let text = format!("hello over {}", if a.is_ipv4() { "IPv4" } else { "IPv6" });
        let (back, ms) = echo_once(&client, to, &text)?;
        println!("  client -> {to}: sent {text:?}, got back {back:?} in {ms:.2} ms");
        if back != text {
            return Err(io::Error::other(format!("echo mismatch: {back:?}")));
        }
    }
    for s in servers {
        let _ = s.join();
    }
    println!("- the host's namespace saw none of it: its interfaces are untouched");
    drop((server, client));
    throughput()
}

/// Bytes sent per throughput figure.
const BULK: usize = 256 << 20;

/// Sends [`BULK`] bytes over TCP from `client` to `server` (which has 10.0.0.1);
/// returns MB/s.
fn bulk(server: &Stack, client: &Stack) -> io::Result<f64> {
    use std::io::Read;
    let addr: SocketAddr = "10.0.0.1:5001".parse().unwrap();
    let listener = server.tcp_listener(addr)?;
    let sink = std::thread::spawn(move || -> io::Result<usize> {
        let (mut c, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            match c.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    });
    let mut c = client.tcp_connect(addr)?;
    let chunk = vec![0x5a_u8; 1 << 20];
    let t = Instant::now();
    for _ in 0..BULK / chunk.len() {
        c.write_all(&chunk)?;
    }
    drop(c);
    let got = sink
        .join()
        .map_err(|_| io::Error::other("the sink thread panicked"))??;
    if got != BULK {
        return Err(io::Error::other(format!(
            "sent {BULK} bytes, {got} arrived"
        )));
    }
    Ok(BULK as f64 / t.elapsed().as_secs_f64() / 1e6)
}

/// The same two stacks' TCP throughput over a relayed network and a kernel link.
fn throughput() -> io::Result<()> {
    let pid = std::process::id();
    for (url, what) in [
        (
            format!("inproc://vdestack-bulk-{pid}"),
            "relayed through the in-process switch",
        ),
        (
            format!("veth://vdestack-bulk-{pid}"),
            "a kernel bridge and veth pairs, no relay",
        ),
    ] {
        let server = Stack::with_interfaces(&[&url])?;
        let client = Stack::with_interfaces(&[&url])?;
        configure(&server, "10.0.0.1", "fc00::1")?;
        configure(&client, "10.0.0.2", "fc00::2")?;
        let mbs = bulk(&server, &client)?;
        println!(
            "- {} MiB of TCP between two stacks on {url} ({what}): {mbs:.0} MB/s",
            BULK >> 20
        );
    }
    Ok(())
}
