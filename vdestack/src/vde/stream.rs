//! Stream framing ("vdestream"): Ethernet frames over a byte stream.
//!
//! Each frame is a 2-byte big-endian length followed by the frame. This is the format of
//! `vde_plug` on stdin/stdout, of `cmd://`, of `dpipe`, and of `=COMMAND` networks in
//! vdens and libvdestack. The codec here is pure: [`encode`] builds the bytes of one
//! frame, [`Decoder`] reassembles frames from reads of any size.

/// The largest frame length the stream format carries (`VDE_ETHBUFSIZE + 2` upstream).
pub const MAX_STREAM_FRAME: usize = super::MAX_FRAME + 2;

/// Appends one framed frame to `out`. Returns `false` (and appends nothing) if the
/// frame is longer than [`MAX_STREAM_FRAME`], as vdestream refuses such frames.
pub fn encode(frame: &[u8], out: &mut Vec<u8>) -> bool {
    if frame.len() > MAX_STREAM_FRAME {
        return false;
    }
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(frame);
    true
}

/// A problem found in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A length prefix above [`MAX_STREAM_FRAME`]: the stream is not vdestream (or lost
    /// sync). The decoder drops what it holds and starts over.
    #[error("stream framing: frame length {0} is over the limit of {MAX_STREAM_FRAME} bytes")]
    TooLong(usize),
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete frame, if one is buffered. Zero-length frames are
    /// skipped. On a length above the limit, everything buffered is dropped and the
    /// error returned, as vdestream does.
    pub fn next_frame(&mut self) -> Option<Result<&[u8], StreamError>> {
        loop {
            let avail = &self.buf[self.start..];
            if avail.len() < 2 {
                self.compact();
                return None;
            }
            let len = u16::from_be_bytes([avail[0], avail[1]]) as usize;
            if len > MAX_STREAM_FRAME {
                self.buf.clear();
                self.start = 0;
                return Some(Err(StreamError::TooLong(len)));
            }
            if len == 0 {
                self.start += 2;
                continue;
            }
            if avail.len() < 2 + len {
                self.compact();
                return None;
            }
            let from = self.start + 2;
            self.start = from + len;
            return Some(Ok(&self.buf[from..from + len]));
        }
    }

    /// Whether a partial frame is buffered (for reporting truncated streams).
    pub fn has_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Bytes waiting to be written to a non-blocking stream, so that a frame is never cut
/// in half when the reader is slow: what the stream does not take now stays queued,
/// and a new frame is refused (dropped) once `limit` bytes are waiting.
#[derive(Debug)]
pub struct OutQueue {
    buf: Vec<u8>,
    limit: usize,
}

impl OutQueue {
    /// A queue that holds at most about `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes what is queued through `write` (which returns how much it took, or an
    /// error; `WouldBlock` means "later"). Returns `Ok(true)` when all was written.
    pub fn flush_with(
        &mut self,
        mut write: impl FnMut(&[u8]) -> std::io::Result<usize>,
    ) -> std::io::Result<bool> {
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(true);
            }
            match write(&self.buf[done..]) {
                Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..done);
        result
    }

    /// Queues one frame in stream framing and writes what it can. A frame that does
    /// not fit (the queue is over its limit, or the frame is too long) is dropped and
    /// `WouldBlock` (or `InvalidInput`) returned.
    pub fn send_frame(
        &mut self,
        frame: &[u8],
        write: impl FnMut(&[u8]) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        if self.buf.len() >= self.limit {
            self.flush_with(write)?;
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        if !encode(frame, &mut self.buf) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                StreamError::TooLong(frame.len()),
            ));
        }
        self.flush_with(write)?;
        Ok(frame.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_any_chunking() {
        let frames: Vec<Vec<u8>> = (0..50u16)
            .map(|i| (0..(14 + i * 29)).map(|b| (b ^ i) as u8).collect())
            .collect();
        let mut wire = Vec::new();
        for f in &frames {
            assert!(encode(f, &mut wire));
        }
        for chunk in [1, 2, 3, 7, 100, 1500, wire.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                d.push(piece);
                while let Some(f) = d.next_frame() {
                    got.push(f.unwrap().to_vec());
                }
            }
            assert_eq!(got, frames, "chunk size {chunk}");
            assert!(!d.has_partial());
        }
    }

    #[test]
    fn out_queue_never_cuts_a_frame() {
        let mut q = OutQueue::new(1000);
        let mut wire = Vec::new();
        // A writer that takes 7 bytes at a time, then blocks every other call.
        let mut calls = 0;
        let mut slow = |b: &[u8], wire: &mut Vec<u8>| {
            calls += 1;
            if calls % 2 == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(7);
            wire.extend_from_slice(&b[..n]);
            Ok(n)
        };
        let mut sent = 0;
        for i in 0..20u8 {
            match q.send_frame(&[i; 100], |b| slow(b, &mut wire)) {
                Ok(_) => sent += 1,
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
            }
        }
        while !q.flush_with(|b| slow(b, &mut wire)).unwrap() {}
        let mut d = Decoder::new();
        d.push(&wire);
        let mut got = 0;
        while let Some(f) = d.next_frame() {
            let f = f.unwrap();
            assert_eq!(f.len(), 100);
            assert!(f.iter().all(|&b| b == f[0]));
            got += 1;
        }
        assert_eq!(got, sent);
        assert!(
            (10..20).contains(&sent),
            "some frames dropped, most sent: {sent}"
        );
    }

    #[test]
    fn length_prefix_is_big_endian_bare_length() {
        let mut wire = Vec::new();
        encode(&[0xaa; 300], &mut wire);
        assert_eq!(&wire[..2], &[0x01, 0x2c]);
        assert_eq!(wire.len(), 302);
    }

    #[test]
    fn zero_lengths_are_skipped_and_long_ones_rejected() {
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(d.next_frame().unwrap().unwrap(), &[1, 2, 3]);
        d.push(&[0xff, 0xff, 9, 9, 9]);
        assert_eq!(
            d.next_frame().unwrap().unwrap_err(),
            StreamError::TooLong(0xffff)
        );
        assert!(d.next_frame().is_none());
        assert!(!encode(&vec![0; MAX_STREAM_FRAME + 1], &mut Vec::new()));
    }
}
