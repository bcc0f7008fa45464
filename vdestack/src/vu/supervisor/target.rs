//! The thread a trapped call came from: its memory, its fds, its paths, seen
//! through `process_vm_readv` and `/proc`.
//!
//! Which socket an fd is: the link `/proc/TID/fd/N` names it `socket:[INODE]`,
//! and our served sockets are known by the inode of the end we gave. One
//! `readlink`, needing only ptrace *read* access; `pidfd_getfd` would need a
//! pidfd per process, ptrace *attach* access, and four calls (open the pidfd,
//! get the fd, `fstat` it, close it).

use std::collections::HashMap;
use std::os::fd::BorrowedFd;

use rustix::fs::CWD;

use super::Served;
use crate::sys::seccomp::{self, Listener, Notification};
use crate::vu::Errno;

/// What an fd of the caller is, as far as serving goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// Not open (the kernel answers `EBADF`), or not visible to us.
    Unknown,
    /// Open, not a socket.
    NotSocket,
    /// A socket we do not serve (`AF_UNIX`, ...): the kernel's.
    KernelSocket,
    /// One of ours, by inode.
    Served(u64),
}

/// The calling thread of one notification.
pub(crate) struct Target<'a> {
    pub n: &'a Notification,
    listener: &'a Listener,
}

/// The longest path read from a program (`PATH_MAX`, NUL excluded).
const PATH_MAX: usize = 4095;

fn errno_of(e: std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EFAULT)
}

impl<'a> Target<'a> {
    pub(crate) fn new(n: &'a Notification, listener: &'a Listener) -> Self {
        Target { n, listener }
    }

    /// The thread id.
    pub(crate) fn pid(&self) -> i32 {
        self.n.pid
    }

    /// The caller's process id (its thread group's): what the kernel gives a
    /// process's first netlink socket as its port id. The thread id if `/proc`
    /// cannot tell.
    pub(crate) fn tgid(&self) -> i32 {
        std::fs::read_to_string(format!("/proc/{}/status", self.n.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Tgid:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(self.n.pid)
    }

    /// Argument `i` as the kernel reads an `int`.
    pub(crate) fn int(&self, i: usize) -> i32 {
        self.n.args[i] as u32 as i32
    }

    /// Argument `i` as a pointer.
    pub(crate) fn ptr(&self, i: usize) -> u64 {
        self.n.args[i]
    }

    /// Whether the call is still waiting: what was read is the caller's.
    pub(crate) fn valid(&self) -> bool {
        self.listener.is_valid(self.n.id)
    }

    /// `len` bytes at `addr` (`EFAULT` if unreadable).
    pub(crate) fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut b = vec![0u8; len];
        seccomp::read_memory(self.n.pid, addr, &mut b).map_err(errno_of)?;
        Ok(b)
    }

    /// The `int` (or `socklen_t`) at `addr`.
    pub(crate) fn read_i32(&self, addr: u64) -> Result<i32, Errno> {
        let b = self.read(addr, 4)?;
        Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Writes `data` at `addr`.
    pub(crate) fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        seccomp::write_memory(self.n.pid, addr, data).map_err(errno_of)
    }

    /// A NUL-terminated path at `addr`.
    pub(crate) fn path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        seccomp::read_cstring(self.n.pid, addr, PATH_MAX).map_err(errno_of)
    }

    /// Puts a copy of `fd` in the caller's table and answers the call with its
    /// number.
    pub(crate) fn send_fd(&self, fd: BorrowedFd<'_>, cloexec: bool) -> Result<i32, Errno> {
        self.listener
            .send_fd(self.n.id, fd, cloexec)
            .map_err(errno_of)
    }

    /// Puts a copy of `fd` at number `target` of the caller's fd table, in
    /// place of what was there (the call is answered separately).
    pub(crate) fn replace_fd(
        &self,
        fd: BorrowedFd<'_>,
        target: i32,
        cloexec: bool,
    ) -> Result<(), Errno> {
        self.listener
            .replace_fd(self.n.id, fd, target, cloexec)
            .map_err(errno_of)
    }

    /// Where `/proc/PID/fd/FD` (or `cwd`) of the caller points.
    pub(crate) fn link(&self, what: &str) -> Option<Vec<u8>> {
        let p = format!("/proc/{}/{what}", self.n.pid);
        rustix::fs::readlinkat(CWD, p, Vec::new())
            .ok()
            .map(|c| c.into_bytes())
    }

    /// The file status flags and `O_CLOEXEC` of fd `fd` of the caller (the
    /// `flags:` line of `/proc/TID/fdinfo/FD`, octal).
    pub(crate) fn fd_flags(&self, fd: i32) -> Option<i32> {
        let s = std::fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", self.n.pid)).ok()?;
        parse_fdinfo_flags(&s)
    }

    /// What fd `fd` of the caller is.
    pub(crate) fn fd_kind(&self, fd: i32, served: &HashMap<u64, Served>) -> FdKind {
        if fd < 0 {
            return FdKind::Unknown;
        }
        let Some(link) = self.link(&format!("fd/{fd}")) else {
            return FdKind::Unknown;
        };
        match socket_inode(&link) {
            Some(ino) if served.contains_key(&ino) => FdKind::Served(ino),
            Some(_) => FdKind::KernelSocket,
            None => FdKind::NotSocket,
        }
    }
}

/// The `flags:` of an fdinfo file.
fn parse_fdinfo_flags(s: &str) -> Option<i32> {
    let v = s.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i32::from_str_radix(v.trim(), 8).ok()
}

/// The inode of a `socket:[INODE]` link.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(link).ok()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether process (or thread) `pid` is supervised: it is the caller's own
/// thread group, or `root` (the command) is among its ancestors. Orphans
/// re-parented away from the command's tree are not seen as supervised.
pub(crate) fn supervised(pid: i32, caller: i32, root: i32) -> bool {
    if pid == caller || same_group(pid, caller) {
        return true;
    }
    let mut p = pid;
    for _ in 0..4096 {
        if p == root {
            return true;
        }
        match parent_of(p) {
            Some(pp) if pp > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

/// Whether `tid` is a thread of process `pid` (or the other way round).
fn same_group(a: i32, b: i32) -> bool {
    std::fs::metadata(format!("/proc/{a}/task/{b}")).is_ok()
        || std::fs::metadata(format!("/proc/{b}/task/{a}")).is_ok()
}

/// The parent of `pid` (field 4 of `/proc/PID/stat`, after the `(comm)`).
fn parent_of(pid: i32) -> Option<i32> {
    let s = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = s.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(&s[close + 1..]).ok()?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn fdinfo_flags() {
        let s = "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1234\n";
        let f = parse_fdinfo_flags(s).unwrap();
        assert_eq!(f & libc::O_NONBLOCK, libc::O_NONBLOCK);
        assert_eq!(f & libc::O_CLOEXEC, libc::O_CLOEXEC);
        assert_eq!(parse_fdinfo_flags("pos: 0\n"), None);
    }

    #[test]
    fn parents() {
        let me = std::process::id() as i32;
        assert_eq!(
            parent_of(me),
            Some(rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get()))
        );
        assert!(supervised(me, me, 1));
        let parent = parent_of(me).unwrap();
        assert!(supervised(me, 999_999, parent));
        assert!(!supervised(parent, 999_999, me));
    }
}
