//! How long a thread that moves frames (a stack's relay thread, a cable such as
//! `vdestack switch` or `vdestack plug`) polls for more before it sleeps.
//!
//! Waking a sleeping thread costs far more than a frame: an idle CPU has to be
//! woken (in a VM, a halted virtual CPU), and on a request/response exchange
//! every hop pays it. So a thread that just moved frames keeps looking for
//! the next ones a little while, yielding its CPU to any other runnable thread
//! as it goes, the way Linux's `busy_poll` and the guest `haltpoll` idle driver do.
//!
//! The window adapts, so an idle stack costs nothing and a quiet one little:
//! * a poll that finds frames keeps the window;
//! * a poll that finds none, followed by a sleep longer than [`MAX`] (the next
//!   frames were far off), halves it, down to none;
//! * a sleep shorter than [`MAX`] (polling longer would have caught the frames)
//!   doubles it, from [`START`] when there was none, up to [`MAX`].
//!
//! This type only decides; the loops do the polling and the timing.

use std::time::Duration;

/// The longest a thread polls before sleeping.
pub const MAX: Duration = Duration::from_micros(200);

/// The window after a short sleep with no window.
pub const START: Duration = Duration::from_micros(10);

/// The window of one thread (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollWindow {
    window: Duration,
    max: Duration,
}

impl PollWindow {
    /// A window that grows up to `max` (zero: never poll).
    pub fn new(max: Duration) -> Self {
        PollWindow {
            window: Duration::ZERO,
            max,
        }
    }

    /// How long to poll before sleeping (zero: sleep at once).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A poll found frames: keep polling that long.
    pub fn found(&mut self) {}

    /// The thread slept for `slept` (after a poll of the whole window that found
    /// nothing, or with no window); adjusts the window for the next time.
    pub fn slept(&mut self, slept: Duration) {
        if self.max.is_zero() {
            return;
        }
        if slept <= self.max {
            self.window = if self.window.is_zero() {
                START.min(self.max)
            } else {
                (self.window * 2).min(self.max)
            };
        } else {
            self.window /= 2;
            if self.window < START {
                self.window = Duration::ZERO;
            }
        }
    }
}

/// The longest poll window of this process's threads: [`MAX`], or
/// `VDESTACK_RELAY_POLL_US` microseconds (0 to 10000; 0 turns polling off).
pub fn max_from_env() -> Duration {
    std::env::var("VDESTACK_RELAY_POLL_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|us| *us <= 10_000)
        .map_or(MAX, Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn starts_closed_and_opens_on_short_sleeps_up_to_max() {
        let mut w = PollWindow::new(MAX);
        assert_eq!(w.window(), Duration::ZERO);
        w.slept(50 * US);
        assert_eq!(w.window(), START);
        let mut last = w.window();
        for _ in 0..10 {
            w.slept(50 * US);
            assert!(w.window() >= last && w.window() <= MAX);
            last = w.window();
        }
        assert_eq!(w.window(), MAX);
        w.found();
        assert_eq!(w.window(), MAX);
    }

    #[test]
    fn long_sleeps_close_it_in_a_few_steps() {
        let mut w = PollWindow::new(MAX);
        for _ in 0..10 {
            w.slept(US);
        }
        let mut steps = 0;
        while !w.window().is_zero() {
            w.slept(Duration::from_millis(5));
            steps += 1;
            assert!(steps < 10, "the window never closed");
        }
        // Closed, a long sleep keeps it closed.
        w.slept(Duration::from_secs(1));
        assert_eq!(w.window(), Duration::ZERO);
    }

    #[test]
    fn a_zero_max_never_polls() {
        let mut w = PollWindow::new(Duration::ZERO);
        for _ in 0..5 {
            w.slept(US);
            assert_eq!(w.window(), Duration::ZERO);
        }
    }
}
