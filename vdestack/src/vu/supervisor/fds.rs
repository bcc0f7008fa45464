//! Copies of a supervised program's fds (`pidfd_getfd`, which needs the same
//! permission as reading its memory), for the calls whose answer needs the
//! program's own end of a socket pair: taking a connection from a listener,
//! receiving a datagram with its source, waiting for a connect.
//!
//! A copy is held only for the call, or while the call waits: one kept longer
//! would keep the socket open after the program closed it (the stack learns of
//! the close when its end hangs up).

use std::collections::hash_map::Entry;
use std::os::fd::OwnedFd;

use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};

use super::target::Target;
use super::State;
use crate::vu::served::ServedNet;
use crate::vu::Errno;

/// Processes whose pidfd is kept at most (then the cache starts again).
const PIDFDS_MAX: usize = 1024;

impl<N: ServedNet + ?Sized> State<'_, N> {
    /// A copy of fd `fd` of the caller, which must be the socket of inode `ino`
    /// (a stale cache entry, a thread id reused, is caught by the inode and
    /// looked up afresh).
    pub(super) fn program_fd(
        &mut self,
        t: &Target<'_>,
        fd: i32,
        ino: u64,
    ) -> Result<OwnedFd, Errno> {
        let mut last = libc::EBADF;
        for _ in 0..2 {
            let tid = t.pid();
            let tgid = *self.tgids.entry(tid).or_insert_with(|| t.tgid());
            if self.pidfds.len() >= PIDFDS_MAX {
                self.pidfds.clear();
                self.tgids.clear();
            }
            let pidfd = match self.pidfds.entry(tgid) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    let pid = Pid::from_raw(tgid).ok_or(libc::ESRCH)?;
                    v.insert(pidfd_open(pid, PidfdFlags::empty()).map_err(|e| e.raw_os_error())?)
                }
            };
            let got = pidfd_getfd(&*pidfd, fd, PidfdGetfdFlags::empty());
            match got {
                Ok(copy) => {
                    if rustix::fs::fstat(&copy).map(|st| st.st_ino) == Ok(ino) {
                        return Ok(copy);
                    }
                }
                Err(e) => last = e.raw_os_error(),
            }
            self.tgids.remove(&tid);
            self.pidfds.remove(&tgid);
        }
        Err(last)
    }
}
