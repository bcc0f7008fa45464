//! The soak test's Rust side (run by `scripts/soak`): N cycles of create a stack on
//! URL, make a first socket in it, drop it, as each stack is the process's only one.
//! It prints what the process holds (fds, threads, children, zombies whose parent
//! it is, RSS) at the start, after 1,000 cycles, at the end, and once the namespace
//! helper's linger after the last stack is over.
//!
//! ```text
//! soak N URL     URL: a VNL such as null://, inproc://NAME, vde:///tmp/sw; - for none
//! ```
//!
//! `vde://` and `inproc://` carry no traffic here, but the URL may name a network:
//! run it in a network namespace of its own (`scripts/soak` does).

use std::io;
use std::time::{Duration, Instant};

use vdestack::stack::Stack;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Our pid as this `/proc` numbers it.
fn proc_pid() -> Option<i32> {
    std::fs::read_to_string("/proc/self/stat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (children, zombies among them) of this process.
fn children() -> (usize, usize) {
    let me = proc_pid();
    let mut all = 0;
    let mut zombies = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = s.rsplit_once(')') else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (w.next(), w.next().and_then(|p| p.parse().ok())) else {
            continue;
        };
        if Some(ppid) == me {
            all += 1;
            zombies += usize::from(state == "Z");
        }
    }
    (all, zombies)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (fds, threads) of this process.
fn held() -> (usize, usize) {
    (count("/proc/self/fd"), count("/proc/self/task"))
}

fn report(url: &str, at: &str) {
    let (kids, zombies) = children();
    let (fds, threads) = held();
    println!(
        "api=rust url={url} at={at} fds={fds} threads={threads} children={kids} zombies={zombies} rss_kib={}",
        rss_kib()
    );
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(n), Some(url)) = (args.first(), args.get(1)) else {
        return Err(io::Error::other("usage: soak N URL (URL - for none)"));
    };
    let n: usize = n.parse().map_err(io::Error::other)?;
    let specs: Vec<&str> = match url.as_str() {
        "-" => vec![],
        u => vec![u],
    };
    let start = held();
    report(url, "start");
    let t0 = Instant::now();
    for i in 1..=n {
        let s = Stack::with_interfaces(&specs)?;
        drop(s.socket(
            vdestack::net::AddressFamily::INET,
            vdestack::net::SocketType::DGRAM,
            None,
        )?);
        drop(s);
        if i == 1000 && n > 1000 {
            report(url, "1k");
        }
    }
    let per = t0.elapsed() / n.max(1) as u32;
    report(url, "end");
    // Nothing is ended at once: the helper goes by itself after its linger, and
    // its fds and the thread that waited with it.
    let deadline =
        Instant::now() + vdestack::Config::current().helper_linger + Duration::from_secs(10);
    while (held() != start || children().0 > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    report(url, "after_linger");
    println!("api=rust url={url} cycle_us={:.0}", per.as_secs_f64() * 1e6);
    Ok(())
}
