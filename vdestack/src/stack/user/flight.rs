//! A datagram link's receive-queue budget, shared among the TCP connections that
//! send on it.
//!
//! The members of a `vxvde://` or `vxlan://` group each read from one UDP socket
//! buffer, which holds a few dozen full-size frames
//! ([`Plug::flight_frames`](crate::vde::Plug::flight_frames)). One connection's
//! window stays within what its peer offers; several together (4 streams to a
//! Debian `vdens`) overran it: about 1 % of their frames were dropped, each a
//! loss that cut a window. So while several connections have bytes to send,
//! each gets an equal share of the budget as its cap in flight (smoltcp patch
//! 6); an idle one takes none of it. A connection sending alone is not capped:
//! its peer's window kept it within the queue, and a cap only slowed it.

use smoltcp::iface::SocketSet;
use smoltcp::socket::Socket;

/// The fewest segments a connection may keep in flight, whatever its share:
/// two, so that a peer's delayed ACK never waits for a second segment.
const MIN_SEGMENTS: usize = 2;

/// Caps every TCP socket of `sockets` at its share of `frames` full-size
/// segments of `mss` bytes, or lifts the caps when at most one has bytes to send.
pub(super) fn share(sockets: &mut SocketSet<'_>, frames: usize, mss: usize) {
    let senders = sockets
        .iter()
        .filter(|(_, s)| matches!(s, Socket::Tcp(t) if t.send_queue() > 0))
        .count();
    let cap = cap_for(frames, mss, senders);
    for (_, s) in sockets.iter_mut() {
        if let Socket::Tcp(t) = s {
            if t.flight_cap() != cap {
                t.set_flight_cap(cap);
            }
        }
    }
}

/// The cap in flight of each of `senders` connections: `None` for a lone
/// sender, else its share of `frames` segments of `mss` bytes.
fn cap_for(frames: usize, mss: usize, senders: usize) -> Option<usize> {
    (senders > 1).then(|| cap_of(frames, mss, senders))
}

/// Each of `senders` connections' share of `frames` segments of `mss` bytes.
fn cap_of(frames: usize, mss: usize, senders: usize) -> usize {
    (frames / senders.max(1)).max(MIN_SEGMENTS) * mss
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::socket::tcp;

    #[test]
    fn senders_share_the_budget_equally() {
        assert_eq!(cap_of(34, 1460, 0), 34 * 1460);
        assert_eq!(cap_of(34, 1460, 1), 34 * 1460);
        assert_eq!(cap_of(34, 1460, 4), 8 * 1460);
    }

    #[test]
    fn each_keeps_two_segments_however_many_share() {
        assert_eq!(cap_of(34, 1460, 100), 2 * 1460);
    }

    #[test]
    fn a_lone_sender_is_not_capped() {
        assert_eq!(cap_for(34, 1460, 0), None);
        assert_eq!(cap_for(34, 1460, 1), None);
        assert_eq!(cap_for(34, 1460, 2), Some(17 * 1460));
    }

    #[test]
    fn idle_sockets_have_their_caps_lifted() {
        let mut set = SocketSet::new(Vec::new());
        let buf = || tcp::SocketBuffer::new(vec![0u8; 64]);
        let h = set.add(tcp::Socket::new(buf(), buf()));
        set.get_mut::<tcp::Socket>(h).set_flight_cap(Some(5000));
        share(&mut set, 34, 1000);
        assert_eq!(set.get::<tcp::Socket>(h).flight_cap(), None);
    }
}
