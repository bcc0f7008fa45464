//! The only `unsafe` code: the C exports ([`exports`]) and the few libc calls
//! they need (errno, C strings, `fcntl`, the raw `socket` system call), plus the
//! per-thread "inside one of our exports" flag the `socket()` interposer reads.

use std::cell::Cell;
use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub mod exports;

thread_local! {
    /// True while this thread runs one of our exports. Const-initialised with no
    /// destructor, so reading it never allocates or registers anything.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Marks the thread as inside an export until dropped (restoring the previous
/// state, so nested exports, e.g. `socket` calling `vde_msocket`, work).
pub struct InsideGuard(bool);

impl InsideGuard {
    /// Enters an export.
    pub fn enter() -> Self {
        InsideGuard(INSIDE.try_with(|c| c.replace(true)).unwrap_or(true))
    }
}

impl Drop for InsideGuard {
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|c| c.set(self.0));
    }
}

/// Whether this thread is inside one of our exports (then our own sockets, e.g.
/// std's `UnixStream` for a `vde://` plug, must bypass the interposer).
pub fn inside() -> bool {
    INSIDE.try_with(|c| c.get()).unwrap_or(true)
}

/// Sets the calling thread's errno.
pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for
    // the thread's lifetime.
    unsafe { *libc::__errno_location() = e };
}

/// `socket()` past every interposer (ours included): the system call itself. It
/// neither allocates nor locks. Returns the fd, or -1 with errno set.
pub fn raw_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: SYS_socket takes three integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_socket, domain, ty, protocol) as c_int }
}

/// Sets or clears FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fd is a live descriptor (borrowed); F_SETFD takes an int.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flag) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The bytes of a C string, or `None` for NULL.
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged
/// for `'a`.
pub unsafe fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated, per this function's contract.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// The strings of a NULL-terminated `char **` array (an empty list for NULL).
///
/// # Safety
///
/// `argv` is NULL or points to an array of C string pointers ending with NULL,
/// all valid and unchanged for `'a`.
pub unsafe fn c_argv<'a>(argv: *const *const c_char) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    if argv.is_null() {
        return out;
    }
    for i in 0.. {
        // SAFETY: the array is NULL-terminated, and we stop at the NULL.
        let p = unsafe { *argv.add(i) };
        // SAFETY: each element is NULL or a valid C string, per the contract.
        match unsafe { c_bytes(p) } {
            Some(b) => out.push(b),
            None => break,
        }
    }
    out
}
