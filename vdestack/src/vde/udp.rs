//! `udp://` (being written).

use std::io;
use std::os::fd::BorrowedFd;

use super::{Plug, Recv};

/// The `udp://` plug.
#[derive(Debug)]
pub struct Udp {}

impl Udp {
    /// Opens the plug.
    pub fn open(arg: &str) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("udp://{arg} is not written yet"),
        ))
    }
}

impl Plug for Udp {
    fn send(&mut self, _frame: &[u8]) -> io::Result<usize> {
        unreachable!()
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Recv> {
        unreachable!()
    }
    fn data_fd(&self) -> BorrowedFd<'_> {
        unreachable!()
    }
}
