//! A cable between two plugs: frames read from one are sent to the other, until
//! either closes or the caller's stop fd becomes readable. This is `vde_plug URL1
//! URL2` (and, with a [`StreamPlug`](super::stream_plug::StreamPlug) on stdio or on a
//! coprocess, `vde_plug URL` and `vde_plug URL = CMD`).
//!
//! It never blocks on a full side: such frames are dropped and counted. It never
//! spins for long: after moving frames it looks for more for a short, adaptive
//! while ([`super::poll_window`]), then sleeps in `poll` until something is ready.

use std::io;
use std::os::fd::BorrowedFd;

use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::poll_window::PollWindow;
use super::{Plug, Recv, MAX_FRAME};
use crate::error::context;

/// How many frames one side may move before the other gets its turn.
const BATCH: usize = 64;

/// Why a cable stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CableEnd {
    /// The first plug closed (EOF, the switch closed the port, the command exited).
    FirstClosed,
    /// The second plug closed.
    SecondClosed,
    /// The stop fd became readable.
    Stopped,
}

/// Frames moved by a cable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CableStats {
    /// Frames from the first plug delivered to the second.
    pub first_to_second: u64,
    /// Frames from the second plug delivered to the first.
    pub second_to_first: u64,
    /// Frames dropped because the receiving side was full.
    pub dropped: u64,
}

/// Relays frames between `first` and `second` until one closes or `stop` is readable.
pub fn run(
    first: &mut dyn Plug,
    second: &mut dyn Plug,
    stop: Option<BorrowedFd<'_>>,
) -> io::Result<(CableEnd, CableStats)> {
    run_named(first, second, ["the first plug", "the second plug"], stop)
}

/// [`run`], with a name for each plug (a URL, "stdin/stdout"): an error says which
/// plug failed, and whether receiving from it or sending to it.
pub fn run_named(
    first: &mut dyn Plug,
    second: &mut dyn Plug,
    names: [&str; 2],
    stop: Option<BorrowedFd<'_>>,
) -> io::Result<(CableEnd, CableStats)> {
    let mut stats = CableStats::default();
    let mut buf = vec![0u8; MAX_FRAME];
    let mut window = PollWindow::new(crate::Config::current().relay_poll);
    // Bytes moved since the cable last looked for events.
    let mut moved = 0usize;
    loop {
        let (r1, r2, rs) = {
            // An array, not a Vec: no allocation per wake-up. Without a stop fd the
            // third entry repeats the first and is not looked at.
            let mut fds = [
                PollFd::from_borrowed_fd(first.data_fd(), PollFlags::IN),
                PollFd::from_borrowed_fd(second.data_fd(), PollFlags::IN),
                PollFd::from_borrowed_fd(stop.unwrap_or(first.data_fd()), PollFlags::IN),
            ];
            let n = if stop.is_some() { 3 } else { 2 };
            let fds = &mut fds[..n];
            window.moved(moved, Instant::now());
            moved = 0;
            match poll_then_sleep(fds, &mut window) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(context(e, "waiting for frames (poll)")),
            }
            let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
            (ready(0), ready(1), ready(2))
        };
        if rs {
            return Ok((CableEnd::Stopped, stats));
        }
        if r1
            && pump(
                (first, names[0]),
                (second, names[1]),
                &mut buf,
                &mut stats.first_to_second,
                &mut stats.dropped,
                &mut moved,
            )?
        {
            return Ok((CableEnd::FirstClosed, stats));
        }
        if r2
            && pump(
                (second, names[1]),
                (first, names[0]),
                &mut buf,
                &mut stats.second_to_first,
                &mut stats.dropped,
                &mut moved,
            )?
        {
            return Ok((CableEnd::SecondClosed, stats));
        }
    }
}

/// Polls `fds` without sleeping for as long as `window` says (yielding the CPU
/// between looks), then sleeps in `poll` if nothing was ready.
fn poll_then_sleep(fds: &mut [PollFd<'_>], window: &mut PollWindow) -> rustix::io::Result<usize> {
    let span = window.window();
    if !span.is_zero() {
        let start = Instant::now();
        let mut last = start;
        loop {
            let n = poll(fds, Some(&NO_WAIT))?;
            if n > 0 {
                window.found();
                return Ok(n);
            }
            if !window.next_look(start, span, &mut last) {
                break;
            }
        }
    }
    let asleep = Instant::now();
    let n = poll(fds, None);
    window.slept(asleep.elapsed());
    n
}

/// A `poll` timeout that only looks.
const NO_WAIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Moves up to [`BATCH`] frames from `from` to `to` (each with its name, for errors).
/// Returns whether `from` closed.
fn pump(
    (from, from_name): (&mut dyn Plug, &str),
    (to, to_name): (&mut dyn Plug, &str),
    buf: &mut [u8],
    moved: &mut u64,
    dropped: &mut u64,
    bytes: &mut usize,
) -> io::Result<bool> {
    for _ in 0..BATCH {
        match from.recv(buf) {
            Ok(Recv::Frame(n)) => {
                *bytes += n;
                match to.send(&buf[..n]) {
                    Ok(_) => *moved += 1,
                    Err(e) if crate::sys::would_block(&e) => *dropped += 1,
                    Err(e) => return Err(context(e, format!("sending to {to_name}"))),
                }
            }
            // Work inside the plug (a switch forwarding between its own ports):
            // weighed as one full Ethernet frame, for the poll window.
            Ok(Recv::Nothing) => *bytes += 1514,
            Ok(Recv::Closed) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(context(e, format!("receiving from {from_name}"))),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vde::stream_plug::StreamPlug;

    #[test]
    fn moves_frames_until_a_side_closes() {
        // first <-> (pipes) <-> test; second is a `cat` coprocess that echoes back.
        let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
        let (in_r, in_w) = rustix::pipe::pipe_with(cloexec).unwrap();
        let (out_r, out_w) = rustix::pipe::pipe_with(cloexec).unwrap();
        let mut first = StreamPlug::new(in_r, out_w).unwrap();
        let mut second = crate::vde::cmd::Cmd::open("cat").unwrap();
        let mut wire = Vec::new();
        for i in 0..20u8 {
            crate::vde::stream::encode(&[i; 60], &mut wire);
        }
        rustix::io::write(&in_w, &wire).unwrap();
        drop(in_w); // EOF after the frames: the cable ends with FirstClosed
        let (end, stats) = run(&mut first, &mut second, None).unwrap();
        assert_eq!(end, CableEnd::FirstClosed);
        assert_eq!(stats.first_to_second, 20);
        drop(out_r);
    }
}
