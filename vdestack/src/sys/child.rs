//! Ending child processes we started, reaping what is ours, and a hook for
//! `fork()`ed children.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::BorrowedFd;
use std::process::Child;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal, WaitId, WaitIdOptions, WaitOptions};

/// Asks `child` to stop with SIGTERM, waits up to `grace` for it, then kills it with
/// SIGKILL; always reaps it, so no zombie is left.
pub fn terminate_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = Pid::from_raw(child.id() as i32) {
        let _ = kill_process(pid, Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether orphans of our children become ours: this process is its pid
/// namespace's init (PID 1) or a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub fn is_reaper() -> bool {
    rustix::process::getpid().is_init() || matches!(rustix::process::child_subreaper(), Ok(Some(_)))
}

/// Reaps a process that has exited, or exits within `wait`, *if it is our child*
/// (e.g. a double-forked daemon re-parented to us because we are PID 1 or a
/// subreaper); its status is discarded. A process that is not our child is left
/// alone: its own parent reaps it. Returns whether we reaped it.
///
/// With a pidfd (`waitid(P_PIDFD)`, Linux 5.4) the process cannot be confused with
/// a later one that got its pid. Without one (`pidfd_open` missing, e.g. under
/// valgrind) it waits by pid, and only when [`is_reaper`]: otherwise the process
/// cannot be our child, and the pid might since belong to one that is.
pub fn reap_if_ours(pidfd: Option<BorrowedFd<'_>>, pid: i32, wait: Duration) -> bool {
    if let Some(fd) = pidfd {
        // A pidfd reads as readable once the process has exited, child or not.
        let _ = super::poll_readable(fd, Some(wait));
        match rustix::process::waitid(
            WaitId::PidFd(fd),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        ) {
            Ok(status) => return status.is_some(),
            // ECHILD: not ours (or the application's waitpid(-1) took it).
            Err(rustix::io::Errno::CHILD) => return false,
            // EINVAL: a kernel without P_PIDFD: by pid below.
            Err(_) => {}
        }
    }
    let Some(pid) = Pid::from_raw(pid) else {
        return false;
    };
    if !is_reaper() {
        return false;
    }
    let deadline = Instant::now() + wait;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(rustix::io::Errno::INTR) => {}
            _ => return false,
        }
    }
}

/// Registers `hook` to run in the child of every later `fork()` made through libc
/// (not in raw `clone`s, nor in `posix_spawn`/`vfork` children, which exec). It
/// runs before `fork()` returns in the child, so it must be short and must not
/// block on locks another thread may have held at the fork.
pub fn on_fork_child(hook: extern "C" fn()) -> io::Result<()> {
    // SAFETY: pthread_atfork stores the function pointers; `hook` is a plain
    // `extern "C" fn` with no captured state, valid for the program's life.
    let r = unsafe { libc::pthread_atfork(None, None, Some(hook)) };
    match r {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}
