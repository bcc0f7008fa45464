//! The plumbing end to end on a real child: a trapped call answered by us, the
//! rest untouched, memory read, the listener's hang-up at the end.

use std::io::Read;
use std::process::{Command, Stdio};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::*;

fn wait_event(l: &Listener) -> PollFlags {
    let mut fds = [PollFd::new(l, PollFlags::IN)];
    let t = Timespec {
        tv_sec: 20,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&t)).expect("poll");
    fds[0].revents()
}

#[test]
fn a_trapped_call_is_answered_and_the_listener_hangs_up_at_the_end() {
    if let Err(e) = check_support() {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let rules = [
        Rule {
            nr: libc::SYS_getppid,
            when: When::Always,
            verdict: Verdict::Notify,
        },
        Rule {
            nr: libc::SYS_uname,
            when: When::Always,
            verdict: Verdict::Notify,
        },
    ];
    let prog = program(&rules, Verdict::Errno(libc::ENOSYS as u16)).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "echo $PPID; uname -s"])
        .stdout(Stdio::piped());
    let (mut child, listener) = spawn_with_filter(cmd, prog).expect("spawn");
    let (mut ppid_calls, mut uname_calls) = (0, 0);
    loop {
        let ev = wait_event(&listener);
        if ev.contains(PollFlags::IN) {
            let n = match listener.recv() {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => panic!("recv: {e}"),
            };
            let r = if n.nr as i64 == libc::SYS_getppid {
                ppid_calls += 1;
                Response::Value(4242)
            } else {
                uname_calls += 1;
                // Read the caller's struct utsname pointer's memory (its buffer
                // exists), then let the kernel run the call.
                let mut b = [0u8; 8];
                read_memory(n.pid, n.args[0], &mut b).expect("read memory");
                assert!(listener.is_valid(n.id));
                Response::Continue
            };
            listener.respond(n.id, r).expect("respond");
        } else {
            assert!(ev.contains(PollFlags::HUP), "unexpected {ev:?}");
            break;
        }
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out, "4242\nLinux\n");
    assert!(ppid_calls >= 1 && uname_calls >= 1);
}

#[test]
fn a_missing_command_is_a_command_error() {
    if check_support().is_err() {
        return;
    }
    let prog = program(&[], Verdict::Errno(libc::ENOSYS as u16)).unwrap();
    let cmd = Command::new("/nonexistent/vdestack-test");
    match spawn_with_filter(cmd, prog) {
        Err(SpawnError::Command(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn denied_namespaces_fail_with_eperm() {
    let mut cmd = Command::new("unshare");
    cmd.args(["-U", "true"]).stderr(Stdio::piped());
    deny_namespaces_on_exec(&mut cmd).unwrap();
    let out = cmd.output().expect("unshare");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Operation not permitted"), "{err}");
    // Everything else still runs.
    let mut ok = Command::new("/bin/sh");
    ok.args(["-c", "exit 3"]);
    deny_namespaces_on_exec(&mut ok).unwrap();
    assert_eq!(ok.status().unwrap().code(), Some(3));
}
