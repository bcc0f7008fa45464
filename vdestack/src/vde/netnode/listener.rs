//! The node's `ctl` listener as the server drives it: accepting without blocking,
//! pausing and resuming in the epoll set, and shedding a connection with a reserve
//! fd when the process has none left (the policy is [`super::admission`]'s).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::SocketFlags;

/// The listening socket, and a spare fd kept for the day there is none.
#[derive(Debug)]
pub(super) struct Listener {
    socket: UnixListener,
    /// A duplicate of some fd of ours, never used: closing it frees a slot in the
    /// fd table for the one `accept` that sheds a connection when the table is full
    /// (the "reserve fd" of libev and nginx). Reopened right after; `None` if that
    /// failed, and tried again later.
    reserve: Option<OwnedFd>,
    /// The epoll token of the socket.
    token: u64,
    /// Whether it is in the epoll set with interest in connections.
    listening: bool,
}

impl Listener {
    /// Adds the (non-blocking) `socket` to `epoll` with `token`.
    pub(super) fn new(socket: UnixListener, epoll: &OwnedFd, token: u64) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        epoll::add(epoll, &socket, EventData::new_u64(token), EventFlags::IN)?;
        let mut l = Self {
            socket,
            reserve: None,
            token,
            listening: true,
        };
        l.refill_reserve();
        Ok(l)
    }

    /// Accepts one connection, non-blocking and close-on-exec.
    pub(super) fn accept(&mut self) -> Result<UnixStream, Errno> {
        let fd =
            rustix::net::accept_with(&self.socket, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        Ok(UnixStream::from(fd))
    }

    /// Whether a reserve fd is at hand for [`Listener::shed`].
    pub(super) fn can_shed(&self) -> bool {
        self.reserve.is_some()
    }

    /// With the fd table full: gives up the reserve fd, accepts the connection at
    /// the head of the queue and closes it, so that client is told at once (EOF)
    /// rather than left waiting, then takes a reserve fd again. Returns whether a
    /// connection was shed.
    pub(super) fn shed(&mut self) -> bool {
        let Some(reserve) = self.reserve.take() else {
            return false;
        };
        drop(reserve);
        let shed = rustix::net::accept_with(&self.socket, SocketFlags::CLOEXEC).is_ok();
        self.refill_reserve();
        shed
    }

    /// Takes a reserve fd if there is none (and an fd to take).
    pub(super) fn refill_reserve(&mut self) {
        if self.reserve.is_none() {
            self.reserve = rustix::io::fcntl_dupfd_cloexec(self.socket.as_fd(), 0).ok();
        }
    }

    /// Stops or resumes reporting connections in `epoll`. They wait in the
    /// kernel's queue meanwhile.
    pub(super) fn set_listening(&mut self, epoll: &OwnedFd, on: bool) -> std::io::Result<()> {
        if self.listening != on {
            let flags = if on {
                EventFlags::IN
            } else {
                EventFlags::empty()
            };
            epoll::modify(epoll, &self.socket, EventData::new_u64(self.token), flags)?;
            self.listening = on;
        }
        Ok(())
    }
}
