//! Safe helpers over `rustix` for fds.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

/// Waits until `fd` is readable (or hung up), or `timeout` passes (`None`: forever).
/// Returns whether it is ready. An interrupted wait reports "not ready".
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    poll_one(fd, PollFlags::IN, timeout)
}

/// Waits until `fd` is writable (or in error), or `timeout` passes (`None`:
/// forever). Returns whether it is.
pub fn poll_writable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    poll_one(fd, PollFlags::OUT, timeout)
}

fn poll_one(fd: BorrowedFd<'_>, flags: PollFlags, timeout: Option<Duration>) -> io::Result<bool> {
    let mut fds = [PollFd::new(&fd, flags)];
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos() as _,
    });
    match poll(&mut fds, ts.as_ref()) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes an fd non-blocking.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let flags = fcntl_getfl(&fd)?;
    fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}

/// Whether an error means "try again later" (EAGAIN, or ENOBUFS from a full
/// datagram queue): for a relay, a frame to drop.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// Takes ownership of an fd given by number (from a URL such as `seqpacket://5`),
/// after checking that it is open. The caller must be entitled to own it: the URL
/// hands it over, as with libvdeplug.
pub fn claim_fd(raw: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    if raw < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the fd's flags; it is defined for any integer.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above) and the user handed it to us by number,
    // which is the documented meaning of `seqpacket://FD`: the plug owns it from now.
    #[allow(unsafe_code)]
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// Turns a failed non-blocking send into the plug contract's error: a full queue
/// (EAGAIN, or ENOBUFS from a datagram socket) is `WouldBlock`, a frame to drop.
pub fn send_error(e: rustix::io::Errno) -> io::Error {
    let e = io::Error::from(e);
    if would_block(&e) {
        io::ErrorKind::WouldBlock.into()
    } else {
        e
    }
}
