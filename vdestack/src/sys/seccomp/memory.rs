//! Reading and writing a supervised thread's memory (`process_vm_readv(2)`),
//! which needs the same permission as ptrace (same user, a dumpable process;
//! under Yama's `ptrace_scope` 1, a descendant).
//!
//! The caller checks [`super::Listener::is_valid`] after reading: only then is
//! the thread known to be the one that trapped.

#![allow(unsafe_code)]

use std::io;

/// The bytes a page-sized read may cross at most (reads stop at page ends, so
/// that an unmapped next page does not fail a read that needed only this one).
const PAGE: u64 = 4096;

/// Reads `buf.len()` bytes at `addr` of thread `pid`; `EFAULT` if they are not
/// all readable.
pub fn read_memory(pid: i32, addr: u64, buf: &mut [u8]) -> io::Result<()> {
    let n = read_some(pid, addr, buf)?;
    if n < buf.len() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes; returns how many were read.
fn read_some(pid: i32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own mutably; the remote iovec is
    // only an address in the other process, which the kernel checks.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Writes `data` at `addr` of thread `pid`; `EFAULT` if not all of it was written.
pub fn write_memory(pid: i32, addr: u64, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` describes `data`, which the kernel only reads; the remote
    // iovec is an address in the other process, which the kernel checks.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if (n as usize) < data.len() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

/// Reads a NUL-terminated string of at most `max` bytes (NUL excluded) at
/// `addr`, page by page. `ENAMETOOLONG` if no NUL comes within `max` bytes,
/// `EFAULT` if the memory ends first.
pub fn read_cstring(pid: i32, addr: u64, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        let to_page_end = (PAGE - at % PAGE) as usize;
        let want = to_page_end.min(max + 1 - out.len());
        let start = out.len();
        out.resize(start + want, 0);
        let got = read_some(pid, at, &mut out[start..])?;
        out.truncate(start + got);
        if let Some(i) = out[start..].iter().position(|&c| c == 0) {
            out.truncate(start + i);
            return Ok(out);
        }
        if got < want {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        if out.len() > max {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        at += got as u64;
    }
}
