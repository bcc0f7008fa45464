//! The [`Plug`] trait: a small core (send, receive, the fd to poll) and optional
//! capabilities, each a trait of its own that a plug hands out through one query
//! (`None` by default). A new transport implements the core in a small file; the
//! speed features are there only where a transport has them:
//!
//! | capability | query | who has it |
//! |---|---|---|
//! | [`Offload`]: large segments carried whole | [`Plug::offload`] | `inproc://` |
//! | [`SegmentBatching`]: a large segment cut once, its frames sent in one batch | [`Plug::segment_batching`] | the datagram plugs, `hub://`/`switch://` |
//! | [`RecvBatching`]: many datagrams per receive | [`Plug::recv_batching`] | the datagram plugs |
//! | [`Backlog`]: what a full peer refuses is kept, not dropped | [`Plug::backlog`] | the datagram plugs |
//! | [`TapDelivery`]: frames written straight into a stack's tap | [`Plug::tap_delivery`] | `inproc://` |
//!
//! (The datagram plugs are `vde://`, `vxvde://`, `vxlan://` and `udp://`; they share
//! the code of the first four through `vde::datagram`.) A plug that wraps another
//! (`vlan://` and the like) forwards or drops each capability on purpose.
//!
//! The free functions [`send_segment`], [`recv_segment`] and [`recv_into_batch`] use
//! the best capability a plug has and fall back to the core.

use std::fmt::Debug;
use std::io;
use std::os::fd::BorrowedFd;

use super::gso::{self, VnetHdr};
use super::{RecvBatch, MAX_FRAME};

/// What one [`Plug::recv`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// A frame of this many bytes is at the start of the buffer.
    Frame(usize),
    /// Something was handled, but there is no frame for the caller.
    Nothing,
    /// The other end is gone for good (EOF, the switch closed the port).
    Closed,
}

/// One end of a virtual Ethernet cable. See the [module docs](super) for the
/// contract (non-blocking, what `recv` returns, what dropping does).
pub trait Plug: Send + Debug {
    /// Sends one frame. Never blocks: a full peer gives `WouldBlock` and the frame
    /// is dropped (unless [`Backlog`] keeps it). A frame shorter than 14 bytes is
    /// discarded and reported as sent.
    fn send(&mut self, frame: &[u8]) -> io::Result<usize>;

    /// Receives one frame into `buf` (which should hold [`MAX_FRAME`] bytes; a
    /// longer frame is truncated). Call it when [`Plug::data_fd`] is readable.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv>;

    /// The fd to poll for readability.
    fn data_fd(&self) -> BorrowedFd<'_>;

    /// The control fd (only `vde://` has one: its stream to the switch). Its
    /// readiness is already folded into [`Plug::data_fd`]; it is here for callers
    /// that want to watch it apart, like `vde_ctlfd`.
    fn ctl_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Large segments carried whole ([`Offload`]), if the plug can.
    fn offload(&mut self) -> Option<&mut dyn Offload> {
        None
    }

    /// Large segments cut by the plug at a low cost ([`SegmentBatching`]), if it
    /// can.
    fn segment_batching(&mut self) -> Option<&mut dyn SegmentBatching> {
        None
    }

    /// Many frames per receive ([`RecvBatching`]), if the plug can.
    fn recv_batching(&mut self) -> Option<&mut dyn RecvBatching> {
        None
    }

    /// Frames kept for a full peer ([`Backlog`]), if the plug can.
    fn backlog(&mut self) -> Option<&mut dyn Backlog> {
        None
    }

    /// Frames written straight into a stack's tap ([`TapDelivery`]), if the plug
    /// can.
    fn tap_delivery(&mut self) -> Option<&mut dyn TapDelivery> {
        None
    }

    /// How many full-size frames the receivers of this link can queue before they
    /// drop, when that is small and known: a multicast datagram link
    /// (`vxvde://`, `vxlan://`), whose members each read from one UDP socket
    /// buffer. While several of a user-space stack's TCP connections send on the
    /// link, they share it as their limit in flight, so that together they do
    /// not overrun a member. `None`: no such limit (a switch, a stream, a kernel link).
    fn flight_frames(&self) -> Option<usize> {
        None
    }
}

/// A plug's fd to poll is its [`Plug::data_fd`] (so `Box<dyn Plug>` works with
/// `poll`, mio and tokio's `AsyncFd` as it is).
impl std::os::fd::AsFd for dyn Plug {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.data_fd()
    }
}

/// A plug whose network carries large segments whole: frames with a
/// [`gso::VnetHdr`] in front, TCP segments of up to 64 KiB cut later, checksums
/// still to compute. Only `inproc://` has it: the segment hands ordinary frames
/// ([`gso::to_plain`]) to every port that did not turn it on.
pub trait Offload {
    /// Turns it on: from now on large frames come to [`Offload::recv_offload`],
    /// so the plug's owner must receive that way.
    fn enable(&mut self);

    /// Sends a frame described by `hdr` (see [`gso`]), whole.
    fn send_offload(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize>;

    /// Receives a frame and its header into `hdr` and `buf` (which should hold
    /// [`gso::MAX_GSO_FRAME`] bytes once it is on).
    fn recv_offload(&mut self, hdr: &mut VnetHdr, buf: &mut [u8]) -> io::Result<Recv>;
}

/// A plug that cuts a large segment into ordinary frames itself, at a lower cost
/// than the kernel would (all the frames of a segment in one `sendmmsg`): a stack
/// then opens its tap with `IFF_VNET_HDR` and TSO for this plug too, though its
/// wire carries only ordinary frames.
pub trait SegmentBatching {
    /// Sends a frame described by `hdr`: a large segment is cut into ordinary
    /// frames with complete checksums, sent together.
    fn send_segment(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize>;
}

/// A plug that receives many datagrams with one syscall (`recvmmsg`).
pub trait RecvBatching {
    /// Receives what is queued, up to [`RecvBatch::CAPACITY`] datagrams, into
    /// `batch` (emptied first), keeping the frames that [`Plug::recv`] would have
    /// returned one by one. Returns [`Recv::Frame`] with the number of frames kept
    /// (read them with [`RecvBatch::frames`] before the next call), or, as
    /// [`Plug::recv`] does, [`Recv::Nothing`] (datagrams handled, no frame),
    /// [`Recv::Closed`] or an error (`WouldBlock`: nothing queued). Nothing stays in
    /// the plug: what it received is in `batch`.
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<Recv>;
}

/// A plug that can keep the frames its peer cannot take yet (a full queue),
/// rather than drop them. Once [`Backlog::keep`] is called, the owner stops
/// sending while [`Backlog::kept`] is not 0, waits until [`Backlog::room_fd`] is
/// writable, and calls [`Backlog::flush`] (or gives up with
/// [`Backlog::drop_kept`]). A send while frames are kept is refused with
/// `WouldBlock`.
pub trait Backlog {
    /// From now on, keep what a full peer refuses.
    fn keep(&mut self);

    /// How many frames wait for the peer.
    fn kept(&self) -> usize;

    /// The fd that becomes writable when the peer can take the frames kept for it.
    fn room_fd(&self) -> BorrowedFd<'_>;

    /// Sends the frames kept for the peer: `Ok(true)` when none is left,
    /// `Ok(false)` while the peer is still full. An error is one [`Plug::send`]
    /// would return (the peer is gone): the frames are dropped.
    fn flush(&mut self) -> io::Result<bool>;

    /// Drops the frames kept for the peer; returns how many.
    fn drop_kept(&mut self) -> usize;
}

/// A plug whose senders live in this process (`inproc://`) and can write the
/// frames for a stack straight into the stack's tap, from the sending thread,
/// rather than queue them for [`Plug::recv`]: that saves a copy and a thread
/// wake-up per frame.
pub trait TapDelivery {
    /// From now on, write this plug's frames into `tap` (`vnet`: the tap has
    /// `IFF_VNET_HDR`). Frames already queued go first.
    fn attach_tap(&mut self, tap: BorrowedFd<'_>, vnet: bool) -> io::Result<()>;
}

/// Sends a frame described by `hdr` with the best capability `plug` has: whole
/// ([`Offload`]), cut in the plug ([`SegmentBatching`]), or cut here with
/// [`send_offload_each`].
pub fn send_segment(plug: &mut dyn Plug, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize> {
    if let Some(o) = plug.offload() {
        return o.send_offload(hdr, frame);
    }
    if let Some(b) = plug.segment_batching() {
        return b.send_segment(hdr, frame);
    }
    send_offload_each(plug, hdr, frame)
}

/// Receives a frame and its header: through [`Offload`] when the plug has it,
/// else an ordinary frame with a plain header.
pub fn recv_segment(plug: &mut dyn Plug, hdr: &mut VnetHdr, buf: &mut [u8]) -> io::Result<Recv> {
    if let Some(o) = plug.offload() {
        return o.recv_offload(hdr, buf);
    }
    *hdr = VnetHdr::PLAIN;
    plug.recv(buf)
}

/// Receives into `batch` with [`RecvBatching`] when the plug has it, else one
/// frame with [`Plug::recv`] ([`RecvBatch::recv_one`]).
pub fn recv_into_batch(plug: &mut dyn Plug, batch: &mut RecvBatch) -> io::Result<Recv> {
    if let Some(b) = plug.recv_batching() {
        return b.recv_batch(batch);
    }
    batch.recv_one(plug)
}

/// A large segment sent without help: a plain frame goes to [`Plug::send`]; any
/// other is cut into ordinary frames with complete checksums ([`gso::to_plain`]),
/// each sent with [`Plug::send`]. A frame [`gso::to_plain`] refuses is dropped
/// with its error.
pub fn send_offload_each<P: Plug + ?Sized>(
    plug: &mut P,
    hdr: &VnetHdr,
    frame: &[u8],
) -> io::Result<usize> {
    if hdr.is_plain() {
        return plug.send(frame);
    }
    // On the stack: no allocation per frame, and a segment never exceeds a frame.
    let mut scratch = [0u8; MAX_FRAME];
    let mut result = Ok(frame.len());
    gso::to_plain(hdr, frame, &mut scratch, |seg| {
        if let Err(e) = plug.send(seg) {
            result = Err(e);
        }
    })?;
    result.map(|_| frame.len())
}
