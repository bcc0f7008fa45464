//! `slirp://[/OPTIONS]`: NAT to the host's network through libslirp, the user-mode
//! TCP/IP stack of QEMU, slirp4netns and Debian's `libvdeplug_slirp`, with that
//! plugin's options and defaults. The guest (a stack, a vdens, whatever plugs in)
//! sees a router at 10.0.2.2 that leases it 10.0.2.15 by DHCP, forwards DNS at
//! 10.0.2.3 to the host's resolvers (`/etc/resolv.conf`), and turns the guest's
//! connections into sockets of this process; 10.0.2.2 itself is the host's
//! loopback. IPv6 likewise: prefix fd00::/64, router fd00::2, DNS fd00::3.
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `v4`, `v6` | only this family (both: both) | both |
//! | `addr=A[/P]`, `host=A[/P]` | the router's IPv4 address and prefix (quote the `/`: `addr='10.1.0.1/16'`) | 10.0.2.2/24 |
//! | `addr6=A[/P]`, `host6=A[/P]` | the router's IPv6 address and prefix | fd00::2/64 |
//! | `dhcp=A` | the first address leased | 10.0.2.15 (moved into a changed network) |
//! | `vnameserver=A`, `vnameserver6=A` | the DNS forwarder's addresses | 10.0.2.3, fd00::3 |
//! | `hostname=`, `vdnssearch=a,b`, `vdomainname=` | what DHCP hands out | `slirp` |
//! | `tftp_server_name=`, `tftp_path=`, `bootfile=` | the built-in TFTP and BOOTP | |
//! | `mtu=`, `mru=` | the link's (68 to 65521; 0: 1500) | 1500 |
//! | `restricted` | no connections out, only forwards in | |
//! | `disable_host_loopback` | 10.0.2.2 does not reach the host's loopback | |
//! | `tcpfwd=[HOSTIP:]HPORT:GUESTIP:GPORT,...`, `udpfwd=...` | host ports forwarded into the guest | |
//! | `unixfwd=[IP:]PORT:PATH,...`, `cmdfwd=[IP:]PORT:CMD,...` | a virtual address and port of the guest's network forwarded to a unix socket or a command on the host | |
//! | `verbose` | print the configuration on stderr | |
//!
//! Options follow a slash (`slirp:///v4/tcpfwd=8080:10.0.2.15:80`). Unlike the C
//! plugin, an option it cannot read (an address, a forward) is an error, and so
//! is a forward that cannot be set up (a port in use).
//!
//! ## How it runs
//!
//! libslirp is loaded when the first `slirp://` plug opens (`sys::slirp`):
//! without it, opening fails saying so, and nothing else is affected. Each plug
//! runs one thread that owns the libslirp instance and its end of a
//! `SOCK_SEQPACKET` socket pair (one frame per record); the plug's end is its
//! [`Plug::data_fd`], readable when libslirp has frames for the guest. The thread
//! polls its end of the pair together with libslirp's sockets and timers, as
//! libvdeslirp does. A thread, rather than libslirp's sockets folded into the
//! plug's fd, because libslirp chooses its fds and events anew before every wait
//! (a connection in progress wants `POLLOUT`, a full one nothing), which no single
//! fd can stand for without re-syncing an epoll set on every call; and libslirp is
//! not thread-safe, so one thread owns it, which also gives the TCP work a core of
//! its own, beside the relay's.
//!
//! Frames cross the pair many at a time (`recvmmsg`, `sendmmsg`), and a large
//! segment from a stack's tap is cut once on the plug's side ([`super::batch`]).
//! When the thread falls behind, the pair fills up and [`Plug::send`] says
//! `WouldBlock` (or keeps the frames, once [`Backlog::keep`] was called).

mod config;
mod daemon;

pub use config::{defaults, parse, Config, Forward, TAGS};

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};

use super::batch::SegmentBatch;
use super::datagram::{DatagramPlug, Out};
use super::{Backlog, Plug, Recv, RecvBatch, RecvBatching, SegmentBatching};
use crate::error::context;

/// The socket buffers of the pair: room for a few hundred frames each way (the
/// kernel caps it at `net.core.wmem_max`).
const PAIR_BUFFER: usize = 1 << 20;

/// A `slirp://` plug.
#[derive(Debug)]
pub struct Slirp {
    /// Our end of the pair with the slirp thread.
    chan: OwnedFd,
    thread: Option<JoinHandle<()>>,
    url: String,
    /// The frames of the large segment being sent (and those the thread has no
    /// room for yet, once asked to keep them).
    batch: SegmentBatch,
}

impl Slirp {
    /// Starts libslirp as `arg` (the text after `slirp://`) configures it.
    pub fn open(arg: &str) -> io::Result<Self> {
        let url = format!("slirp://{arg}");
        let config = config::parse(arg)?;
        if config.verbose {
            eprint!("{}", config.describe());
        }
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        for fd in [&ours, &theirs] {
            // Best effort: the kernel's cap is the caller's to raise.
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(fd, PAIR_BUFFER);
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(fd, PAIR_BUFFER);
        }
        crate::sys::set_nonblocking(&ours)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("slirp".to_string())
            .spawn(move || daemon::run(config, theirs, tx))
            .map_err(|e| context(e, format!("{url}: starting its thread")))?;
        let started = rx.recv();
        let plug = Self {
            chan: ours,
            thread: Some(thread),
            url,
            batch: SegmentBatch::default(),
        };
        match started {
            Ok(Ok(())) => Ok(plug),
            Ok(Err(e)) => Err(context(e, plug.url.clone())),
            Err(_) => Err(io::Error::other(format!(
                "{}: libslirp's thread ended while starting",
                plug.url
            ))),
        }
    }

    fn gone(&self, e: Errno) -> io::Error {
        context(e, format!("{}: the slirp thread is gone", self.url))
    }

    fn send_error(&self, e: Errno) -> io::Error {
        match e {
            Errno::AGAIN | Errno::NOBUFS => io::ErrorKind::WouldBlock.into(),
            Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN => self.gone(e),
            e => context(e, format!("{}: send", self.url)),
        }
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        // The thread sees the end of the pair, leaves its loop and closes every
        // socket libslirp opened.
        let _ = rustix::net::shutdown(&self.chan, rustix::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl DatagramPlug for Slirp {
    fn out(&mut self) -> Out<'_> {
        Out {
            fd: self.chan.as_fd(),
            batch: &mut self.batch,
            prefix: &[],
            route: None,
        }
    }

    fn batch(&self) -> &SegmentBatch {
        &self.batch
    }

    fn socket(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }

    fn send_failed(&self, e: Errno) -> Option<io::Error> {
        Some(self.send_error(e))
    }
}

impl Plug for Slirp {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        super::datagram::send(self, frame)
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

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let len = buf.len();
        match rustix::net::recv(&self.chan, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) => Ok(Recv::Closed),
            Ok((n, _)) => Ok(Recv::Frame(n.min(len))),
            Err(Errno::CONNRESET) => Ok(Recv::Closed),
            Err(e) => Err(e.into()),
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }
}

impl RecvBatching for Slirp {
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<Recv> {
        let n = match batch.receive(&self.chan, false) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(Recv::Closed),
            Err(e) => return Err(e),
        };
        for i in 0..n {
            if batch.datagram(i).0.is_empty() {
                // The thread closed its end: what came before is still delivered.
                if batch.is_empty() {
                    return Ok(Recv::Closed);
                }
                break;
            }
            batch.keep(i, 0, usize::MAX);
        }
        Ok(batch.outcome())
    }
}
