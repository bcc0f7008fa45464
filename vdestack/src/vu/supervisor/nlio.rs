//! Netlink requests in, replies out, on our ends of the served netlink sockets.
//!
//! A datagram of 0 bytes is ignored, as the kernel ignores an empty netlink
//! message; the program closing its end shows as a hang-up (never as a read of
//! 0 bytes, which would be ambiguous on a seqpacket socket), and its end shut
//! for writing (`EPOLLRDHUP`) as the last requests: what is queued is served,
//! then the socket is no longer read. Replies that do not fit the program's
//! socket wait in the socket's queue, and no further request of that socket is
//! read until they are sent.

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::net::{self, RecvFlags, SendFlags};

use super::{Served, State};
use crate::vu::served::ServedNet;

/// Requests read from one socket per wake-up, so one busy program cannot
/// starve the others.
const BURST: usize = 64;

impl<N: ServedNet + ?Sized> State<'_, N> {
    /// Our end of served socket `ino` is ready.
    pub(super) fn socket_event(&mut self, ino: u64, flags: EventFlags) {
        if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
            self.forget(ino);
            return;
        }
        let rdhup = flags.contains(EventFlags::RDHUP);
        if rdhup {
            if let Some(Served::Netlink(s)) = self.socks.get_mut(&ino) {
                s.eof = true;
            }
        }
        if flags.contains(EventFlags::OUT) {
            self.flush(ino);
        }
        if flags.contains(EventFlags::IN) {
            self.serve_requests(ino);
        }
        if rdhup {
            self.watch_for(ino);
        }
    }

    /// Sets what our end of netlink socket `ino` waits for: room for replies,
    /// or requests (unless the program can send no more).
    fn watch_for(&mut self, ino: u64) {
        let Some(Served::Netlink(s)) = self.socks.get(&ino) else {
            return;
        };
        let flags = if self.blocked.contains(&ino) {
            EventFlags::OUT
        } else if s.eof {
            EventFlags::empty()
        } else {
            EventFlags::IN | EventFlags::RDHUP
        };
        let _ = epoll::modify(&self.epoll, &s.ours, EventData::new_u64(ino), flags);
    }

    fn serve_requests(&mut self, ino: u64) {
        for _ in 0..BURST {
            if self.blocked.contains(&ino) {
                return;
            }
            let Some(Served::Netlink(s)) = self.socks.get_mut(&ino) else {
                return;
            };
            let n = match net::recv(
                &s.ours,
                &mut self.buf[..],
                RecvFlags::TRUNC | RecvFlags::DONTWAIT,
            ) {
                Ok((_, 0)) => continue,
                // A request longer than the buffer is cut, as a datagram would be.
                Ok((_, n)) => n.min(self.buf.len()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    self.forget(ino);
                    return;
                }
            };
            let port = s.ensure_bound(&mut self.ports);
            let replies = self.net.rtnetlink(port, &self.buf[..n]);
            let Some(Served::Netlink(s)) = self.socks.get_mut(&ino) else {
                return;
            };
            let datagrams = s.datagrams(replies);
            s.out.extend(datagrams);
            self.flush(ino);
        }
    }

    /// Sends what waits for socket `ino`; when the program's socket is full,
    /// waits for room (and reads no request meanwhile).
    fn flush(&mut self, ino: u64) {
        let Some(Served::Netlink(s)) = self.socks.get_mut(&ino) else {
            return;
        };
        while let Some(d) = s.out.front() {
            match net::send(&s.ours, d, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                Ok(_) => {
                    s.out.pop_front();
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    if self.blocked.insert(ino) {
                        self.watch_for(ino);
                    }
                    return;
                }
                // Too large for the socket's buffer: the kernel would drop it too.
                Err(rustix::io::Errno::MSGSIZE) => {
                    s.out.pop_front();
                }
                Err(_) => {
                    self.forget(ino);
                    return;
                }
            }
        }
        if self.blocked.remove(&ino) {
            self.watch_for(ino);
        }
    }
}
