//! `udp://[SRCADDR:]SRCPORT->DSTHOST:DSTPORT`: a point-to-point cable over UDP, one raw
//! frame per datagram, no header (libvdeplug4's `udp` plugin). Both ends name each
//! other: `udp://5000->host:5001` here, `udp://5001->thishost:5000` there.
//!
//! The destination is resolved first; the source is bound on the destination's
//! family, the first address that binds winning. IPv6 literals may be written bare
//! (the port is after the last `:`) or in brackets (`[::1]:5001`). The socket is
//! connected to the destination at once, so only the peer's datagrams are ever
//! accepted (upstream connects at the first send; until then it took anyone's).
//! A source port of 0 is one the kernel picks (a peer must then learn it some other
//! way); a destination port of 0 names no peer and is refused.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{self as rnet, RecvFlags};

use super::batch::SegmentBatch;
use super::datagram::{self, DatagramPlug, Out};
use super::url::{bad_value, UrlError};
use super::vxvde::common::udp_socket;
use super::{Backlog, Plug, Recv, RecvBatch, RecvBatching, SegmentBatching, MIN_FRAME};
use crate::error::context;

/// A `udp://` cable end.
#[derive(Debug)]
pub struct Udp {
    fd: OwnedFd,
    peer: SocketAddr,
    /// The frames of the large segment being sent (and those a full peer has not
    /// taken yet, once asked to keep them).
    batch: SegmentBatch,
}

/// The parts of a `udp://` argument, unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSpec {
    /// Local address, if given.
    pub src_host: Option<String>,
    /// Local port.
    pub src_port: u16,
    /// Peer host (name or address).
    pub dst_host: String,
    /// Peer port.
    pub dst_port: u16,
}

/// Splits `HOST:PORT` at the last `:`, removing brackets around the host.
fn host_port(s: &str) -> Option<(&str, &str)> {
    let (h, p) = s.rsplit_once(':')?;
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    Some((h, p))
}

fn port(what: &'static str, s: &str) -> Result<u16, UrlError> {
    s.parse::<u16>()
        .map_err(|_| bad_value("udp", what, s, "expected a port number 0..65535"))
}

/// Parses `[SRCADDR:]SRCPORT->DSTHOST:DSTPORT`.
pub fn parse(arg: &str) -> Result<UdpSpec, UrlError> {
    let Some((src, dst)) = arg.split_once("->") else {
        return Err(bad_value(
            "udp",
            "argument",
            arg,
            "expected [SRCADDR:]SRCPORT->DSTHOST:DSTPORT (no `->`)",
        ));
    };
    let (src_host, src_port) = match host_port(src) {
        Some((h, p)) => (
            Some(h.to_string()).filter(|h| !h.is_empty()),
            port("source port", p)?,
        ),
        None => (None, port("source port", src)?),
    };
    let (dst_host, dst_port) = host_port(dst)
        .ok_or_else(|| bad_value("udp", "destination", dst, "expected DSTHOST:DSTPORT"))?;
    if dst_host.is_empty() {
        return Err(bad_value("udp", "destination host", dst, "no host given"));
    }
    let dst_port = match port("destination port", dst_port)? {
        0 => {
            return Err(bad_value(
                "udp",
                "destination port",
                dst_port,
                "port 0 names no peer (expected 1..65535)",
            ))
        }
        p => p,
    };
    Ok(UdpSpec {
        src_host,
        src_port,
        dst_host: dst_host.to_string(),
        dst_port,
    })
}

impl Udp {
    /// Opens `udp://ARG`.
    pub fn open(arg: &str) -> io::Result<Self> {
        let spec = parse(arg)?;
        let what = |part: &str| format!("udp://{arg}: {part}");
        let peer = (spec.dst_host.as_str(), spec.dst_port)
            .to_socket_addrs()
            .map_err(|e| {
                context(
                    e,
                    what(&format!(
                        "cannot resolve destination host `{}`",
                        spec.dst_host
                    )),
                )
            })?
            .next()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    what("destination host has no address"),
                )
            })?;
        let sources: Vec<SocketAddr> = match &spec.src_host {
            None => vec![SocketAddr::new(
                if peer.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                },
                spec.src_port,
            )],
            Some(h) => (h.as_str(), spec.src_port)
                .to_socket_addrs()
                .map_err(|e| context(e, what(&format!("cannot resolve source address `{h}`"))))?
                .filter(|a| a.is_ipv4() == peer.is_ipv4())
                .collect(),
        };
        let mut last = io::Error::new(
            io::ErrorKind::InvalidInput,
            what("the source address has no address of the destination's family"),
        );
        for src in sources {
            let fd = udp_socket(&peer)?;
            match rnet::bind(&fd, &src) {
                Ok(()) => {
                    rnet::connect(&fd, &peer)
                        .map_err(|e| context(e, what(&format!("connecting to {peer}"))))?;
                    return Ok(Self {
                        fd,
                        peer,
                        batch: SegmentBatch::default(),
                    });
                }
                Err(e) => last = context(e, what(&format!("binding {src}"))),
            }
        }
        Err(last)
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// Errors that a connected UDP socket reports after an ICMP message: the peer is
/// not (yet) there. For a cable this means "frame lost", nothing more.
fn is_transient(e: Errno) -> bool {
    matches!(
        e,
        Errno::CONNREFUSED | Errno::HOSTUNREACH | Errno::NETUNREACH | Errno::CONNRESET
    )
}

impl DatagramPlug for Udp {
    fn out(&mut self) -> Out<'_> {
        Out {
            fd: self.fd.as_fd(),
            batch: &mut self.batch,
            prefix: &[],
            route: None,
        }
    }

    fn batch(&self) -> &SegmentBatch {
        &self.batch
    }

    fn socket(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An ICMP error queued on the connected socket (the peer is not there yet)
    /// only loses the frame.
    fn send_failed(&self, e: Errno) -> Option<io::Error> {
        (!is_transient(e)).then(|| crate::sys::send_error(e))
    }
}

impl Plug for Udp {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        datagram::send(self, frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match rnet::recv(&self.fd, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) if n >= MIN_FRAME => Ok(Recv::Frame(n)),
            Ok(_) => Ok(Recv::Nothing),
            Err(e) if is_transient(e) => Ok(Recv::Nothing),
            Err(e) => Err(e.into()),
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn segment_batching(&mut self) -> Option<&mut dyn SegmentBatching> {
        Some(self)
    }

    fn recv_batching(&mut self) -> Option<&mut dyn RecvBatching> {
        Some(self)
    }

    fn backlog(&mut self) -> Option<&mut dyn Backlog> {
        Some(self)
    }
}

impl RecvBatching for Udp {
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<Recv> {
        // Only the peer's datagrams arrive: the socket is connected to it.
        let n = match batch.receive(&self.fd, false) {
            Ok(n) => n,
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|e| is_transient(Errno::from_raw_os_error(e))) =>
            {
                return Ok(Recv::Nothing)
            }
            Err(e) => return Err(e),
        };
        for i in 0..n {
            if batch.datagram(i).0.len() >= MIN_FRAME {
                batch.keep(i, 0, usize::MAX);
            }
        }
        Ok(batch.outcome())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let s = parse("5000->host:5001").unwrap();
        assert_eq!(
            (s.src_host, s.src_port, s.dst_host.as_str(), s.dst_port),
            (None, 5000, "host", 5001)
        );
        let s = parse("127.0.0.1:5000->127.0.0.2:5001").unwrap();
        assert_eq!(s.src_host.as_deref(), Some("127.0.0.1"));
        let s = parse("::1:5000->::1:5001").unwrap();
        assert_eq!(
            (s.src_host.as_deref(), s.dst_host.as_str()),
            (Some("::1"), "::1")
        );
        let s = parse("[::1]:5000->[::1]:5001").unwrap();
        assert_eq!(
            (s.src_host.as_deref(), s.dst_host.as_str()),
            (Some("::1"), "::1")
        );
    }

    #[test]
    fn errors_name_the_part() {
        let e = parse("5000").unwrap_err().to_string();
        assert!(e.contains("->"), "{e}");
        let e = parse("x->h:1").unwrap_err().to_string();
        assert!(e.contains("source port"), "{e}");
        let e = parse("1->h:99999").unwrap_err().to_string();
        assert!(e.contains("destination port"), "{e}");
        let e = parse("1->h").unwrap_err().to_string();
        assert!(e.contains("destination"), "{e}");
        let e = parse("1->:5").unwrap_err().to_string();
        assert!(e.contains("destination host"), "{e}");
        let e = parse("5000->127.0.0.1:0").unwrap_err().to_string();
        assert!(e.contains("bad destination port `0`"), "{e}");
        // A source port of 0 is the kernel's choice.
        assert_eq!(parse("0->127.0.0.1:5").unwrap().src_port, 0);
    }

    /// A `udp://` end on loopback and the socket it is connected to.
    fn end_and_peer() -> (Udp, std::net::UdpSocket, SocketAddr) {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = peer.local_addr().unwrap().port();
        let end = Udp::open(&format!("127.0.0.1:0->127.0.0.1:{port}")).unwrap();
        let at = SocketAddr::try_from(rnet::getsockname(&end.fd).unwrap()).unwrap();
        (end, peer, at)
    }

    /// Frame `i`: 60 bytes, all `i`.
    fn frame(i: usize) -> Vec<u8> {
        vec![i as u8; 60]
    }

    /// Calls `recv_batch` until the plug is empty: the frames of each call.
    fn drain(end: &mut Udp, batch: &mut RecvBatch) -> Vec<Vec<Vec<u8>>> {
        let mut calls = Vec::new();
        loop {
            match end.recv_batch(batch) {
                Ok(Recv::Frame(n)) => {
                    assert_eq!(n, batch.len());
                    calls.push(batch.frames().map(<[u8]>::to_vec).collect());
                }
                Ok(Recv::Nothing) => calls.push(Vec::new()),
                Ok(Recv::Closed) => panic!("udp:// never closes"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return calls,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn batches_of_up_to_32_frames() {
        // Loopback only: a datagram sent there is queued when send_to returns.
        for (queued, sizes) in [
            (0, vec![]),
            (1, vec![1]),
            (31, vec![31]),
            (32, vec![32]),
            (33, vec![32, 1]),
        ] {
            let (mut end, peer, at) = end_and_peer();
            for i in 0..queued {
                peer.send_to(&frame(i), at).unwrap();
            }
            let mut batch = RecvBatch::new();
            let calls = drain(&mut end, &mut batch);
            let got: Vec<usize> = calls.iter().map(Vec::len).collect();
            assert_eq!(got, sizes, "{queued} queued");
            let all: Vec<Vec<u8>> = calls.into_iter().flatten().collect();
            assert_eq!(all, (0..queued).map(frame).collect::<Vec<_>>(), "in order");
        }
    }

    #[test]
    fn bad_datagrams_in_a_batch_are_skipped() {
        let (mut end, peer, at) = end_and_peer();
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(&frame(1), at).unwrap();
        peer.send_to(&[7; MIN_FRAME - 1], at).unwrap(); // a runt
        stranger.send_to(&frame(2), at).unwrap(); // not the peer
        peer.send_to(&frame(3), at).unwrap();
        peer.send_to(&[], at).unwrap();
        peer.send_to(&frame(4), at).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(
            drain(&mut end, &mut batch),
            [[frame(1), frame(3), frame(4)]]
        );
        // Only runts: handled, no frame.
        peer.send_to(&[1; 3], at).unwrap();
        assert_eq!(end.recv_batch(&mut batch).unwrap(), Recv::Nothing);
        assert_eq!(batch.received(), 1);
    }
}
