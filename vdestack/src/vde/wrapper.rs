//! What the wrapping plugs (`vlan://`, `agno://`, `wirefilter://`, `capture://`) share: opening the nested plug,
//! and the [`Plug`] methods they pass through to it.
//!
//! A wrapper changes every frame (a tag, a cipher), so it passes through only what
//! does not look inside frames: the fds and the back-pressure of the nested plug,
//! which keeps the frames the wrapper has already changed. It claims none of the
//! capabilities that move frames past its `send`/`recv`: no large segments (the
//! default of `send_segment` cuts them into ordinary frames first, each then tagged or
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
/// `$inner`): the fds, the nested plug's back-pressure capability
/// ([`Backlog`](super::Backlog): the frames it keeps are already tagged or
/// encrypted, so they flush unchanged) and its receivers' queue
/// ([`Plug::flight_frames`](super::Plug::flight_frames)). The other capabilities stay `None`: no
/// large segments, no batches, no tap of its own.
macro_rules! pass_through {
    ($inner:ident) => {
        fn data_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.$inner.data_fd()
        }

        fn ctl_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            self.$inner.ctl_fd()
        }

        fn backlog(&mut self) -> Option<&mut dyn $crate::vde::Backlog> {
            self.$inner.backlog()
        }

        fn flight_frames(&self) -> Option<usize> {
            self.$inner.flight_frames()
        }
    };
}
pub(crate) use pass_through;
