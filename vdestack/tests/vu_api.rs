//! The `vu` library API: a `Command` run on a stack of the caller's, the state
//! kept from one command to the next, the supervisor returning only when the
//! last supervised process is gone, and nothing left behind (fds, threads,
//! processes). One test in this binary, so the counts are not disturbed.

mod common;

use std::process::{Command, Stdio};

use common::*;
use vdestack::vu::{MemNet, Vu};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn children() -> String {
    let me = std::process::id();
    std::fs::read_dir(format!("/proc/{me}/task"))
        .map(|d| {
            d.flatten()
                .map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).stdin(Stdio::null());
    c
}

#[test]
fn commands_on_a_stack_of_ours_leave_nothing_behind() {
    const T: &str = "commands_on_a_stack_of_ours_leave_nothing_behind";
    if let Err(e) = vdestack::vu::check_support() {
        return skip(T, &format!("{e}"));
    }
    if !have_tool(T, "ip") {
        return;
    }
    let (fds, threads) = (count("/proc/self/fd"), count("/proc/self/task"));
    let mut vu = Vu::new(MemNet::netlinktest());
    let st = vu
        .run(sh(
            "ip addr add 10.0.0.1/24 dev vde0 && ip link set vde0 up",
        ))
        .unwrap();
    assert!(st.success());
    // The state lasts: the next command sees it, and so does the caller.
    let st = vu
        .run(sh("ip -o addr show dev vde0 | grep -q 'inet 10.0.0.1/24'"))
        .unwrap();
    assert!(st.success());
    let stack = vu.net().stack();
    assert!(stack
        .addrs()
        .iter()
        .any(|a| a.local.to_string() == "10.0.0.1"));
    assert!(stack.links().iter().any(|l| l.name == "vde0" && l.is_up()));
    // The run lasts until the last supervised process is gone: a background
    // job outliving the command is still served, and has finished when run returns.
    let dir = TempDir::new("vu-api");
    let f = dir.join_str("late");
    let st = vu
        .run(sh(&format!(
            "(sleep 0.3; ip -o link show vde0 > {f}) & exit 4"
        )))
        .unwrap();
    assert_eq!(st.code(), Some(4), "the command's status");
    let late = std::fs::read_to_string(&f).expect("the background job ran to its end");
    assert!(late.starts_with("2: vde0:"), "{late}");
    // A command that cannot run is an error of its kind.
    let e = vu.run(Command::new("/nonexistent/x")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    // Many sockets opened and closed by many processes: none is left.
    let st = vu
        .run(sh("for i in 1 2 3 4 5 6 7 8 9 10; do ip -o link >/dev/null; cat /proc/net/dev >/dev/null; done"))
        .unwrap();
    assert!(st.success());
    drop(vu);
    assert_eq!(count("/proc/self/fd"), fds, "fds left behind");
    assert_eq!(count("/proc/self/task"), threads, "threads left behind");
    assert_eq!(children().trim(), "", "processes left behind");
}
