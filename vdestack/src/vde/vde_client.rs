//! `vde_client://` (being written).

use std::io;
use std::os::fd::BorrowedFd;

use super::{Plug, Recv};

/// The `vde_client://` plug.
#[derive(Debug)]
pub struct VdeClient {}

impl VdeClient {
    /// Opens the plug.
    pub fn open(arg: &str, _args: &super::OpenArgs) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("vde_client://{arg} is not written yet"),
        ))
    }
}

impl Plug for VdeClient {
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
