//! A filter that refuses namespaces, as Docker's default seccomp profile does
//! for a container without `CAP_SYS_ADMIN`: `unshare` and `setns` fail with
//! `EPERM`, `clone` with a `CLONE_NEW*` flag too, and `clone3` (whose flags
//! a filter cannot read) with `ENOSYS`, so that libc falls back to `clone`.
//! Tests use it to show what works where no namespace can be made.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::bpf::{program, Rule, Verdict, When};

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME`.
pub const CLONE_NEW_ANY: u32 = 0x7e02_0080;

/// The rules of the namespace-refusing filter.
pub fn deny_namespace_rules() -> Vec<Rule> {
    let eperm = Verdict::Errno(libc::EPERM as u16);
    vec![
        Rule {
            nr: libc::SYS_unshare,
            when: When::Always,
            verdict: eperm,
        },
        Rule {
            nr: libc::SYS_setns,
            when: When::Always,
            verdict: eperm,
        },
        Rule {
            nr: libc::SYS_clone,
            // x86_64's clone takes the flags first, as do arm64 and riscv64.
            when: When::ArgAnyBit {
                arg: 0,
                mask: CLONE_NEW_ANY,
            },
            verdict: eperm,
        },
        Rule {
            nr: libc::SYS_clone3,
            when: When::Always,
            verdict: Verdict::Errno(libc::ENOSYS as u16),
        },
    ]
}

/// Makes `cmd` (and all it starts) run where no namespace can be made: the
/// filter is installed in the child before exec, with `PR_SET_NO_NEW_PRIVS`.
pub fn deny_namespaces_on_exec(cmd: &mut Command) -> io::Result<()> {
    let prog = program(&deny_namespace_rules(), Verdict::Errno(libc::ENOSYS as u16))?;
    filter_on_exec(cmd, prog);
    Ok(())
}

/// Installs filter `prog` (no listener: `Notify` rules would fail the calls
/// with `ENOSYS`) in `cmd`'s child before it execs, with `PR_SET_NO_NEW_PRIVS`.
/// Also what the benchmark uses to show what any filter costs a program.
pub fn filter_on_exec(cmd: &mut Command, prog: Vec<libc::sock_filter>) {
    // SAFETY: the hook runs between fork and exec and only makes two system
    // calls on `prog`, prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &fprog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
