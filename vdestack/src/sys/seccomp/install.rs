//! Starting a command under a user-notification filter, and checking that the
//! kernel can do it.
//!
//! The filter is installed in the forked child just before it execs
//! (`PR_SET_NO_NEW_PRIVS` first, which an unprivileged filter needs and which
//! makes setuid and file-capability binaries run without their privileges).
//! The kernel hands the listener fd to the child that installed the filter; the
//! child passes it to us over a socket pair with `SCM_RIGHTS`, closes its copy,
//! and execs. Between fork and exec only system calls run, on memory prepared
//! before the fork (the parent may be multithreaded): no allocation, no locks.
//!
//! The child passes the fd with `sendmsg` *after* the filter is in place, so a
//! filter must not trap that call (nobody would answer yet): it is made with
//! the flags [`UNTRAPPED_SENDMSG_FLAGS`], which a filter that traps `sendmsg`
//! lets through.

#![allow(unsafe_code)]

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use libc::sock_filter;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags,
    SocketType,
};

use super::Listener;

/// Why a supervised command did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The filter could not be installed (its errno says why: `EBUSY` when the
    /// process already has a user-notification filter, as under another
    /// supervisor; `EINVAL`/`EACCES` on a kernel without the feature).
    #[error("installing the seccomp filter in the command failed: {0}")]
    Filter(io::Error),
    /// The command itself could not be run (`NotFound`, `PermissionDenied`, ...).
    #[error("{0}")]
    Command(io::Error),
}

/// The `sendmsg` flags of the call that passes the listener fd: a combination
/// no program uses (`MSG_DONTWAIT | MSG_EOR | MSG_CONFIRM | MSG_NOSIGNAL`, all
/// harmless on the `AF_UNIX` socket it goes over), so a filter trapping
/// `sendmsg` can let exactly this call through.
pub const UNTRAPPED_SENDMSG_FLAGS: u32 = 0x48c0;

/// The child's message: a tag byte, then an errno for `E`.
const TAG_LISTENER: u8 = b'L';
const TAG_ERROR: u8 = b'E';

/// Spawns `cmd` with the filter `prog` installed (`SECCOMP_RET_USER_NOTIF` rules
/// reach the returned listener). The filter is inherited by everything the
/// command starts, threads included, and survives its execs.
pub fn spawn_with_filter(
    mut cmd: Command,
    prog: Vec<sock_filter>,
) -> Result<(Child, Listener), SpawnError> {
    let (ours, theirs) = net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| SpawnError::Filter(crate::error::context(e, "socket pair for the listener")))?;
    let theirs_raw = theirs.as_raw_fd();
    // SAFETY: the hook runs in the forked child before exec and only makes
    // system calls (prctl, seccomp, sendmsg, close) on `prog` and integers,
    // all prepared before the fork; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || install_in_child(&prog, theirs_raw));
    }
    let spawned = cmd.spawn();
    drop(theirs);
    let (tag, value, fd) = child_message(&ours);
    match (spawned, tag) {
        (Ok(child), TAG_LISTENER) => match fd {
            Some(fd) => Ok((child, Listener::from_fd(fd))),
            None => Err(SpawnError::Filter(io::Error::other(
                "the command sent no listener fd",
            ))),
        },
        (Err(_), TAG_ERROR) | (Ok(_), TAG_ERROR) => {
            Err(SpawnError::Filter(io::Error::from_raw_os_error(value)))
        }
        (Err(e), _) => Err(SpawnError::Command(e)),
        (Ok(mut child), _) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(SpawnError::Filter(io::Error::other(
                "the command started without reporting its filter",
            )))
        }
    }
}

/// Reads what the child sent (it is there already: the child sent it before
/// exec, and spawn returned after the exec or the failure). `(0, 0, None)` if
/// nothing came.
fn child_message(sock: &OwnedFd) -> (u8, i32, Option<OwnedFd>) {
    let mut buf = [0u8; 8];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    );
    let mut fd = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            fd = fds.next();
        }
    }
    match got {
        Ok(r) if r.bytes >= 1 => {
            let value = i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]);
            (buf[0], value, fd)
        }
        _ => (0, 0, None),
    }
}

/// In the child: no_new_privs, the filter, the listener to the parent.
fn install_in_child(prog: &[sock_filter], sock: i32) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    // SAFETY: plain system calls; `fprog` points into `prog`, alive for the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(report(sock));
        }
        let fd = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        );
        if fd < 0 {
            return Err(report(sock));
        }
        let fd = fd as i32;
        let sent = send_fd(sock, fd);
        libc::close(fd);
        libc::close(sock);
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sends the errno of the last failure to the parent; returns it.
fn report(sock: i32) -> io::Error {
    let e = io::Error::last_os_error();
    let code = e.raw_os_error().unwrap_or(libc::EINVAL);
    let mut msg = [TAG_ERROR, 0, 0, 0, 0];
    msg[1..5].copy_from_slice(&code.to_ne_bytes());
    // SAFETY: send reads `msg`, a local array.
    unsafe {
        libc::send(sock, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL);
    }
    io::Error::from_raw_os_error(code)
}

/// `sendmsg` of one tag byte with `fd` attached, built on the stack.
///
/// # Safety
/// Plain system call on integers and locals.
unsafe fn send_fd(sock: i32, fd: i32) -> isize {
    let mut tag = [TAG_LISTENER, 0, 0, 0, 0];
    let mut iov = libc::iovec {
        iov_base: tag.as_mut_ptr().cast(),
        iov_len: tag.len(),
    };
    // Room for one cmsghdr and one int, 8-aligned (CMSG_SPACE(4) is 24 on 64-bit).
    let mut control = [0u64; 4];
    let space = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as usize;
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space.min(std::mem::size_of_val(&control)) as _;
    let cmsg = libc::CMSG_FIRSTHDR(&msg);
    (*cmsg).cmsg_level = libc::SOL_SOCKET;
    (*cmsg).cmsg_type = libc::SCM_RIGHTS;
    (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
    libc::sendmsg(sock, &msg, UNTRAPPED_SENDMSG_FLAGS as i32)
}

/// `seccomp(2)` with an operation and a pointer argument.
///
/// # Safety
/// `arg` must be what `op` expects.
unsafe fn seccomp_op(op: libc::c_uint, arg: *mut libc::c_void) -> io::Result<()> {
    if libc::syscall(libc::SYS_seccomp, op, 0, arg) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The oldest kernel with every feature used: `SECCOMP_ADDFD_FLAG_SEND` (5.14;
/// user notification itself is 5.0, fd injection 5.9, the listener's hang-up
/// when the last supervised task is gone 5.11).
const MIN_KERNEL: (u32, u32) = (5, 14);

/// Checks that this kernel can supervise a command: seccomp user notification
/// is available, its structures are the size we use, and the kernel is 5.14 or
/// later. The error names the requirement that is missing.
pub fn check_support() -> io::Result<()> {
    let mut action = libc::SECCOMP_RET_USER_NOTIF;
    // SAFETY: GET_ACTION_AVAIL reads one u32.
    let avail = unsafe {
        seccomp_op(
            libc::SECCOMP_GET_ACTION_AVAIL,
            (&mut action as *mut u32).cast(),
        )
    };
    if let Err(e) = avail {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "this kernel has no seccomp user notification ({e}): vdestack vu needs Linux \
                 {}.{} or later built with CONFIG_SECCOMP_FILTER, and the seccomp system call \
                 allowed",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
        ));
    }
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: GET_NOTIF_SIZES writes one struct seccomp_notif_sizes.
    unsafe {
        seccomp_op(
            libc::SECCOMP_GET_NOTIF_SIZES,
            (&mut sizes as *mut libc::seccomp_notif_sizes).cast(),
        )?;
    }
    let ours = (
        std::mem::size_of::<libc::seccomp_notif>(),
        std::mem::size_of::<libc::seccomp_notif_resp>(),
        std::mem::size_of::<libc::seccomp_data>(),
    );
    let theirs = (
        sizes.seccomp_notif as usize,
        sizes.seccomp_notif_resp as usize,
        sizes.seccomp_data as usize,
    );
    if ours != theirs {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "this kernel's seccomp notification structures have sizes {theirs:?}, \
                 vdestack was built for {ours:?}"
            ),
        ));
    }
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    match kernel_version(&release) {
        Some(v) if v >= MIN_KERNEL => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "vdestack vu needs Linux {}.{} or later (SECCOMP_ADDFD_FLAG_SEND); this kernel \
                 is {release}",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
        )),
    }
}

/// `(major, minor)` of a kernel release string such as `6.1.0-18-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.14"), Some((5, 14)));
        assert_eq!(kernel_version("4.19.0+"), Some((4, 19)));
        assert_eq!(kernel_version("x"), None);
    }
}
