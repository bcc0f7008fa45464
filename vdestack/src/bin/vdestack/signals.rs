//! SIGINT, SIGTERM and SIGHUP as a readable fd, so the relay loops can stop cleanly
//! (and remove their socket files) without a signal handler doing any work.

use std::io;
use std::os::fd::OwnedFd;

use rustix::pipe::{pipe_with, PipeFlags};

/// Returns the read end of a pipe that becomes readable when a stop signal arrives.
pub fn stop_fd() -> io::Result<OwnedFd> {
    let what = |e| vdestack::error::context(e, "handling SIGINT/SIGTERM/SIGHUP");
    let (r, w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).map_err(|e| what(e.into()))?;
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::low_level::pipe::register(sig, w.try_clone().map_err(what)?).map_err(what)?;
    }
    Ok(r)
}
