//! A rate limiter for log lines, free of I/O, so that an event repeated thousands of
//! times a second (a flood of connections, of garbage requests) costs a few lines,
//! not megabytes.
//!
//! Time is cut in windows of a fixed length: the first `burst` events of a window
//! are logged, the rest are counted. The next line logged says how many were
//! suppressed before it ([`Suppressed`]), and a caller with a timer can also
//! report a count on its own once its window is over ([`RateLimit::flush`]), so no
//! suppressed event goes uncounted even when nothing follows it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vdestack::vde::rate_limit::RateLimit;
//!
//! let mut limit = RateLimit::new(2, Duration::from_secs(1));
//! let t = Instant::now();
//! assert!(limit.allow(t).is_some());
//! assert!(limit.allow(t).is_some());
//! assert!(limit.allow(t).is_none(), "third in the window: counted, not logged");
//! let next = limit.allow(t + Duration::from_secs(1)).unwrap();
//! assert_eq!(next.count(), 1);
//! assert_eq!(next.to_string(), " (1 more like this suppressed)");
//! ```

use std::fmt;
use std::time::{Duration, Instant};

/// Allows `burst` events per window; counts the others.
#[derive(Debug, Clone)]
pub struct RateLimit {
    burst: u32,
    period: Duration,
    /// The start of the current window (none before the first event).
    window: Option<Instant>,
    /// Events allowed in the current window.
    used: u32,
    /// Events suppressed and not yet reported.
    suppressed: u64,
}

/// How many events were suppressed before the one being logged. Displays as
/// nothing when none were, else as ` (N more like this suppressed)`, to append
/// to the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed(u64);

impl Suppressed {
    /// The number of events suppressed.
    pub fn count(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} more like this suppressed)"),
        }
    }
}

impl RateLimit {
    /// A limiter that lets `burst` events through per `period` (at least one).
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self {
            burst: if burst == 0 { 1 } else { burst },
            period,
            window: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Records an event at `now`. `Some` means: log it, with the count of events
    /// suppressed since the last report; `None` means it was counted instead.
    pub fn allow(&mut self, now: Instant) -> Option<Suppressed> {
        self.roll(now);
        if self.used < self.burst {
            self.used += 1;
            Some(Suppressed(std::mem::take(&mut self.suppressed)))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Once the window holding suppressed events is over, returns their count
    /// (and forgets it), for a line of its own. `None` while the window lasts, or
    /// when nothing was suppressed.
    pub fn flush(&mut self, now: Instant) -> Option<u64> {
        let end = self.flush_at()?;
        if now < end {
            return None;
        }
        self.roll(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Returns the count of events suppressed and not yet reported, whether or not
    /// the window is over (for a last line when the caller goes away).
    pub fn take(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }

    /// When [`RateLimit::flush`] will have a count to report, if ever.
    pub fn flush_at(&self) -> Option<Instant> {
        if self.suppressed == 0 {
            return None;
        }
        self.window.map(|w| w + self.period)
    }

    /// Starts a new window if the current one is over.
    fn roll(&mut self, now: Instant) {
        match self.window {
            Some(w) if now.saturating_duration_since(w) < self.period => {}
            _ => {
                self.window = Some(now);
                self.used = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_per_window_then_counts() {
        let mut l = RateLimit::new(3, SEC);
        let t = Instant::now();
        for i in 0..3 {
            assert_eq!(l.allow(t), Some(Suppressed(0)), "event {i}");
        }
        for _ in 0..1000 {
            assert_eq!(l.allow(t + SEC / 2), None);
        }
        assert_eq!(l.flush_at(), Some(t + SEC));
        // The next window's first line carries the count, once.
        assert_eq!(l.allow(t + SEC), Some(Suppressed(1000)));
        assert_eq!(l.allow(t + SEC), Some(Suppressed(0)));
        assert_eq!(l.flush_at(), None);
    }

    #[test]
    fn a_flood_of_a_million_costs_a_few_lines() {
        let mut l = RateLimit::new(5, SEC);
        let t = Instant::now();
        let mut logged = 0;
        let mut counted = 0;
        // 10 s of one event every 10 µs.
        for i in 0..1_000_000u64 {
            if let Some(s) = l.allow(t + Duration::from_micros(10 * i)) {
                logged += 1;
                counted += s.count();
            }
        }
        assert_eq!(logged, 50, "5 per second for 10 s");
        let tail = l.flush(t + 11 * SEC).unwrap();
        assert_eq!(
            logged + counted + tail,
            1_000_000,
            "every event logged or counted"
        );
    }

    #[test]
    fn flush_waits_for_the_window_and_reports_once() {
        let mut l = RateLimit::new(1, SEC);
        let t = Instant::now();
        assert_eq!(l.flush(t), None, "nothing happened");
        assert!(l.allow(t).is_some());
        assert_eq!(l.flush(t + SEC), None, "nothing suppressed");
        assert!(l.allow(t + SEC * 3 / 2).is_some(), "a new window");
        assert_eq!(l.allow(t + SEC * 2), None);
        assert_eq!(l.allow(t + SEC * 2), None);
        assert_eq!(l.flush(t + SEC * 2), None, "its window is not over");
        assert_eq!(l.flush(t + SEC * 5 / 2), Some(2));
        assert_eq!(l.flush(t + SEC * 3), None, "reported once");
        assert_eq!(l.allow(t + SEC * 3), Some(Suppressed(0)));
        assert_eq!(l.allow(t + SEC * 3), None);
        assert_eq!(l.take(), 1, "taken before its window is over");
        assert_eq!((l.take(), l.flush_at()), (0, None));
    }

    #[test]
    fn display_and_degenerate_burst() {
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(Suppressed(7).to_string(), " (7 more like this suppressed)");
        let mut l = RateLimit::new(0, SEC);
        let t = Instant::now();
        assert!(l.allow(t).is_some(), "a burst of 0 still lets one through");
        assert!(l.allow(t).is_none());
        // Time going backwards (a caller's stale `now`) does not panic.
        assert!(l.allow(t - SEC).is_none());
    }
}
