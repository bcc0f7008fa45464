//! Large segments (GSO) and partial checksums, done in software: what a frame with a
//! `virtio_net_hdr` becomes for a receiver that only takes ordinary frames.
//!
//! A tap opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD` hands out TCP segments of up
//! to 64 KiB with a [`VnetHdr`] in front saying how to cut them (`gso_size`) and
//! where a checksum is still to be computed (`csum_start`, `csum_offset`): the
//! kernel has only put the pseudo-header sum in the checksum field. Such frames may
//! cross `inproc://` between stacks whole; whoever cannot take them (a plain plug, a
//! cable to a C switch) gets them through [`to_plain`]: MTU-sized frames with every
//! checksum complete, as the kernel's own software GSO would make them.
//!
//! Everything here is pure: bytes in, bytes out through a callback, no I/O and no
//! allocation (the caller lends a scratch buffer). Bad input is an error
//! (`EINVAL`, or `EMSGSIZE` for a segment that does not fit the scratch buffer,
//! or `EPROTONOSUPPORT` for a kind of GSO we never ask the kernel for), never a panic.
//!
//! The header is the 10-byte `struct virtio_net_hdr` (no `num_buffers`: taps keep
//! their default `TUNSETVNETHDRSZ` of 10), in native byte order as the kernel's tun
//! uses for legacy virtio headers on every Linux host we run on (it is little-endian
//! only where `TUNSETVNETLE` was asked for, which we never do).

use std::io;

/// Bytes of `struct virtio_net_hdr`.
pub const VNET_HDR_LEN: usize = 10;

/// The checksum from `csum_start` to the end is still to be computed and stored at
/// `csum_start + csum_offset` (the field holds the pseudo-header sum).
pub const F_NEEDS_CSUM: u8 = 1;
/// The checksums were verified already (frames towards a tap).
pub const F_DATA_VALID: u8 = 2;

/// Not a large segment.
pub const GSO_NONE: u8 = 0;
/// TCP over IPv4, to be cut at `gso_size` bytes of payload.
pub const GSO_TCPV4: u8 = 1;
/// UDP fragmentation offload (never asked for).
pub const GSO_UDP: u8 = 3;
/// TCP over IPv6.
pub const GSO_TCPV6: u8 = 4;
/// UDP segmentation offload (never asked for).
pub const GSO_UDP_L4: u8 = 5;
/// Flag on `gso_type`: the segment carries ECN's CWR, which only the first piece keeps.
pub const GSO_ECN: u8 = 0x80;

/// The largest frame a tap with TSO hands out, with room to spare: an IPv4 or IPv6
/// packet of at most 64 KiB plus Ethernet and VLAN headers.
pub const MAX_GSO_FRAME: usize = 65536 + 256;

/// `struct virtio_net_hdr`: how to cut a large frame and what checksum is pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// [`F_NEEDS_CSUM`], [`F_DATA_VALID`].
    pub flags: u8,
    /// [`GSO_NONE`], [`GSO_TCPV4`], [`GSO_TCPV6`], ... possibly with [`GSO_ECN`].
    pub gso_type: u8,
    /// Bytes of Ethernet + IP + TCP headers (a hint; we parse the headers ourselves).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed part starts (the transport header).
    pub csum_start: u16,
    /// Where in it the checksum field is.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header of an ordinary frame: nothing to do.
    pub const PLAIN: VnetHdr = VnetHdr {
        flags: 0,
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Reads the header from the first [`VNET_HDR_LEN`] bytes; `None` if shorter.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let w = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: w(2),
            gso_size: w(4),
            csum_start: w(6),
            csum_offset: w(8),
        })
    }

    /// The header's bytes, as a tap reads them.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// Whether a receiver of ordinary frames can take the frame as it is: no large
    /// segment, no checksum pending.
    pub fn is_plain(&self) -> bool {
        self.flags & F_NEEDS_CSUM == 0 && self.gso_type & !GSO_ECN == GSO_NONE
    }
}

fn invalid(what: &'static str) -> io::Error {
    crate::error::context(io::Error::from_raw_os_error(libc::EINVAL), what)
}

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte
/// padded with zero), not yet folded. Pieces summed apart and added must each have
/// an even length, but the last.
pub fn sum_words(data: &[u8]) -> u64 {
    // 32-bit words folded later give the same 16-bit one's-complement sum
    // (2^16 = 1 modulo 0xffff); a u64 cannot overflow for any frame.
    let mut sum = 0u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        sum += u16::from_be_bytes([p[0], p[1]]) as u64;
    }
    if let [last] = pairs.remainder() {
        sum += (*last as u64) << 8;
    }
    sum
}

/// Folds a sum from [`sum_words`] to 16 bits (not complemented).
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Completes a pending checksum: sums `frame[csum_start..]` (whose checksum field
/// holds the pseudo-header sum) and stores the complement at `csum_start +
/// csum_offset`, writing 0xffff for a zero result (UDP's "no checksum" is 0; both
/// mean the same to TCP). A frame without [`F_NEEDS_CSUM`] is left alone.
pub fn complete_checksum(hdr: &VnetHdr, frame: &mut [u8]) -> io::Result<()> {
    if hdr.flags & F_NEEDS_CSUM == 0 {
        return Ok(());
    }
    let start = hdr.csum_start as usize;
    let at = start + hdr.csum_offset as usize;
    if at + 2 > frame.len() {
        return Err(invalid("a pending checksum outside the frame"));
    }
    let sum = !fold(sum_words(&frame[start..]));
    let sum = if sum == 0 { 0xffff } else { sum };
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Where the IP header starts, and the EtherType, skipping up to two VLAN tags.
fn network_offset(frame: &[u8]) -> io::Result<(usize, u16)> {
    let mut off = 12;
    for _ in 0..3 {
        let t = frame
            .get(off..off + 2)
            .ok_or_else(|| invalid("a frame too short for Ethernet"))?;
        let ty = u16::from_be_bytes([t[0], t[1]]);
        if ty != 0x8100 && ty != 0x88a8 {
            return Ok((off + 2, ty));
        }
        off += 4;
    }
    Err(invalid("more than two VLAN tags"))
}

/// The headers of one TCP segment, found in a large frame.
struct TcpLayout {
    ipv4: bool,
    l3: usize,
    l4: usize,
    /// End of the TCP header: where the payload starts.
    end: usize,
}

fn tcp_layout(frame: &[u8], ipv4: bool) -> io::Result<TcpLayout> {
    let (l3, ty) = network_offset(frame)?;
    let short = || invalid("a large segment with truncated headers");
    let l4 = if ipv4 {
        if ty != 0x0800 {
            return Err(invalid("a TCPv4 large segment that is not IPv4"));
        }
        let v = *frame.get(l3).ok_or_else(short)?;
        let ihl = (v & 0x0f) as usize * 4;
        if v >> 4 != 4 || ihl < 20 {
            return Err(invalid("a bad IPv4 header in a large segment"));
        }
        if *frame.get(l3 + 9).ok_or_else(short)? != libc::IPPROTO_TCP as u8 {
            return Err(invalid("a TCPv4 large segment that is not TCP"));
        }
        l3 + ihl
    } else {
        if ty != 0x86dd {
            return Err(invalid("a TCPv6 large segment that is not IPv6"));
        }
        let v = *frame.get(l3).ok_or_else(short)?;
        if v >> 4 != 6 {
            return Err(invalid("a bad IPv6 header in a large segment"));
        }
        // Extension headers would need the pseudo-header's final destination; our
        // stacks' TCP never sends any.
        if *frame.get(l3 + 6).ok_or_else(short)? != libc::IPPROTO_TCP as u8 {
            return Err(invalid("a TCPv6 large segment with extension headers"));
        }
        l3 + 40
    };
    let doff = (*frame.get(l4 + 12).ok_or_else(short)? >> 4) as usize * 4;
    if doff < 20 {
        return Err(invalid("a bad TCP header in a large segment"));
    }
    let end = l4 + doff;
    if end > frame.len() {
        return Err(short());
    }
    Ok(TcpLayout { ipv4, l3, l4, end })
}

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Fixes one segment's IP and TCP headers (lengths, id, sequence, flags,
/// checksums) after its headers and payload were copied in.
fn finish_segment(seg: &mut [u8], lay: &TcpLayout, index: usize, last: bool, seq: u32) {
    let TcpLayout { ipv4, l3, l4, .. } = *lay;
    let tcp_len = seg.len() - l4;
    let pseudo = if ipv4 {
        let total = (seg.len() - l3) as u16;
        seg[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        let id = u16::from_be_bytes([seg[l3 + 4], seg[l3 + 5]]).wrapping_add(index as u16);
        seg[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
        seg[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let c = !fold(sum_words(&seg[l3..l4]));
        seg[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        sum_words(&seg[l3 + 12..l3 + 20]) + libc::IPPROTO_TCP as u64 + tcp_len as u64
    } else {
        let plen = (seg.len() - l3 - 40) as u16;
        seg[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        sum_words(&seg[l3 + 8..l3 + 40]) + libc::IPPROTO_TCP as u64 + tcp_len as u64
    };
    seg[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    let mut flags = seg[l4 + 13];
    if !last {
        flags &= !(TCP_FIN | TCP_PSH);
    }
    if index > 0 {
        flags &= !TCP_CWR;
    }
    seg[l4 + 13] = flags;
    seg[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
    let c = !fold(pseudo + sum_words(&seg[l4..]));
    seg[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

/// Cuts a TCP large segment (`hdr.gso_type` [`GSO_TCPV4`] or [`GSO_TCPV6`]) into
/// frames of at most `hdr.gso_size` payload bytes, each built in `scratch` and
/// handed to `emit` with complete IP and TCP checksums. Returns how many.
pub fn segment_tcp(
    hdr: &VnetHdr,
    frame: &[u8],
    scratch: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> io::Result<usize> {
    cut_tcp(hdr, frame, scratch, false, |_, seg| emit(seg))
}

/// [`segment_tcp`] into one buffer: the segments are built back to back in `out`
/// and `ends` gets where each one ends (cleared first), so a plug can send them
/// all with one `sendmmsg`. `EMSGSIZE` when `out` cannot hold them all.
pub fn segment_tcp_packed(
    hdr: &VnetHdr,
    frame: &[u8],
    out: &mut [u8],
    ends: &mut Vec<usize>,
) -> io::Result<usize> {
    ends.clear();
    cut_tcp(hdr, frame, out, true, |end, _| ends.push(end))
}

/// Both of the above: each segment is built at the start of `out`, or (`packed`)
/// after the previous one; `emit` gets where it ends in `out`, and its bytes.
fn cut_tcp(
    hdr: &VnetHdr,
    frame: &[u8],
    out: &mut [u8],
    packed: bool,
    mut emit: impl FnMut(usize, &[u8]),
) -> io::Result<usize> {
    let ipv4 = match hdr.gso_type & !GSO_ECN {
        GSO_TCPV4 => true,
        GSO_TCPV6 => false,
        _ => return Err(invalid("not a TCP large segment")),
    };
    let mss = hdr.gso_size as usize;
    if mss == 0 {
        return Err(invalid("a large segment with a gso_size of 0"));
    }
    let lay = tcp_layout(frame, ipv4)?;
    let payload = &frame[lay.end..];
    let count = payload.len().div_ceil(mss).max(1);
    // Every segment must fit `out`, and its IP length field.
    let longest = lay.end + mss.min(payload.len());
    let needed = if packed {
        lay.end * count + payload.len()
    } else {
        longest
    };
    if needed > out.len() || longest - lay.l3 > usize::from(u16::MAX) {
        return Err(crate::error::context(
            io::Error::from_raw_os_error(libc::EMSGSIZE),
            "a segment larger than a frame",
        ));
    }
    let seq0 = u32::from_be_bytes(frame[lay.l4 + 4..lay.l4 + 8].try_into().expect("4 bytes"));
    let mut pos = 0;
    for i in 0..count {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let len = lay.end + chunk.len();
        let seg = &mut out[pos..pos + len];
        seg[..lay.end].copy_from_slice(&frame[..lay.end]);
        seg[lay.end..].copy_from_slice(chunk);
        let seq = seq0.wrapping_add((i * mss) as u32);
        finish_segment(seg, &lay, i, i + 1 == count, seq);
        emit(pos + len, seg);
        if packed {
            pos += len;
        }
    }
    Ok(count)
}

/// What a receiver of ordinary frames gets for `frame` with `hdr`: the frame itself
/// if it is plain, a copy with its checksum completed, or its segments. Each goes to
/// `emit` (built in `scratch` when it is not the frame itself); returns how many.
pub fn to_plain(
    hdr: &VnetHdr,
    frame: &[u8],
    scratch: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> io::Result<usize> {
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE if hdr.flags & F_NEEDS_CSUM == 0 => {
            emit(frame);
            Ok(1)
        }
        GSO_NONE => {
            let copy = scratch.get_mut(..frame.len()).ok_or_else(|| {
                crate::error::context(
                    io::Error::from_raw_os_error(libc::EMSGSIZE),
                    "a frame larger than the scratch buffer",
                )
            })?;
            copy.copy_from_slice(frame);
            complete_checksum(hdr, copy)?;
            emit(copy);
            Ok(1)
        }
        GSO_TCPV4 | GSO_TCPV6 => segment_tcp(hdr, frame, scratch, emit),
        _ => Err(crate::error::context(
            io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
            "a kind of large segment we never ask for (UDP)",
        )),
    }
}

#[cfg(test)]
#[path = "gso_tests.rs"]
mod tests;
