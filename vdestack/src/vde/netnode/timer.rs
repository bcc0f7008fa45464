//! A one-shot timer in the node's epoll set (a `timerfd`), so handshake deadlines,
//! the end of an accept back-off and the summary of suppressed log lines wake the
//! node through its one fd, whoever polls it.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

/// A timer armed for at most one instant.
#[derive(Debug)]
pub(super) struct Timer {
    fd: OwnedFd,
    /// What it is armed for: re-arming for the same instant costs no system call,
    /// so the server may ask after every event.
    armed: Option<Instant>,
}

impl Timer {
    /// A disarmed timer in `epoll` with `token`.
    pub(super) fn new(epoll: &OwnedFd, token: u64) -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        epoll::add(epoll, &fd, EventData::new_u64(token), EventFlags::IN)?;
        Ok(Self { fd, armed: None })
    }

    /// Makes the timer fire at `due` (none: never), as seen at `now`.
    pub(super) fn set(&mut self, due: Option<Instant>, now: Instant) -> io::Result<()> {
        if due == self.armed {
            return Ok(());
        }
        // A zero value disarms, so what is already due fires in a nanosecond.
        let after = due.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(now)
                .max(Duration::from_nanos(1))
        });
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = rustix::time::Timespec {
            tv_sec: after.as_secs() as i64,
            tv_nsec: i64::from(after.subsec_nanos()),
        };
        timerfd_settime(
            &self.fd,
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: zero,
                it_value: value,
            },
        )?;
        self.armed = due;
        Ok(())
    }

    /// Acknowledges that it fired (it is disarmed then).
    pub(super) fn fired(&mut self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut count);
        self.armed = None;
    }
}
