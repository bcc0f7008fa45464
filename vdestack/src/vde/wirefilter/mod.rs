//! `wirefilter://[OPTIONS]{VNL}`: a link that misbehaves on purpose, around any
//! nested plug, as the vdeplug_wirefilter plugin does it, with the options and
//! value grammar of vde2's `wirefilter` ([`value`]):
//!
//! | option | meaning |
//! |---|---|
//! | `delay=` | added latency, ms |
//! | `loss=` | frames lost, % (0..100) |
//! | `lostburst=` | mean length of loss bursts (Gilbert model) |
//! | `dup=` | frames duplicated, % (below 100) |
//! | `mtu=` | the largest frame that passes, bytes |
//! | `bufsize=` (`chanbufsize=`, `capacity=`) | bytes a direction may hold waiting |
//! | `bandwidth=` | channel bandwidth, bytes/s (frames queue) |
//! | `speed=` | interface speed, bytes/s: RL, the nested plug is not read while a frame is sent (its peer slows down, as with vde2); LR, frames queue as with `bandwidth=` (a plug cannot stop its owner's sends) |
//! | `noise=` | damaged bits per MiB |
//! | `nofifo` | frames may overtake each other (with a varying delay) |
//! | `reorder=` (ours) | frames that skip the delay and overtake those waiting, % |
//! | `corrupt=` (ours) | frames with one bit flipped past the Ethernet header, % |
//! | `seed=N` (ours) | seed of the random draws, for a reproducible run |
//! | `mgmt=PATH`, `mgmtmode=MODE` | a management socket for `vdeterm` ([`commands`]; mode 0700) |
//! | `rc=FILE` | management commands run at start |
//!
//! `LR` is what the local side sends (towards the nested plug), `RL` what comes
//! from it: `wirefilter://[delay=LR50 RL10/loss=RL5]{vde:///tmp/sw}`. Bad values
//! (`loss=150`, `delay=-1`) are errors naming the option; the plugin's `blink`,
//! `blinkid` and `pidfile` are refused.
//!
//! The impairment ([`engine`]) is free of I/O. The plug holds what it delays and
//! hands it on when due through its fd: [`Plug::data_fd`] is an epoll set of the
//! nested plug's fd, a timer for the next due frame, and the management socket, so
//! the owner's poll wakes it whether frames arrive or are due. Frames delayed on
//! their way out are sent from [`Plug::recv`], when that timer wakes the owner: so
//! it works under anything that polls a plug (the stack relay, `vdestack plug`,
//! `inproc://` ports, the C ABI).
//!
//! Like every wrapper ([`super::wrapper`]) it claims no capability that would move
//! frames past it (large segments are cut first, so `mtu` and `loss` apply per
//! frame); the nested plug's back-pressure passes through (a delayed frame the
//! nested plug then refuses is dropped).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};

use super::url::{self, bad_value, UrlError};
use super::wrapper::open_nested;
use super::{OpenArgs, Plug, Recv, MIN_FRAME};

pub mod commands;
pub mod engine;
#[cfg(test)]
mod engine_tests;
pub mod mgmt;
pub mod settings;
pub mod value;

use engine::{Admit, Engine};
use settings::{Param, Settings};
use value::Dir;

/// The option table: the plugin's, in its order (a prefix picks the first
/// match), then ours.
pub const TAGS: &[&str] = &[
    "rc",
    "delay",
    "dup",
    "loss",
    "lostburst",
    "mtu",
    "nofifo",
    "bufsize",
    "bandwidth",
    "speed",
    "noise",
    "blink",
    "blinkid",
    "mgmt",
    "mgmtmode",
    "pidfile",
    "reorder",
    "corrupt",
    "seed",
    "chanbufsize",
    "capacity",
];

/// A parsed `wirefilter://` argument (without its nested VNL).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The impairments.
    pub settings: Settings,
    /// The seed of the draws (`None`: a random one).
    pub seed: Option<u64>,
    /// The management socket to create.
    pub mgmt: Option<PathBuf>,
    /// Its permissions.
    pub mgmt_mode: u32,
    /// A file of management commands to run at start.
    pub rc: Option<PathBuf>,
}

const SCHEME: &str = "wirefilter";

/// Parses the wrapper's part of a `wirefilter://` VNL (what precedes `{`).
pub fn parse(outer: &str) -> Result<Spec, UrlError> {
    let (path, opts) = url::parse_path_style(SCHEME, outer, TAGS)?;
    if !path.is_empty() {
        return Err(bad_value(
            SCHEME,
            "argument",
            &path,
            "options go in brackets: wirefilter://[delay=50/loss=10]{VNL}",
        ));
    }
    let mut settings = Settings::default();
    for tag in TAGS {
        let Some(v) = opts.get(tag) else { continue };
        match *tag {
            "blink" | "blinkid" | "pidfile" => {
                return Err(bad_value(SCHEME, tag, v, "not supported by this plug"))
            }
            "nofifo" => settings.fifo = false,
            "rc" | "mgmt" | "mgmtmode" | "seed" => {}
            name => {
                let param = Param::from_name(name).expect("the table names parameters");
                settings
                    .set(param, v)
                    .map_err(|why| bad_value(SCHEME, param.name(), v, why))?;
            }
        }
    }
    let seed = opts.number(SCHEME, "seed")?;
    let mgmt_mode = match opts.get("mgmtmode") {
        None => 0o700,
        Some(m) => u32::from_str_radix(m, 8)
            .ok()
            .filter(|&m| m <= 0o777 && m != 0)
            .ok_or_else(|| bad_value(SCHEME, "mgmtmode", m, "expected octal permissions"))?,
    };
    let path_of = |tag: &'static str| -> Result<Option<PathBuf>, UrlError> {
        match opts.get(tag) {
            None => Ok(None),
            Some("") => Err(bad_value(SCHEME, tag, "", "a path is needed")),
            Some(p) => Ok(Some(PathBuf::from(p))),
        }
    };
    Ok(Spec {
        settings,
        seed,
        mgmt: path_of("mgmt")?,
        mgmt_mode,
        rc: path_of("rc")?,
    })
}

/// The epoll tokens of the plug's data fd.
const INNER: u64 = 0;
const TIMER: u64 = 1;
const MGMT: u64 = 2;

/// The monotonic clock, in nanoseconds (the engine's time and the timer's).
fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    match rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()) {
        Ok(_) => u64::from_ne_bytes(b),
        // No entropy source: the clock and the pid still differ from run to run.
        Err(_) => now_ns() ^ u64::from(std::process::id()) << 32,
    }
}

/// A `wirefilter://` plug.
pub struct Wirefilter {
    inner: Box<dyn Plug>,
    engine: Engine,
    /// The data fd: the nested plug's fd, the timer, the management socket.
    epoll: OwnedFd,
    timer: OwnedFd,
    /// When the timer fires (absolute, monotonic ns).
    armed: Option<u64>,
    /// Whether the nested plug's fd is watched (not while `speed` pauses it).
    watching: bool,
    mgmt: Option<mgmt::Mgmt>,
    /// Shut down through the management socket.
    shut: bool,
}

impl std::fmt::Debug for Wirefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wirefilter")
            .field("settings", self.engine.settings())
            .field("armed", &self.armed)
            .finish()
    }
}

impl Wirefilter {
    /// Opens `wirefilter://ARG` (the text after `wirefilter://`) and its nested plug.
    pub fn open(arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let (spec, inner) = open_nested(SCHEME, arg, args, parse)?;
        Self::wrap(spec, inner)
    }

    /// Wraps an open plug: runs the rc file, opens the management socket.
    pub fn wrap(spec: Spec, inner: Box<dyn Plug>) -> io::Result<Self> {
        let mut engine = Engine::new(spec.settings, spec.seed.unwrap_or_else(random_seed));
        if let Some(rc) = &spec.rc {
            run_rc(&mut engine, rc)?;
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        epoll::add(
            &epoll,
            inner.data_fd(),
            EventData::new_u64(INNER),
            EventFlags::IN,
        )?;
        epoll::add(&epoll, &timer, EventData::new_u64(TIMER), EventFlags::IN)?;
        let mgmt = match &spec.mgmt {
            Some(path) => {
                let m = mgmt::Mgmt::open(path, spec.mgmt_mode)?;
                epoll::add(&epoll, m.fd(), EventData::new_u64(MGMT), EventFlags::IN)?;
                Some(m)
            }
            None => None,
        };
        Ok(Self {
            inner,
            engine,
            epoll,
            timer,
            armed: None,
            watching: true,
            mgmt,
            shut: false,
        })
    }

    /// The impairment, its settings and its counts.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The impairment, to change its settings while frames flow.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Sends what is due on its way out; what the nested plug refuses is dropped.
    fn flush_out(&mut self, now: u64) {
        while let Some(f) = self.engine.pop_due(Dir::LR, now) {
            if let Err(e) = self.inner.send(&f) {
                log::debug!("wirefilter://: a delayed frame dropped: {e}");
            }
        }
    }

    /// Sets the timer for the next due frame, or the end of a `speed` pause.
    fn rearm(&mut self, now: u64) -> io::Result<()> {
        let pause = self.engine.paused_until(Dir::RL, now);
        let next = match (self.engine.next_due(), pause) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if next == self.armed {
            return Ok(());
        }
        // Absolute time; a time already past fires at once (0 would disarm).
        let at = next.unwrap_or(0).max(u64::from(next.is_some()));
        let ts = |ns: u64| Timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        };
        timerfd_settime(
            &self.timer,
            TimerfdTimerFlags::ABSTIME,
            &Itimerspec {
                it_interval: ts(0),
                it_value: ts(at),
            },
        )?;
        self.armed = next;
        Ok(())
    }

    /// Watches the nested plug's fd or not (while `speed` pauses the input).
    fn watch_inner(&mut self, on: bool) -> io::Result<()> {
        if self.watching != on {
            let flags = if on {
                EventFlags::IN
            } else {
                EventFlags::empty()
            };
            epoll::modify(
                &self.epoll,
                self.inner.data_fd(),
                EventData::new_u64(INNER),
                flags,
            )?;
            self.watching = on;
        }
        Ok(())
    }

    /// Takes the timer's expiry, if it was due; returns whether it was.
    fn timer_fired(&mut self, now: u64) -> bool {
        if self.armed.is_some_and(|t| t <= now) {
            let _ = rustix::io::read(&self.timer, &mut [0u8; 8]);
            self.armed = None;
            return true;
        }
        false
    }

    /// A frame from the nested plug, through the wire.
    fn recv_in(&mut self, buf: &mut [u8], now: u64) -> io::Result<Recv> {
        if let Some(f) = self.engine.pop_due(Dir::RL, now) {
            return Ok(Recv::Frame(copy_out(&f, buf)));
        }
        if self.engine.paused_until(Dir::RL, now).is_some() {
            self.watch_inner(false)?;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.watch_inner(true)?;
        match self.inner.recv(buf)? {
            Recv::Frame(n) => {
                let n = n.min(buf.len());
                Ok(match self.engine.admit(Dir::RL, &buf[..n], now) {
                    Admit::Now => Recv::Frame(n),
                    Admit::Dropped => Recv::Nothing,
                    Admit::Queued => match self.engine.pop_due(Dir::RL, now) {
                        Some(f) => Recv::Frame(copy_out(&f, buf)),
                        None => Recv::Nothing,
                    },
                })
            }
            other => Ok(other),
        }
    }
}

fn copy_out(frame: &[u8], buf: &mut [u8]) -> usize {
    let n = frame.len().min(buf.len());
    buf[..n].copy_from_slice(&frame[..n]);
    n
}

/// Runs an `rc=` file; a command it refuses fails the open, naming the line.
fn run_rc(engine: &mut Engine, rc: &std::path::Path) -> io::Result<()> {
    let text = std::fs::read_to_string(rc)
        .map_err(|e| crate::error::context(e, format!("wirefilter://: rc={}", rc.display())))?;
    for (i, line) in text.lines().enumerate() {
        let (reply, _) = commands::run(engine, line);
        if let Some(bad) = reply
            .lines()
            .find(|l| !l.starts_with("1000") && l.starts_with('1'))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "wirefilter://: rc={} line {}: `{}`: {bad}",
                    rc.display(),
                    i + 1,
                    line.trim()
                ),
            ));
        }
    }
    Ok(())
}

impl Plug for Wirefilter {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if self.shut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "wirefilter://: shut down through its management socket",
            ));
        }
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        let now = now_ns();
        self.flush_out(now);
        match self.engine.admit(Dir::LR, frame, now) {
            Admit::Now => self.inner.send(frame),
            Admit::Dropped => Ok(frame.len()),
            Admit::Queued => {
                self.flush_out(now);
                self.rearm(now)?;
                Ok(frame.len())
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        if self.shut {
            return Ok(Recv::Closed);
        }
        let now = now_ns();
        let mut handled = self.timer_fired(now);
        if let Some(m) = &mut self.mgmt {
            match m.serve(&mut self.engine)? {
                mgmt::Served::Idle => {}
                mgmt::Served::Some => handled = true,
                mgmt::Served::Shutdown => {
                    self.shut = true;
                    self.engine.clear();
                    return Ok(Recv::Closed);
                }
            }
        }
        self.flush_out(now);
        let got = self.recv_in(buf, now);
        self.rearm(now)?;
        match got {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && handled => Ok(Recv::Nothing),
            other => other,
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    fn ctl_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.ctl_fd()
    }

    fn backlog(&mut self) -> Option<&mut dyn super::Backlog> {
        self.inner.backlog()
    }
}

#[cfg(test)]
mod tests;
