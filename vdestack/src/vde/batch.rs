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
#[derive(Debug, Default)]
pub struct SegmentBatch {
    out: Vec<u8>,
    ends: Vec<usize>,
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
    pub fn cut(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<Frames<'_>> {
        if self.out.is_empty() {
            // Room for 64 KiB of payload plus the headers of every segment at any
            // MSS of 512 or more.
            self.out = vec![0u8; 2 * MAX_GSO_FRAME];
        }
        gso::segment_tcp_packed(hdr, frame, &mut self.out, &mut self.ends)?;
        Ok(Frames {
            out: &self.out,
            ends: &self.ends,
            index: 0,
        })
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
    let mut frames = frames.peekable();
    let mut sent = 0;
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
        match rnet::sendmmsg(
            &fd,
            &mut msgs[..n],
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        ) {
            Ok(k) => {
                sent += k;
                if k < n {
                    // The queue filled up: the rest is dropped, as one by one.
                    return Ok(sent);
                }
            }
            Err(e) if sent > 0 => {
                let _ = e;
                return Ok(sent);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}
