//! Process-level calls the crate's own tools need (the `vdestack` command's `-d`),
//! offered to any program: safe wrappers over what `std` lacks.

use std::io;

/// Detaches the process from its terminal as `daemon(0, 0)` does: it forks (the
/// parent exits at once), starts a new session, changes to `/` and points stdin,
/// stdout and stderr at `/dev/null`. Call it before any thread is started (and
/// before any stack is made: a stack may start threads): a process with more
/// than one thread gets `EBUSY`, and nothing is done.
pub fn daemonize() -> io::Result<()> {
    crate::sys::daemonize()
}
