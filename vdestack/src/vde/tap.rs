//! `tap://IFNAME`: a kernel tap interface (`IFF_TAP | IFF_NO_PI`). The name goes
//! straight to the kernel: a persistent tap of that name is attached to, a missing
//! one created (which needs CAP_NET_ADMIN); `%d` in it (`tap%d`) lets the kernel
//! number it ([`Tap::name`] tells). An empty name is refused: upstream lets the
//! kernel choose one then, a tap that nobody could find to configure.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::url::bad_value;
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
        if arg.is_empty() {
            return Err(bad_value(
                "tap",
                "interface name",
                arg,
                "tap:// needs one (tap://IFNAME, or tap://tap%d for the kernel's choice)",
            )
            .into());
        }
        let (fd, name) =
            crate::sys::open_tap(arg).map_err(|e| context(e, format!("tap://{arg}")))?;
        Ok(Self { fd, name })
    }

    /// The interface's name (with the kernel's number in place of a `%d`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_name_is_refused_before_the_kernel_is_asked() {
        let e = Tap::open("").unwrap_err();
        assert!(e.to_string().contains("bad interface name ``"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
