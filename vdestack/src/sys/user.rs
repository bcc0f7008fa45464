//! User and group look-ups (glibc's NSS, so `/etc/passwd`, LDAP... all work) and
//! daemonising.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;

/// Looks up `uid` in the passwd database and reads one field of its entry.
fn passwd_field(
    uid: u32,
    field: impl FnOnce(&libc::passwd) -> *const libc::c_char,
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `passwd` is plain data that getpwuid_r fills in; all-zero is a valid
    // initial value for it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call, `buf` is writable
    // for `buf.len()` bytes, and getpwuid_r writes only within it and `pw`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    let ptr = field(&pw);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: on success the entry's string fields point to NUL-terminated strings
    // inside `buf`, which is still alive here.
    let s = unsafe { CStr::from_ptr(ptr) };
    Some(s.to_bytes().to_vec())
}

/// The login name of `uid`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    passwd_field(uid, |pw| pw.pw_name).map(|n| String::from_utf8_lossy(&n).into_owned())
}

/// The home directory of `uid` in the passwd database (not `$HOME`), if it has one.
pub fn home_dir(uid: u32) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    passwd_field(uid, |pw| pw.pw_dir).map(|d| std::ffi::OsString::from_vec(d).into())
}

/// A group given by name or number, as libvdeplug's `vde_grnam2gid`: digits are a
/// gid, the empty string is our effective gid, anything else is looked up.
pub fn group_id(group: &str) -> io::Result<u32> {
    if group.is_empty() {
        return Ok(rustix::process::getegid().as_raw());
    }
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let cname = CString::new(group).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "group name contains a NUL byte",
        )
    })?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: `group` is plain data; all-zero is a valid initial value.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `buf` is writable for its length.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no group named `{group}`"),
        ));
    }
    Ok(gr.gr_gid)
}

/// Detaches from the terminal like `daemon(0, 0)`: forks (the parent exits), starts a
/// new session, changes to `/` and points stdio at `/dev/null`. Only a process with
/// one thread may: with more, `EBUSY` and nothing done (the child would have only
/// the calling thread, and whatever locks the others held).
pub fn daemonize() -> io::Result<()> {
    if thread_count()? != 1 {
        return Err(crate::error::context(
            io::Error::from_raw_os_error(libc::EBUSY),
            "daemonizing: the process has more than one thread",
        ));
    }
    // SAFETY: daemon() forks; the process has one thread (checked above: no other
    // can start one meanwhile, since this is the only thread), so the child is a
    // faithful copy and may go on running Rust code.
    let rc = unsafe { libc::daemon(0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How many threads the process has (the entries of `/proc/self/task`).
fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}
