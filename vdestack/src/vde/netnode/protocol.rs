//! The vde_switch control protocol (vde2 `datasock.c`, libvdeplug's `vde` plugin),
//! encoded and decoded without I/O, shared by the `vde://` client and the
//! `hub://`/`switch://` servers.
//!
//! A client writes one *request* on the switch's `ctl` stream socket and reads back
//! the 110-byte `struct sockaddr_un` of the datagram socket the switch made for it.
//! The layout is packed and in native byte order, which is little-endian on every
//! platform VDE runs on; we always write little-endian.
//!
//! | offset | size | v3 request |
//! |---|---|---|
//! | 0 | 4 | magic `0xfeedface` |
//! | 4 | 4 | version 3 |
//! | 8 | 4 | type: request in the low byte, requested port in the rest |
//! | 12 | 110 | `sockaddr_un`: family 1 (2 bytes), then 108 path bytes, NUL-padded |
//! | 122 | n | description, not NUL-terminated |

use std::fmt;

/// `0xfeedface`, the first field of every request.
pub const MAGIC: u32 = 0xfeed_face;
/// The protocol version this module writes.
pub const VERSION: u32 = 3;
/// `AF_UNIX`, the family of every address in the protocol.
pub const AF_UNIX: u16 = 1;
/// Size of `sun_path`.
pub const SUN_PATH_LEN: usize = 108;
/// Size of `struct sockaddr_un`, and of a reply.
pub const SOCKADDR_LEN: usize = 2 + SUN_PATH_LEN;
/// Size of a v3 request without its description.
pub const V3_HEADER_LEN: usize = 12 + SOCKADDR_LEN;
/// Size of a legacy v1 request without its description (magic, type, MAC, address).
pub const V1_HEADER_LEN: usize = 8 + 6 + SOCKADDR_LEN;
/// A switch reads a request in one read of at most this many bytes.
pub const MAX_REQUEST: usize = 256;
/// The longest description a client sends (libvdeplug's 128-byte buffer, minus NUL).
pub const MAX_DESCR: usize = 127;
/// The request type for "any free port" (`REQ_NEW_CONTROL`).
pub const REQ_NEW_CONTROL: u8 = 0;
/// The request type for port 0, the management port (`REQ_NEW_PORT0`).
pub const REQ_NEW_PORT0: u8 = 1;
/// The largest port number the type field can carry (24 bits).
pub const MAX_PORT: u32 = 0x00ff_ffff;

/// Why a request or reply could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Fewer bytes than the fixed part of the message.
    #[error("message too short: {got} bytes, need at least {need}")]
    TooShort {
        /// Bytes received.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The first four bytes are not `0xfeedface`.
    #[error("bad magic {0:#010x} (expected 0xfeedface)")]
    BadMagic(u32),
    /// A version other than 3 (or the legacy 0/1 layout).
    #[error("unsupported protocol version {0}")]
    BadVersion(u32),
    /// The address family is not `AF_UNIX`.
    #[error("address family {0} is not AF_UNIX")]
    BadFamily(u16),
    /// The address has an empty path (or is an abstract socket).
    #[error("the socket address has no path")]
    NoPath,
    /// A path longer than `sun_path` allows.
    #[error("socket path of {0} bytes is too long (at most 107)")]
    PathTooLong(usize),
    /// A port number that does not fit in the type field.
    #[error("port {0} is too large (at most {MAX_PORT})")]
    PortTooLarge(u32),
}

/// A request from a client to a switch.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The request proper (the low byte of the type): [`REQ_NEW_CONTROL`] or
    /// [`REQ_NEW_PORT0`].
    pub kind: u8,
    /// The port asked for (0: any free one, unless `kind` is [`REQ_NEW_PORT0`]).
    pub port: u32,
    /// The path of the client's datagram socket, which the switch connects to.
    pub path: Vec<u8>,
    /// Free text the switch shows for the port (not NUL-terminated on the wire).
    pub descr: Vec<u8>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("path", &String::from_utf8_lossy(&self.path))
            .field("descr", &String::from_utf8_lossy(&self.descr))
            .finish()
    }
}

impl Request {
    /// The request a `vde://` client sends: `port` `None` asks for any port, `Some(0)`
    /// for the management port 0, `Some(n)` for port n.
    pub fn new(port: Option<u32>, path: &[u8], descr: &[u8]) -> Result<Self, ProtoError> {
        let (kind, port) = match port {
            None => (REQ_NEW_CONTROL, 0),
            Some(0) => (REQ_NEW_PORT0, 0),
            Some(p) if p > MAX_PORT => return Err(ProtoError::PortTooLarge(p)),
            Some(p) => (REQ_NEW_CONTROL, p),
        };
        check_path(path)?;
        Ok(Self {
            kind,
            port,
            path: path.to_vec(),
            descr: descr[..descr.len().min(MAX_DESCR)].to_vec(),
        })
    }

    /// The v3 wire form: `122 + descr.len()` bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(V3_HEADER_LEN + self.descr.len());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&VERSION.to_le_bytes());
        let ty = u32::from(self.kind) | (self.port & MAX_PORT) << 8;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&encode_sockaddr_unchecked(&self.path));
        out.extend_from_slice(&self.descr);
        out
    }

    /// Parses a request as vde_switch does: v3, or the legacy v1 layout when the
    /// second word (there the type) is 0 or 1. Version 2 and versions above 3 are
    /// refused. A description is cut at its first NUL, if it has one.
    pub fn decode(msg: &[u8]) -> Result<Self, ProtoError> {
        if msg.len() < 8 {
            return Err(ProtoError::TooShort {
                got: msg.len(),
                need: V3_HEADER_LEN,
            });
        }
        let magic = le32(&msg[0..4]);
        if magic != MAGIC {
            return Err(ProtoError::BadMagic(magic));
        }
        let version = le32(&msg[4..8]);
        let (ty, addr_at, header) = match version {
            3 => {
                if msg.len() < V3_HEADER_LEN {
                    return Err(ProtoError::TooShort {
                        got: msg.len(),
                        need: V3_HEADER_LEN,
                    });
                }
                (le32(&msg[8..12]), 12, V3_HEADER_LEN)
            }
            // v1 has no version field: the word is the type, and a v1 client only
            // ever sends REQ_NEW_CONTROL (0) or REQ_NEW_PORT0 (1).
            0 | 1 => {
                if msg.len() < V1_HEADER_LEN {
                    return Err(ProtoError::TooShort {
                        got: msg.len(),
                        need: V1_HEADER_LEN,
                    });
                }
                (version, 14, V1_HEADER_LEN)
            }
            v => return Err(ProtoError::BadVersion(v)),
        };
        let path = decode_sockaddr(&msg[addr_at..addr_at + SOCKADDR_LEN])?;
        let descr = &msg[header..];
        let descr = descr.split(|&b| b == 0).next().unwrap_or(&[]);
        Ok(Self {
            kind: (ty & 0xff) as u8,
            port: ty >> 8,
            path,
            descr: descr.to_vec(),
        })
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn check_path(path: &[u8]) -> Result<(), ProtoError> {
    if path.is_empty() || path[0] == 0 {
        return Err(ProtoError::NoPath);
    }
    // Keep room for the terminating NUL so C peers can use the path as a string.
    if path.len() >= SUN_PATH_LEN || path.contains(&0) {
        return Err(ProtoError::PathTooLong(path.len()));
    }
    Ok(())
}

fn encode_sockaddr_unchecked(path: &[u8]) -> [u8; SOCKADDR_LEN] {
    let mut out = [0u8; SOCKADDR_LEN];
    out[0..2].copy_from_slice(&AF_UNIX.to_le_bytes());
    let n = path.len().min(SUN_PATH_LEN - 1);
    out[2..2 + n].copy_from_slice(&path[..n]);
    out
}

/// Encodes a `struct sockaddr_un` for `path` (a switch's reply).
pub fn encode_sockaddr(path: &[u8]) -> Result<[u8; SOCKADDR_LEN], ProtoError> {
    check_path(path)?;
    Ok(encode_sockaddr_unchecked(path))
}

/// Decodes a `struct sockaddr_un` (a reply, or the address inside a request): family
/// `AF_UNIX`, then a path up to its first NUL. A reply may be shorter than 110 bytes
/// as long as it holds a path; one without a NUL uses every byte it has, but a path
/// must leave room for a NUL (at most 107 bytes).
pub fn decode_sockaddr(msg: &[u8]) -> Result<Vec<u8>, ProtoError> {
    if msg.len() < 3 {
        return Err(ProtoError::TooShort {
            got: msg.len(),
            need: SOCKADDR_LEN,
        });
    }
    let family = u16::from_le_bytes([msg[0], msg[1]]);
    if family != AF_UNIX {
        return Err(ProtoError::BadFamily(family));
    }
    let raw = &msg[2..msg.len().min(SOCKADDR_LEN)];
    let path = raw.split(|&b| b == 0).next().unwrap_or(&[]);
    if path.is_empty() {
        return Err(ProtoError::NoPath);
    }
    // A path filling all of sun_path has no NUL: C peers cannot use it as a string,
    // and we could not connect to it. (Found by the switch_request fuzz target.)
    if path.len() >= SUN_PATH_LEN {
        return Err(ProtoError::PathTooLong(path.len()));
    }
    Ok(path.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCR: &[u8] = b"vdeplug: user=root pid=20492";

    #[test]
    fn v3_request_byte_for_byte() {
        assert_eq!(DESCR.len(), 28);
        let r = Request::new(None, b"/tmp/sw/.20492-00000", DESCR).unwrap();
        let w = r.encode();
        assert_eq!(w.len(), 150, "122 + 28, as captured from Debian vde_plug");
        assert_eq!(&w[0..4], &[0xce, 0xfa, 0xed, 0xfe]);
        assert_eq!(&w[4..8], &[3, 0, 0, 0]);
        assert_eq!(&w[8..12], &[0, 0, 0, 0]);
        assert_eq!(&w[12..14], &[1, 0]);
        assert_eq!(&w[14..34], b"/tmp/sw/.20492-00000");
        assert!(w[34..122].iter().all(|&b| b == 0), "NUL-padded sun_path");
        assert_eq!(&w[122..], DESCR);
        assert_eq!(Request::decode(&w).unwrap(), r);
    }

    #[test]
    fn port_in_the_type_field() {
        let w = Request::new(Some(5), b"/x", b"").unwrap().encode();
        assert_eq!(&w[8..12], &[0, 5, 0, 0], "0 | 5 << 8");
        assert_eq!(w.len(), 122);
        let w = Request::new(Some(0), b"/x", b"").unwrap().encode();
        assert_eq!(&w[8..12], &[1, 0, 0, 0], "REQ_NEW_PORT0");
        let w = Request::new(Some(0x1234), b"/x", b"").unwrap().encode();
        let r = Request::decode(&w).unwrap();
        assert_eq!((r.kind, r.port), (REQ_NEW_CONTROL, 0x1234));
        assert_eq!(
            Request::new(Some(1 << 24), b"/x", b""),
            Err(ProtoError::PortTooLarge(1 << 24))
        );
    }

    #[test]
    fn description_is_capped() {
        let long = vec![b'a'; 300];
        let w = Request::new(None, b"/x", &long).unwrap().encode();
        assert_eq!(w.len(), V3_HEADER_LEN + MAX_DESCR);
        assert!(w.len() <= MAX_REQUEST);
    }

    #[test]
    fn legacy_v1_request() {
        let mut w = Vec::new();
        w.extend_from_slice(&MAGIC.to_le_bytes());
        w.extend_from_slice(&0u32.to_le_bytes()); // type REQ_NEW_CONTROL
        w.extend_from_slice(&[2, 0, 0, 0, 0, 1]); // MAC
        w.extend_from_slice(&encode_sockaddr(b"/tmp/v1").unwrap());
        w.extend_from_slice(b"old client\0junk");
        let r = Request::decode(&w).unwrap();
        assert_eq!(r.path, b"/tmp/v1");
        assert_eq!(r.descr, b"old client");
        assert_eq!(r.kind, REQ_NEW_CONTROL);
    }

    #[test]
    fn malformed_requests_are_typed_errors() {
        let good = Request::new(None, b"/x", b"d").unwrap().encode();
        for n in 0..V3_HEADER_LEN {
            assert!(
                matches!(
                    Request::decode(&good[..n]),
                    Err(ProtoError::TooShort { .. } | ProtoError::BadMagic(_))
                ),
                "{n} bytes"
            );
        }
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(matches!(
            Request::decode(&bad),
            Err(ProtoError::BadMagic(_))
        ));
        for v in [2u32, 4, 0xffff_ffff] {
            let mut bad = good.clone();
            bad[4..8].copy_from_slice(&v.to_le_bytes());
            assert_eq!(Request::decode(&bad), Err(ProtoError::BadVersion(v)));
        }
        let mut bad = good.clone();
        bad[12] = 2; // AF_INET
        assert_eq!(Request::decode(&bad), Err(ProtoError::BadFamily(2)));
        let mut bad = good.clone();
        bad[14] = 0;
        assert_eq!(Request::decode(&bad), Err(ProtoError::NoPath));
        // A path filling all 108 bytes without a NUL is refused, not overrun.
        let mut full = good.clone();
        full[14..122].fill(b'p');
        assert_eq!(
            Request::decode(&full),
            Err(ProtoError::PathTooLong(SUN_PATH_LEN))
        );
        // Random garbage never panics.
        let mut x = 0x1234_5678_u32;
        for len in 0..300 {
            let mut m: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if len >= 8 {
                m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
                m[4..8].copy_from_slice(&(x % 5).to_le_bytes());
            }
            let _ = Request::decode(&m);
            let _ = decode_sockaddr(&m);
        }
    }

    #[test]
    fn reply_layout() {
        let r = encode_sockaddr(b"/tmp/sw/001.5").unwrap();
        assert_eq!(r.len(), 110);
        assert_eq!(&r[0..2], &[1, 0]);
        assert_eq!(&r[2..15], b"/tmp/sw/001.5");
        assert!(r[15..].iter().all(|&b| b == 0));
        assert_eq!(decode_sockaddr(&r).unwrap(), b"/tmp/sw/001.5");
        assert_eq!(decode_sockaddr(&r[..15]).unwrap(), b"/tmp/sw/001.5");
        assert!(decode_sockaddr(&[]).is_err());
        assert!(decode_sockaddr(&[1, 0, 0]).is_err());
        assert_eq!(
            encode_sockaddr(&[b'a'; 108]),
            Err(ProtoError::PathTooLong(108))
        );
        assert_eq!(encode_sockaddr(b""), Err(ProtoError::NoPath));
    }
}
