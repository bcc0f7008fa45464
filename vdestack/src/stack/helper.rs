//! The process's namespace helper (`sys::nshelper`), shared by all its stacks:
//! started with the first stack, ended (and waited for) when the last one goes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long the last stack's drop waits for the helper to exit before killing it.
const HELPER_EXIT_WAIT: Duration = Duration::from_secs(5);

/// The running helper. Stacks hold it by `Arc`.
#[derive(Debug)]
pub(crate) struct SharedHelper {
    ctl: Option<OwnedFd>,
    /// EOF once the helper has exited.
    life: OwnedFd,
    pidfd: Option<OwnedFd>,
    pub(crate) pid: i32,
    pub(crate) userns: Arc<OwnedFd>,
    /// The process that started it: in a forked child the helper is the parent's.
    owner: rustix::process::Pid,
}

static HELPER: Mutex<Weak<SharedHelper>> = Mutex::new(Weak::new());

/// The helper, started if no stack holds it.
pub(crate) fn get() -> io::Result<Arc<SharedHelper>> {
    let mut g = HELPER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = g.upgrade() {
        return Ok(h);
    }
    let h = crate::sys::spawn_helper()?;
    let shared = Arc::new(SharedHelper {
        ctl: Some(h.ctl),
        life: h.life,
        pidfd: h.pidfd,
        pid: h.pid,
        userns: Arc::new(h.userns),
        owner: rustix::process::getpid(),
    });
    *g = Arc::downgrade(&shared);
    Ok(shared)
}

impl SharedHelper {
    /// Our end of the helper's pair.
    pub(crate) fn ctl(&self) -> io::Result<BorrowedFd<'_>> {
        self.ctl
            .as_ref()
            .map(|c| c.as_fd())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }
}

impl Drop for SharedHelper {
    fn drop(&mut self) {
        // EOF on the pair: the helper exits (once every copy is closed: a forked
        // child's copies go with its process).
        drop(self.ctl.take());
        if rustix::process::getpid() != self.owner {
            return;
        }
        // It is not our child (init reaps it); the life pipe reads EOF when it has
        // exited.
        let exited = |t| crate::sys::poll_readable(self.life.as_fd(), Some(t)).unwrap_or(true);
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
    }
}
