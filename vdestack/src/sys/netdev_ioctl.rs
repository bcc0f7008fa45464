//! The real netdevice ioctls on a socket, for comparing the emulation of
//! `nl::emul` with the kernel (and for programs that want the kernel's answer).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `sizeof(struct ifreq)` on 64-bit Linux.
const IFREQ_SIZE: usize = 40;

/// `struct ifconf` on 64-bit Linux: `int ifc_len`, padding, then the buffer
/// pointer.
#[cfg(feature = "diagnostics")]
#[repr(C)]
struct IfConf {
    len: libc::c_int,
    buf: *mut u8,
}

/// `ioctl(fd, request, ifr)` on a 40-byte `struct ifreq` image.
pub fn ifreq_ioctl(fd: BorrowedFd<'_>, request: u64, ifr: &mut [u8; IFREQ_SIZE]) -> io::Result<()> {
    // SAFETY: every request this is meant for reads and writes at most one
    // `struct ifreq` (40 bytes) at the pointer, and `ifr` is 40 writable bytes
    // that outlive the call; `fd` is a valid open descriptor for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, ifr.as_mut_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, SIOCGIFCONF, &ifconf)` with `ifc_buf` = `buf` (`None`: NULL, to ask
/// for the size needed) and `ifc_len` = its length; returns the new `ifc_len`.
#[cfg(feature = "diagnostics")]
pub fn ifconf_ioctl(fd: BorrowedFd<'_>, buf: Option<&mut [u8]>) -> io::Result<usize> {
    let (ptr, len) = match buf {
        Some(b) => (
            b.as_mut_ptr(),
            libc::c_int::try_from(b.len())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        ),
        None => (std::ptr::null_mut(), 0),
    };
    let mut ifc = IfConf { len, buf: ptr };
    // SAFETY: SIOCGIFCONF reads the `struct ifconf` at the pointer (layout as
    // declared above) and writes at most `ifc_len` bytes at `ifc_buf`, which is
    // `buf`'s memory, valid and exclusively borrowed for the call, or NULL.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SIOCGIFCONF as _,
            &mut ifc as *mut IfConf,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ifc.len.max(0) as usize)
}

/// `ioctl(fd, SIOCOUTQ)`: the bytes this socket sent that its peer has not read
/// yet (for a unix datagram socket: datagrams still queued at the receiver).
pub fn unread_sent_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one `int` at the pointer, which is a
    // valid, writable local for the call; `fd` is open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ as _, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}
