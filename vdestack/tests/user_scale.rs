//! Scale (issue 15's acceptance): 100,000 user-space stacks live in one process,
//! each with an `inproc://` interface (stack i and stack 99,999-i share a
//! network, as if cabled); stack 0 and stack 99,999 exchange TCP; once all are
//! dropped, the process's fds, threads and memory are back at their baseline.
//! Memory is the resident set (`/proc/self/statm`), with slack for what the
//! allocator keeps; times and sizes are printed, never asserted on.
//!
//! The fd limit is raised if the stacks need more than it allows (within the
//! hard limit, or past it where the process may); where it cannot be, the test
//! skips and says so. Frames never leave the process: no namespace is needed.

mod common;

use std::time::{Duration, Instant};

use common::backends::{stack_on, within};
use common::stacks::{configure, tcp_echo};
use common::*;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use vdestack::stack::{Backend, Stack};

const T: &str = "a_hundred_thousand_user_stacks";
const N: usize = 100_000;

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Resident memory, KiB: `/proc/self/statm`'s resident pages, in the page size
/// that `/proc/self/smaps` reports (`KernelPageSize`).
fn rss_kib() -> u64 {
    static PAGE_KIB: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let page = *PAGE_KIB.get_or_init(|| {
        std::fs::read_to_string("/proc/self/smaps")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("KernelPageSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a page size in /proc/self/smaps")
    });
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * page
}

/// Makes room for `need` fds; `Err` says why it cannot.
fn fd_room(need: u64) -> Result<(), String> {
    let l = getrlimit(Resource::Nofile);
    let (cur, max) = (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX));
    if cur >= need {
        return Ok(());
    }
    let want = Rlimit {
        current: Some(need),
        maximum: Some(max.max(need)),
    };
    setrlimit(Resource::Nofile, want).map_err(|e| {
        format!(
            "{N} stacks need {need} fds; the limit is {cur} (hard {max}) and cannot be raised: {e}"
        )
    })
}

/// Waits up to 30 s for `now()` to come down to `base`; returns the last value.
fn back_to(base: usize, now: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = now();
        if v <= base || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// stack i and stack N-1-i share a network.
fn url(i: usize) -> String {
    format!("inproc://scale-{}-{}", std::process::id(), i.min(N - 1 - i))
}

#[test]
fn a_hundred_thousand_user_stacks() {
    within(T, Duration::from_secs(1200), body);
}

fn body() {
    let (fds0, threads0, rss0) = (fds(), threads(), rss_kib());
    // What one stack holds, to know the fd limit needed: the growth from 8 to
    // 16 stacks (the first ones also start what all share: the pool threads'
    // epoll and eventfd, at most 4 threads).
    let mut probes: Vec<Stack> = (0..8).map(|i| stack_on(Backend::User, &url(i))).collect();
    let shared = fds();
    probes.extend((8..16).map(|i| stack_on(Backend::User, &url(i))));
    let per_stack = (fds().saturating_sub(shared) as u64).div_ceil(8);
    drop(probes);
    if let Err(why) = fd_room(fds0 as u64 + 256 + per_stack * N as u64) {
        return skip(T, &why);
    }

    let t = Instant::now();
    let mut stacks: Vec<Stack> = Vec::with_capacity(N);
    for i in 0..N {
        stacks.push(
            Stack::builder()
                .interface("eth0", &url(i))
                .backend(Backend::User)
                .build()
                .unwrap_or_else(|e| panic!("stack {i}: {e}")),
        );
    }
    let made = t.elapsed();
    let (fds1, threads1, rss1) = (fds(), threads(), rss_kib());
    eprintln!(
        "{N} user stacks made in {:.2} s ({:.1} µs each); {} fds, {} threads, \
         {:.1} KiB resident per stack",
        made.as_secs_f64(),
        made.as_secs_f64() * 1e6 / N as f64,
        fds1 - fds0,
        threads1 - threads0,
        (rss1.saturating_sub(rss0)) as f64 / N as f64
    );

    let (first, last) = (&stacks[0], &stacks[N - 1]);
    configure(first, "eth0", &[("10.40.0.1", 24), ("fc00:40::1", 64)]);
    configure(last, "eth0", &[("10.40.0.2", 24), ("fc00:40::2", 64)]);
    tcp_echo(first, last, "10.40.0.1:7000", "stack 0 <-> stack 99,999");
    tcp_echo(
        last,
        first,
        "[fc00:40::2]:7001",
        "stack 99,999 <-> stack 0, v6",
    );

    let t = Instant::now();
    drop(stacks);
    eprintln!(
        "dropped in {:.2} s ({:.1} µs each)",
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() * 1e6 / N as f64
    );
    let fds2 = back_to(fds0, fds);
    let threads2 = back_to(threads0, threads);
    let rss2 = rss_kib();
    eprintln!(
        "after: fds {fds0} -> {fds1} -> {fds2}, threads {threads0} -> {threads1} -> {threads2}, \
         resident KiB {rss0} -> {rss1} -> {rss2}"
    );
    assert_eq!(fds2, fds0, "fds left behind");
    assert_eq!(threads2, threads0, "threads left behind");
    // The allocator may keep some of what was freed: allow 64 MiB or a tenth of
    // the peak growth, whichever is more.
    let slack = (64 * 1024).max(rss1.saturating_sub(rss0) / 10);
    assert!(
        rss2 <= rss0 + slack,
        "memory did not come back: {rss0} KiB before, {rss1} with the stacks, {rss2} after \
         (slack {slack} KiB)"
    );
}
