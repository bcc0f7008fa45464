//! Socket options `rustix` does not wrap: binding a socket to a device, and the
//! cookie that names a socket's network namespace.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_NETNS_COOKIE` (Linux 5.14): a 64-bit id of the socket's network namespace.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// `SO_BINDTODEVICE`: the socket sends and receives through `ifname` only.
pub fn bind_to_device(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<()> {
    let name = ifname.as_bytes();
    // SAFETY: `name` is live for the call and its length is passed; the kernel
    // only reads it (it needs no terminating NUL when the length is given).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The cookie of the socket's network namespace: equal for sockets of one
/// namespace, different for any other (never reused while the system runs).
pub fn netns_cookie(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live for the call; the kernel writes at most `len`
    // bytes into `v` and the length back into `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut v as *mut u64).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}
