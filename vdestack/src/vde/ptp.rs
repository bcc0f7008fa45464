//! `ptp://` (being written).

use std::io;
use std::os::fd::BorrowedFd;

use super::{Plug, Recv};

/// The `ptp://` plug.
#[derive(Debug)]
pub struct Ptp {}

impl Ptp {
    /// Opens the plug.
    pub fn open(arg: &str, _args: &super::OpenArgs) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("ptp://{arg} is not written yet"),
        ))
    }
}

impl Plug for Ptp {
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
