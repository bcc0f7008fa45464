//! Commands run by [`crate::stack::Stack::run`] (and so `vde_stackcmd`), out of the
//! application's reach.
//!
//! Why not `std::process::Command`: its child is an ordinary child, so an
//! application's SIGCHLD handler calling `wait()` or `waitpid(-1, ...)` could reap
//! it and steal its status. Instead we `clone()` a *keeper* with **no exit signal**
//! (it sends no SIGCHLD, and a wait without `__WCLONE`/`__WALL` does not see it).
//! The keeper joins the stack's namespaces, raises the network capabilities and
//! forks the command, which execs; the keeper waits for it and exits with its
//! status (128+N for a signal). The keeper never execs: an exec would reset its
//! exit signal to SIGCHLD. libvdestack gets the same effect by making commands
//! children of its helper.
//!
//! Each process dies with its parent (`PR_SET_PDEATHSIG`): the command with the
//! keeper, the keeper with the application thread that waits for it.
//!
//! Between clone and exec only system calls run, on memory prepared before the
//! clone (the caller is multithreaded): no allocation, locks or panics.

#![allow(unsafe_code)]

use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::nsexec::{raise_caps, NET_CAPS};

/// Runs `argv` (no `PATH` search: `argv[0]` is the path) in the namespaces
/// `userns` and `netns` with the network capabilities, stdio and environment
/// inherited, and waits for it: its wait status (exit status 2 if it could not be
/// executed; killed by signal N if signal N killed the command). It is killed if
/// the calling thread ends first.
pub fn run_in_namespaces(
    argv: &[CString],
    userns: BorrowedFd<'_>,
    netns: BorrowedFd<'_>,
) -> io::Result<i32> {
    if argv.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty command",
        ));
    }
    let cstrs = argv;
    let mut ptrs: Vec<*const c_char> = cstrs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let parent = rustix::process::getpid().as_raw_nonzero().get();
    let (userns, netns) = (userns.as_raw_fd(), netns.as_raw_fd());

    // SAFETY: clone with flags 0 (no CLONE_VM, exit signal 0) is a fork: the child
    // gets a copy of this thread's stack and continues here with a return of 0.
    // It then runs `keeper_main`, which only makes system calls on `ptrs`, `cstrs`
    // and integers, all prepared above, and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            0 as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(crate::error::context(
            io::Error::last_os_error(),
            "clone (a stack command)",
        ));
    }
    if pid == 0 {
        keeper_main(&ptrs, parent, userns, netns);
    }
    let pid = pid as libc::pid_t;
    let status = loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a valid local. __WCLONE selects
        // children with a non-SIGCHLD exit signal, as ours.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WCLONE) };
        if r == pid {
            break status;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(crate::error::context(e, "waiting for a stack command"));
        }
    };
    Ok(status)
}

/// Ends the keeper as the command ended: with its exit status, or killed by the
/// signal that killed it (so the caller's wait status says which), without a core
/// file of the keeper's own.
///
/// # Safety
///
/// Only system calls: for the keeper, after the clone.
unsafe fn end_as(status: i32) -> ! {
    // SAFETY: system calls on integers and on a local limit.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            // Every disposition is the default already; unblock it, then raise it.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// The keeper: joins the namespaces, forks the command, exits with its status.
fn keeper_main(argv: &[*const c_char], parent: i32, userns: i32, netns: i32) -> ! {
    // SAFETY (whole function): system calls on integers and on `argv`, a
    // NULL-terminated array of NUL-terminated strings in our copy of the parent's
    // memory, which nothing else writes.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent {
            libc::_exit(2);
        }
        // The application's handlers are not ours to run (this is a copy of its
        // memory), and we must be able to wait for the command whatever it did with
        // SIGCHLD (SIG_IGN would reap it for us): everything back to the default,
        // as libvdestack's helper does before it runs commands.
        for sig in 1..65 {
            libc::signal(sig, libc::SIG_DFL);
        }
        if libc::setns(userns, libc::CLONE_NEWUSER) != 0
            || libc::setns(netns, libc::CLONE_NEWNET) != 0
            || raise_caps(&NET_CAPS).is_err()
        {
            libc::_exit(2);
        }
        let keeper = libc::getpid();
        let pid = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if pid < 0 {
            libc::_exit(2);
        }
        if pid == 0 {
            command_main(argv, keeper);
        }
        let pid = pid as libc::pid_t;
        loop {
            let mut status = 0;
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                end_as(status);
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(2);
            }
        }
    }
}

/// The command: a clean signal state, then exec.
fn command_main(argv: &[*const c_char], keeper: i32) -> ! {
    // SAFETY: as in `keeper_main`; `environ` is read as it was at the clone.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != keeper {
            libc::_exit(2);
        }
        // What the application blocked is not the command's business.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        extern "C" {
            static environ: *const *const c_char;
        }
        libc::execve(argv[0], argv.as_ptr(), environ);
        libc::_exit(2)
    }
}
