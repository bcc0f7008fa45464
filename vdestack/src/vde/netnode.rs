//! `hub://` and `switch://` (being written).

use std::io;
use std::os::fd::BorrowedFd;

use super::{Plug, Recv};

/// Which forwarding a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Floods every frame to every other port.
    Hub,
    /// Learns MAC addresses.
    Switch,
}

/// A hub or switch server.
#[derive(Debug)]
pub struct NetNode {}

impl NetNode {
    /// Opens the plug.
    pub fn open(kind: Kind, arg: &str, _args: &super::OpenArgs) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{kind:?} {arg} is not written yet"),
        ))
    }
}

impl Plug for NetNode {
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
