//! `mgmt=PATH`: a Unix stream socket speaking vde2 wirefilter's management
//! protocol ([`super::commands`]), so `vdeterm PATH` changes the wire while traffic
//! flows. The listener and its sessions sit in an epoll set of their own, whose one
//! fd the plug folds into its data fd: the plug serves them from `recv`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::event::epoll::{self, EventData, EventFlags};

use super::commands::{self, After, BANNER, PROMPT};
use super::engine::Engine;
use crate::error::context;

/// Sessions at once (vde2 allows 3; a few more do no harm).
const MAX_SESSIONS: usize = 8;

/// The epoll token of the listener (sessions use their fd number).
const LISTENER: u64 = u64::MAX;

/// The most a session may send without a newline before it is cut off.
const MAX_LINE: usize = 4096;

/// What serving the management socket came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Nothing was ready.
    Idle,
    /// Connections or commands were handled.
    Some,
    /// A session asked to shut the wire down.
    Shutdown,
}

#[derive(Debug)]
struct Session {
    stream: UnixStream,
    pending: Vec<u8>,
}

/// The management socket and its sessions.
#[derive(Debug)]
pub struct Mgmt {
    listener: UnixListener,
    path: PathBuf,
    sessions: Vec<Session>,
    epoll: OwnedFd,
}

impl Mgmt {
    /// Listens at `path` with permissions `mode` (vde2's default: 0700).
    pub fn open(path: &Path, mode: u32) -> io::Result<Self> {
        let what = |e| context(e, format!("wirefilter://: mgmt={}", path.display()));
        let listener = UnixListener::bind(path).map_err(what)?;
        let made = Mgmt {
            listener,
            path: path.to_path_buf(),
            sessions: Vec::new(),
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        };
        made.listener.set_nonblocking(true)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(what)?;
        epoll::add(
            &made.epoll,
            made.listener.as_fd(),
            EventData::new_u64(LISTENER),
            EventFlags::IN,
        )?;
        Ok(made)
    }

    /// The fd that is readable while a connection or a command waits.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections and runs the commands that wait; never blocks.
    pub fn serve(&mut self, engine: &mut Engine) -> io::Result<Served> {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(MAX_SESSIONS + 1);
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&zero),
        )?;
        let mut served = Served::Idle;
        for ev in &events {
            served = Served::Some;
            let token = ev.data.u64();
            if token == LISTENER {
                self.accept();
                continue;
            }
            let Some(i) = self
                .sessions
                .iter()
                .position(|s| s.stream.as_raw_fd() as u64 == token)
            else {
                continue;
            };
            match self.read_commands(i, engine) {
                After::Continue => {}
                After::Logout => self.close(i),
                After::Shutdown => return Ok(Served::Shutdown),
            }
        }
        Ok(served)
    }

    fn accept(&mut self) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            if self.sessions.len() >= MAX_SESSIONS {
                log::warn!("wirefilter://: too many management sessions");
                continue;
            }
            let fd = stream.as_raw_fd() as u64;
            let ok = stream.set_nonblocking(true).is_ok()
                && stream.write_all(BANNER.as_bytes()).is_ok()
                && stream.write_all(PROMPT.as_bytes()).is_ok()
                && epoll::add(
                    &self.epoll,
                    stream.as_fd(),
                    EventData::new_u64(fd),
                    EventFlags::IN,
                )
                .is_ok();
            if ok {
                self.sessions.push(Session {
                    stream,
                    pending: Vec::new(),
                });
            }
        }
    }

    fn close(&mut self, i: usize) {
        let s = self.sessions.swap_remove(i);
        let _ = epoll::delete(&self.epoll, s.stream.as_fd());
    }

    /// Reads what session `i` sent and runs each line (and, as vde2 runs one
    /// `read` as one command, what follows the last newline too).
    fn read_commands(&mut self, i: usize, engine: &mut Engine) -> After {
        let s = &mut self.sessions[i];
        let mut buf = [0u8; 1024];
        match s.stream.read(&mut buf) {
            Ok(0) => return After::Logout,
            Ok(n) => s.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Continue,
            Err(_) => return After::Logout,
        }
        if s.pending.len() > MAX_LINE {
            return After::Logout;
        }
        let text = String::from_utf8_lossy(&std::mem::take(&mut s.pending)).into_owned();
        let mut reply = String::new();
        let mut after = After::Continue;
        for line in text.lines() {
            let (out, a) = commands::run(engine, line);
            reply.push_str(&out);
            if a != After::Continue {
                after = a;
                break;
            }
        }
        if after == After::Continue {
            reply.push_str(PROMPT);
        }
        // A session that does not read its replies is dropped, never waited for.
        if s.stream.write_all(reply.as_bytes()).is_err() {
            return After::Logout;
        }
        after
    }
}

impl Drop for Mgmt {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
