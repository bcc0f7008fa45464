//! The impairment itself, free of I/O: frames go in with the time they arrived,
//! and come out (or not) when they are due. Time is a count of nanoseconds from
//! any fixed instant; randomness is a seeded generator, so a run with a seed is
//! reproduced draw for draw.
//!
//! Per direction, in vde2's order:
//! 1. **mtu**: a frame longer than `mtu` is dropped;
//! 2. **loss**: dropped with probability `loss`; with `lostburst` b, by the
//!    Gilbert model: a good state turns bad with probability `l / (b (1 - l))`, a
//!    bad one good with `1 / b`, the state changes first and frames are lost while
//!    it is bad, so losses come in bursts of mean length b and the long-run loss
//!    is still `l`;
//! 3. **dup**: one more copy while a draw is below `dup` (a geometric count);
//! 4. for each copy:
//!    * **bufsize**: dropped if the bytes already waiting in this direction and
//!      its own would exceed it (and always past [`HARD_LIMIT`]);
//!    * **speed** and **bandwidth**: the copy is sent after the frames before it,
//!      taking `size / rate` (a direction's `speed` also makes the plug stop reading
//!      that direction's input meanwhile: [`Engine::paused_until`]); with both, the
//!      longer wait counts;
//!    * **delay**: added on top (a negative draw counts as 0);
//!    * **reorder** (ours): with this probability the copy skips the delay and
//!      overtakes the frames waiting;
//!    * **fifo** (the default): a copy never leaves before one that came earlier in
//!      its direction, as vde2 keeps order (but per direction: vde2 orders both
//!      directions together, so a delay one way held up the other);
//!    * **noise**: a geometric number of bits flipped, `noise` per 2^20 bytes on
//!      average, anywhere in the frame; **corrupt** (ours): with this probability
//!      one bit flipped past the Ethernet header, so the frame still reaches its
//!      station and its checksums catch it.
//!
//! Values with a variation are drawn once per use, as in vde2.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::{RngExt, SeedableRng};

use super::settings::{Param, Settings};
use super::value::Dir;

/// The most bytes one direction holds waiting, whatever `bufsize` says: a bound
/// on the memory a long delay on a busy link takes.
pub const HARD_LIMIT: usize = 64 << 20;

/// The most copies `dup` makes of one frame.
const MAX_COPIES: u32 = 64;

/// The generator: xoshiro256++, named so that a seed means the same draws in
/// every build.
pub type WireRng = rand::rngs::Xoshiro256PlusPlus;

/// What became of a frame given to [`Engine::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It passes now, unchanged, once: send it on.
    Now,
    /// It (or its copies) waits: [`Engine::pop_due`] hands it out when due
    /// (perhaps at once, if it was only changed or duplicated).
    Queued,
    /// It is gone (lost, too long, no room).
    Dropped,
}

/// What happened to the frames of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames given to the wire.
    pub frames: u64,
    /// Frames (copies included) that left it.
    pub passed: u64,
    /// Frames lost (`loss`).
    pub lost: u64,
    /// Frames over the `mtu`.
    pub too_big: u64,
    /// Copies dropped for want of room (`bufsize`, speed or bandwidth 0).
    pub overflow: u64,
    /// Extra copies made (`dup`).
    pub duplicated: u64,
    /// Copies with bits flipped (`noise`, `corrupt`).
    pub damaged: u64,
    /// Copies that overtook others (`reorder`).
    pub reordered: u64,
}

/// A copy waiting for its time.
#[derive(Debug)]
struct Waiting {
    due: u64,
    seq: u64,
    frame: Vec<u8>,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    /// Reversed, so the heap's top is the earliest (then the first queued).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// One direction's state.
#[derive(Debug, Default)]
struct Lane {
    queue: BinaryHeap<Waiting>,
    bytes: usize,
    /// The Gilbert model's state: losing.
    faulty: bool,
    /// The latest time a copy is due (for fifo order).
    last_due: u64,
    /// When the channel (`bandwidth`) is free again.
    band_free: u64,
    /// When the interface (`speed`) is free again.
    speed_free: u64,
    stats: Stats,
}

/// A two-way impairing wire.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    rng: WireRng,
    lanes: [Lane; 2],
    seq: u64,
}

impl Engine {
    /// A wire with these settings, drawing from a generator seeded with `seed`.
    pub fn new(settings: Settings, seed: u64) -> Self {
        Engine {
            settings,
            rng: WireRng::seed_from_u64(seed),
            lanes: Default::default(),
            seq: 0,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings, to change them: they apply to the frames that come next.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// What happened so far in `dir`.
    pub fn stats(&self, dir: Dir) -> Stats {
        self.lanes[dir.index()].stats
    }

    /// The copies waiting in `dir`, and their bytes.
    pub fn waiting(&self, dir: Dir) -> (usize, usize) {
        let lane = &self.lanes[dir.index()];
        (lane.queue.len(), lane.bytes)
    }

    fn chance(&mut self, percent: f64) -> bool {
        percent > 0.0 && self.rng.random::<f64>() < percent / 100.0
    }

    fn draw(&mut self, p: Param, dir: Dir) -> f64 {
        self.settings.get(p, dir).draw(&mut self.rng)
    }

    /// Whether the frame is lost (mtu aside).
    fn loses(&mut self, dir: Dir) -> bool {
        let loss = self.settings.get(Param::Loss, dir);
        if loss.min() >= 100.0 {
            return true;
        }
        if self.settings.get(Param::LostBurst, dir).is_on() {
            let l = (self.draw(Param::Loss, dir) / 100.0).clamp(0.0, 1.0);
            let b = self.draw(Param::LostBurst, dir);
            let faulty = self.lanes[dir.index()].faulty;
            let r = self.rng.random::<f64>();
            let next = if faulty {
                // 1/b: a burst of mean length b (b <= 1: one frame).
                !(b <= 1.0 || r < 1.0 / b)
            } else {
                l >= 1.0 || r < l / (b.max(f64::MIN_POSITIVE) * (1.0 - l))
            };
            self.lanes[dir.index()].faulty = next;
            return next;
        }
        self.lanes[dir.index()].faulty = false;
        if !loss.is_on() {
            return false;
        }
        let l = self.draw(Param::Loss, dir);
        self.chance(l)
    }

    /// How long a copy of `len` bytes waits for the interface and the channel,
    /// from `now`; `None`: a rate of 0 (or less) lets nothing through.
    fn transmission(&mut self, dir: Dir, len: usize, now: u64) -> Option<u64> {
        let mut wait = 0;
        for p in [Param::Speed, Param::Bandwidth] {
            if !self.settings.get(p, dir).is_on() {
                continue;
            }
            let rate = self.draw(p, dir);
            if rate <= 0.0 {
                return None;
            }
            let took = (len as f64 * 1e9 / rate) as u64;
            let lane = &mut self.lanes[dir.index()];
            let free = if p == Param::Speed {
                &mut lane.speed_free
            } else {
                &mut lane.band_free
            };
            *free = (*free).max(now) + took;
            wait = wait.max(*free - now);
        }
        Some(wait)
    }

    /// The bits to flip in a copy of `len` bytes: (byte, mask) pairs.
    fn damage(&mut self, dir: Dir, len: usize) -> Vec<(usize, u8)> {
        let mut flips = Vec::new();
        if len == 0 {
            return flips;
        }
        if self.settings.get(Param::Noise, dir).is_on() {
            let noise = self.draw(Param::Noise, dir).max(0.0);
            let p = len as f64 * noise / (1u64 << 20) as f64;
            while flips.len() < len * 8 && self.rng.random::<f64>() < p {
                let bit = self.rng.random_range(0..len * 8);
                flips.push((bit / 8, 1u8 << (bit % 8)));
            }
        }
        let corrupt = self.draw(Param::Corrupt, dir);
        if self.chance(corrupt) {
            let from = if len > super::super::MIN_FRAME {
                super::super::MIN_FRAME
            } else {
                0
            };
            let bit = self.rng.random_range(from * 8..len * 8);
            flips.push((bit / 8, 1u8 << (bit % 8)));
        }
        flips
    }

    /// Takes a frame going `dir` at `now`.
    pub fn admit(&mut self, dir: Dir, frame: &[u8], now: u64) -> Admit {
        let len = frame.len();
        self.lanes[dir.index()].stats.frames += 1;
        let mtu = self.settings.get(Param::Mtu, dir).min();
        if mtu > 0.0 && len as f64 > mtu {
            self.lanes[dir.index()].stats.too_big += 1;
            return Admit::Dropped;
        }
        if self.loses(dir) {
            self.lanes[dir.index()].stats.lost += 1;
            return Admit::Dropped;
        }
        let mut copies = 1;
        if self.settings.get(Param::Dup, dir).is_on() {
            let d = self.draw(Param::Dup, dir);
            while copies < MAX_COPIES && self.chance(d) {
                copies += 1;
            }
            self.lanes[dir.index()].stats.duplicated += u64::from(copies - 1);
        }
        let mut result = Admit::Dropped;
        for _ in 0..copies {
            let cap = if self.settings.get(Param::BufSize, dir).is_on() {
                (self.draw(Param::BufSize, dir).max(0.0) as usize).min(HARD_LIMIT)
            } else {
                HARD_LIMIT
            };
            let Some(wait) = self
                .transmission(dir, len, now)
                .filter(|_| self.lanes[dir.index()].bytes + len <= cap)
            else {
                self.lanes[dir.index()].stats.overflow += 1;
                continue;
            };
            let delay = if self.settings.get(Param::Delay, dir).is_on() {
                (self.draw(Param::Delay, dir).max(0.0) * 1e6) as u64
            } else {
                0
            };
            let reorder = self.draw(Param::Reorder, dir);
            let jumps = self.chance(reorder);
            let fifo = self.settings.fifo;
            let flips = self.damage(dir, len);
            let lane = &mut self.lanes[dir.index()];
            let mut due = now + wait;
            if jumps {
                lane.stats.reordered += 1;
            } else {
                due += delay;
                if fifo {
                    due = due.max(lane.last_due);
                }
                lane.last_due = lane.last_due.max(due);
            }
            if due <= now && flips.is_empty() && copies == 1 && lane.queue.is_empty() {
                lane.stats.passed += 1;
                return Admit::Now;
            }
            let mut copy = frame.to_vec();
            if !flips.is_empty() {
                lane.stats.damaged += 1;
                for (byte, mask) in flips {
                    copy[byte] ^= mask;
                }
            }
            lane.bytes += len;
            lane.queue.push(Waiting {
                due,
                seq: self.seq,
                frame: copy,
            });
            self.seq += 1;
            result = Admit::Queued;
        }
        result
    }

    /// The next copy going `dir` that is due at `now`, if any.
    pub fn pop_due(&mut self, dir: Dir, now: u64) -> Option<Vec<u8>> {
        let lane = &mut self.lanes[dir.index()];
        if lane.queue.peek()?.due > now {
            return None;
        }
        let w = lane.queue.pop()?;
        lane.bytes -= w.frame.len();
        lane.stats.passed += 1;
        Some(w.frame)
    }

    /// When the next copy (either direction) is due.
    pub fn next_due(&self) -> Option<u64> {
        self.lanes
            .iter()
            .filter_map(|l| l.queue.peek())
            .map(|w| w.due)
            .min()
    }

    /// Until when the input of `dir` should not be read, at `now`: its interface
    /// (`speed`) is still sending the last frame. vde2 stops reading then, so
    /// the sender's queue fills and it slows down.
    pub fn paused_until(&self, dir: Dir, now: u64) -> Option<u64> {
        if !self.settings.get(Param::Speed, dir).is_on() {
            return None;
        }
        let free = self.lanes[dir.index()].speed_free;
        (free > now).then_some(free)
    }

    /// Forgets every waiting copy; returns how many.
    pub fn clear(&mut self) -> usize {
        let mut n = 0;
        for lane in &mut self.lanes {
            n += lane.queue.len();
            lane.queue.clear();
            lane.bytes = 0;
        }
        n
    }
}
