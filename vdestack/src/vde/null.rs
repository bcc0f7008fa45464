//! `null://`: a plug that sends nowhere and never receives. With `vdestack plug
//! null:// switch:///tmp/sw` it turns a switch plug into a standalone switch.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{eventfd, EventfdFlags};

use super::url::bad_value;
use super::{Plug, Recv};

/// The `null://` plug: its data fd is an eventfd that is never signalled.
#[derive(Debug)]
pub struct Null {
    never: OwnedFd,
}

impl Null {
    /// Opens `null://`; it takes no argument.
    pub fn open(arg: &str) -> io::Result<Self> {
        if !arg.is_empty() {
            return Err(bad_value("null", "argument", arg, "null:// takes none").into());
        }
        let never = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Self { never })
    }
}

impl Plug for Null {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        Ok(frame.len())
    }

    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Recv> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.never.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swallows_and_never_receives() {
        let mut n = Null::open("").unwrap();
        assert_eq!(n.send(&[0; 60]).unwrap(), 60);
        let mut buf = [0; 100];
        assert_eq!(
            n.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(!crate::sys::poll_readable(n.data_fd(), Some(std::time::Duration::ZERO)).unwrap());
        assert!(Null::open("x").is_err());
        // A boxed plug is an fd to poll, as it is.
        let boxed: Box<dyn Plug> = Box::new(n);
        let fd = std::os::fd::AsFd::as_fd(&boxed);
        use std::os::fd::AsRawFd;
        assert_eq!(fd.as_raw_fd(), boxed.data_fd().as_raw_fd());
    }
}
