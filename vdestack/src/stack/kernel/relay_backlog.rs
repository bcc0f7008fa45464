//! Back-pressure in the relay: a plug whose peer cannot take a whole burst yet
//! keeps the rest ([`Backlog`]); the relay then stops reading that
//! pair's tap and watches the plug for room (`EPOLLOUT` on [`Backlog::room_fd`]).
//! When the peer has room, the rest goes and the tap is read again. Meanwhile the
//! tap's queue fills and the stack's TCP slows down, instead of losing segments
//! (a `vde_switch` takes 10 datagrams at a time, a 64 KiB segment is 45).
//!
//! A peer that takes nothing for [`PATIENCE`] (stopped, or never reading) does not
//! wedge the pair: what is kept is dropped (counted, logged once per thread) and
//! the tap is read again. A peer that closes is the plug's `recv` business: its
//! pair goes quiet as ever.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

use super::relay::Pair;
use crate::vde::Backlog;

/// Token of the relay's timer for peers that take too long.
pub(crate) const TIMER: u64 = u64::MAX - 1;

/// How long a pair waits for its peer before dropping what it keeps: far longer
/// than a live switch takes to read 10 frames, shorter than TCP's least
/// retransmission timeout (200 ms), so a stalled peer costs the stack no more
/// than a lost segment would.
pub(crate) const PATIENCE: Duration = Duration::from_millis(100);

static WAITED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// What the relay's back-pressure did in this process so far: bursts a full
/// peer could not take at once, and frames dropped after all.
#[cfg(feature = "diagnostics")]
pub(crate) fn backlog_counts() -> (u64, u64) {
    (
        WAITED.load(Ordering::Relaxed),
        DROPPED.load(Ordering::Relaxed),
    )
}

/// The epoll tokens of one pair: its tap's and its plug's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub tap: u64,
    pub plug: u64,
}

/// The pairs waiting for their peer and until when (free of I/O).
#[derive(Debug, Default)]
struct Waits {
    /// (plug token, deadline); a few at most, so a list.
    list: Vec<(Tokens, Instant)>,
}

impl Waits {
    fn start(&mut self, t: Tokens, now: Instant) {
        if !self.contains(t.plug) {
            self.list.push((t, now + PATIENCE));
        }
    }

    fn stop(&mut self, plug: u64) {
        self.list.retain(|(t, _)| t.plug != plug);
    }

    fn contains(&self, plug: u64) -> bool {
        self.list.iter().any(|(t, _)| t.plug == plug)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|&(_, d)| d).min()
    }

    /// Takes out the waits whose deadline has come.
    fn expired(&mut self, now: Instant) -> Vec<Tokens> {
        let mut out = Vec::new();
        self.list.retain(|&(t, d)| {
            let over = d <= now;
            if over {
                out.push(t);
            }
            !over
        });
        out
    }
}

/// One relay thread's pairs that wait for their peer, and its timer.
pub(crate) struct Backlogs {
    /// `None` if no timer could be made: then no plug is asked to keep frames.
    timer: Option<OwnedFd>,
    waits: Waits,
    warned: bool,
}

impl Backlogs {
    /// Makes the timer and adds it to the relay's epoll set `ep` as [`TIMER`].
    pub fn new(ep: &OwnedFd) -> Self {
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )
        .and_then(|t| {
            epoll::add(
                ep,
                &t,
                epoll::EventData::new_u64(TIMER),
                epoll::EventFlags::IN,
            )?;
            Ok(t)
        });
        let timer = match timer {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!("vdestack relay: no timer, a full peer drops frames: {e}");
                None
            }
        };
        Self {
            timer,
            waits: Waits::default(),
            warned: false,
        }
    }

    /// Asks a new pair's plug to keep what its peer cannot take yet.
    pub fn offer(&self, pair: &mut Pair) {
        if self.timer.is_some() {
            if let Some(b) = pair.plug.backlog() {
                b.keep();
            }
        }
    }

    /// After frames went from the tap to the plug: if the plug keeps some, stop
    /// reading the tap and watch the plug for room.
    pub fn park_if_kept(&mut self, ep: &OwnedFd, t: Tokens, pair: &mut Pair) {
        if kept(pair) == 0 || self.waits.contains(t.plug) {
            return;
        }
        WAITED.fetch_add(1, Ordering::Relaxed);
        let _ = epoll::delete(ep, &pair.tap);
        if let Err(e) = watch_room(ep, t, pair, true) {
            log::warn!("vdestack relay: cannot wait for a full peer: {e}");
            self.drop_kept(pair);
            resume_tap(ep, t, pair);
            return;
        }
        self.waits.start(t, Instant::now());
        self.arm();
    }

    /// Whether the pair with this plug token waits for its peer.
    pub fn waiting(&self, plug: u64) -> bool {
        self.waits.contains(plug)
    }

    /// The plug's fd has room (or an error to tell): send what it keeps; once
    /// all went (or failed), read the tap again.
    pub fn writable(&mut self, ep: &OwnedFd, t: Tokens, pair: &mut Pair) {
        let before = kept(pair);
        match flush(pair) {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                // The frames are gone; whether the peer is, the plug's recv says.
                log::debug!("vdestack relay: sending to a full peer: {e}");
                DROPPED.fetch_add(before as u64, Ordering::Relaxed);
                self.drop_kept(pair);
            }
        }
        self.resume(ep, t, pair);
    }

    /// The timer fired: the waits whose time is up, to [`Backlogs::give_up`].
    pub fn expired(&mut self) -> Vec<Tokens> {
        if let Some(timer) = &self.timer {
            let mut b = [0u8; 8];
            let _ = rustix::io::read(timer, &mut b);
        }
        let out = self.waits.expired(Instant::now());
        self.arm();
        out
    }

    /// The peer took nothing for [`PATIENCE`]: drop what is kept, read the tap
    /// again.
    pub fn give_up(&mut self, ep: &OwnedFd, t: Tokens, pair: &mut Pair) {
        // One last try: it may have room by now.
        let before = kept(pair);
        let n = match flush(pair) {
            Ok(true) => 0,
            Ok(false) => self.drop_kept(pair),
            Err(_) => {
                DROPPED.fetch_add(before as u64, Ordering::Relaxed);
                before + self.drop_kept(pair)
            }
        };
        if n > 0 && !self.warned {
            self.warned = true;
            log::warn!(
                "vdestack relay: a peer took nothing for {} ms: {n} frames dropped \
                 (logged once)",
                PATIENCE.as_millis()
            );
        }
        self.resume(ep, t, pair);
    }

    /// Forgets a pair that leaves the relay (its fds leave the epoll set).
    pub fn forget(&mut self, ep: &OwnedFd, t: Tokens, pair: &mut Pair) {
        if self.waits.contains(t.plug) {
            self.waits.stop(t.plug);
            if let Some(b) = room_apart(pair) {
                let _ = epoll::delete(ep, b.room_fd());
            }
            self.arm();
        }
    }

    fn resume(&mut self, ep: &OwnedFd, t: Tokens, pair: &mut Pair) {
        self.waits.stop(t.plug);
        if let Err(e) = watch_room(ep, t, pair, false) {
            log::debug!("vdestack relay: {e}");
        }
        resume_tap(ep, t, pair);
        self.arm();
    }

    fn drop_kept(&mut self, pair: &mut Pair) -> usize {
        let n = pair.plug.backlog().map_or(0, |b| b.drop_kept());
        DROPPED.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Sets the timer to the next deadline (or stops it).
    fn arm(&self) {
        let Some(timer) = &self.timer else {
            return;
        };
        let left = self
            .waits
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let spec = Itimerspec {
            it_interval: timespec(Duration::ZERO),
            // Zero would stop the timer: a deadline already past is 1 ns away.
            it_value: timespec(left.map_or(Duration::ZERO, |l| l.max(Duration::from_nanos(1)))),
        };
        if let Err(e) = timerfd_settime(timer, TimerfdTimerFlags::empty(), &spec) {
            log::warn!("vdestack relay: setting the timer: {e}");
        }
    }
}

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// How many frames the pair's plug keeps for its peer.
fn kept(pair: &mut Pair) -> usize {
    pair.plug.backlog().map_or(0, |b| b.kept())
}

/// Sends what the pair's plug keeps (a plug without a backlog keeps nothing).
fn flush(pair: &mut Pair) -> io::Result<bool> {
    pair.plug.backlog().map_or(Ok(true), |b| b.flush())
}

/// The plug's backlog, if its fd for room is not the one the relay already
/// watches ([`crate::vde::Plug::data_fd`]).
fn room_apart(pair: &mut Pair) -> Option<&mut dyn Backlog> {
    let data = pair.plug.data_fd().as_raw_fd();
    pair.plug
        .backlog()
        .filter(|b| b.room_fd().as_raw_fd() != data)
}

/// Starts (`on`) or stops watching the plug for room, under its own token.
fn watch_room(ep: &OwnedFd, t: Tokens, pair: &mut Pair, on: bool) -> io::Result<()> {
    let data = epoll::EventData::new_u64(t.plug);
    let r = match (room_apart(pair), on) {
        (Some(b), true) => epoll::add(ep, b.room_fd(), data, epoll::EventFlags::OUT),
        (Some(b), false) => epoll::delete(ep, b.room_fd()),
        (None, on) => {
            let mut flags = epoll::EventFlags::IN;
            if on {
                flags |= epoll::EventFlags::OUT;
            }
            epoll::modify(ep, pair.plug.data_fd(), data, flags)
        }
    };
    r.map_err(|e| crate::error::context(e, "watching a plug for room"))
}

fn resume_tap(ep: &OwnedFd, t: Tokens, pair: &Pair) {
    let r = epoll::add(
        ep,
        pair.tap.as_fd(),
        epoll::EventData::new_u64(t.tap),
        epoll::EventFlags::IN,
    );
    if let Err(e) = r {
        log::warn!("vdestack relay: cannot watch a tap again, it goes quiet: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(n: u64) -> Tokens {
        Tokens {
            tap: n << 1,
            plug: n << 1 | 1,
        }
    }

    #[test]
    fn a_wait_ends_after_patience_and_not_before() {
        let mut w = Waits::default();
        let t0 = Instant::now();
        w.start(tokens(1), t0);
        assert!(w.contains(tokens(1).plug));
        assert_eq!(w.next_deadline(), Some(t0 + PATIENCE));
        assert!(w.expired(t0 + PATIENCE / 2).is_empty());
        assert_eq!(w.expired(t0 + PATIENCE), vec![tokens(1)]);
        assert!(!w.contains(tokens(1).plug));
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn starting_twice_keeps_the_first_deadline() {
        let mut w = Waits::default();
        let t0 = Instant::now();
        w.start(tokens(1), t0);
        w.start(tokens(1), t0 + PATIENCE);
        assert_eq!(w.list.len(), 1);
        assert_eq!(w.next_deadline(), Some(t0 + PATIENCE));
    }

    #[test]
    fn the_earliest_deadline_comes_first_and_stopped_waits_go() {
        let mut w = Waits::default();
        let t0 = Instant::now();
        w.start(tokens(1), t0 + Duration::from_millis(5));
        w.start(tokens(2), t0);
        w.start(tokens(3), t0 + Duration::from_millis(9));
        assert_eq!(w.next_deadline(), Some(t0 + PATIENCE));
        w.stop(tokens(2).plug);
        assert_eq!(
            w.next_deadline(),
            Some(t0 + Duration::from_millis(5) + PATIENCE)
        );
        let over = w.expired(t0 + Duration::from_millis(6) + PATIENCE);
        assert_eq!(over, vec![tokens(1)]);
        assert!(w.contains(tokens(3).plug));
    }
}
