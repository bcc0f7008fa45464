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
//! * no polling at all during bulk (more than [`BULK_BYTES`] per [`EPOCH`], and
//!   for [`BULK_HOLD`] after): then
//!   frames come in trains, a wake-up serves many of them, and a polling thread
//!   would only take the CPU from the threads and processes that produce them (a
//!   C switch on a small machine).
//!
//! * no polling for [`BUSY_HOLD`] once a look took longer than [`LOST`]: the
//!   thread was off its CPU, so other threads want the CPUs (a loaded
//!   machine). Polling there only spends the thread's fair share of CPU time,
//!   and the scheduler then makes the thread wait, a tick or more, just when
//!   frames come: measured on 2 CPUs with two busy loops, request/response
//!   fell to 0.02-0.06x of the C library's with polling and kept 0.8-2.2x
//!   without.
//!
//! This type only decides and yields; the loops do the polling.

use std::time::{Duration, Instant};

/// The longest a thread polls before sleeping.
pub const MAX: Duration = Duration::from_micros(200);

/// The window after a short sleep with no window.
pub const START: Duration = Duration::from_micros(10);

/// The span over which a thread's traffic is weighed.
pub const EPOCH: Duration = Duration::from_millis(1);

/// Bytes per [`EPOCH`] above which traffic is bulk (64 MB/s): no polling then.
pub const BULK_BYTES: usize = 64 * 1024;

/// How long traffic counts as bulk after an epoch that was.
pub const BULK_HOLD: Duration = Duration::from_millis(100);

/// A look (or a yield) longer than this means the thread lost its CPU to
/// others: a yield to a thread that only answers a request takes a few µs.
pub const LOST: Duration = Duration::from_micros(100);

/// How long polling stays off after a look took longer than [`LOST`].
pub const BUSY_HOLD: Duration = Duration::from_secs(1);

/// The window of one thread (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollWindow {
    window: Duration,
    max: Duration,
    /// The epoch being counted: its start and the bytes moved in it so far.
    epoch: Option<(Instant, usize)>,
    /// Until when traffic counts as bulk: [`BULK_HOLD`] after the last bulk epoch
    /// (bulk TCP has pauses, loss recovery among them, that are no trickle).
    bulk_until: Option<Instant>,
    /// Traffic is bulk as of the last [`PollWindow::moved`].
    bulk: bool,
    /// Until when the machine counts as busy ([`BUSY_HOLD`] after a lost CPU).
    busy_until: Option<Instant>,
}

impl PollWindow {
    /// A window that grows up to `max` (zero: never poll).
    pub fn new(max: Duration) -> Self {
        PollWindow {
            window: Duration::ZERO,
            max,
            epoch: None,
            bulk_until: None,
            bulk: false,
            busy_until: None,
        }
    }

    /// How long to poll before sleeping (zero: sleep at once).
    pub fn window(&self) -> Duration {
        if self.bulk || self.window.is_zero() {
            return Duration::ZERO;
        }
        if self.busy_until.is_some_and(|t| Instant::now() < t) {
            return Duration::ZERO;
        }
        self.window
    }

    /// Between two looks of a poll that began at `start` and may last `span`,
    /// `last` being when the previous look's yield began (or the poll): says whether to
    /// look again, and yields the CPU to any other runnable thread first. Not
    /// when the span is over, nor when that look took longer than [`LOST`]:
    /// the thread was off its CPU, the machine is busy, and polling is off
    /// for [`BUSY_HOLD`].
    pub fn next_look(&mut self, start: Instant, span: Duration, last: &mut Instant) -> bool {
        let now = Instant::now();
        if now.saturating_duration_since(*last) > LOST {
            self.busy_until = Some(now + BUSY_HOLD);
            return false;
        }
        if now.saturating_duration_since(start) >= span {
            return false;
        }
        // The yield counts in the next look's time: it is where a busy
        // machine takes the CPU away.
        *last = now;
        std::thread::yield_now();
        true
    }

    /// The thread moved `bytes` (by `now`): weighs whether traffic is bulk.
    pub fn moved(&mut self, bytes: usize, now: Instant) {
        let (start, sum) = self.epoch.get_or_insert((now, 0));
        *sum += bytes;
        let spent = now.saturating_duration_since(*start);
        if spent >= EPOCH {
            // Bytes per epoch over however long this one lasted (an idle spell
            // makes it long, and its rate low).
            let per_epoch = *sum as u128 * EPOCH.as_nanos() / spent.as_nanos().max(1);
            if per_epoch > BULK_BYTES as u128 {
                self.bulk_until = Some(now + BULK_HOLD);
            }
            self.epoch = Some((now, 0));
        }
        self.bulk = self.bulk_until.is_some_and(|t| now < t);
    }

    /// Whether traffic is bulk as of the last [`PollWindow::moved`] (then
    /// [`PollWindow::window`] is zero).
    pub fn is_bulk(&self) -> bool {
        self.bulk
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
    fn bulk_traffic_turns_polling_off_and_a_trickle_back_on() {
        let mut w = PollWindow::new(MAX);
        for _ in 0..10 {
            w.slept(US);
        }
        assert_eq!(w.window(), MAX);
        let t0 = Instant::now();
        // 64 KiB segments every 100 µs: 650 MB/s.
        for i in 0..30 {
            w.moved(65536, t0 + 100 * US * i);
        }
        assert_eq!(w.window(), Duration::ZERO, "bulk: no polling");
        // A pause (loss recovery) does not end it.
        w.moved(100, t0 + Duration::from_millis(6));
        assert_eq!(w.window(), Duration::ZERO, "a pause in bulk");
        // Then request/response: 100 bytes every 20 µs (5 MB/s), after the hold.
        let t1 = t0 + BULK_HOLD + Duration::from_millis(3);
        for i in 0..200 {
            w.moved(100, t1 + 20 * US * i);
        }
        assert_eq!(w.window(), MAX, "a trickle: polling again");
        // A long idle spell ends bulk too.
        for i in 0..30 {
            w.moved(65536, t1 + Duration::from_millis(5) + 100 * US * i);
        }
        assert_eq!(w.window(), Duration::ZERO);
        w.moved(100, t1 + Duration::from_secs(1));
        assert_eq!(w.window(), MAX, "after a long idle spell");
    }

    #[test]
    fn a_lost_cpu_turns_polling_off_for_a_while() {
        let mut w = PollWindow::new(MAX);
        for _ in 0..10 {
            w.slept(US);
        }
        assert_eq!(w.window(), MAX);
        let start = Instant::now();
        let mut last = start;
        assert!(
            w.next_look(start, MAX, &mut last),
            "a quick look: look again"
        );
        assert_eq!(w.window(), MAX);
        assert!(
            !w.next_look(start, Duration::ZERO, &mut last),
            "the span is over"
        );
        assert_eq!(w.window(), MAX);
        let mut long_ago = Instant::now() - Duration::from_millis(3);
        assert!(
            !w.next_look(long_ago, MAX, &mut long_ago),
            "a look that lost the CPU"
        );
        assert_eq!(w.window(), Duration::ZERO, "busy: no polling");
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
