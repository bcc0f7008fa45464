//! `vxvde://` (being written).

use std::io;
use std::os::fd::BorrowedFd;

use super::{Plug, Recv};

/// The `vxvde://` plug.
#[derive(Debug)]
pub struct Vxvde {}

impl Vxvde {
    /// Opens the plug.
    pub fn open(arg: &str) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("vxvde://{arg} is not written yet"),
        ))
    }
}

impl Plug for Vxvde {
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
