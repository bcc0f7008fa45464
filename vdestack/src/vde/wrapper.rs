//! What the wrapping plugs (`vlan://`, `agno://`, `wirefilter://`, `capture://`) share: opening the nested plug,
//! and the [`Plug`] methods they pass through to it.
//!
//! A wrapper changes every frame (a tag, a cipher), so it passes through only what
//! does not look inside frames: the fds and the back-pressure of the nested plug,
//! which keeps the frames the wrapper has already changed. It claims none of the
//! capabilities that move frames past its `send`/`recv`: no large segments (the
//! default `send_offload` cuts them into ordinary frames first, each then tagged or
//! encrypted), no tap of its own, and one frame per receive.

use std::io;

use super::url::{split_nested, Nested, UrlError};
use super::{OpenArgs, Plug};
use crate::error::context;

/// Splits a wrapper's argument and opens its nested plug; returns the wrapper's own
/// part (`[ARG][OPTIONS]`) and the nested plug. `parse` checks the wrapper's part
/// first, so a bad option fails before anything is opened.
pub fn open_nested<T>(
    scheme: &'static str,
    arg: &str,
    args: &OpenArgs,
    parse: impl FnOnce(&str) -> Result<T, UrlError>,
) -> io::Result<(T, Box<dyn Plug>)> {
    let Nested { outer, inner } = split_nested(scheme, arg)?;
    let parsed = parse(outer)?;
    let vnl = inner.unwrap_or("");
    let plug = super::open_with(vnl, args).map_err(|e| {
        let what = if vnl.is_empty() {
            "the default switch".to_string()
        } else {
            format!("`{vnl}`")
        };
        context(e, format!("{scheme}://: opening the nested plug {what}"))
    })?;
    Ok((parsed, plug))
}

/// The [`Plug`](super::Plug) methods a wrapper passes to the plug it wraps (field
/// `$inner`): the fds, and the nested plug's back-pressure (the frames it keeps
/// are already tagged or encrypted, so they flush unchanged).
macro_rules! pass_through {
    ($inner:ident) => {
        fn data_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.$inner.data_fd()
        }

        fn ctl_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            self.$inner.ctl_fd()
        }

        fn offer_backlog(&mut self) -> bool {
            self.$inner.offer_backlog()
        }

        fn backlog(&self) -> usize {
            self.$inner.backlog()
        }

        fn backlog_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.$inner.backlog_fd()
        }

        fn flush_backlog(&mut self) -> std::io::Result<bool> {
            self.$inner.flush_backlog()
        }

        fn drop_backlog(&mut self) -> usize {
            self.$inner.drop_backlog()
        }
    };
}
pub(crate) use pass_through;

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use crate::vde::agno::{cipher::EthType, Agno};
    use crate::vde::vlan::{parse, Vlan};
    use crate::vde::{Plug, Recv};

    /// A nested plug whose peer is full: it keeps what it is sent.
    #[derive(Debug)]
    struct Keeper {
        fd: OwnedFd,
        kept: Vec<Vec<u8>>,
        keeping: bool,
    }

    impl Plug for Keeper {
        fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
            self.kept.push(frame.to_vec());
            Ok(frame.len())
        }
        fn recv(&mut self, _: &mut [u8]) -> io::Result<Recv> {
            Err(io::ErrorKind::WouldBlock.into())
        }
        fn data_fd(&self) -> BorrowedFd<'_> {
            self.fd.as_fd()
        }
        fn offer_backlog(&mut self) -> bool {
            self.keeping = true;
            true
        }
        fn backlog(&self) -> usize {
            self.kept.len()
        }
        fn flush_backlog(&mut self) -> io::Result<bool> {
            self.kept.clear();
            Ok(true)
        }
        fn drop_backlog(&mut self) -> usize {
            std::mem::take(&mut self.kept).len()
        }
    }

    fn keeper() -> Box<dyn Plug> {
        let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        Box::new(Keeper {
            fd,
            kept: Vec::new(),
            keeping: false,
        })
    }

    #[test]
    fn wrappers_pass_back_pressure_through_and_claim_no_segment_capability() {
        let wrapped: Vec<Box<dyn Plug>> = vec![
            Box::new(Vlan::wrap(parse("3").unwrap(), keeper())),
            Box::new(Agno::wrap(&[1; 16], EthType::Copy, keeper())),
        ];
        for mut w in wrapped {
            assert!(w.offer_backlog());
            assert_eq!(w.backlog(), 0);
            w.send(&[0u8; 60]).unwrap();
            w.send(&[0u8; 60]).unwrap();
            assert_eq!(w.backlog(), 2, "the nested plug's kept frames count");
            assert!(w.flush_backlog().unwrap());
            assert_eq!(w.backlog(), 0);
            w.send(&[0u8; 60]).unwrap();
            assert_eq!(w.drop_backlog(), 1);
            assert!(!w.batches_segments() && !w.offer_offload() && !w.receives_batches());
            assert!(w.ctl_fd().is_none());
        }
    }
}
