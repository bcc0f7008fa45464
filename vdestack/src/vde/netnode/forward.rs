//! The forwarding core of `hub://`, `switch://`, `multi://` and `bonding://`, free of
//! I/O: given the port a frame came from, the frame and the time, it says which
//! ports the frame goes to.
//!
//! Ports are small integers; [`HOST`] is the process that opened the node (its
//! `send`/`recv` side). In a hub or switch it takes part like any other port; in a
//! multilink or bond the clients are links of the host's one cable: what they send
//! goes to the host only, and what the host sends goes on every link (`multi`) or
//! on the next link in turn (`bonding`), as libvdeplug4's netnode does.

use std::time::{Duration, Instant};

use super::Kind;
use crate::vde::mactable::{dst_mac, is_group, src_mac, vlan_of, MacTable};
use crate::vde::MIN_FRAME;

/// A port number. Client ports are numbered from 1.
pub type PortId = usize;

/// The node's own port: the process using the plug.
pub const HOST: PortId = 0;

/// How long a learned address is trusted (upstream's default).
pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(120);

/// Decides where frames go.
#[derive(Debug)]
pub struct Forwarder {
    kind: Kind,
    table: MacTable<PortId>,
    /// Active ports, sorted, [`HOST`] first.
    ports: Vec<PortId>,
    /// The client ports in libvdeplug4's `porttab` order (joined order; a port
    /// that leaves is replaced by the last one), which decides whose turn it is
    /// in a bond.
    links: Vec<PortId>,
    /// The index in `links` of the link a bond used last.
    last_link: usize,
}

impl Forwarder {
    /// A node of `kind` whose MAC table keeps entries for `expire` and holds at most
    /// `capacity` of them (only a switch has a table). Only the host port exists.
    pub fn new(kind: Kind, expire: Duration, capacity: usize) -> Self {
        Self {
            kind,
            table: MacTable::new(expire, capacity),
            ports: vec![HOST],
            links: Vec::new(),
            last_link: 0,
        }
    }

    /// Adds a port.
    pub fn add_port(&mut self, port: PortId) {
        if let Err(i) = self.ports.binary_search(&port) {
            self.ports.insert(i, port);
            if port != HOST {
                self.links.push(port);
            }
        }
    }

    /// Removes a port and forgets every address learned on it, so frames for those
    /// addresses are flooded (and relearned) rather than sent into the void.
    pub fn remove_port(&mut self, port: PortId) {
        if let Ok(i) = self.ports.binary_search(&port) {
            self.ports.remove(i);
        }
        if let Some(i) = self.links.iter().position(|&p| p == port) {
            self.links.swap_remove(i);
        }
        self.table.forget(&port);
    }

    /// The active ports, [`HOST`] included.
    pub fn ports(&self) -> &[PortId] {
        &self.ports
    }

    /// Fills `out` (cleared first) with the ports a frame from `from` goes to. Never
    /// includes `from`. Frames shorter than 14 bytes go nowhere. Does not allocate
    /// once `out` has grown to the number of ports.
    pub fn forward(&mut self, from: PortId, frame: &[u8], now: Instant, out: &mut Vec<PortId>) {
        out.clear();
        if frame.len() < MIN_FRAME {
            return;
        }
        match (self.kind, from) {
            // A link of a multilink or bond carries frames for the host only.
            (Kind::Multi | Kind::Bonding, from) if from != HOST => {
                out.push(HOST);
                return;
            }
            (Kind::Multi, _) => {
                out.extend_from_slice(&self.links);
                return;
            }
            (Kind::Bonding, _) => {
                // Round robin, advancing before use: with two links the first
                // frame takes the second (upstream's order).
                if !self.links.is_empty() {
                    self.last_link = (self.last_link + 1) % self.links.len();
                    out.push(self.links[self.last_link]);
                }
                return;
            }
            _ => {}
        }
        if self.kind == Kind::Switch {
            let vlan = vlan_of(frame);
            let src = src_mac(frame);
            // Only learn from a port we know: a frame racing with the port's removal
            // must not resurrect an entry pointing at a dead port.
            if self.ports.binary_search(&from).is_ok() {
                self.table.learn(src, vlan, from, now);
            }
            let dst = dst_mac(frame);
            if !is_group(&dst) {
                if let Some(&to) = self.table.lookup(&dst, vlan, now) {
                    // Known on the sender's own segment: the destination has seen
                    // it already, so it is filtered, as any bridge does.
                    if to != from && self.ports.binary_search(&to).is_ok() {
                        out.push(to);
                    }
                    return;
                }
            }
        }
        out.extend(self.ports.iter().copied().filter(|&p| p != from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: u8, src: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f
    }

    fn tagged(dst: u8, src: u8, vlan: u16) -> Vec<u8> {
        let mut f = frame(dst, src);
        f.splice(12..12, [0x81, 0x00, (vlan >> 8) as u8, vlan as u8]);
        f
    }

    fn node(kind: Kind, ports: &[PortId]) -> Forwarder {
        let mut n = Forwarder::new(kind, Duration::from_secs(10), 16);
        for &p in ports {
            n.add_port(p);
        }
        n
    }

    #[test]
    fn hub_floods_to_all_but_the_sender() {
        let mut n = node(Kind::Hub, &[1, 2, 3]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(2, &frame(1, 2), t, &mut out);
        assert_eq!(out, [HOST, 1, 3]);
        // Even after both sides talked: a hub never learns.
        n.forward(1, &frame(2, 1), t, &mut out);
        n.forward(2, &frame(1, 2), t, &mut out);
        assert_eq!(out, [HOST, 1, 3]);
        n.forward(HOST, &frame(1, 9), t, &mut out);
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn switch_learns_and_unicasts() {
        let mut n = node(Kind::Switch, &[1, 2, 3]);
        let t = Instant::now();
        let mut out = Vec::new();
        // Unknown destination: flood.
        n.forward(1, &frame(2, 1), t, &mut out);
        assert_eq!(out, [HOST, 2, 3]);
        // Now 1 is known: the answer goes only there.
        n.forward(2, &frame(1, 2), t, &mut out);
        assert_eq!(out, [1]);
        n.forward(3, &frame(2, 3), t, &mut out);
        assert_eq!(out, [2]);
        // The host learns and is learned like any port.
        n.forward(HOST, &frame(1, 7), t, &mut out);
        assert_eq!(out, [1]);
        n.forward(3, &frame(7, 3), t, &mut out);
        assert_eq!(out, [HOST]);
    }

    #[test]
    fn broadcast_and_multicast_flood() {
        let mut n = node(Kind::Switch, &[1, 2]);
        let t = Instant::now();
        let mut out = Vec::new();
        let mut f = frame(0, 1);
        f[0..6].fill(0xff);
        n.forward(1, &f, t, &mut out);
        assert_eq!(out, [HOST, 2]);
        f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        n.forward(2, &f, t, &mut out);
        assert_eq!(out, [HOST, 1]);
    }

    #[test]
    fn never_back_to_the_sender() {
        let mut n = node(Kind::Switch, &[1, 2]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(1, &frame(2, 1), t, &mut out);
        n.forward(1, &frame(3, 2), t, &mut out); // 2 seen on port 1 now
        n.forward(1, &frame(2, 1), t, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A station that moves is relearned at once.
        n.forward(2, &frame(1, 2), t, &mut out);
        assert_eq!(out, [1]);
        n.forward(1, &frame(2, 1), t, &mut out);
        assert_eq!(out, [2]);
    }

    #[test]
    fn entries_expire() {
        let mut n = node(Kind::Switch, &[1, 2]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(1, &frame(2, 1), t, &mut out);
        n.forward(2, &frame(1, 2), t + Duration::from_secs(9), &mut out);
        assert_eq!(out, [1]);
        n.forward(2, &frame(1, 2), t + Duration::from_secs(11), &mut out);
        assert_eq!(out, [HOST, 1]);
    }

    #[test]
    fn closed_ports_are_forgotten() {
        let mut n = node(Kind::Switch, &[1, 2, 3]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(1, &frame(2, 1), t, &mut out);
        n.remove_port(1);
        n.forward(2, &frame(1, 2), t, &mut out);
        assert_eq!(out, [HOST, 3], "flooded, and never to the closed port");
        // A late frame from the closed port is not learned.
        n.forward(1, &frame(2, 1), t, &mut out);
        n.forward(2, &frame(1, 2), t, &mut out);
        assert_eq!(out, [HOST, 3]);
    }

    #[test]
    fn vlans_are_separate_with_a_12_bit_mask() {
        let mut n = node(Kind::Switch, &[1, 2]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(1, &tagged(2, 1, 0x405), t, &mut out);
        // Same MAC on VLAN 5 (0x405 & 0x3ff, upstream's bug) is still unknown.
        n.forward(2, &tagged(1, 2, 5), t, &mut out);
        assert_eq!(out, [HOST, 1]);
        n.forward(2, &tagged(1, 2, 0x405), t, &mut out);
        assert_eq!(out, [1]);
    }

    #[test]
    fn multi_sends_on_every_link_and_links_reach_only_the_host() {
        let mut n = node(Kind::Multi, &[3, 1, 2]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(HOST, &frame(1, 9), t, &mut out);
        assert_eq!(out, [3, 1, 2]);
        // Even for a destination seen on one link: a multilink never learns.
        n.forward(1, &frame(9, 1), t, &mut out);
        assert_eq!(out, [HOST]);
        n.forward(HOST, &frame(1, 9), t, &mut out);
        assert_eq!(out, [3, 1, 2]);
        let mut bcast = frame(0, 2);
        bcast[0..6].fill(0xff);
        n.forward(2, &bcast, t, &mut out);
        assert_eq!(
            out,
            [HOST],
            "a link's broadcast does not go to the other links"
        );
        // Hand-off: a new link joins, the old one leaves.
        n.add_port(4);
        n.remove_port(3);
        n.forward(HOST, &frame(1, 9), t, &mut out);
        assert_eq!(out, [4, 1, 2], "the last link takes the freed place");
        n.forward(HOST, &[0u8; 13], t, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn bonding_takes_turns_as_upstream_does() {
        let mut n = node(Kind::Bonding, &[]);
        let t = Instant::now();
        let mut out = Vec::new();
        n.forward(HOST, &frame(1, 9), t, &mut out);
        assert!(out.is_empty(), "no link: dropped");
        n.add_port(1);
        n.add_port(2);
        let mut seen = Vec::new();
        for _ in 0..6 {
            n.forward(HOST, &frame(1, 9), t, &mut out);
            assert_eq!(out.len(), 1);
            seen.push(out[0]);
        }
        // The index moves before use: the first frame takes the second link.
        assert_eq!(seen, [2, 1, 2, 1, 2, 1]);
        n.forward(2, &frame(9, 1), t, &mut out);
        assert_eq!(out, [HOST]);
        n.add_port(3);
        n.remove_port(1); // 3 takes 1's place: links [3, 2]
        let mut seen = Vec::new();
        for _ in 0..4 {
            n.forward(HOST, &frame(1, 9), t, &mut out);
            seen.push(out[0]);
        }
        assert_eq!(seen, [2, 3, 2, 3]);
        n.remove_port(2);
        n.remove_port(3);
        n.forward(HOST, &frame(1, 9), t, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn runts_go_nowhere_and_big_frames_fit() {
        let mut n = node(Kind::Hub, &[1]);
        let mut out = vec![7];
        n.forward(1, &[0u8; 13], Instant::now(), &mut out);
        assert!(out.is_empty());
        n.forward(1, &vec![0u8; 9000], Instant::now(), &mut out);
        assert_eq!(out, [HOST]);
    }
}
