//! The netlink framing: constants, a small pure message builder, and a checked
//! splitter for received datagrams.
//!
//! Why a hand-written builder next to `netlink-packet-route`: nlinline's messages
//! carry details that the crate does not produce (an `RTA_UNSPEC` filler attribute,
//! nested attributes without `NLA_F_NESTED`, C struct tail padding counted in
//! `nlmsg_len`), and wire parity with nlinline is tested byte for byte. Replies and
//! the richer requests (link kinds) go through the crate.

use std::io;

/// `sizeof(struct nlmsghdr)`.
pub const NLMSG_HDRLEN: usize = 16;

/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: an error or an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;

/// `RTM_NEWLINK`.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK`.
pub const RTM_DELLINK: u16 = 17;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_SETLINK`.
pub const RTM_SETLINK: u16 = 19;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_DELADDR`.
pub const RTM_DELADDR: u16 = 21;
/// `RTM_GETADDR`.
pub const RTM_GETADDR: u16 = 22;
/// `RTM_NEWROUTE`.
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub const RTM_DELROUTE: u16 = 25;
/// `RTM_GETROUTE`.
pub const RTM_GETROUTE: u16 = 26;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: more messages of this answer follow.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a change; its result may be
/// inconsistent.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`ROOT | MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_EXCL`.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;

/// `IFLA_ADDRESS`.
pub const IFLA_ADDRESS: u16 = 1;
/// `IFLA_IFNAME`.
pub const IFLA_IFNAME: u16 = 3;
/// `IFLA_MTU`.
pub const IFLA_MTU: u16 = 4;
/// `IFLA_MASTER`.
pub const IFLA_MASTER: u16 = 10;
/// `IFLA_NET_NS_FD`.
pub const IFLA_NET_NS_FD: u16 = 28;
/// `IFLA_LINKINFO`.
pub const IFLA_LINKINFO: u16 = 18;
/// `IFLA_NEW_IFINDEX`.
pub const IFLA_NEW_IFINDEX: u16 = 49;
/// `IFLA_INFO_KIND`.
pub const IFLA_INFO_KIND: u16 = 1;
/// `IFLA_INFO_DATA`.
pub const IFLA_INFO_DATA: u16 = 2;

/// `IFA_ADDRESS`.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`.
pub const IFA_LOCAL: u16 = 2;
/// `IFA_FLAGS` (the 32-bit flags; the header holds only the low 8 bits).
pub const IFA_FLAGS: u16 = 8;

/// `RTA_UNSPEC`: nlinline's filler attribute when there is no output interface.
pub const RTA_UNSPEC: u16 = 0;
/// `RTA_DST`.
pub const RTA_DST: u16 = 1;
/// `RTA_OIF`.
pub const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
pub const RTA_GATEWAY: u16 = 5;
/// `RTA_PRIORITY` (the metric).
pub const RTA_PRIORITY: u16 = 6;
/// `RTA_TABLE` (a 32-bit table id).
pub const RTA_TABLE: u16 = 15;

/// `IFF_UP`.
pub const IFF_UP: u32 = 1;

/// Rounds up to the 4-byte netlink alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink request under construction: header, fixed part, attributes.
///
/// Nested attributes are opened with [`Builder::begin_nested`] and closed with
/// [`Builder::end_nested`]; like nlinline and libnlq, they carry no `NLA_F_NESTED`.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    /// Starts a message of `kind` with `flags`, sequence number `seq`, port id 0.
    pub fn new(kind: u16, flags: u16, seq: u32) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Builder { buf }
    }

    /// Appends raw bytes (a fixed header such as `ifinfomsg`).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends `struct ifinfomsg` (16 bytes).
    pub fn ifinfomsg(self, family: u8, index: u32, flags: u32, change: u32) -> Self {
        let mut h = [0u8; 16];
        h[0] = family;
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        h[8..12].copy_from_slice(&flags.to_ne_bytes());
        h[12..16].copy_from_slice(&change.to_ne_bytes());
        self.raw(&h)
    }

    /// Appends one attribute, with `nla_len = 4 + data.len()`, then zero padding to 4.
    pub fn attr(mut self, kind: u16, data: &[u8]) -> Self {
        self.push_attr(kind, data);
        self
    }

    fn push_attr(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// Appends a string attribute: the bytes plus a NUL, padded.
    pub fn attr_str(self, kind: u16, s: &str) -> Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    /// Appends a u32 attribute in host order.
    pub fn attr_u32(self, kind: u16, v: u32) -> Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// Opens a nested attribute; returns the offset to give [`Builder::end_nested`].
    pub fn begin_nested(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        at
    }

    /// Closes the nested attribute opened at `at` (its length covers its content).
    pub fn end_nested(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends an attribute in place (for use between `begin_nested`/`end_nested`).
    pub fn push(&mut self, kind: u16, data: &[u8]) {
        self.push_attr(kind, data);
    }

    /// Appends zeros up to the next multiple of 4 (C struct tail padding).
    pub fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Sets `nlmsg_len` to the current length and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// One received netlink message: its header fields and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// The bytes after the 16-byte header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

/// An error for a malformed reply: `EPROTO` with a message saying what was wrong.
pub fn malformed(what: &str) -> io::Error {
    crate::error::context(
        io::Error::from_raw_os_error(libc::EPROTO),
        format!("malformed netlink reply: {what}"),
    )
}

/// Splits one datagram into its messages, checking every length.
pub fn split(mut buf: &[u8]) -> io::Result<Vec<Message<'_>>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if buf.len() < NLMSG_HDRLEN {
            return Err(malformed("truncated message header"));
        }
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(malformed("message length out of bounds"));
        }
        out.push(Message {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            pid: u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]),
            payload: &buf[NLMSG_HDRLEN..len],
        });
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(out)
}

/// The `int error` at the start of an `NLMSG_ERROR` or `NLMSG_DONE` payload.
pub fn error_code(payload: &[u8]) -> io::Result<i32> {
    match payload.get(0..4) {
        Some(b) => Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(malformed("error message shorter than its code")),
    }
}

/// Iterates over the attributes of `buf` as (type without flag bits, payload).
/// Stops with an error at a length that does not fit.
pub fn attrs(mut buf: &[u8]) -> io::Result<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return Err(malformed("attribute length out of bounds"));
        }
        out.push((kind, &buf[4..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_checks_lengths() {
        let m = Builder::new(NLMSG_DONE, NLM_F_MULTI, 7)
            .raw(&[0; 4])
            .finish();
        let two = [m.clone(), m.clone()].concat();
        let got = split(&two).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].seq, 7);
        assert_eq!(got[1].flags, NLM_F_MULTI);
        assert_eq!(got[0].payload, &[0; 4]);
        // Truncated header, truncated body, a length below the header size.
        assert!(split(&m[..10]).is_err());
        assert!(split(&m[..18]).is_err());
        let mut bad = m.clone();
        bad[0] = 8;
        assert!(split(&bad).is_err());
        let e = split(&m[..10]).unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EPROTO);
        assert!(split(&[]).unwrap().is_empty());
        assert!(error_code(&[1, 2]).is_err());
    }

    #[test]
    fn attrs_checks_lengths() {
        let m = Builder::new(0, 0, 0)
            .attr_u32(4, 9)
            .attr(1, &[1, 2])
            .finish();
        let a = attrs(&m[16..]).unwrap();
        assert_eq!(a, vec![(4, &9u32.to_ne_bytes()[..]), (1, &[1u8, 2][..])]);
        let mut bad = m[16..].to_vec();
        bad[0] = 200;
        assert!(attrs(&bad).is_err());
        bad[0] = 2;
        assert!(attrs(&bad).is_err());
    }
}
