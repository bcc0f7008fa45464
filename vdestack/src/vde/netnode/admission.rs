//! Who may wait at a node's door, and for how long: the policy for control
//! connections that have not finished their handshake yet, and for `accept`
//! failing. Free of I/O; the server does what it says.
//!
//! A node that accepts every connection and waits forever for its request, and
//! that retries a failing `accept` at once, is at the mercy of anyone who can
//! connect: a few hundred idle connections exhaust its fds, `accept` then fails
//! with `EMFILE` on every wake-up (a full CPU, a warning per try), and no good
//! client can join. Debian's `vde_switch` and vdeplug4's netnodes behave so. Here:
//!
//! * a connection must send its request within [`Limits::handshake`], or it is
//!   closed;
//! * at most [`Limits::max_pending`] connections wait for theirs at once: one
//!   more closes the oldest, so a flood of idle connections cannot lock out a
//!   client that talks at once;
//! * `accept` failing for want of fds first closes the oldest waiting connection;
//!   when none is waiting, the server sheds the connection at the head of the
//!   queue with its reserve fd (so that client hears "no" instead of hanging) and
//!   stops listening for a back-off that doubles from [`Limits::backoff_min`] up to
//!   [`Limits::backoff_max`], and starts again at the first success. Other
//!   failures back off the same way; a connection that went away while queued is
//!   simply skipped.
//!
//! The cap on the back-off bounds how late a good client gets in once fds are
//! free again: a quarter of a second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::forward::PortId;

/// How long a client has, from `accept`, to send its request. Clients send it at
/// once (libvdeplug writes it right after `connect`, looking up at most a group
/// name in between); this leaves room for a loaded machine and a slow name service.
pub const HANDSHAKE: Duration = Duration::from_secs(5);

/// The first pause after `accept` fails.
pub const BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest pause: how late a client may get in once the node has fds again.
pub const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// At most this many connections wait for their handshake, whatever the fd limit.
pub const MAX_PENDING: usize = 128;

/// At least this many may, whatever the fd limit.
pub const MIN_PENDING: usize = 8;

/// The node's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How many connections may wait for their handshake at once.
    pub max_pending: usize,
    /// How long one may wait.
    pub handshake: Duration,
    /// The first pause after `accept` fails.
    pub backoff_min: Duration,
    /// The longest pause.
    pub backoff_max: Duration,
}

impl Limits {
    /// The limits for a process that may have `nofile` fds open: a quarter of them
    /// may be waiting connections (each costs one fd, a joined port two), within
    /// [`MIN_PENDING`]..=[`MAX_PENDING`].
    pub fn for_fd_limit(nofile: u64) -> Self {
        let quarter = usize::try_from(nofile / 4).unwrap_or(usize::MAX);
        Self {
            max_pending: quarter.clamp(MIN_PENDING, MAX_PENDING),
            handshake: HANDSHAKE,
            backoff_min: BACKOFF_MIN,
            backoff_max: BACKOFF_MAX,
        }
    }
}

/// Why `accept` failed, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// That one connection is gone (`ECONNABORTED`, `EPROTO`) or a signal came
    /// (`EINTR`): the next may be fine.
    Transient,
    /// No fd left, in the process (`EMFILE`) or the system (`ENFILE`).
    NoFds,
    /// Anything else (`ENOBUFS`, `ENOMEM`, ...): nothing to do but wait.
    Other,
}

impl AcceptError {
    /// Sorts an `accept` errno.
    pub fn classify(e: Errno) -> Self {
        match e {
            Errno::CONNABORTED | Errno::PROTO | Errno::INTR => Self::Transient,
            Errno::MFILE | Errno::NFILE => Self::NoFds,
            _ => Self::Other,
        }
    }
}

/// What the server does after `accept` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Try again now.
    Retry,
    /// Close this waiting connection, which frees an fd, and try again.
    Evict(PortId),
    /// Accept one connection with the reserve fd and close it, then stop listening
    /// until the given time.
    Shed(Instant),
    /// Stop listening until the given time.
    Pause(Instant),
}

/// The waiting connections and the state of the back-off.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    /// Waiting connections with their deadlines, oldest first: all wait the same
    /// time, so this is also deadline order.
    pending: VecDeque<(PortId, Instant)>,
    /// The last pause (zero: `accept` last succeeded).
    backoff: Duration,
    /// Listening is paused until then.
    paused_until: Option<Instant>,
}

impl Admission {
    /// Nobody waiting, listening.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: VecDeque::with_capacity(limits.max_pending.min(16) + 1),
            backoff: Duration::ZERO,
            paused_until: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many connections wait for their handshake.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Connection `id` was accepted at `now`. Returns the connection to close to
    /// stay within [`Limits::max_pending`]: the one that has waited longest.
    pub fn arrived(&mut self, id: PortId, now: Instant) -> Option<PortId> {
        self.backoff = Duration::ZERO;
        self.pending.push_back((id, now + self.limits.handshake));
        if self.pending.len() > self.limits.max_pending {
            self.pending.pop_front().map(|(old, _)| old)
        } else {
            None
        }
    }

    /// Connection `id` finished its handshake, or closed: it no longer waits.
    pub fn settled(&mut self, id: PortId) {
        // The newest are at the back, and a good client settles at once.
        if let Some(i) = self.pending.iter().rposition(|&(p, _)| p == id) {
            self.pending.remove(i);
        }
    }

    /// Moves the connections whose time is up at `now` to `out`, oldest first.
    pub fn expired(&mut self, now: Instant, out: &mut Vec<PortId>) {
        while let Some(&(id, deadline)) = self.pending.front() {
            if deadline > now {
                break;
            }
            self.pending.pop_front();
            out.push(id);
        }
    }

    /// `accept` failed with `e` at `now`; `can_shed` says whether a reserve fd is
    /// at hand. Says what to do.
    pub fn accept_failed(&mut self, e: AcceptError, now: Instant, can_shed: bool) -> Action {
        match e {
            AcceptError::Transient => Action::Retry,
            AcceptError::NoFds => match self.pending.pop_front() {
                Some((oldest, _)) => Action::Evict(oldest),
                None if can_shed => Action::Shed(self.pause(now)),
                None => Action::Pause(self.pause(now)),
            },
            AcceptError::Other => Action::Pause(self.pause(now)),
        }
    }

    fn pause(&mut self, now: Instant) -> Instant {
        self.backoff = if self.backoff.is_zero() {
            self.limits.backoff_min
        } else {
            (self.backoff * 2).min(self.limits.backoff_max)
        };
        let until = now + self.backoff;
        self.paused_until = Some(until);
        until
    }

    /// Whether listening is paused.
    pub fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// Ends the pause if its time has come; returns whether it did (listening
    /// should start again). The back-off is kept until an `accept` succeeds.
    pub fn resume(&mut self, now: Instant) -> bool {
        match self.paused_until {
            Some(until) if until <= now => {
                self.paused_until = None;
                true
            }
            _ => false,
        }
    }

    /// The next time something is due: a deadline, or the end of the pause.
    pub fn next_due(&self) -> Option<Instant> {
        let deadline = self.pending.front().map(|&(_, d)| d);
        match (deadline, self.paused_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits(max_pending: usize) -> Limits {
        Limits {
            max_pending,
            ..Limits::for_fd_limit(1024)
        }
    }

    #[test]
    fn limits_follow_the_fd_limit_within_bounds() {
        assert_eq!(Limits::for_fd_limit(256).max_pending, 64);
        assert_eq!(Limits::for_fd_limit(1024).max_pending, MAX_PENDING);
        assert_eq!(Limits::for_fd_limit(1 << 20).max_pending, MAX_PENDING);
        assert_eq!(Limits::for_fd_limit(20).max_pending, MIN_PENDING);
        assert_eq!(Limits::for_fd_limit(u64::MAX).max_pending, MAX_PENDING);
        assert_eq!(Limits::for_fd_limit(0).handshake, HANDSHAKE);
    }

    #[test]
    fn a_connection_that_never_talks_expires_at_its_deadline() {
        let mut a = Admission::new(limits(8));
        let t = Instant::now();
        assert_eq!(a.arrived(1, t), None);
        assert_eq!(a.arrived(2, t + 100 * MS), None);
        assert_eq!(a.next_due(), Some(t + HANDSHAKE));
        let mut out = Vec::new();
        a.expired(t + HANDSHAKE - MS, &mut out);
        assert!(out.is_empty(), "not before its deadline");
        a.expired(t + HANDSHAKE, &mut out);
        assert_eq!(out, [1]);
        assert_eq!(a.next_due(), Some(t + 100 * MS + HANDSHAKE));
        a.expired(t + HANDSHAKE * 10, &mut out);
        assert_eq!(out, [1, 2]);
        assert_eq!((a.pending(), a.next_due()), (0, None));
    }

    #[test]
    fn a_connection_that_talks_is_no_longer_timed() {
        let mut a = Admission::new(limits(8));
        let t = Instant::now();
        a.arrived(1, t);
        a.arrived(2, t);
        a.arrived(3, t);
        a.settled(2);
        a.settled(2); // twice (joined, then closed): harmless
        a.settled(9); // never pending: harmless
        let mut out = Vec::new();
        a.expired(t + HANDSHAKE, &mut out);
        assert_eq!(out, [1, 3]);
    }

    #[test]
    fn the_oldest_waiting_connection_makes_room() {
        let mut a = Admission::new(limits(3));
        let t = Instant::now();
        for id in 1..=3 {
            assert_eq!(a.arrived(id, t + id as u32 * MS), None);
        }
        assert_eq!(a.arrived(4, t + 4 * MS), Some(1));
        assert_eq!(a.arrived(5, t + 5 * MS), Some(2));
        assert_eq!(a.pending(), 3);
        // A flood of 300: never more than 3 wait, the newest ones.
        for id in 6..300 {
            assert_eq!(a.arrived(id, t), Some(id - 3));
        }
        let mut out = Vec::new();
        a.expired(t + HANDSHAKE * 2, &mut out);
        assert_eq!(out, [297, 298, 299]);
    }

    #[test]
    fn out_of_fds_frees_a_waiting_connection_first() {
        let mut a = Admission::new(limits(8));
        let t = Instant::now();
        a.arrived(1, t);
        a.arrived(2, t);
        let e = AcceptError::NoFds;
        assert_eq!(a.accept_failed(e, t, true), Action::Evict(1));
        assert_eq!(a.accept_failed(e, t, true), Action::Evict(2));
        assert!(!a.is_paused(), "evicting needs no pause");
        // Nobody left to evict: shed one with the reserve fd, and pause.
        assert_eq!(a.accept_failed(e, t, true), Action::Shed(t + BACKOFF_MIN));
        assert!(a.is_paused());
        // Without a reserve: pause only.
        assert_eq!(
            a.accept_failed(e, t, false),
            Action::Pause(t + BACKOFF_MIN * 2)
        );
    }

    #[test]
    fn the_back_off_doubles_up_to_its_cap_and_resets_on_success() {
        let mut a = Admission::new(limits(8));
        let t = Instant::now();
        let mut pauses = Vec::new();
        for _ in 0..10 {
            match a.accept_failed(AcceptError::Other, t, true) {
                Action::Pause(until) => pauses.push(until - t),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            pauses[..6],
            [10 * MS, 20 * MS, 40 * MS, 80 * MS, 160 * MS, BACKOFF_MAX]
        );
        assert!(pauses.iter().all(|&p| p <= BACKOFF_MAX));
        // Resuming keeps the back-off; a success resets it.
        assert!(!a.resume(t + BACKOFF_MAX - MS), "too early");
        assert!(a.resume(t + BACKOFF_MAX));
        assert!(!a.is_paused());
        assert!(!a.resume(t + BACKOFF_MAX), "resumes once");
        assert_eq!(
            a.accept_failed(AcceptError::Other, t, true),
            Action::Pause(t + BACKOFF_MAX)
        );
        a.resume(t + BACKOFF_MAX);
        a.arrived(1, t);
        assert_eq!(
            a.accept_failed(AcceptError::Other, t, true),
            Action::Pause(t + BACKOFF_MIN)
        );
    }

    #[test]
    fn transient_errors_retry_at_once() {
        let mut a = Admission::new(limits(8));
        let t = Instant::now();
        for e in [Errno::CONNABORTED, Errno::PROTO, Errno::INTR] {
            assert_eq!(AcceptError::classify(e), AcceptError::Transient);
            assert_eq!(
                a.accept_failed(AcceptError::Transient, t, true),
                Action::Retry
            );
        }
        assert!(!a.is_paused());
        assert_eq!(AcceptError::classify(Errno::MFILE), AcceptError::NoFds);
        assert_eq!(AcceptError::classify(Errno::NFILE), AcceptError::NoFds);
        assert_eq!(AcceptError::classify(Errno::NOBUFS), AcceptError::Other);
        assert_eq!(AcceptError::classify(Errno::NOMEM), AcceptError::Other);
    }

    #[test]
    fn next_due_is_the_earlier_of_deadline_and_pause() {
        let mut a = Admission::new(limits(8));
        let t = Instant::now();
        assert_eq!(a.next_due(), None);
        a.accept_failed(AcceptError::Other, t, false);
        assert_eq!(a.next_due(), Some(t + BACKOFF_MIN));
        a.arrived(1, t);
        assert_eq!(a.next_due(), Some(t + BACKOFF_MIN));
        a.resume(t + BACKOFF_MIN);
        assert_eq!(a.next_due(), Some(t + HANDSHAKE));
    }
}
