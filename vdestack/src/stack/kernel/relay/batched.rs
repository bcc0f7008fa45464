//! Plug to tap for plugs that receive many datagrams per syscall
//! ([`RecvBatching`](crate::vde::RecvBatching)): one
//! `recvmmsg` per round where there were up to [`BATCH`] `recvfrom`s, the frames
//! written to the tap straight from the batch's buffers.
//!
//! Nothing can stall: the batch is this thread's, not the plug's, and every frame
//! in it is written (or joined and flushed) before the pair is left, so what is
//! left to read is only in the socket, where level-triggered epoll sees it.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::os::fd::AsFd;

use super::{flush_run, Pair, BATCH};
use crate::vde::gro;
use crate::vde::gso::{VnetHdr, VNET_HDR_LEN};
use crate::vde::{Recv, RecvBatch, MIN_FRAME};

thread_local! {
    /// This relay thread's batch (its buffers are allocated at the first receive).
    static RECEIVED: RefCell<RecvBatch> = RefCell::new(RecvBatch::new());
}

/// Moves up to [`BATCH`] datagrams from the plug to the tap (to a tap with
/// `IFF_VNET_HDR`, TCP segments of a flow joined first, [`gro`]). `buf` holds the
/// run being joined. Returns whether the plug is finished (closed, or failing for
/// good).
pub(super) fn plug_to_tap(pair: &mut Pair, buf: &mut [u8], moved: &mut usize) -> bool {
    RECEIVED.with_borrow_mut(|batch| {
        let mut run: Option<gro::Run> = None;
        let mut handled = 0;
        let finished = loop {
            if handled >= BATCH {
                break false;
            }
            match crate::vde::recv_into_batch(&mut *pair.plug, batch) {
                Ok(Recv::Frame(_) | Recv::Nothing) => {
                    for frame in batch.frames().filter(|f| f.len() >= MIN_FRAME) {
                        *moved += frame.len();
                        if pair.vnet {
                            to_vnet_tap(pair, buf, &mut run, frame);
                        } else {
                            // A down interface (EIO) or a full queue drops the frame.
                            let _ = rustix::io::write(pair.tap.as_fd(), frame);
                        }
                    }
                    // A short batch emptied the socket (for now): if more has come,
                    // epoll says so, rather than one more call to learn EAGAIN.
                    if batch.received() < RecvBatch::CAPACITY.min(BATCH - handled) {
                        break false;
                    }
                    handled += batch.received().max(1);
                }
                Ok(Recv::Closed) => {
                    super::goes_quiet(pair, format_args!("{}", super::PLUG_CLOSED));
                    break true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => handled += 1,
                Err(e) => {
                    super::goes_quiet(pair, format_args!("its plug failed: {e}"));
                    break true;
                }
            }
        };
        flush_run(pair, buf, &mut run);
        finished
    })
}

/// Hands one ordinary frame to a tap with `IFF_VNET_HDR`: joined to the run in
/// `buf` if it continues it, else the run is written and the frame starts a new
/// one (a TCP segment) or is written at once with a plain header.
fn to_vnet_tap(pair: &Pair, buf: &mut [u8], run: &mut Option<gro::Run>, frame: &[u8]) {
    let seg = gro::segment(frame);
    if let (Some(r), Some(s)) = (run.as_mut(), seg.as_ref()) {
        let end = VNET_HDR_LEN + r.frame_len();
        let add = frame.len() - s.hdr_len;
        if end + add <= buf.len() && r.continues(&buf[VNET_HDR_LEN..end], frame, s) {
            // Its payload follows the run's.
            buf[end..end + add].copy_from_slice(&frame[s.hdr_len..]);
            r.push(s);
            return;
        }
    }
    flush_run(pair, buf, run);
    match seg {
        Some(s) if VNET_HDR_LEN + frame.len() <= buf.len() => {
            buf[VNET_HDR_LEN..VNET_HDR_LEN + frame.len()].copy_from_slice(frame);
            *run = Some(gro::Run::start(s));
        }
        _ => {
            let hdr = VnetHdr::PLAIN.to_bytes();
            // A down interface (EIO) or a full queue drops the frame.
            let _ =
                rustix::io::writev(pair.tap.as_fd(), &[IoSlice::new(&hdr), IoSlice::new(frame)]);
        }
    }
}
