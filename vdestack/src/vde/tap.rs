//! `tap://IFNAME`: a kernel tap interface (`IFF_TAP | IFF_NO_PI`). The name goes
//! straight to the kernel: an empty one lets it choose; a persistent tap of that name
//! is attached to, a missing one created (which needs CAP_NET_ADMIN).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{Plug, Recv};
use crate::error::context;

/// A plug on a tap interface.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Opens `tap://IFNAME`.
    pub fn open(arg: &str) -> io::Result<Self> {
        let (fd, name) =
            crate::sys::open_tap(arg).map_err(|e| context(e, format!("tap://{arg}")))?;
        Ok(Self { fd, name })
    }

    /// The interface's name (the kernel's choice when the URL gave none).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Plug for Tap {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        match rustix::io::write(&self.fd, frame) {
            Ok(n) => Ok(n),
            // The interface is down (EIO): nobody is listening, the frame is dropped
            // as a cable with no peer would drop it.
            Err(rustix::io::Errno::IO) => Ok(frame.len()),
            Err(e) => Err(e.into()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match rustix::io::read(&self.fd, &mut *buf) {
            Ok(0) => Ok(Recv::Closed),
            Ok(n) => Ok(Recv::Frame(n)),
            Err(e) => Err(e.into()),
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
