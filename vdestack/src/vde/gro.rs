//! Receive coalescing (GRO) in software: consecutive TCP segments of one flow that
//! arrive as ordinary frames are joined into one large segment for a tap with
//! `IFF_VNET_HDR`, as a NIC's GRO would join them. The receiving kernel then runs
//! TCP once per large segment instead of once per frame, and answers with fewer
//! ACKs. Nothing changes on the wire: the frames arrived as ordinary frames and
//! the peer sees ordinary ACKs.
//!
//! Only what the kernel's own GRO would join is joined: IPv4 without options or
//! fragments, TCP with only ACK (and PSH, which ends a run), the same addresses,
//! ports, TOS, TTL, ack, window and options, consecutive sequence numbers and IP
//! ids, every segment but the last exactly as long as the first. Each frame's IP
//! and TCP checksums are checked before it is joined (the large segment goes to
//! the kernel with a partial checksum, which it trusts); a frame that fails is
//! handed on alone, for the kernel to drop as before.
//!
//! Pure: bytes in, bytes out, no I/O, no allocation.

use super::gso::{fold, sum_words, VnetHdr, F_NEEDS_CSUM, GSO_TCPV4};

const ETH: usize = 14;
const IP: usize = 20;
const L4: usize = ETH + IP;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
/// The longest IP packet a large segment may be.
const MAX_IP_LEN: usize = 65535;

/// A frame that may be joined: an IPv4 TCP segment with data and valid checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Ethernet, IP and TCP headers.
    pub hdr_len: usize,
    /// TCP payload bytes.
    pub payload: usize,
    seq: u32,
    id: u16,
    psh: bool,
}

/// Parses `frame` as a segment that may be joined; `None` for anything else.
pub fn segment(frame: &[u8]) -> Option<Segment> {
    if frame.len() < L4 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH..];
    // IPv4 without options, TCP, not a fragment (DF allowed).
    if ip[0] != 0x45 || ip[9] != 6 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // No Ethernet padding: the frame is exactly the packet.
    if ETH + total != frame.len() {
        return None;
    }
    let tcp = &frame[L4..];
    let doff = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    if doff < 20 || L4 + doff >= frame.len() || (flags != TCP_ACK && flags != TCP_ACK | TCP_PSH) {
        return None;
    }
    if fold(sum_words(&ip[..IP])) != 0xffff {
        return None;
    }
    let tcp_len = frame.len() - L4;
    if fold(pseudo_sum(frame, tcp_len) + sum_words(tcp)) != 0xffff {
        return None;
    }
    Some(Segment {
        hdr_len: L4 + doff,
        payload: tcp_len - doff,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        id: u16::from_be_bytes([ip[4], ip[5]]),
        psh: flags & TCP_PSH != 0,
    })
}

/// The TCP pseudo-header's sum for a segment of `tcp_len` bytes (headers
/// included) with `frame`'s addresses.
fn pseudo_sum(frame: &[u8], tcp_len: usize) -> u64 {
    sum_words(&frame[ETH + 12..ETH + 20]) + 6 + tcp_len as u64
}

/// A run of joined segments: the first one's headers, then every payload.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    first: Segment,
    segs: usize,
    /// Frame bytes so far: the first's headers and every payload.
    len: usize,
    next_seq: u32,
    next_id: u16,
    /// A PSH or a short segment ended it.
    closed: bool,
}

impl Run {
    /// A run that starts with `seg` (its frame is `seg.hdr_len + seg.payload`).
    pub fn start(seg: Segment) -> Self {
        Self {
            first: seg,
            segs: 1,
            len: seg.hdr_len + seg.payload,
            next_seq: seg.seq.wrapping_add(seg.payload as u32),
            next_id: seg.id.wrapping_add(1),
            closed: seg.psh,
        }
    }

    /// Bytes of the joined frame so far (never 0).
    pub fn frame_len(&self) -> usize {
        self.len
    }

    /// Whether the run holds only its first segment (never empty).
    pub fn is_single(&self) -> bool {
        self.segs == 1
    }

    /// Whether `next` (a frame parsed as `seg`) continues the run whose frame is
    /// `joined` (its first headers at the start).
    pub fn continues(&self, joined: &[u8], next: &[u8], seg: &Segment) -> bool {
        let f = &self.first;
        if self.closed
            || seg.hdr_len != f.hdr_len
            || seg.payload > f.payload
            || seg.seq != self.next_seq
            || seg.id != self.next_id
            || self.len - ETH + seg.payload > MAX_IP_LEN
        {
            return false;
        }
        let (a, b) = (&joined[..f.hdr_len], &next[..f.hdr_len]);
        let ip = ETH;
        let tcp = L4;
        // Ethernet; IP version..TOS; flags/fragment; TTL, protocol; addresses;
        // ports; ack, data offset; window; urgent pointer and options.
        a[..ETH] == b[..ETH]
            && a[ip..ip + 2] == b[ip..ip + 2]
            && a[ip + 6..ip + 10] == b[ip + 6..ip + 10]
            && a[ip + 12..ip + 20] == b[ip + 12..ip + 20]
            && a[tcp..tcp + 4] == b[tcp..tcp + 4]
            && a[tcp + 8..tcp + 13] == b[tcp + 8..tcp + 13]
            && a[tcp + 14..tcp + 16] == b[tcp + 14..tcp + 16]
            && a[tcp + 18..] == b[tcp + 18..]
    }

    /// Records that `seg` was joined (its payload appended to the frame).
    pub fn push(&mut self, seg: &Segment) {
        self.segs += 1;
        self.len += seg.payload;
        self.next_seq = self.next_seq.wrapping_add(seg.payload as u32);
        self.next_id = self.next_id.wrapping_add(1);
        self.closed = seg.psh || seg.payload < self.first.payload;
        if seg.psh {
            self.first.psh = true;
        }
    }

    /// Makes `joined` (the run's frame, [`Run::frame_len`] bytes) one large segment:
    /// IP length and checksum, PSH if any segment had it, and the TCP checksum
    /// left partial (the pseudo-header's sum) for the returned header. A single
    /// segment is left as it came, with a plain header.
    pub fn finish(&self, joined: &mut [u8]) -> VnetHdr {
        if self.is_single() {
            return VnetHdr::PLAIN;
        }
        let joined = &mut joined[..self.len];
        let ip_len = (self.len - ETH) as u16;
        joined[ETH + 2..ETH + 4].copy_from_slice(&ip_len.to_be_bytes());
        joined[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
        let c = !fold(sum_words(&joined[ETH..L4]));
        joined[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        if self.first.psh {
            joined[L4 + 13] |= TCP_PSH;
        }
        let pseudo = fold(pseudo_sum(joined, self.len - L4));
        joined[L4 + 16..L4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: self.first.hdr_len as u16,
            gso_size: self.first.payload as u16,
            csum_start: L4 as u16,
            csum_offset: 16,
        }
    }
}

#[cfg(test)]
#[path = "gro_tests.rs"]
mod tests;
