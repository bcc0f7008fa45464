//! The supervisor's side of a seccomp user-notification filter: the listener fd
//! and its ioctls (`seccomp_unotify(2)`).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6): wake the supervisor on the
/// CPU of the trapped task, which then waits for the answer (a cheaper switch
/// than a wake-up across CPUs).
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// One trapped system call, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The cookie that names this call in every answer.
    pub id: u64,
    /// The calling thread's id (in the supervisor's pid namespace).
    pub pid: i32,
    /// The system call number.
    pub nr: i32,
    /// The `AUDIT_ARCH_*` of the call.
    pub arch: u32,
    /// The six arguments, as registers hold them.
    pub args: [u64; 6],
}

/// How a trapped call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The kernel runs the call as if it had not been trapped
    /// (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Only safe when the decision read no
    /// memory of the caller (it could change what a pointer points to).
    Continue,
    /// The call returns this (non-negative) value.
    Value(i64),
    /// The call fails with this errno.
    Errno(i32),
}

/// A listener fd (`SECCOMP_FILTER_FLAG_NEW_LISTENER`).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Listener {
    /// Takes a listener fd (received from the filtered child).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Listener { fd }
    }

    /// Waits for the next trapped call. `ENOENT` means the call went away before
    /// it was received (its thread was killed or interrupted): ask again.
    pub fn recv(&self) -> io::Result<Notification> {
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV writes one struct seccomp_notif to `n`, which is
        // valid and of the size the kernel uses (checked by `check_support`).
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                &mut n as *mut libc::seccomp_notif,
            )
        })?;
        Ok(Notification {
            id: n.id,
            pid: n.pid as i32,
            nr: n.data.nr,
            arch: n.data.arch,
            args: n.data.args,
        })
    }

    /// Answers call `id`. `ENOENT` means the caller is gone (killed, or its call
    /// was interrupted by a signal and will be restarted or fail with `EINTR`).
    pub fn respond(&self, id: u64, r: Response) -> io::Result<()> {
        let (val, error, flags) = match r {
            Response::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            Response::Value(v) => (v, 0, 0),
            Response::Errno(e) => (0, -e.abs(), 0),
        };
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        // SAFETY: NOTIF_SEND reads one struct seccomp_notif_resp from `resp`.
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND as _,
                &mut resp as *mut libc::seccomp_notif_resp,
            )
        })
        .map(|_| ())
    }

    /// Whether call `id` is still waiting for its answer: then the thread that
    /// made it is alive and its pid still names it, so what was read from its
    /// memory is its own.
    pub fn is_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: NOTIF_ID_VALID reads one u64.
        unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
                &mut id as *mut u64,
            ) == 0
        }
    }

    /// Puts a copy of `fd` in the caller's fd table and answers call `id` with its
    /// number in one step (`SECCOMP_ADDFD_FLAG_SEND`, Linux 5.14), so the fd
    /// cannot leak if the caller goes away in between. Returns the number.
    pub fn send_fd(&self, id: u64, fd: BorrowedFd<'_>, cloexec: bool) -> io::Result<i32> {
        let mut add = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: fd.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: NOTIF_ADDFD reads one struct seccomp_notif_addfd; `srcfd` is an
        // fd of ours, borrowed for the call.
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD as _,
                &mut add as *mut libc::seccomp_notif_addfd,
            )
        })
    }

    /// Puts a copy of `fd` at number `target` in the caller's fd table, in place
    /// of what was there (`SECCOMP_ADDFD_FLAG_SETFD`, as `dup2` does), without
    /// answering the call. `ENOENT`: the caller is gone.
    pub fn replace_fd(
        &self,
        id: u64,
        fd: BorrowedFd<'_>,
        target: i32,
        cloexec: bool,
    ) -> io::Result<()> {
        let mut add = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SETFD as u32,
            srcfd: fd.as_raw_fd() as u32,
            newfd: target as u32,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: NOTIF_ADDFD reads one struct seccomp_notif_addfd; `srcfd` is an
        // fd of ours, borrowed for the call.
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD as _,
                &mut add as *mut libc::seccomp_notif_addfd,
            )
        })
        .map(|_| ())
    }

    /// Asks for wake-ups on the trapped task's CPU (Linux 6.6); `false` where the
    /// kernel does not know the flag.
    pub fn set_sync_wakeup(&self) -> bool {
        // SAFETY: NOTIF_SET_FLAGS takes the flags by value, not a pointer.
        unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP as libc::c_ulong,
            ) == 0
        }
    }
}
