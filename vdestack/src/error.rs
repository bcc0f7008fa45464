//! Error context that keeps the OS error code.
//!
//! `io::Error::new(kind, message)` loses the errno; a C caller (the C ABI) needs it.
//! [`context`] wraps an error with a message naming what failed while keeping the
//! original error as its source, and [`errno_of`] finds the errno again.

use std::error::Error;
use std::fmt;
use std::io;

/// An I/O error with a message saying what was being done.
#[derive(Debug)]
pub struct Context {
    what: String,
    source: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `e` with a message; the result has the same kind and [`errno_of`] finds its
/// errno.
pub fn context(e: impl Into<io::Error>, what: impl Into<String>) -> io::Error {
    let source = e.into();
    io::Error::new(
        source.kind(),
        Context {
            what: what.into(),
            source,
        },
    )
}

/// The errno behind an error: its own, or that of the error it wraps; for errors
/// made from a message alone, a value that fits the kind (EINVAL for bad input).
pub fn errno_of(e: &io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    if let Some(c) = e.get_ref().and_then(|i| i.downcast_ref::<Context>()) {
        return errno_of(&c.source);
    }
    match e.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::Unsupported => libc::EPROTONOSUPPORT,
        io::ErrorKind::AddrInUse => libc::EADDRINUSE,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::UnexpectedEof => libc::EPIPE,
        io::ErrorKind::ConnectionRefused => libc::ECONNREFUSED,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        _ => libc::EINVAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_errno_and_says_what() {
        let e = context(io::Error::from_raw_os_error(libc::ENOENT), "open /x");
        assert_eq!(errno_of(&e), libc::ENOENT);
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("open /x: "), "{e}");
        let twice = context(e, "outer");
        assert_eq!(errno_of(&twice), libc::ENOENT);
        let msg = io::Error::new(io::ErrorKind::InvalidInput, "bad");
        assert_eq!(errno_of(&msg), libc::EINVAL);
    }
}
