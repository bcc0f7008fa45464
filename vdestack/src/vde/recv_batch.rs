//! Frames received many at a time: one `recvmmsg` takes up to
//! [`RecvBatch::CAPACITY`] datagrams from a datagram plug's socket, where a plain
//! [`Plug::recv`] takes one per syscall. The plug checks each datagram as `recv`
//! would (header, VNI, sender, length) and keeps the frames in place: they are read
//! straight from the batch's buffers by the caller, never copied.
//!
//! The batch belongs to the caller (the relay keeps one per thread), never to the
//! plug: whatever a plug received is handed out by the same call, so a plug never
//! sits on frames while its fd looks idle, and level-triggered polling of
//! [`Plug::data_fd`] stays the whole truth.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use super::{Plug, Recv, MAX_FRAME};
use crate::sys::{recv_mmsg, Datagram};

/// Room for the longest prefix a datagram plug puts before its frame (the VXLAN
/// header of `vxvde://` and `vxlan://`).
const PREFIX_ROOM: usize = 8;

/// Buffers for up to [`RecvBatch::CAPACITY`] received datagrams and the frames a
/// plug kept of them. Allocated at first use, then reused: no allocation per frame.
#[derive(Debug)]
pub struct RecvBatch {
    /// `CAPACITY` slots of `SLOT` bytes, back to back.
    slots: Vec<u8>,
    /// What the last receive got, slot by slot.
    got: [Datagram; RecvBatch::CAPACITY],
    /// How many datagrams the last receive got.
    received: usize,
    /// The frames kept, in order: (start in `slots`, length).
    frames: [(usize, usize); RecvBatch::CAPACITY],
    kept: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Datagrams per receive: the relay's budget per ready plug and round.
    pub const CAPACITY: usize = 32;
    /// Bytes per datagram: a prefix and the largest frame ([`MAX_FRAME`]). A longer
    /// datagram is cut, as [`Plug::recv`] cuts it into a `MAX_FRAME` buffer.
    pub const SLOT: usize = PREFIX_ROOM + MAX_FRAME;

    /// An empty batch (its buffers are allocated by the first receive).
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            got: [Datagram::default(); Self::CAPACITY],
            received: 0,
            frames: [(0, 0); Self::CAPACITY],
            kept: 0,
        }
    }

    /// Forgets the datagrams and frames held.
    pub fn clear(&mut self) {
        self.received = 0;
        self.kept = 0;
    }

    fn alloc(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![0u8; Self::CAPACITY * Self::SLOT];
        }
    }

    /// Receives, without waiting, up to [`RecvBatch::CAPACITY`] datagrams from `fd`
    /// with one `recvmmsg`, in place of whatever the batch held; returns how many
    /// (at least one), or the error: of kind `WouldBlock` when none was queued.
    /// `want_from`: record each sender (see [`RecvBatch::datagram`]).
    pub fn receive(&mut self, fd: impl AsFd, want_from: bool) -> io::Result<usize> {
        self.clear();
        self.alloc();
        let n = recv_mmsg(fd, &mut self.slots, Self::SLOT, &mut self.got, want_from)?;
        self.received = n;
        Ok(n)
    }

    /// How many datagrams the last receive got (1 after [`RecvBatch::recv_one`]).
    pub fn received(&self) -> usize {
        self.received
    }

    /// Datagram `i` of the last receive: its bytes, and its sender if asked for.
    /// Empty, with no sender, for an `i` it did not get.
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        if i >= self.received {
            return (&[], None);
        }
        let d = &self.got[i];
        let start = i * Self::SLOT;
        (&self.slots[start..start + d.len], d.from)
    }

    /// Keeps bytes `start..start + len` of datagram `i` as the next frame for the
    /// caller (clamped to the datagram; nothing for an `i` it did not get).
    pub fn keep(&mut self, i: usize, start: usize, len: usize) {
        if i >= self.received || self.kept == Self::CAPACITY {
            return;
        }
        let have = self.got[i].len;
        let start = start.min(have);
        let len = len.min(have - start);
        self.frames[self.kept] = (i * Self::SLOT + start, len);
        self.kept += 1;
    }

    /// How many frames are kept.
    pub fn len(&self) -> usize {
        self.kept
    }

    /// Whether no frame is kept.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    /// The frames kept, in the order they arrived.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.frames[..self.kept]
            .iter()
            .map(|&(start, len)| &self.slots[start..start + len])
    }

    /// What a [`RecvBatching::recv_batch`](super::RecvBatching::recv_batch) that filled this batch reports:
    /// [`Recv::Frame`] with the number of frames kept, or [`Recv::Nothing`].
    pub fn outcome(&self) -> Recv {
        match self.kept {
            0 => Recv::Nothing,
            n => Recv::Frame(n),
        }
    }

    /// Receives one frame with `plug`'s [`Plug::recv`] into the first slot, in
    /// place of whatever the batch held: what [`RecvBatching::recv_batch`](super::RecvBatching::recv_batch) does for a plug
    /// without a batch of its own.
    pub fn recv_one<P: Plug + ?Sized>(&mut self, plug: &mut P) -> io::Result<Recv> {
        self.clear();
        self.alloc();
        let r = plug.recv(&mut self.slots[..Self::SLOT])?;
        self.received = 1;
        self.got[0] = Datagram::default();
        if let Recv::Frame(n) = r {
            self.got[0].len = n.min(Self::SLOT);
            self.keep(0, 0, n);
            return Ok(Recv::Frame(1));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::BorrowedFd;
    use std::os::unix::net::UnixDatagram;

    fn pair() -> (UnixDatagram, UnixDatagram) {
        let (a, b) = UnixDatagram::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Receives until the socket is empty; returns the size of each receive.
    fn drain(b: &UnixDatagram, batch: &mut RecvBatch) -> Vec<usize> {
        let mut sizes = Vec::new();
        loop {
            match batch.receive(b, false) {
                Ok(n) => sizes.push(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return sizes,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn batch_boundaries() {
        for (queued, expect) in [
            (0, vec![]),
            (1, vec![1]),
            (31, vec![31]),
            (32, vec![32]),
            (33, vec![32, 1]),
        ] {
            let (a, b) = pair();
            for i in 0..queued {
                a.send(&[i as u8; 20]).unwrap();
            }
            let mut batch = RecvBatch::new();
            assert_eq!(drain(&b, &mut batch), expect, "{queued} queued");
        }
    }

    #[test]
    fn frames_are_kept_in_place_and_in_order() {
        let (a, b) = pair();
        for i in 0..5u8 {
            a.send(&[i; 30]).unwrap();
        }
        let mut batch = RecvBatch::new();
        assert_eq!(batch.receive(&b, false).unwrap(), 5);
        assert_eq!(batch.outcome(), Recv::Nothing);
        assert_eq!(batch.datagram(3).0, &[3u8; 30][..]);
        assert_eq!(batch.datagram(9), (&[][..], None), "not received");
        batch.keep(4, 8, 100);
        batch.keep(1, 0, 14);
        batch.keep(7, 0, 14);
        assert_eq!(batch.len(), 2);
        let frames: Vec<&[u8]> = batch.frames().collect();
        assert_eq!(frames, [&[4u8; 22][..], &[1u8; 14][..]]);
        assert_eq!(batch.outcome(), Recv::Frame(2));
        // The next receive starts afresh.
        assert!(batch.receive(&b, false).is_err());
        assert!(batch.is_empty());
    }

    /// A plug with scripted answers, for the default `recv_batch`.
    #[derive(Debug)]
    struct Scripted(Vec<io::Result<Recv>>);

    impl Plug for Scripted {
        fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
            Ok(frame.len())
        }
        fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
            buf[..3].copy_from_slice(b"abc");
            self.0.remove(0)
        }
        fn data_fd(&self) -> BorrowedFd<'_> {
            unreachable!("not polled")
        }
    }

    #[test]
    fn default_recv_batch_takes_one_frame() {
        let mut p = Scripted(vec![
            Ok(Recv::Frame(3)),
            Ok(Recv::Nothing),
            Ok(Recv::Closed),
            Err(io::ErrorKind::WouldBlock.into()),
        ]);
        let mut batch = RecvBatch::new();
        assert!(p.recv_batching().is_none());
        let p: &mut dyn Plug = &mut p;
        assert_eq!(
            crate::vde::recv_into_batch(p, &mut batch).unwrap(),
            Recv::Frame(1)
        );
        assert_eq!(batch.frames().collect::<Vec<_>>(), [b"abc"]);
        assert_eq!(
            crate::vde::recv_into_batch(p, &mut batch).unwrap(),
            Recv::Nothing
        );
        assert!(batch.is_empty());
        assert_eq!(batch.received(), 1);
        assert_eq!(
            crate::vde::recv_into_batch(p, &mut batch).unwrap(),
            Recv::Closed
        );
        let e = crate::vde::recv_into_batch(p, &mut batch).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.received(), 0);
    }
}
