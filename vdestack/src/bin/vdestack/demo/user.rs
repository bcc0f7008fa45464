//! The main job's user-space part: two stacks whose TCP/IP runs in this process
//! (`Backend::User`: no namespace, tap, helper or privilege) on an in-process
//! network, configured through netlink like kernel stacks, running the same TCP
//! echo over IPv4 and IPv6; then what such a stack costs next to a kernel one,
//! measured now on this machine.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use vdestack::stack::{Backend, Stack};

use super::stacks::{configure, echo_once, echo_server};

/// How many user-space stacks the cost figures make (kernel stacks: fewer, each
/// costs a namespace).
const USER_STACKS: usize = 1000;
const KERNEL_STACKS: usize = 10;

fn stack(backend: Backend, url: &str) -> io::Result<Stack> {
    Stack::builder().spec_str(url).backend(backend).build()
}

/// Runs the user-space part of the demo.
pub fn run() -> io::Result<()> {
    let net = format!("inproc://vdestack-demo-user-{}", std::process::id());
    let t = Instant::now();
    let server = stack(Backend::User, &net)?;
    let client = stack(Backend::User, &net)?;
    println!(
        "- two user-space stacks (their TCP/IP runs in this process: no namespace, tap or \
         privilege), each with vde0 on {net}, made in {:.0} µs",
        t.elapsed().as_secs_f64() * 1e6
    );
    configure(&server, "10.0.0.1", "fc00::1")?;
    configure(&client, "10.0.0.2", "fc00::2")?;
    println!(
        "- configured through netlink, the same calls as for kernel stacks: server 10.0.0.1/24 \
         fc00::1/64, client 10.0.0.2/24 fc00::2/64"
    );
    let addrs: [IpAddr; 2] = ["10.0.0.1".parse().unwrap(), "fc00::1".parse().unwrap()];
    let mut servers = Vec::new();
    for a in addrs {
        servers.push(echo_server(&server, SocketAddr::new(a, 5000), 1)?);
    }
    for a in addrs {
        let to = SocketAddr::new(a, 5000);
        let text = format!(
            "hello over {} (user-space)",
            if a.is_ipv4() { "IPv4" } else { "IPv6" }
        );
        let (back, ms) = echo_once(&client, to, &text)?;
        println!("  client -> {to}: sent {text:?}, got back {back:?} in {ms:.2} ms");
        if back != text {
            return Err(io::Error::other(format!("echo mismatch: {back:?}")));
        }
    }
    for s in servers {
        let _ = s.join();
    }
    drop((server, client));
    costs()
}

/// What one stack costs, measured with `n` stacks on `backend`, each with one
/// interface on an `inproc://` network of its own.
struct Cost {
    /// Create and delete, one after the other, per stack.
    cycle: Duration,
    /// This process's resident memory per stack, with `n` alive.
    rss_kib: f64,
}

fn measure(backend: Backend, n: usize) -> io::Result<Cost> {
    let pid = std::process::id();
    let url = |i: usize| format!("inproc://vdestack-demo-cost-{pid}-{i}");
    drop(stack(backend, &url(0))?); // what the first stack starts (threads, helper)
    let t = Instant::now();
    for i in 0..n {
        drop(stack(backend, &url(i))?);
    }
    let cycle = t.elapsed() / n as u32;
    let before = rss_kib();
    let alive = (0..n)
        .map(|i| stack(backend, &url(i)))
        .collect::<io::Result<Vec<_>>>()?;
    let after = rss_kib();
    drop(alive);
    Ok(Cost {
        cycle,
        rss_kib: after.saturating_sub(before) as f64 / n as f64,
    })
}

/// The process's resident memory, KiB (`VmRSS`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn costs() -> io::Result<()> {
    let user = measure(Backend::User, USER_STACKS)?;
    println!(
        "- what a user-space stack with one inproc:// interface costs here ({USER_STACKS} made): \
         create + delete {:.1} µs, {:.1} KiB of this process's memory",
        user.cycle.as_secs_f64() * 1e6,
        user.rss_kib
    );
    match measure(Backend::Kernel, KERNEL_STACKS) {
        Ok(kernel) => println!(
            "- a kernel stack, the same ({KERNEL_STACKS} made): create + delete {:.0} µs \
             ({:.0}x the user-space one), {:.1} KiB of this process's memory (its namespace, \
             tap and buffers are the kernel's, not counted here)",
            kernel.cycle.as_secs_f64() * 1e6,
            kernel.cycle.as_secs_f64() / user.cycle.as_secs_f64().max(1e-9),
            kernel.rss_kib
        ),
        Err(e) => println!("- kernel stacks cannot be made here ({e}): user-space ones can"),
    }
    Ok(())
}
