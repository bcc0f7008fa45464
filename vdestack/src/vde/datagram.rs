//! What the datagram plugs (`vde://`, `vxvde://`, `vxlan://`, `udp://`) share:
//! sending one frame per datagram without blocking, large segments cut once and
//! sent with `sendmmsg` ([`SegmentBatching`]), and the frames a full peer refuses
//! kept for later ([`Backlog`]). Written once here; each plug says only what
//! differs ([`DatagramPlug`]): its socket, the prefix before each frame (the VXLAN
//! header), where a frame goes (a connected socket, or a learned address), and
//! what a send error means for it.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno;
use rustix::net::{self as rnet, SendAncillaryBuffer, SendFlags, SocketAddrAny};

use super::batch::SegmentBatch;
use super::gso::VnetHdr;
use super::{send_offload_each, Backlog, Plug, SegmentBatching, MIN_FRAME};

/// Where a frame goes, for a plug whose socket is not connected.
pub(crate) trait Route {
    /// The address of the datagram that carries `frame`.
    fn destination(&self, frame: &[u8]) -> SocketAddr;
}

/// A datagram plug's sending half, borrowed for one call.
pub(crate) struct Out<'a> {
    /// The socket frames leave by (and whose writability means room).
    pub fd: BorrowedFd<'a>,
    /// The frames of the segment being sent, and those kept for a full peer.
    pub batch: &'a mut SegmentBatch,
    /// Bytes sent before every frame, in the same datagram.
    pub prefix: &'a [u8],
    /// Where each frame goes; `None`: the socket is connected.
    pub route: Option<&'a dyn Route>,
}

/// What a datagram plug says of itself; [`send`], [`SegmentBatching`] and
/// [`Backlog`] are written once over it.
pub(crate) trait DatagramPlug: Plug {
    /// The sending half.
    fn out(&mut self) -> Out<'_>;

    /// The batch alone (what is kept for the peer).
    fn batch(&self) -> &SegmentBatch;

    /// The socket frames leave by.
    fn socket(&self) -> BorrowedFd<'_>;

    /// What a failed send means: `None` if the frame is merely lost (an ICMP
    /// error on a connected UDP socket), else the error to report (`WouldBlock`
    /// for a full queue).
    fn send_failed(&self, e: Errno) -> Option<io::Error>;

    /// Called when the owner asks the plug to keep what a full peer refuses.
    fn keeping(&mut self) {}
}

/// Sends `prefix` + `frame` as one datagram to `to` (or on a connected socket),
/// without blocking and without `SIGPIPE`.
pub(crate) fn send_one(
    fd: impl AsFd,
    prefix: &[u8],
    to: Option<&SocketAddr>,
    frame: &[u8],
) -> Result<usize, Errno> {
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    if to.is_none() && prefix.is_empty() {
        return rnet::send(fd, frame, flags);
    }
    let iov = [IoSlice::new(prefix), IoSlice::new(frame)];
    let mut no_control = SendAncillaryBuffer::default();
    match to {
        Some(to) => rnet::sendmsg_addr(fd, to, &iov, &mut no_control, flags),
        None => rnet::sendmsg(fd, &iov, &mut no_control, flags),
    }
}

/// [`Plug::send`] of a datagram plug: one frame, one datagram. A full socket
/// (`EAGAIN`) keeps the frame if the plug keeps frames; while frames are kept, a
/// send is refused with `WouldBlock`.
pub(crate) fn send<P: DatagramPlug + ?Sized>(p: &mut P, frame: &[u8]) -> io::Result<usize> {
    if frame.len() < MIN_FRAME {
        return Ok(frame.len());
    }
    let failed = {
        let out = p.out();
        if out.batch.kept() > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let to = out.route.map(|r| r.destination(frame));
        match send_one(out.fd, out.prefix, to.as_ref(), frame) {
            Ok(_) => return Ok(frame.len()),
            Err(Errno::AGAIN) if out.batch.keeps() => {
                out.batch
                    .keep_frame(frame, to.map(SocketAddrAny::from).as_ref());
                return Ok(frame.len());
            }
            Err(e) => e,
        }
    };
    match p.send_failed(failed) {
        None => Ok(frame.len()),
        Some(e) => Err(e),
    }
}

impl<P: DatagramPlug> SegmentBatching for P {
    /// Cuts a TCP segment into ordinary frames, sent with one `sendmmsg` to where
    /// the first belongs (they share their addresses); anything else, or a
    /// segment whose frames do not fit the batch (a tiny MSS), goes one frame at
    /// a time. What a full socket does not take stays in the batch if the plug
    /// keeps frames.
    fn send_segment(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize> {
        if !SegmentBatch::takes(hdr) {
            return send_offload_each(self, hdr, frame);
        }
        let failed = {
            let out = self.out();
            if out.batch.kept() > 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let to = match out.batch.cut(hdr, frame) {
                Ok(mut frames) => match (out.route, frames.next()) {
                    (_, None) => return Ok(frame.len()),
                    (Some(r), Some(first)) => Some(SocketAddrAny::from(r.destination(first))),
                    (None, Some(_)) => None,
                },
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    return send_offload_each(self, hdr, frame)
                }
                Err(e) => return Err(e),
            };
            match out.batch.send_cut(out.fd, out.prefix, to.as_ref()) {
                Ok(()) => return Ok(frame.len()),
                Err(e) => e,
            }
        };
        match self.send_failed(failed) {
            None => Ok(frame.len()),
            Some(e) => Err(e),
        }
    }
}

impl<P: DatagramPlug> Backlog for P {
    /// A full send buffer (`EAGAIN`) keeps the frames until the socket is
    /// writable; what the peer's own queue cannot take is lost on the way, as
    /// datagrams are.
    fn keep(&mut self) {
        self.out().batch.keep_backlog();
        self.keeping();
    }

    fn kept(&self) -> usize {
        self.batch().kept()
    }

    fn room_fd(&self) -> BorrowedFd<'_> {
        self.socket()
    }

    fn flush(&mut self) -> io::Result<bool> {
        let out = self.out();
        match out.batch.flush(out.fd, out.prefix) {
            Ok(done) => Ok(done),
            Err(e) => match self.send_failed(e) {
                None => Ok(true),
                Some(e) => Err(e),
            },
        }
    }

    fn drop_kept(&mut self) -> usize {
        self.out().batch.drop_kept()
    }
}
