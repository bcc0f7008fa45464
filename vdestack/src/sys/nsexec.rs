//! Commands in a stack: `pre_exec` hooks that join the stack's user and network
//! namespaces and raise the network capabilities, and one that ties a command's life
//! to the thread waiting for it. They run between fork and exec in a
//! single-threaded child, so `setns(CLONE_NEWUSER)` is allowed there; they make
//! only system calls.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_BROADCAST: u32 = 11;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
/// The capabilities a stack's commands get, as libvdestack and vdens grant them.
pub(super) const NET_CAPS: [u32; 4] = [
    CAP_NET_ADMIN,
    CAP_NET_RAW,
    CAP_NET_BIND_SERVICE,
    CAP_NET_BROADCAST,
];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Makes `cmd` join the user and network namespaces `userns`/`netns` between fork
/// and exec, and raise CAP_NET_ADMIN, NET_RAW, NET_BIND_SERVICE and NET_BROADCAST
/// into the inheritable and ambient sets, so an unprivileged program keeps them
/// across exec. The fds stay open while `cmd` lives.
pub fn enter_namespaces_on_exec(cmd: &mut Command, userns: Arc<OwnedFd>, netns: Arc<OwnedFd>) {
    let hook = move || -> io::Result<()> {
        // SAFETY: the forked child is single-threaded, which setns(CLONE_NEWUSER)
        // requires; the fds are open (the Arcs are held by this closure).
        if unsafe { libc::setns(userns.as_raw_fd(), libc::CLONE_NEWUSER) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above; we now hold CAP_SYS_ADMIN in the namespace's owner.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        raise_caps(&NET_CAPS)
    };
    // SAFETY: the hook runs after fork in the child and makes only system calls
    // (setns, capget, capset, prctl) on stack memory: no allocation, no locks;
    // io::Error::last_os_error does not allocate.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Extra set-up for an interactive namespace (`vdestack ns`), run after
/// [`enter_namespaces_on_exec`]'s hook: a mount namespace of the command's own (when
/// `sysadmin` or a resolv.conf is asked for), `resolv_conf` bind-mounted over
/// `/etc/resolv.conf`, and CAP_SYS_ADMIN raised like the network capabilities when
/// `sysadmin`.
pub fn ns_extras_on_exec(cmd: &mut Command, sysadmin: bool, resolv_conf: Option<CString>) {
    if !sysadmin && resolv_conf.is_none() {
        return;
    }
    let target = c"/etc/resolv.conf";
    let root = c"/";
    let hook = move || -> io::Result<()> {
        // SAFETY: unshare(CLONE_NEWNS) in the single-threaded child; we hold
        // CAP_SYS_ADMIN in the stack's user namespace, which will own the new one.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Keep our mounts from propagating back to the host's mount namespace.
        // SAFETY: `root` is a NUL-terminated string; the other pointers may be NULL.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(src) = &resolv_conf {
            // SAFETY: both paths are NUL-terminated strings made before the fork.
            let r = unsafe {
                libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if sysadmin {
            raise_caps(&[CAP_SYS_ADMIN])?;
        }
        Ok(())
    };
    // SAFETY: the hook makes only system calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Puts `caps` into the inheritable and ambient sets, so they survive exec.
pub(super) fn raise_caps(caps: &[u32]) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData (the v3 layout) and may update `hdr`.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for &cap in caps {
        data[0].inheritable |= 1 << cap;
    }
    // SAFETY: capset reads the header and two CapData.
    if unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for &cap in caps {
        // SAFETY: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) takes
        // integers only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Makes `cmd` fail to start with `errno` (spawning gives that error; nothing
/// runs): a command for a stack that cannot run one (a user-space stack has no
/// namespace to run it in, and running it in the host's would be wrong).
pub fn fail_on_exec(cmd: &mut Command, errno: i32) {
    let hook = move || -> io::Result<()> { Err(io::Error::from_raw_os_error(errno)) };
    // SAFETY: the hook runs after fork in the child and only builds an error
    // value from an integer: no allocation, no lock, no system call.
    unsafe {
        cmd.pre_exec(hook);
    }
}
