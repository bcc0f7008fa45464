//! 50 rounds of create, socket, command, delete (`tests/c/leakloop.c`) against our
//! libvdestack, under valgrind's memcheck (leaks, invalid reads and writes) in every
//! process valgrind sees (the program and what it forks), and fd counts that must
//! come back to where they started once the namespace helper's linger after the
//! last stack is over (the default linger: leakloop waits for the count, up to
//! [`WAIT_MS`]). The same program against Debian's libvdestack
//! shows the fds it leaks (valgrind cannot run it at all: it `clone`s with
//! `CLONE_VM|CLONE_FILES|CLONE_NEWUSER|CLONE_NEWNET`, "Valgrind does not support
//! general clone()").

#[path = "../../vdestack/tests/common/mod.rs"]
mod common;

mod capi;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use capi::{have_c_toolchain, Built, Lib};
use common::*;

/// (fds before, fds after) from leakloop's output.
fn fd_counts(what: &str, out: &Output) -> (u32, u32) {
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| -> u32 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no {key} in:\n{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    (get("fds_before="), get("fds_after="))
}

/// How long leakloop waits for the fds to come back (ours only: Debian's never do).
const WAIT_MS: &str = "30000";

fn leakloop(built: &Built, vnl: Option<&str>) -> Output {
    let mut c = built.command("leakloop");
    c.args(vnl).stdin(Stdio::null());
    c.env_remove("VDESTACK_HELPER_LINGER_MS");
    if built.lib == Lib::Ours {
        c.env("LEAKLOOP_WAIT_MS", WAIT_MS);
    }
    let what = format!("{c:?}");
    output_within(c, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{what} did not finish in 120 s"))
}

/// The numbers of the system calls valgrind reported it does not know.
fn unhandled_syscalls(stderr: &str) -> Vec<String> {
    let mut v: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.split("unhandled amd64-linux syscall: ").nth(1))
        .map(|n| n.trim().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

sandbox_test! {
    fn fds_come_back_after_fifty_stacks_and_debian_leaks_them() {
        const T: &str = "fds_come_back_after_fifty_stacks_and_debian_leaks_them";
        if !have_c_toolchain(T) || !have_tun(T) {
            return;
        }
        let Some(debian) = Built::new(T, Lib::Debian, &["leakloop"]) else { return };
        let Some(ours) = Built::new(T, Lib::Ours, &["leakloop"]) else { return };
        // No stack without a network for Debian's: its vde_stackcmd never returns there.
        let (before, after) = fd_counts("debian null://", &leakloop(&debian, Some("null://")));
        eprintln!("debian, null://: {before} fds before, {after} after 50 stacks");
        assert_eq!(after - before, 100, "upstream leaks the tap and the null plug's eventfd");
        for vnl in [Some("null://"), None] {
            let out = leakloop(&ours, vnl);
            assert!(out.status.success(), "ours {vnl:?}: {}", String::from_utf8_lossy(&out.stderr));
            let (before, after) = fd_counts(&format!("ours {vnl:?}"), &out);
            let text = String::from_utf8_lossy(&out.stdout);
            let at_end = text.lines().find_map(|l| l.strip_prefix("fds_after_loop=")).unwrap_or("?");
            eprintln!("ours, {vnl:?}: {before} fds before, {at_end} right after 50 stacks (the helper lingers), {after} after its linger");
            assert_eq!(before, after, "ours {vnl:?} leaves fds behind");
        }
    }
}

sandbox_test! {
    fn fifty_stacks_are_clean_under_valgrind() {
        const T: &str = "fifty_stacks_are_clean_under_valgrind";
        if !have_c_toolchain(T) || !have_tool(T, "valgrind") || !have_tun(T) {
            return;
        }
        let Some(ours) = Built::new(T, Lib::Ours, &["leakloop"]) else { return };
        for vnl in ["null://", ""] {
            let mut valgrind = Command::new("valgrind");
            valgrind
                .args([
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite,indirect",
                    "--error-exitcode=99",
                    "--trace-children=no",
                ])
                .arg(ours.path("leakloop"))
                .args((!vnl.is_empty()).then_some(vnl))
                .env("LD_LIBRARY_PATH", ours.dir())
                .env("LEAKLOOP_WAIT_MS", WAIT_MS)
                .env_remove("VDESTACK_HELPER_LINGER_MS")
                .stdin(Stdio::null());
            let out = output_within(valgrind, Duration::from_secs(600))
                .unwrap_or_else(|| panic!("valgrind leakloop {vnl:?} did not finish in 600 s"));
            let err = String::from_utf8_lossy(&out.stderr);
            let unknown = unhandled_syscalls(&err);
            if !unknown.is_empty() && !out.status.success() {
                // Not a pass: valgrind cannot follow our library here (e.g. valgrind
                // 3.19 lacks pidfd_open, 434, which the stack helper needs).
                return skip(
                    T,
                    &format!(
                        "this valgrind does not implement system call(s) {} that our \
                         library makes, so it cannot run it ({})",
                        unknown.join(", "),
                        err.lines().find(|l| l.contains("round")).unwrap_or("").trim()
                    ),
                );
            }
            if !unknown.is_empty() {
                eprintln!("valgrind {vnl:?}: system call(s) {} unknown to valgrind, handled", unknown.join(", "));
            }
            // Every process valgrind watched (the program and the processes it forks)
            // prints its own summary.
            let bad: Vec<&str> = err
                .lines()
                .filter(|l| l.contains("ERROR SUMMARY:") && !l.contains("ERROR SUMMARY: 0 errors"))
                .collect();
            assert!(
                out.status.success() && bad.is_empty(),
                "valgrind on {vnl:?}: {}\n{}\n{err}",
                out.status,
                bad.join("\n")
            );
            let (before, after) = fd_counts(&format!("valgrind {vnl:?}"), &out);
            assert_eq!(before, after, "under valgrind, {vnl:?} leaves fds behind");
            eprintln!(
                "valgrind {vnl:?}: 0 errors in {} processes, {before} fds before and after",
                err.matches("ERROR SUMMARY:").count()
            );
        }
    }
}
