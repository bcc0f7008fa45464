//! Served `AF_NETLINK` sockets: what the kernel answers about a netlink socket
//! (port ids, bind, connect, names, `SOL_NETLINK` options), kept per socket, and
//! how replies are cut into datagrams. No I/O: the supervisor reads the
//! program's arguments and writes back what these functions return.
//!
//! The program's fd is one end of a `SOCK_SEQPACKET` socket pair; we hold the
//! other, bound to a 12-byte abstract address whose bytes read as a
//! `sockaddr_nl` with port id 0 (see [`abstract_name`]). Requests and replies
//! then travel natively: seqpacket keeps message boundaries and ignores the
//! netlink address `sendto`/`sendmsg` pass, and `recvmsg` reports a sender
//! address of length 12 with `nl_pid` 0, which iproute2 and glibc check.

use std::collections::{HashSet, VecDeque};
use std::os::fd::OwnedFd;

use super::sockaddr::{self, SOCKADDR_NL_LEN};
use crate::nl::server::frame::NLM_F_CAPPED;
use crate::nl::wire::{align4, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_MULTI};
use crate::vu::Errno;

/// `SOL_NETLINK`.
pub(crate) const SOL_NETLINK: i32 = 270;
/// `NETLINK_ADD_MEMBERSHIP`.
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
/// `NETLINK_DROP_MEMBERSHIP`.
const NETLINK_DROP_MEMBERSHIP: i32 = 2;
/// `NETLINK_PKTINFO`.
const NETLINK_PKTINFO: i32 = 3;
/// `NETLINK_BROADCAST_ERROR`.
const NETLINK_BROADCAST_ERROR: i32 = 4;
/// `NETLINK_NO_ENOBUFS`.
const NETLINK_NO_ENOBUFS: i32 = 5;
/// `NETLINK_LISTEN_ALL_NSID`.
const NETLINK_LISTEN_ALL_NSID: i32 = 8;
/// `NETLINK_LIST_MEMBERSHIPS`.
const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
/// `NETLINK_CAP_ACK`.
const NETLINK_CAP_ACK: i32 = 10;
/// `NETLINK_EXT_ACK`.
const NETLINK_EXT_ACK: i32 = 11;
/// `NETLINK_GET_STRICT_CHK`.
const NETLINK_GET_STRICT_CHK: i32 = 12;

/// `RTNLGRP_MAX` of Linux 6.1's headers: the groups an rtnetlink socket can join.
const RTNL_GROUPS: u32 = 36;

/// The largest datagram a dump's parts are packed into: the kernel's
/// `NLMSG_GOODSIZE` on 4 KiB pages (a page less `skb_shared_info`), which is what
/// a reader that has not yet shown a larger buffer gets (glibc reads netlink
/// with a page-sized buffer). One larger message goes alone.
pub(crate) const DUMP_DATAGRAM: usize = 3776;

/// The port ids of our served netlink sockets (a namespace of their own: the
/// program never talks to the kernel's netlink).
#[derive(Debug, Default)]
pub(crate) struct Ports {
    used: HashSet<u32>,
    /// The kernel's rover for ports after the first: -4096 downward.
    rover: i32,
}

impl Ports {
    /// A free port for a socket made by thread `pid`: `pid` itself if free (the
    /// kernel gives a process's first netlink socket its pid), else the next of
    /// -4097, -4098, ... (as u32), as `netlink_autobind` does.
    pub(crate) fn autobind(&mut self, pid: i32) -> u32 {
        if pid > 0 && self.used.insert(pid as u32) {
            return pid as u32;
        }
        loop {
            self.rover = if self.rover >= -4096 {
                -4097
            } else {
                self.rover - 1
            };
            if self.used.insert(self.rover as u32) {
                return self.rover as u32;
            }
        }
    }

    /// Takes `port` (an explicit bind): `EADDRINUSE` if another socket has it.
    pub(crate) fn claim(&mut self, port: u32) -> Result<(), Errno> {
        if self.used.insert(port) {
            Ok(())
        } else {
            Err(libc::EADDRINUSE)
        }
    }

    /// Gives `port` back (its socket is gone).
    pub(crate) fn release(&mut self, port: u32) {
        self.used.remove(&port);
    }
}

/// The abstract name our end is bound to (the 9 bytes after its leading NUL,
/// which the socket address adds): with the family, 12 bytes that read as a
/// `sockaddr_nl` whose `nl_pad` is `'v'` (after the NUL), `nl_pid` 0 (the
/// kernel), and `nl_groups` `serial` (unique per socket of ours).
pub(crate) fn abstract_name(serial: u32) -> [u8; 9] {
    let mut n = [0u8; 9];
    n[0] = b'v';
    n[5..9].copy_from_slice(&serial.to_ne_bytes());
    n
}

/// `SOL_NETLINK` flags of a socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NlFlags {
    pktinfo: bool,
    broadcast_error: bool,
    no_enobufs: bool,
    listen_all_nsid: bool,
    cap_ack: bool,
    ext_ack: bool,
    strict_chk: bool,
}

impl NlFlags {
    fn slot(&mut self, name: i32) -> Option<&mut bool> {
        Some(match name {
            NETLINK_PKTINFO => &mut self.pktinfo,
            NETLINK_BROADCAST_ERROR => &mut self.broadcast_error,
            NETLINK_NO_ENOBUFS => &mut self.no_enobufs,
            NETLINK_LISTEN_ALL_NSID => &mut self.listen_all_nsid,
            NETLINK_CAP_ACK => &mut self.cap_ack,
            NETLINK_EXT_ACK => &mut self.ext_ack,
            NETLINK_GET_STRICT_CHK => &mut self.strict_chk,
            _ => return None,
        })
    }
}

/// One served `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub(crate) struct NlSock {
    /// Our end of the socket pair.
    pub ours: OwnedFd,
    /// `SOCK_RAW` or `SOCK_DGRAM`, as made (what `SO_TYPE` answers).
    pub kind: i32,
    /// The process that made it (its id is the first autobind port tried).
    pub creator: i32,
    /// The port id; 0 until bound.
    pub port: u32,
    /// Joined multicast groups (group `n` is bit `n - 1`).
    pub groups: u64,
    /// `connect()`'s destination port and groups.
    pub dst: (u32, u32),
    pub flags: NlFlags,
    /// Reply datagrams not yet sent (the program's queue was full).
    pub out: VecDeque<Vec<u8>>,
    /// The program's end was shut for writing (by a process we do not
    /// supervise: ours get `EOPNOTSUPP`, as from a netlink socket): no request
    /// will come, and our end reads end of file from now on.
    pub eof: bool,
}

impl NlSock {
    /// A fresh, unbound socket.
    pub(crate) fn new(ours: OwnedFd, kind: i32, creator: i32) -> Self {
        NlSock {
            ours,
            kind,
            creator,
            port: 0,
            groups: 0,
            dst: (0, 0),
            flags: NlFlags::default(),
            out: VecDeque::new(),
            eof: false,
        }
    }

    /// Binds on first use, as the kernel does on the first send or connect.
    pub(crate) fn ensure_bound(&mut self, ports: &mut Ports) -> u32 {
        if self.port == 0 {
            self.port = ports.autobind(self.creator);
        }
        self.port
    }

    /// `bind(2)` (`netlink_bind`).
    pub(crate) fn bind(&mut self, ports: &mut Ports, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() < SOCKADDR_NL_LEN || sockaddr::family(addr)? != libc::AF_NETLINK {
            return Err(libc::EINVAL);
        }
        let (port, groups) = sockaddr::parse_nl(addr);
        if self.port != 0 {
            if port != self.port {
                return Err(libc::EINVAL);
            }
        } else if port != 0 {
            ports.claim(port)?;
            self.port = port;
        } else {
            self.ensure_bound(ports);
        }
        // nl_groups sets the first 32 groups and keeps the others.
        self.groups = (self.groups & !0xffff_ffff) | groups as u64;
        Ok(())
    }

    /// `connect(2)` (`netlink_connect`): records the destination; requests still
    /// go to the served stack whatever it is.
    pub(crate) fn connect(&mut self, ports: &mut Ports, addr: &[u8]) -> Result<(), Errno> {
        let family = sockaddr::family(addr)?;
        if family == libc::AF_UNSPEC {
            self.dst = (0, 0);
            return Ok(());
        }
        if family != libc::AF_NETLINK || addr.len() < SOCKADDR_NL_LEN {
            return Err(libc::EINVAL);
        }
        self.dst = sockaddr::parse_nl(addr);
        self.ensure_bound(ports);
        Ok(())
    }

    /// `getsockname` (`peer` false) or `getpeername` (`peer` true).
    pub(crate) fn name(&self, peer: bool) -> [u8; SOCKADDR_NL_LEN] {
        if peer {
            sockaddr::encode_nl(self.dst.0, self.dst.1)
        } else {
            sockaddr::encode_nl(self.port, self.groups as u32)
        }
    }

    /// `setsockopt(SOL_NETLINK, name, value)`: `value` is what the caller passed
    /// (an int is read only if at least 4 bytes are given, as the kernel does).
    pub(crate) fn setsockopt(&mut self, name: i32, value: &[u8]) -> Result<(), Errno> {
        let v = match value.get(..4) {
            Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        };
        match name {
            NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP => {
                let g = v as u32;
                if g == 0 || g > RTNL_GROUPS {
                    return Err(libc::EINVAL);
                }
                let bit = 1u64 << (g - 1);
                if name == NETLINK_ADD_MEMBERSHIP {
                    self.groups |= bit;
                } else {
                    self.groups &= !bit;
                }
                Ok(())
            }
            _ => match self.flags.slot(name) {
                Some(f) => {
                    *f = v != 0;
                    Ok(())
                }
                None => Err(libc::ENOPROTOOPT),
            },
        }
    }

    /// `getsockopt(SOL_NETLINK, name)` for a caller's buffer of `len` bytes:
    /// the bytes to write and the length to report (`netlink_getsockopt`).
    pub(crate) fn getsockopt(&mut self, name: i32, len: i32) -> Result<(Vec<u8>, i32), Errno> {
        if len < 0 {
            return Err(libc::EINVAL);
        }
        if name == NETLINK_LIST_MEMBERSHIPS {
            // As many whole u32 words of the bitmap as fit; the length reported is
            // the whole bitmap's, rounded to words.
            let words = RTNL_GROUPS.div_ceil(32) as usize;
            let mut out = Vec::new();
            for w in 0..words {
                if (len as usize) < out.len() + 4 {
                    break;
                }
                out.extend_from_slice(&((self.groups >> (32 * w)) as u32).to_ne_bytes());
            }
            let whole = (RTNL_GROUPS.div_ceil(8)).next_multiple_of(4) as i32;
            return Ok((out, whole));
        }
        let v = *self.flags.slot(name).ok_or(libc::ENOPROTOOPT)?;
        if len < 4 {
            return Err(libc::EINVAL);
        }
        Ok(((v as i32).to_ne_bytes().to_vec(), 4))
    }

    /// Replies adjusted to the socket's options, cut into datagrams.
    pub(crate) fn datagrams(&self, replies: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let replies = if self.flags.cap_ack {
            replies.into_iter().map(cap_error).collect()
        } else {
            replies
        };
        pack(replies)
    }
}

/// `NETLINK_CAP_ACK`: an error echoes only the request's header (and says so
/// with `NLM_F_CAPPED`).
fn cap_error(mut m: Vec<u8>) -> Vec<u8> {
    let keep = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN;
    let kind = m.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    if kind == Some(NLMSG_ERROR) && m.len() > keep {
        m.truncate(keep);
        m[0..4].copy_from_slice(&(keep as u32).to_ne_bytes());
        let flags = u16::from_ne_bytes([m[6], m[7]]) | NLM_F_CAPPED;
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
    }
    m
}

/// Cuts replies into datagrams as the kernel sends them: a dump's parts (and
/// its `NLMSG_DONE`) packed up to [`DUMP_DATAGRAM`] bytes, every other message
/// (a GET's reply, an ACK, an error) in a datagram of its own.
pub(crate) fn pack(replies: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for m in replies {
        let kind = m.get(4..6).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
        let flags = m.get(6..8).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
        let part = flags & NLM_F_MULTI != 0 || kind == NLMSG_DONE;
        if !part {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(m);
            continue;
        }
        if !cur.is_empty() && cur.len() + m.len() > DUMP_DATAGRAM {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&m);
        cur.resize(align4(cur.len()), 0);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::wire::Builder;

    fn sock() -> NlSock {
        let (a, _b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        NlSock::new(a, libc::SOCK_RAW, 500)
    }

    #[test]
    fn ports_like_the_kernel() {
        let mut p = Ports::default();
        assert_eq!(p.autobind(500), 500);
        assert_eq!(p.autobind(500) as i32, -4097);
        assert_eq!(p.autobind(500) as i32, -4098);
        assert_eq!(p.claim(77), Ok(()));
        assert_eq!(p.claim(77), Err(libc::EADDRINUSE));
        p.release(500);
        assert_eq!(p.autobind(500), 500);
    }

    #[test]
    fn bind_and_names() {
        let mut ports = Ports::default();
        let mut s = sock();
        assert_eq!(s.name(false), sockaddr::encode_nl(0, 0));
        assert_eq!(s.bind(&mut ports, &[0u8; 4]), Err(libc::EINVAL));
        s.bind(&mut ports, &sockaddr::encode_nl(0, 0x11)).unwrap();
        assert_eq!(s.name(false), sockaddr::encode_nl(500, 0x11));
        // Bound: another port is EINVAL, the same one fine.
        assert_eq!(
            s.bind(&mut ports, &sockaddr::encode_nl(9, 0)),
            Err(libc::EINVAL)
        );
        s.bind(&mut ports, &sockaddr::encode_nl(500, 0)).unwrap();
        assert_eq!(s.name(true), sockaddr::encode_nl(0, 0));
        let mut t = sock();
        assert_eq!(
            t.bind(&mut ports, &sockaddr::encode_nl(500, 0)),
            Err(libc::EADDRINUSE)
        );
        t.connect(&mut ports, &sockaddr::encode_nl(0, 0)).unwrap();
        assert_eq!(t.port as i32, -4097);
    }

    #[test]
    fn options() {
        let mut s = sock();
        let one = 1i32.to_ne_bytes();
        s.setsockopt(NETLINK_EXT_ACK, &one).unwrap();
        assert_eq!(s.getsockopt(NETLINK_EXT_ACK, 4), Ok((one.to_vec(), 4)));
        assert_eq!(s.getsockopt(NETLINK_EXT_ACK, 2), Err(libc::EINVAL));
        assert_eq!(s.getsockopt(99, 4), Err(libc::ENOPROTOOPT));
        assert_eq!(s.setsockopt(99, &one), Err(libc::ENOPROTOOPT));
        s.setsockopt(NETLINK_ADD_MEMBERSHIP, &3i32.to_ne_bytes())
            .unwrap();
        s.setsockopt(NETLINK_ADD_MEMBERSHIP, &33i32.to_ne_bytes())
            .unwrap();
        assert_eq!(
            s.setsockopt(NETLINK_ADD_MEMBERSHIP, &0i32.to_ne_bytes()),
            Err(libc::EINVAL)
        );
        let (v, len) = s.getsockopt(NETLINK_LIST_MEMBERSHIPS, 8).unwrap();
        assert_eq!(len, 8);
        assert_eq!(v, [4u32.to_ne_bytes(), 1u32.to_ne_bytes()].concat());
        assert_eq!(s.name(false)[8..12], 4u32.to_ne_bytes());
    }

    fn msg(kind: u16, flags: u16, payload: usize) -> Vec<u8> {
        Builder::new(kind, flags, 1).raw(&vec![0; payload]).finish()
    }

    #[test]
    fn dumps_are_packed_and_acks_stand_alone() {
        let parts: Vec<Vec<u8>> = (0..10).map(|_| msg(16, NLM_F_MULTI, 996)).collect();
        let mut replies = parts.clone();
        replies.push(msg(NLMSG_DONE, NLM_F_MULTI, 4));
        let d = pack(replies);
        assert!(d.iter().all(|x| x.len() <= DUMP_DATAGRAM));
        assert_eq!(d.len(), 4);
        assert_eq!(d.iter().map(Vec::len).sum::<usize>(), 10 * 1012 + 20);
        let d = pack(vec![msg(16, 0, 100), msg(NLMSG_ERROR, 0, 20)]);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn capped_errors() {
        let mut s = sock();
        s.flags.cap_ack = true;
        let err = msg(NLMSG_ERROR, 0, 4 + 40);
        let d = s.datagrams(vec![err]);
        assert_eq!(d[0].len(), 36);
        assert_eq!(u32::from_ne_bytes(d[0][0..4].try_into().unwrap()), 36);
        assert_ne!(u16::from_ne_bytes([d[0][6], d[0][7]]) & NLM_F_CAPPED, 0);
    }
}
