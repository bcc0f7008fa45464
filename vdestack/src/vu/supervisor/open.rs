//! `open`, `openat` and `openat2` of the served `/proc/net` files, and of
//! `/etc/resolv.conf` when the run serves one: the caller gets a sealed memfd
//! holding the file (made from the served stack). Every other path is
//! `CONTINUE`d.
//!
//! Cost: every read-only open of a supervised program makes a round trip to
//! the supervisor (the path is in memory, out of the filter's reach): about
//! the time of one trapped call, see BENCHMARKS.md. Opens for writing are not
//! trapped.
//!
//! Limits:
//! - the path is read, then the call `CONTINUE`d when it is not ours: a second
//!   thread of the program could change it in between and so open the
//!   machine's own `/proc/net/dev`. These files are not a security boundary
//!   (nor are the other `/proc/net` files, which are the machine's);
//! - a relative path is resolved against the caller's working directory or
//!   `dirfd` (read from `/proc`) only when its last component is one of the
//!   served names; `openat2`'s `RESOLVE_*` flags are not looked at;
//! - `/proc/PID/net/...` is served for supervised processes only (the caller's
//!   own thread group, or a descendant of the command); another PID's is the
//!   machine's (`CONTINUE`);
//! - `stat`, `access` and `readlink` of these paths are the kernel's.

use std::os::fd::AsFd;

use rustix::fs::{MemfdFlags, SealFlags};

use super::target::{supervised, Target};
use super::{Answer, State};
use crate::vu::procnet::{is_resolv_conf, join, match_path, may_match, Whose};
use crate::vu::served::ServedNet;
use crate::vu::Errno;

/// `AT_FDCWD`.
const AT_FDCWD: i32 = -100;
/// `sizeof(struct open_how)` (flags, mode, resolve).
const OPEN_HOW_SIZE: u64 = 24;

impl<N: ServedNet + ?Sized> State<'_, N> {
    pub(super) fn open(&mut self, t: &Target<'_>) -> Answer {
        self.try_open(t).unwrap_or_else(Answer::errno)
    }

    fn try_open(&mut self, t: &Target<'_>) -> Result<Answer, Errno> {
        let nr = t.n.nr as i64;
        let (dirfd, path, flags) = match nr {
            libc::SYS_openat => (t.int(0), t.ptr(1), t.int(2)),
            libc::SYS_openat2 => {
                if t.n.args[3] < OPEN_HOW_SIZE {
                    return Ok(Answer::CONTINUE);
                }
                let how = match t.read(t.ptr(2), 8) {
                    Ok(h) => h,
                    Err(_) => return Ok(Answer::CONTINUE),
                };
                let f = u64::from_ne_bytes(how[..8].try_into().unwrap_or([0; 8]));
                if f > u32::MAX as u64 {
                    return Ok(Answer::CONTINUE);
                }
                (t.int(0), t.ptr(1), f as i32)
            }
            _ => (AT_FDCWD, t.ptr(0), t.int(1)),
        };
        let others = libc::O_PATH | libc::O_DIRECTORY | libc::O_CREAT | libc::O_TMPFILE;
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & others != 0 {
            return Ok(Answer::CONTINUE);
        }
        // A bad pointer: the kernel will say EFAULT itself.
        let Ok(path) = t.path(path) else {
            return Ok(Answer::CONTINUE);
        };
        let absolute = if path.first() == Some(&b'/') {
            path
        } else {
            let resolv = self.resolv_conf.is_some() && path.ends_with(b"resolv.conf");
            if !may_match(&path) && !resolv {
                return Ok(Answer::CONTINUE);
            }
            let dir = if dirfd == AT_FDCWD {
                t.link("cwd")
            } else {
                t.link(&format!("fd/{dirfd}"))
            };
            match dir {
                Some(d) if d.first() == Some(&b'/') => join(&d, &path),
                _ => return Ok(Answer::CONTINUE),
            }
        };
        if is_resolv_conf(&absolute) {
            return match self.resolv_conf.clone() {
                Some(content) if t.valid() => self.serve_file(t, "resolv.conf", &content, flags),
                Some(_) => Ok(Answer::Done),
                None => Ok(Answer::CONTINUE),
            };
        }
        let Some((whose, file)) = match_path(&absolute) else {
            return Ok(Answer::CONTINUE);
        };
        if let Whose::Pid(p) = whose {
            if !supervised(p, t.pid(), self.root) {
                return Ok(Answer::CONTINUE);
            }
        }
        if !t.valid() {
            return Ok(Answer::Done);
        }
        let content = file
            .content(self.net)
            .map_err(|e| crate::error::errno_of(&e))?;
        self.serve_file(t, file.memfd_name(), &content, flags)
    }

    /// Answers an open with a sealed memfd holding `content`.
    fn serve_file(
        &mut self,
        t: &Target<'_>,
        name: &str,
        content: &[u8],
        flags: i32,
    ) -> Result<Answer, Errno> {
        let memfd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| e.raw_os_error())?;
        let mut done = 0;
        while done < content.len() {
            done += rustix::io::pwrite(&memfd, &content[done..], done as u64)
                .map_err(|e| e.raw_os_error())?;
        }
        rustix::fs::fcntl_add_seals(
            &memfd,
            SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
        )
        .map_err(|e| e.raw_os_error())?;
        t.send_fd(memfd.as_fd(), flags & libc::O_CLOEXEC != 0)?;
        Ok(Answer::Done)
    }
}
