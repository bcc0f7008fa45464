//! Calls that wait in the supervisor (never in the stack) until the program's
//! end of a served socket is ready: a blocking `accept`, `recvfrom`, or
//! `connect` in progress. A copy of the program's end (`pidfd_getfd`) goes in
//! our epoll set; when it is ready the call is served again from the start
//! (or, for a connect, answered with `SO_ERROR`). A wait ends at the socket's
//! `SO_RCVTIMEO`/`SO_SNDTIMEO`, as the kernel's calls do, and is dropped when
//! its caller is gone (so our copy does not keep the socket open).

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::net::sockopt;

use super::target::Target;
use super::{Answer, Served, State};
use crate::sys::seccomp::{Listener, Notification, Response};
use crate::vu::inet::{CallId, InetCall, InetReply};
use crate::vu::served::ServedNet;

/// A call waiting (in the supervisor, never in the stack) until the program's
/// end of a served socket is ready.
pub(super) struct Wait {
    pub(super) n: Notification,
    /// Our copy of the program's end, in the epoll set.
    app: OwnedFd,
    then: Then,
    /// When it gives up (the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO`).
    pub(super) deadline: Option<Instant>,
}

/// What is done when a waiting call's socket is ready.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Then {
    /// The call is served again from the start (it may wait again).
    Redo,
    /// A blocking `connect` on served socket `ino` has ended, one way or the
    /// other: it returns what `SO_ERROR` says.
    ConnectResult(u64),
}

/// Epoll tokens of waits have this bit (those of served sockets are inodes).
pub(super) const WAIT_TOKEN: u64 = 1 << 63;

/// How often calls waiting in the supervisor are checked for callers gone.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl<N: ServedNet + ?Sized> State<'_, N> {
    /// Makes call `t` wait until `app` (our copy of the program's end of a
    /// served socket) is ready for `events`.
    /// The wait ends at the socket's timeout for the direction (`SO_RCVTIMEO`
    /// when waiting to read, `SO_SNDTIMEO` to write), as the kernel's calls do.
    pub(super) fn wait(
        &mut self,
        t: &Target<'_>,
        app: OwnedFd,
        events: EventFlags,
        then: Then,
    ) -> Answer {
        let which = if events.contains(EventFlags::OUT) {
            sockopt::Timeout::Send
        } else {
            sockopt::Timeout::Recv
        };
        let deadline = sockopt::socket_timeout(&app, which)
            .ok()
            .flatten()
            .map(|d| Instant::now() + d);
        self.next_wait += 1;
        let token = WAIT_TOKEN | self.next_wait;
        if let Err(e) = epoll::add(&self.epoll, &app, EventData::new_u64(token), events) {
            return Answer::errno(e.raw_os_error());
        }
        if self.swept.elapsed() >= SWEEP_EVERY {
            self.swept = Instant::now();
        }
        self.waits.insert(
            self.next_wait,
            Wait {
                n: *t.n,
                app,
                then,
                deadline,
            },
        );
        Answer::Done
    }

    /// Takes a wait out of the epoll set (explicitly: the program holds the
    /// same open file, which closing our copy would leave in the set).
    fn unwait(&mut self, id: u64) -> Option<Wait> {
        let w = self.waits.remove(&id)?;
        let _ = epoll::delete(&self.epoll, &w.app);
        Some(w)
    }

    /// A waiting call's socket is ready: serve the call again, or end it.
    pub(super) fn wait_ready(&mut self, listener: &Listener, id: u64) {
        let Some(w) = self.unwait(id) else { return };
        let t = Target::new(&w.n, listener);
        if !t.valid() {
            return;
        }
        let answer = match w.then {
            Then::Redo => self.handle(&t),
            Then::ConnectResult(ino) => self.connect_result(&t, ino),
        };
        if let Answer::Reply(r) = answer {
            let _ = listener.respond(w.n.id, r);
        }
    }

    /// What a blocking connect that has ended returns: `SO_ERROR`'s verdict.
    fn connect_result(&mut self, t: &Target<'_>, ino: u64) -> Answer {
        let Some(Served::Inet(s)) = self.socks.get_mut(&ino) else {
            return Answer::errno(libc::EBADF);
        };
        let call = InetCall::GetSockOpt {
            level: libc::SOL_SOCKET,
            name: libc::SO_ERROR,
        };
        let e = match self.net.inet_call(s, call, CallId(t.n.id)) {
            Ok(InetReply::Value(v)) => v as i32,
            Ok(InetReply::Bytes(b)) if b.len() >= 4 => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            Ok(_) => 0,
            Err(e) => e,
        };
        if e == 0 {
            Answer::value(0)
        } else {
            Answer::errno(e)
        }
    }

    /// Ends the waits whose timeout has passed: `EAGAIN`, or `EINPROGRESS` for a
    /// connect (its connection goes on).
    pub(super) fn expire_waits(&mut self, listener: &Listener) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .waits
            .iter()
            .filter(|(_, w)| w.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(w) = self.unwait(id) {
                let e = match w.then {
                    Then::Redo => libc::EAGAIN,
                    Then::ConnectResult(_) => libc::EINPROGRESS,
                };
                let _ = listener.respond(w.n.id, Response::Errno(e));
            }
        }
    }

    /// Drops the waits of callers gone (killed, or interrupted: they make the
    /// call again under a new id), so that our copies do not keep their
    /// sockets open.
    pub(super) fn sweep_waits(&mut self, listener: &Listener) {
        self.swept = Instant::now();
        let gone: Vec<u64> = self
            .waits
            .iter()
            .filter(|(_, w)| !listener.is_valid(w.n.id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.unwait(id);
        }
    }
}
