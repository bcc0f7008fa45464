//! The slirp thread: it owns the libslirp instance and its end of the plug's
//! socket pair, and loops: wait for frames from the plug, for libslirp's sockets
//! and for its timers; give libslirp the frames; let it service its sockets; send
//! what it produced for the guest back over the pair.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{Config, Forward};
use crate::sys::slirp::{Engine, Guest};
use crate::vde::batch::send_all;
use crate::vde::{RecvBatch, MAX_FRAME};

/// Frames read from the plug per wake-up before libslirp services its sockets
/// (so a guest sending flat out does not starve the host side).
const READ_ROUNDS: usize = 4;

/// Frames for the guest gathered before they are sent with one `sendmmsg`.
const FLUSH_AT: usize = 64;

/// How long the thread waits for the plug's owner to make room for frames, before
/// it drops them (TCP then resends them, later). Waiting slows libslirp down as a
/// full link would; the bound keeps an owner that stopped reading (but did not
/// close the plug) from stopping the host side for good.
const PATIENCE: Duration = Duration::from_secs(1);

/// The frames libslirp produced for the guest, sent over the socket pair.
pub(super) struct Outbox {
    fd: Arc<OwnedFd>,
    /// Frames back to back; `ends[i]` is where frame `i` ends.
    frames: Vec<u8>,
    ends: Vec<usize>,
    /// The plug is gone (its end of the pair closed).
    closed: bool,
    dropped: u64,
}

impl Outbox {
    fn new(fd: Arc<OwnedFd>) -> Self {
        Self {
            fd,
            frames: Vec::with_capacity(FLUSH_AT * 1600),
            ends: Vec::with_capacity(FLUSH_AT),
            closed: false,
            dropped: 0,
        }
    }

    /// Sends the gathered frames, waiting (a bounded time) for room.
    fn flush(&mut self) {
        let mut sent = 0;
        let mut deadline = None;
        while sent < self.ends.len() && !self.closed {
            let ends = &self.ends;
            let frames = &self.frames;
            let rest = (sent..ends.len()).map(|i| {
                let start = if i == 0 { 0 } else { ends[i - 1] };
                &frames[start..ends[i]]
            });
            match send_all(self.fd.as_fd(), &[], None, rest) {
                Ok(n) => sent += n,
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::NOBUFS) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
            if sent == self.ends.len() {
                break;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + PATIENCE);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.dropped += (self.ends.len() - sent) as u64;
                log::debug!(
                    "slirp: the plug's owner reads nothing: {} frames dropped so far",
                    self.dropped
                );
                break;
            }
            let mut pfd = [rustix::event::PollFd::new(
                &*self.fd,
                rustix::event::PollFlags::OUT,
            )];
            let ts = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: left.as_nanos().min(50_000_000) as _,
            };
            let _ = rustix::event::poll(&mut pfd, Some(&ts));
        }
        self.frames.clear();
        self.ends.clear();
    }
}

impl Guest for Outbox {
    fn frame(&mut self, frame: &[u8]) {
        if frame.len() > MAX_FRAME || self.closed {
            return;
        }
        self.frames.extend_from_slice(frame);
        self.ends.push(self.frames.len());
        if self.ends.len() >= FLUSH_AT {
            self.flush();
        }
    }
}

fn apply(engine: &mut Engine<Outbox>, f: &Forward) -> io::Result<()> {
    let (r, what) = match f {
        Forward::Host { udp, host, guest } => (
            engine.add_hostfwd(*udp, *host, *guest),
            format!("{}fwd {host} -> {guest}", if *udp { "udp" } else { "tcp" }),
        ),
        Forward::Unix { guest, path } => (
            engine.add_unix(path, *guest),
            format!("unixfwd {guest} -> {path}"),
        ),
        Forward::Exec { guest, cmd } => (
            engine.add_exec(cmd, *guest),
            format!("cmdfwd {guest} -> {cmd}"),
        ),
    };
    r.map_err(|e| crate::error::context(e, format!("cannot set up {what}")))
}

/// The thread's body. Reports on `ready` whether libslirp started (and every
/// forward was set up), then runs until the plug closes its end of the pair.
pub(super) fn run(config: Config, fd: OwnedFd, ready: SyncSender<io::Result<()>>) {
    let fd = Arc::new(fd);
    let mut engine = match Engine::new(&config.settings, Outbox::new(fd.clone())) {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    for f in &config.forwards {
        if let Err(e) = apply(&mut engine, f) {
            let _ = ready.send(Err(e));
            return;
        }
    }
    if config.verbose {
        for f in &config.forwards {
            eprintln!("slirp: {f:?}: set up");
        }
    }
    if ready.send(Ok(())).is_err() {
        return;
    }
    drop(ready);
    let mut batch = RecvBatch::new();
    'run: loop {
        let readable = match engine.wait(fd.as_fd(), None) {
            Ok(r) => r,
            Err(e) => {
                log::error!("slirp: poll: {e}");
                break;
            }
        };
        if readable {
            for _ in 0..READ_ROUNDS {
                match batch.receive(fd.as_fd(), false) {
                    // A zero-length record (or none at all) is the end of the pair.
                    Ok(0) => break 'run,
                    Ok(n) => {
                        for i in 0..n {
                            let (frame, _) = batch.datagram(i);
                            if frame.is_empty() {
                                break 'run; // the plug closed its end
                            }
                            engine.input(frame);
                        }
                        if n < RecvBatch::CAPACITY {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break 'run,
                }
            }
        }
        engine.dispatch();
        let out = engine.guest();
        out.flush();
        if out.closed {
            break;
        }
    }
    // Dropping the engine closes every socket libslirp opened.
}
