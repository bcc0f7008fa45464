//! Large segments cut once and sent with `sendmmsg`: what datagram plugs (`vxvde://`,
//! `vxlan://`, `udp://`, `vde://`) do with a TCP segment of up to 64 KiB from a tap
//! with `IFF_VNET_HDR`. The wire still sees ordinary frames, each in its own
//! datagram, exactly as if the tap had cut them; only the syscalls are fewer (one
//! tap read and one or two `sendmmsg` where there were 45 reads and 45 sends).

use std::io;
use std::io::IoSlice;
use std::os::fd::AsFd;

use rustix::net::{self as rnet, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

use super::gso::{self, VnetHdr, GSO_ECN, GSO_TCPV4, GSO_TCPV6, MAX_GSO_FRAME};

/// Messages per `sendmmsg`: a 64 KiB segment at MSS 1448 is 46 frames, one call.
const CHUNK: usize = 64;

/// A plug's buffer for the frames of one large segment, built back to back
/// (allocated at the first segment, then reused: no allocation per frame).
///
/// Once [`SegmentBatch::keep_backlog`] is on, it also keeps what a full peer
/// did not take (`EAGAIN`): the frames stay where they were cut, and
/// [`SegmentBatch::flush`] sends them when the peer has room again.
#[derive(Debug, Default)]
pub struct SegmentBatch {
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Keep, rather than drop, what a full peer does not take.
    keep: bool,
    /// The frames (indexes into `ends`) kept for the peer; empty when none.
    kept: std::ops::Range<usize>,
    /// Where the kept frames go (`None`: a connected socket).
    to: Option<SocketAddrAny>,
}

impl SegmentBatch {
    /// Whether [`SegmentBatch::cut`] takes `hdr`'s frames (TCP large segments);
    /// others go the ordinary way ([`super::send_offload_each`]).
    pub fn takes(hdr: &VnetHdr) -> bool {
        matches!(hdr.gso_type & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6)
    }

    /// Cuts `frame` into ordinary frames with complete checksums; returns them.
    /// `EMSGSIZE` when they do not fit (a tiny MSS): the caller then cuts one by
    /// one.
    /// Frames kept for the peer are dropped first (a plug flushes before it cuts).
    pub fn cut(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<Frames<'_>> {
        self.kept = 0..0;
        self.room();
        gso::segment_tcp_packed(hdr, frame, &mut self.out, &mut self.ends)?;
        Ok(Frames {
            out: &self.out,
            ends: &self.ends,
            index: 0,
        })
    }
}

impl SegmentBatch {
    fn room(&mut self) {
        if self.out.is_empty() {
            // Room for 64 KiB of payload plus the headers of every segment at any
            // MSS of 512 or more.
            self.out = vec![0u8; 2 * MAX_GSO_FRAME];
        }
    }

    /// From now on, keep what a full peer does not take ([`Self::send_cut`],
    /// [`Self::keep_frame`]) instead of dropping it (what a relay that can wait
    /// for the peer asks for: [`super::Backlog::keep`]).
    pub fn keep_backlog(&mut self) {
        self.keep = true;
    }

    /// Whether it keeps what a full peer does not take.
    pub fn keeps(&self) -> bool {
        self.keep
    }

    /// How many frames wait for the peer.
    pub fn kept(&self) -> usize {
        self.kept.len()
    }

    /// Drops the frames that wait for the peer; returns how many.
    pub fn drop_kept(&mut self) -> usize {
        std::mem::replace(&mut self.kept, 0..0).len()
    }

    /// Sends the frames of the last [`Self::cut`] (`prefix` before each) to `to`,
    /// or on a connected socket. What a full peer (`EAGAIN`) does not take is
    /// kept if [`Self::keeps`], else dropped; any other error drops the rest.
    /// Returns whether some were sent or kept; else the first frame's error.
    pub fn send_cut(
        &mut self,
        fd: impl AsFd,
        prefix: &[u8],
        to: Option<&SocketAddrAny>,
    ) -> Result<(), rustix::io::Errno> {
        self.to = to.cloned();
        self.kept = 0..self.ends.len();
        match self.send_kept(fd, prefix) {
            Ok(_) => Ok(()),
            Err((0, e)) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Keeps one ordinary frame for the peer (that refused it with `EAGAIN`),
    /// to send with [`Self::flush`]. It replaces what was kept.
    pub fn keep_frame(&mut self, frame: &[u8], to: Option<&SocketAddrAny>) {
        self.room();
        let n = frame.len().min(self.out.len());
        self.out[..n].copy_from_slice(&frame[..n]);
        self.ends.clear();
        self.ends.push(n);
        self.kept = 0..1;
        self.to = to.cloned();
    }

    /// Sends the frames kept for the peer. `Ok(true)`: none left; `Ok(false)`:
    /// the peer is still full, the rest is still kept. Another error drops them
    /// all and is returned (`ENOBUFS` too: no readiness says when it is over).
    pub fn flush(&mut self, fd: impl AsFd, prefix: &[u8]) -> Result<bool, rustix::io::Errno> {
        match self.send_kept(fd, prefix) {
            Ok(()) => Ok(true),
            Err((_, rustix::io::Errno::AGAIN)) if !self.kept.is_empty() => Ok(false),
            Err((_, e)) => Err(e),
        }
    }

    /// Sends `self.kept`; on an error, how many went and the error. A full peer
    /// leaves the rest in `self.kept` if it keeps them; anything else empties it.
    fn send_kept(
        &mut self,
        fd: impl AsFd,
        prefix: &[u8],
    ) -> Result<(), (usize, rustix::io::Errno)> {
        let start = self.kept.start;
        let frames = Frames {
            out: &self.out,
            ends: &self.ends[..self.kept.end],
            index: start,
        };
        let (sent, err) = send_some(fd, prefix, self.to.as_ref(), frames);
        self.kept.start += sent;
        match err {
            None => {
                self.kept = 0..0;
                Ok(())
            }
            Some(e) => {
                if !(self.keep && e == rustix::io::Errno::AGAIN) {
                    self.kept = 0..0;
                }
                Err((sent, e))
            }
        }
    }
}

/// The frames of one cut segment, in order.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    out: &'a [u8],
    ends: &'a [usize],
    index: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let end = *self.ends.get(self.index)?;
        let start = match self.index {
            0 => 0,
            i => self.ends[i - 1],
        };
        self.index += 1;
        Some(&self.out[start..end])
    }
}

/// Sends each of `frames` as one datagram (`prefix` then the frame) to `to`, or
/// on a connected socket (`None`), with as few `sendmmsg` calls as it takes.
/// Never blocks: a full queue drops the rest. Returns how many were sent, or the
/// error of the first that could not be (`EAGAIN`/`ENOBUFS` included).
pub fn send_all<'a>(
    fd: impl AsFd,
    prefix: &[u8],
    to: Option<&SocketAddrAny>,
    frames: impl Iterator<Item = &'a [u8]>,
) -> Result<usize, rustix::io::Errno> {
    match send_some(fd, prefix, to, frames) {
        (0, Some(e)) => Err(e),
        (sent, _) => Ok(sent),
    }
}

/// [`send_all`], telling how many were sent and, if not all, why the rest was
/// not: `EAGAIN` for a full peer.
fn send_some<'a>(
    fd: impl AsFd,
    prefix: &[u8],
    to: Option<&SocketAddrAny>,
    frames: impl Iterator<Item = &'a [u8]>,
) -> (usize, Option<rustix::io::Errno>) {
    let mut frames = frames.peekable();
    let mut sent = 0;
    // A short count says the queue filled up; the call after it says why.
    let mut short = false;
    while frames.peek().is_some() {
        let mut iovs = [[IoSlice::new(&[]); 2]; CHUNK];
        let mut n = 0;
        for (iov, f) in iovs.iter_mut().zip(frames.by_ref()) {
            *iov = [IoSlice::new(prefix), IoSlice::new(f)];
            n += 1;
            if n == CHUNK {
                break;
            }
        }
        let mut ctl: [SendAncillaryBuffer<'_, '_, '_>; CHUNK] =
            std::array::from_fn(|_| SendAncillaryBuffer::default());
        let mut parts = iovs.iter().zip(ctl.iter_mut());
        let mut msgs: [MMsgHdr<'_>; CHUNK] = std::array::from_fn(|_| {
            let (iov, c) = parts.next().expect("CHUNK parts");
            let iov: &[IoSlice<'_>] = if prefix.is_empty() { &iov[1..] } else { iov };
            match to {
                Some(a) => MMsgHdr::new_with_addr(a, iov, c),
                None => MMsgHdr::new(iov, c),
            }
        });
        let mut at = 0;
        while at < n {
            match rnet::sendmmsg(
                &fd,
                &mut msgs[at..n],
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Ok(0) => return (sent, Some(rustix::io::Errno::AGAIN)),
                Ok(k) => {
                    sent += k;
                    at += k;
                    if at < n && short {
                        // Twice short in a row: full, without an error to show.
                        return (sent, Some(rustix::io::Errno::AGAIN));
                    }
                    short = at < n;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return (sent, Some(e)),
            }
        }
    }
    (sent, None)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
