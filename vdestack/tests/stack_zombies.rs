//! No zombie of ours, whatever the application is: PID 1 of a pid namespace (as
//! in a container: `unshare -pf`), a child subreaper (`PR_SET_CHILD_SUBREAPER`), or
//! neither. Orphans are re-parented to such an application, so the double-forked
//! namespace helper becomes its child; an application that does not know about it
//! never reaps it. Every process the library starts is checked: the helper (and
//! the intermediate fork that makes it), the keepers and commands of `Stack::run`,
//! `=COMMAND` and `cmd://` coprocesses, a `cmd://` plug on its own.
//!
//! The application (this test binary, re-executed in each role) counts the zombies
//! whose parent it is (`/proc/*/stat` state `Z`) after the cycles, and after the
//! helper's linger (when it has no child left at all). The cycles run with the
//! default linger (one helper for all) and with `VDESTACK_HELPER_LINGER_MS=0` (a
//! helper started and ended per stack). Only the public API and the environment are
//! used, so the same test runs against older versions of the library too.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use vdestack::stack::Stack;

const ROLE: &str = "VDESTACK_TEST_ZOMBIE_ROLE";
const CYCLES: usize = 20;

/// Our pid as this `/proc` numbers it (it may belong to an outer pid namespace).
fn proc_pid() -> i32 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// (state, ppid) of a process, from `/proc/PID/stat`.
fn state_ppid(pid: &str) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let mut w = rest.split_whitespace();
    let state = w.next()?.chars().next()?;
    let ppid = w.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Zombies whose parent is this process.
fn zombies() -> Vec<i32> {
    let me = proc_pid();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: i32 = name.parse().ok()?;
            match state_ppid(&name)? {
                ('Z', ppid) if ppid == me => Some(pid),
                _ => None,
            }
        })
        .collect()
}

/// Children of this process (any state, zombies included).
fn children() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .count()
        })
        .sum()
}

/// The application's side: the cycles, then the counts, as `key=value` lines.
fn role(mode: &str) {
    match mode {
        "pid1" => assert!(rustix::process::getpid().is_init(), "not PID 1"),
        "subreaper" => {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
            assert!(rustix::process::child_subreaper().unwrap().is_some());
        }
        _ => {}
    }
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_ok();
    for i in 0..CYCLES {
        let s = Stack::new().unwrap();
        drop(
            s.socket(
                vdestack::net::AddressFamily::INET,
                vdestack::net::SocketType::DGRAM,
                None,
            )
            .unwrap(),
        );
        assert_eq!(s.run("/bin/true").unwrap().code(), Some(0), "cycle {i}");
        drop(s);
        if tun {
            drop(Stack::with_interfaces(&["=/bin/cat"]).unwrap());
            drop(Stack::with_interfaces(&["cmd:///bin/cat"]).unwrap());
        }
        drop(vdestack::vde::open("cmd:///bin/cat").unwrap());
    }
    println!();
    println!("tun={tun}");
    println!("zombies_after_cycles={}", zombies().len());
    // After the linger nothing of ours is left: not even a running child.
    let deadline = Instant::now() + Duration::from_secs(20);
    while children() > zombies().len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A zombie can only stay: give a late reaper a moment, then count.
    std::thread::sleep(Duration::from_millis(100));
    let z = zombies();
    println!("zombies_after_linger={}", z.len());
    println!("children_after_linger={}", children());
    println!("zombie_pids={z:?}");
    println!("end=ok");
}

/// Runs this test's role `mode` in a new process (as PID 1 of a new pid namespace
/// for "pid1"), with `linger_ms` if given; returns its `key=value` lines.
fn run_role(mode: &str, linger_ms: Option<&str>) -> std::collections::HashMap<String, String> {
    const T: &str = "no_zombies_as_pid1_subreaper_or_neither";
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if mode == "pid1" {
        let mut c = Command::new("unshare");
        c.args(["-pf", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.args([T, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, mode)
        .env("VDESTACK_TEST_SANDBOX", "1")
        .stdin(Stdio::null());
    match linger_ms {
        Some(ms) => cmd.env("VDESTACK_HELPER_LINGER_MS", ms),
        None => cmd.env_remove("VDESTACK_HELPER_LINGER_MS"),
    };
    let what = format!("{mode}, linger {linger_ms:?}");
    let out = output_within(cmd, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{what}: the application did not finish in 120 s"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let kv: std::collections::HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        kv.get("end").map(String::as_str),
        Some("ok"),
        "{what}: {text}"
    );
    kv
}

sandbox_test! {
    fn no_zombies_as_pid1_subreaper_or_neither() {
        if let Ok(mode) = std::env::var(ROLE) {
            return role(&mode);
        }
        const T: &str = "no_zombies_as_pid1_subreaper_or_neither";
        if !have_tool(T, "unshare") {
            return;
        }
        let mut problems = Vec::new();
        for mode in ["pid1", "subreaper", "neither"] {
            for linger in [None, Some("0")] {
                let kv = run_role(mode, linger);
                eprintln!("{mode}, linger {linger:?}: {kv:?}");
                for key in ["zombies_after_cycles", "zombies_after_linger", "children_after_linger"] {
                    if kv.get(key).map(String::as_str) != Some("0") {
                        problems.push(format!("{mode}, linger {linger:?}: {key}={:?} ({:?})", kv.get(key), kv.get("zombie_pids")));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
