//! User-space stacks at scale (its own test binary: it counts the process's fds
//! and pool threads, which other tests' stacks would change).

mod common;

use std::time::Duration;

use common::stacks::{configure, tcp_echo};
use vdestack::stack::{Backend, Stack};

fn user(url: &str) -> Stack {
    Stack::builder()
        .backend(Backend::User)
        .interface("eth0", url)
        .build()
        .unwrap()
}

/// Many stacks cost no fd and no thread of their own: 1,000 on one segment, the
/// first and the last talk TCP; once all are dropped, the pool's threads end.
#[test]
fn many_user_stacks_cost_no_fd() {
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    let stacks: Vec<Stack> = (0..1000).map(|_| user("inproc://user-many")).collect();
    assert!(
        fds() <= before + 8,
        "{} fds for 1000 stacks",
        fds() - before
    );
    configure(&stacks[0], "eth0", &[("10.9.2.1", 16)]);
    configure(&stacks[999], "eth0", &[("10.9.5.231", 16)]);
    tcp_echo(
        &stacks[999],
        &stacks[0],
        "10.9.5.231:7200",
        "stack 0 to stack 999",
    );
    drop(stacks);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while vdestack::diagnostics::user_pool_threads() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(vdestack::diagnostics::user_pool_threads(), 0);
}
