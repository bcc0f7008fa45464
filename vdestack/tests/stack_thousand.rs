//! The scale and leak figures: 1000 create/drop cycles leave fds, threads,
//! child processes and memory at their baseline; 1000 stacks alive at once all work,
//! on one in-process network, with one relay thread.

mod common;

use std::time::Instant;

use common::*;
use vdestack::stack::Stack;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn children() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| t.ok())
        .map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .count()
        })
        .sum()
}

/// Resident memory in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// 1000 stacks need more fds than the usual soft limit of 1024: raise it to the hard
/// limit, as a program with that many stacks would.
fn raise_fd_limit() {
    let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    )
    .unwrap();
}

sandbox_test! {
    fn a_thousand_create_drop_cycles_leave_nothing() {
        // Warm up (first allocations, the relay's first start), then measure.
        for _ in 0..20 {
            drop(Stack::new().unwrap());
        }
        // The helper lingers after the last stack (4 fds, a thread): both counts are
        // taken with it ended at once, so the cycles' own leftovers show.
        vdestack::stack::end_idle_helper();
        let base = (count("/proc/self/fd"), count("/proc/self/task"), children(), rss_kib());
        let t0 = Instant::now();
        for i in 0..1000 {
            let s = Stack::new().unwrap();
            if i % 10 == 0 {
                drop(s.socket(vdestack::net::AddressFamily::INET, vdestack::net::SocketType::STREAM, None).unwrap());
            }
        }
        let per = t0.elapsed() / 1000;
        vdestack::stack::end_idle_helper();
        let after = (count("/proc/self/fd"), count("/proc/self/task"), children(), rss_kib());
        assert_eq!((after.0, after.1, after.2), (base.0, base.1, base.2), "(fds, threads, children)");
        assert!(after.3 < base.3 + 4096, "RSS grew from {} to {} KiB", base.3, after.3);
        eprintln!("FIGURES 1000 create+drop cycles: {per:?} each; RSS {} -> {} KiB", base.3, after.3);
    }
}

sandbox_test! {
    fn a_thousand_stacks_alive_on_one_network() {
        const T: &str = "a_thousand_stacks_alive_on_one_network";
        if !have_tun(T) {
            return;
        }
        raise_fd_limit();
        let base = (count("/proc/self/fd"), count("/proc/self/task"), children());
        let net = format!("inproc://thousand-{}", std::process::id());
        let t0 = Instant::now();
        let stacks: Vec<Stack> = (0..1000).map(|_| Stack::with_interfaces(&[&net]).unwrap()).collect();
        let made = t0.elapsed();
        let threads = count("/proc/self/task");
        let pool = vdestack::diagnostics::relay_threads_max();
        assert!(threads <= base.1 + 1 + pool, "threads {threads}, baseline {}, relay pool {pool}: the relay must not grow with stacks", base.1);
        // Every stack works: a socket in each, and two of them talk over the network.
        for s in &stacks {
            drop(s.udp_bind("127.0.0.1:7".parse().unwrap()).unwrap());
        }
        for (s, ip) in [(&stacks[0], "10.9.0.1"), (&stacks[999], "10.9.0.2")] {
            let nl = s.netlink().unwrap();
            let i = nl.link_index("vde0").unwrap();
            nl.link_set_up(i, true).unwrap();
            nl.addr_add(&vdestack::nl::AddrSpec::new(i, ip.parse().unwrap(), 24)).unwrap();
        }
        let l = stacks[0].tcp_listener("10.9.0.1:5000".parse().unwrap()).unwrap();
        let mut c = stacks[999].tcp_connect("10.9.0.1:5000".parse().unwrap()).unwrap();
        let (mut a, _) = l.accept().unwrap();
        std::io::Write::write_all(&mut c, b"ping").unwrap();
        let mut got = [0u8; 4];
        std::io::Read::read_exact(&mut a, &mut got).unwrap();
        assert_eq!(&got, b"ping");
        drop((a, c, l));
        let t1 = Instant::now();
        drop(stacks);
        let dropped = t1.elapsed();
        vdestack::stack::end_idle_helper();
        assert_eq!((count("/proc/self/fd"), count("/proc/self/task"), children()), base);
        eprintln!("FIGURES 1000 stacks on {net}: created in {made:?}, dropped in {dropped:?}, threads +{}", threads - base.1);
    }
}
