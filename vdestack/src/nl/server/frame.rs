//! Reply framing, done once for every family and LIKE THE KERNEL (where libnlq
//! differs, `upstream.md` §4.3, the kernel wins):
//!
//! - replies carry the request's `nlmsg_seq` and the requester's port id;
//! - an error is `NLMSG_ERROR` with the negative errno followed by the whole
//!   request (the kernel caps it only for sockets with `NETLINK_CAP_ACK`);
//! - an ACK (`NLMSG_ERROR` 0, then the request's 16-byte header, flag
//!   `NLM_F_CAPPED`) only when the request has `NLM_F_ACK`;
//! - a dump is `NLM_F_MULTI` parts ending in `NLMSG_DONE` with an int 0.

use crate::nl::wire::{align4, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_MULTI};

/// `NLM_F_CAPPED`: the request echoed in an `NLMSG_ERROR` was cut to its header.
pub const NLM_F_CAPPED: u16 = 0x100;

/// A request's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `nlmsg_len` (at least 16, at most the bytes left in the buffer).
    pub len: usize,
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
}

/// Splits a buffer into its messages as the kernel's `netlink_rcv_skb` does: one
/// after the other, each starting at the 4-aligned end of the previous one; the
/// first message whose length is below the header size or beyond the buffer ends
/// the walk silently (the kernel answers nothing for it either).
pub fn split(mut buf: &[u8]) -> Vec<(Header, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            break;
        }
        let h = Header {
            len,
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            pid: u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]),
        };
        out.push((h, &buf[..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// One whole message: header (with `nlmsg_len` set) and `payload`.
pub fn message(kind: u16, flags: u16, seq: u32, pid: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut m = Vec::with_capacity(align4(len));
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&pid.to_ne_bytes());
    m.extend_from_slice(payload);
    m
}

/// The `NLMSG_ERROR` for `request` (the whole message) failing with `errno`
/// (positive): the negative errno, then the whole request.
pub fn error(request: &[u8], h: &Header, errno: rustix::io::Errno, port: u32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + request.len());
    payload.extend_from_slice(&(-errno.raw_os_error()).to_ne_bytes());
    payload.extend_from_slice(request);
    message(NLMSG_ERROR, 0, h.seq, port, &payload)
}

/// The ACK for `request`: error 0, then the request's header only.
pub fn ack(request: &[u8], h: &Header, port: u32) -> Vec<u8> {
    ack_with(request, h, port, 0)
}

/// An ACK carrying a non-negative `value` in its error field (libnlq's way of
/// returning a new link's index), then the request's header only.
pub fn ack_with(request: &[u8], h: &Header, port: u32, value: i32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + NLMSG_HDRLEN);
    payload.extend_from_slice(&value.to_ne_bytes());
    payload.extend_from_slice(&request[..NLMSG_HDRLEN]);
    message(NLMSG_ERROR, NLM_F_CAPPED, h.seq, port, &payload)
}

/// The `NLMSG_DONE` that ends a dump.
pub fn done(h: &Header, port: u32) -> Vec<u8> {
    message(NLMSG_DONE, NLM_F_MULTI, h.seq, port, &0i32.to_ne_bytes())
}
