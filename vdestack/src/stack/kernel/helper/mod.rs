//! The process's namespace helper (`sys::nshelper`), shared by all its stacks:
//! started with the first stack; after the last one it *lingers* a short while
//! ([`crate::Config::helper_linger`], 250 ms by default) so a
//! process that makes one stack after another (one per test, per request) does
//! not start a process each time; then it ends, and nothing of ours is left.
//! [`end_idle_helper`] ends a lingering helper at once.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`SharedHelper`] (the running helper and how it ends) and [`Lease`] (a stack's hold on it) |
//! | `linger.rs` | the slot that holds it, the linger and its thread, `fork()`ed children |
//!
//! ## What lingers, and how it ends
//!
//! While it lingers the process holds the helper's four fds (its socket pair end,
//! the pipe that reads EOF when it exits, its pidfd and its user namespace) and one
//! thread (`vdestack-linger`) that ends it when the linger is over. That thread,
//! once started (when the process first has no stack), stays while the helper
//! lives and leaves with it. With a linger of 0 there is no thread: the last
//! stack's drop ends the helper, as before lingering existed.
//!
//! Ending it: the pair is closed, so the helper reads EOF and exits; we wait for
//! that (the pipe), killing it after [`HELPER_EXIT_WAIT`] if it does not; then it
//! is *reaped if it is our child*. It normally is not (it was double-forked, so
//! init or a subreaper above us reaps it, and an application's `waitpid(-1)` never
//! sees it), but when the application is PID 1 or a child subreaper, the helper
//! is re-parented to it: we reap it through its pidfd (`waitid(P_PIDFD)`), or
//! else nobody would and every helper would stay a zombie.
//!
//! ## Forks
//!
//! A `fork()`ed child (no exec) shares the helper of the stacks it inherited, as
//! before: requests carry their own reply channel. A helper that merely lingers
//! at the fork is not the child's: its copies are closed in the child at once
//! (a `pthread_atfork` hook), so a daemon that forks and exits after deleting its
//! stacks leaves no helper alive behind it; the child starts its own if it makes
//! a stack.
//!
//! ## An application that closes our fds
//!
//! A C program may close "all other fds" (daemons do) after deleting its stacks,
//! while the helper lingers; the fd numbers may then be reused by its own files.
//! Before a lingering helper is used again or ended, its pair end and pipe are
//! checked to be the same files as at its start (`fstat`); if not, they are
//! forgotten, never closed: closing them would close the application's files.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

mod linger;

pub use linger::end_idle_helper;
pub(crate) use linger::{get, linger_changed, Lease};

/// How long ending the helper waits for it to exit before killing it.
const HELPER_EXIT_WAIT: Duration = Duration::from_secs(5);

/// The running helper.
#[derive(Debug)]
pub(crate) struct SharedHelper {
    ctl: Option<OwnedFd>,
    /// EOF once the helper has exited.
    life: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    pub(crate) pid: i32,
    pub(crate) userns: Arc<OwnedFd>,
    /// The process that started it: in a forked child the helper is the parent's.
    owner: rustix::process::Pid,
    /// What `ctl` and `life` were at the start (device, inode).
    ids: [(u64, u64); 2],
}

/// A file's identity.
fn file_id(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino))
}

impl SharedHelper {
    /// Starts a helper.
    fn start() -> io::Result<Self> {
        let h = crate::sys::spawn_helper()?;
        let ids = [
            file_id(h.ctl.as_fd()).unwrap_or_default(),
            file_id(h.life.as_fd()).unwrap_or_default(),
        ];
        Ok(SharedHelper {
            ctl: Some(h.ctl),
            life: Some(h.life),
            pidfd: h.pidfd,
            pid: h.pid,
            userns: Arc::new(h.userns),
            owner: rustix::process::getpid(),
            ids,
        })
    }

    /// Our end of the helper's pair.
    pub(crate) fn ctl(&self) -> io::Result<BorrowedFd<'_>> {
        self.ctl
            .as_ref()
            .map(|c| c.as_fd())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// Whether this process started it.
    fn ours(&self) -> bool {
        rustix::process::getpid() == self.owner
    }

    /// Whether our fds are still the files they were (the application did not
    /// close them and reuse the numbers).
    fn fds_intact(&self) -> bool {
        let id = |fd: &Option<OwnedFd>| fd.as_ref().and_then(|f| file_id(f.as_fd()));
        id(&self.ctl) == Some(self.ids[0]) && id(&self.life) == Some(self.ids[1])
    }

    /// Whether a lingering helper can serve again: still running, fds intact.
    fn usable_again(&self) -> bool {
        let exited = || {
            self.life.as_ref().is_none_or(|l| {
                crate::sys::poll_readable(l.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
            })
        };
        self.fds_intact() && !exited()
    }
}

impl Drop for SharedHelper {
    fn drop(&mut self) {
        if !self.fds_intact() {
            // Not our files any more: closing them would close the application's.
            // The helper itself reads EOF when the application closed the pair.
            std::mem::forget(self.ctl.take());
            std::mem::forget(self.life.take());
            std::mem::forget(self.pidfd.take());
            std::mem::forget(self.userns.clone());
            return;
        }
        // EOF on the pair: the helper exits (once every copy is closed: a forked
        // child's copies go with its process).
        drop(self.ctl.take());
        if !self.ours() {
            return;
        }
        let Some(life) = self.life.take() else { return };
        // The life pipe reads EOF when it has exited (whoever its parent is).
        let exited = |t| crate::sys::poll_readable(life.as_fd(), Some(t)).unwrap_or(true);
        if !exited(HELPER_EXIT_WAIT) {
            log::warn!(
                "vdestack: stack helper {} did not exit; killing it",
                self.pid
            );
            match &self.pidfd {
                Some(fd) => {
                    let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
                }
                None => {
                    if let Some(p) = rustix::process::Pid::from_raw(self.pid) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
            let _ = exited(HELPER_EXIT_WAIT);
        }
        // Our child only if we are PID 1 or a subreaper: then nobody else reaps it.
        crate::sys::reap_if_ours(
            self.pidfd.as_ref().map(|f| f.as_fd()),
            self.pid,
            HELPER_EXIT_WAIT,
        );
    }
}
