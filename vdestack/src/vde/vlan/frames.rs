//! 802.1Q tagging and untagging of one frame, as libvdeplug_vlan does it. Pure: no
//! I/O, so every rule is tested here.

use super::Config;

/// Length of an 802.1Q tag (TPID + TCI).
pub const TAG_LEN: usize = 4;

/// The smallest frame with a tag: addresses, TPID, TCI, inner type.
const TAGGED_MIN: usize = 14 + TAG_LEN;

/// The VLAN ID bits of a TCI.
const VID_MASK: u16 = 0x0fff;

/// What to send for a frame the local side sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// The frame goes out unchanged.
    AsIs,
    /// The frame to send is the first `n` bytes of the scratch buffer.
    Built(usize),
    /// The frame is dropped (and reported as sent, as upstream does).
    Drop,
}

/// Whether a VID may be carried tagged: 0, 1 and 4095 are reserved (upstream's
/// `vlanok`).
pub fn vlan_ok(vid: u16) -> bool {
    ((vid + 1) & VID_MASK) > 2
}

fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

fn vid(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[14], frame[15]]) & VID_MASK
}

/// Which side a VID is seen from, to map it to the other side.
#[derive(Clone, Copy)]
enum Dir {
    /// The local side's VID, carried on the network as the mapped one.
    Local,
    /// The network's VID, seen locally as the mapped one.
    Network,
}

impl Config {
    /// The VID a tagged frame gets on the other side, if it may pass (upstream's
    /// `tagck` followed by `vlanok`): the first listed pair that names it, else
    /// itself on a trunk.
    fn map(&self, vid: u16, dir: Dir) -> Option<u16> {
        let listed = self.tags.iter().find_map(|&(local, net)| match dir {
            Dir::Local if local == vid => Some(net),
            Dir::Network if net == vid => Some(local),
            _ => None,
        });
        let mapped = match listed {
            Some(v) if v != 0 => v,
            _ if self.trunk && vlan_ok(vid) => vid,
            _ => return None,
        };
        vlan_ok(mapped).then_some(mapped)
    }

    /// Decides what to send for `frame` (from the local side); a frame to build is
    /// written into `out`, which must hold `frame.len() + TAG_LEN` bytes.
    pub fn outgoing(&self, frame: &[u8], out: &mut [u8]) -> Outgoing {
        let len = frame.len();
        if len < 14 {
            return Outgoing::Drop;
        }
        if ethertype(frame) == self.tpid {
            if len < TAGGED_MIN {
                return Outgoing::Drop;
            }
            let vid = vid(frame);
            if vid == self.untag {
                // Untagged traffic of the network, seen tagged here: untag it.
                out[..12].copy_from_slice(&frame[..12]);
                out[12..len - TAG_LEN].copy_from_slice(&frame[16..]);
                return Outgoing::Built(len - TAG_LEN);
            }
            return match self.map(vid, Dir::Local) {
                Some(net) => {
                    // The TCI becomes the bare VID: priority and DEI are cleared.
                    out[..len].copy_from_slice(frame);
                    out[14..16].copy_from_slice(&net.to_be_bytes());
                    Outgoing::Built(len)
                }
                None => Outgoing::Drop,
            };
        }
        match self.untagged {
            0 if self.untag == 0 => Outgoing::AsIs,
            0 | VID_MASK => Outgoing::Drop,
            vid => {
                out[..12].copy_from_slice(&frame[..12]);
                out[12..14].copy_from_slice(&self.tpid.to_be_bytes());
                out[14..16].copy_from_slice(&vid.to_be_bytes());
                out[16..len + TAG_LEN].copy_from_slice(&frame[12..]);
                Outgoing::Built(len + TAG_LEN)
            }
        }
    }

    /// Turns a frame received from the network (the first `n` bytes of `buf`) into
    /// what the local side sees, in place; returns its new length, or `None` to
    /// drop it. A frame that grows by a tag is cut at the end of `buf`.
    pub fn incoming(&self, buf: &mut [u8], n: usize) -> Option<usize> {
        if n < 14 {
            return Some(n);
        }
        if ethertype(buf) == self.tpid {
            if n < TAGGED_MIN {
                return None;
            }
            let vid = vid(buf);
            if vid == self.untagged {
                buf.copy_within(16..n, 12);
                return Some(n - TAG_LEN);
            }
            let local = self.map(vid, Dir::Network)?;
            buf[14..16].copy_from_slice(&local.to_be_bytes());
            // Upstream returns the buffer's size here; the frame's is right.
            return Some(n);
        }
        if self.untag != 0 {
            if buf.len() < TAGGED_MIN {
                return None; // no room for the tag the local side expects
            }
            let grown = (n + TAG_LEN).min(buf.len());
            buf.copy_within(12..grown - TAG_LEN, 16);
            buf[12..14].copy_from_slice(&self.tpid.to_be_bytes());
            buf[14..16].copy_from_slice(&self.untag.to_be_bytes());
            return Some(grown);
        }
        if self.untagged != 0 {
            return None;
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const IPV4: [u8; 2] = [0x08, 0x00];

    fn plain(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&IPV4);
        f.extend_from_slice(payload);
        f
    }

    fn tagged(tpid: u16, tci: u16, payload: &[u8]) -> Vec<u8> {
        let p = plain(payload);
        let mut f = p[..12].to_vec();
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
        f.extend_from_slice(&p[12..]);
        f
    }

    fn send(cfg: &Config, frame: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; frame.len() + TAG_LEN];
        match cfg.outgoing(frame, &mut out) {
            Outgoing::AsIs => Some(frame.to_vec()),
            Outgoing::Built(n) => Some(out[..n].to_vec()),
            Outgoing::Drop => None,
        }
    }

    fn recv(cfg: &Config, frame: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 100];
        buf[..frame.len()].copy_from_slice(frame);
        cfg.incoming(&mut buf, frame.len())
            .map(|n| buf[..n].to_vec())
    }

    fn cfg(s: &str) -> Config {
        parse(s).unwrap()
    }

    #[test]
    fn untagged_vlan_tags_and_untags() {
        let c = cfg("3");
        let p = plain(b"hello");
        assert_eq!(send(&c, &p), Some(tagged(0x8100, 3, b"hello")));
        assert_eq!(recv(&c, &tagged(0x8100, 3, b"hello")), Some(p.clone()));
        // The priority bits do not change which VLAN a frame is on.
        assert_eq!(recv(&c, &tagged(0x8100, 0xe003, b"hello")), Some(p.clone()));
        // Another VLAN, and untagged traffic, do not reach it.
        assert_eq!(recv(&c, &tagged(0x8100, 4, b"hello")), None);
        assert_eq!(recv(&c, &p), None);
        // Tagged frames it sends on VLANs it is not on are dropped.
        assert_eq!(send(&c, &tagged(0x8100, 5, b"x")), None);
    }

    #[test]
    fn no_vlan_passes_untagged_traffic() {
        let c = cfg("");
        let p = plain(b"a");
        assert_eq!(send(&c, &p), Some(p.clone()));
        assert_eq!(recv(&c, &p), Some(p.clone()));
        // VID 0 priority tags are stripped both ways (tag2untag and untagged are 0).
        assert_eq!(send(&c, &tagged(0x8100, 0xa000, b"a")), Some(p.clone()));
        assert_eq!(recv(&c, &tagged(0x8100, 0xa000, b"a")), Some(p));
    }

    #[test]
    fn untag_option_sees_untagged_traffic_tagged() {
        let c = cfg("3/untag=4");
        let p = plain(b"u");
        assert_eq!(recv(&c, &p), Some(tagged(0x8100, 4, b"u")));
        assert_eq!(send(&c, &tagged(0x8100, 4, b"u")), Some(p.clone()));
        // Untagged local traffic still goes to VLAN 3.
        assert_eq!(send(&c, &p), Some(tagged(0x8100, 3, b"u")));
        // Without an untagged VLAN, untagged local frames are dropped (tag2untag set).
        let c = cfg("/u=4");
        assert_eq!(send(&c, &p), None);
    }

    #[test]
    fn tag_lists_remap_both_ways_and_clear_priority() {
        let c = cfg("3/tag=10:11-12:12-11");
        assert_eq!(
            send(&c, &tagged(0x8100, 0x200a, b"t")),
            Some(tagged(0x8100, 10, b"t"))
        );
        assert_eq!(
            send(&c, &tagged(0x8100, 11, b"t")),
            Some(tagged(0x8100, 12, b"t"))
        );
        assert_eq!(
            send(&c, &tagged(0x8100, 12, b"t")),
            Some(tagged(0x8100, 11, b"t"))
        );
        assert_eq!(
            recv(&c, &tagged(0x8100, 12, b"t")),
            Some(tagged(0x8100, 11, b"t"))
        );
        assert_eq!(
            recv(&c, &tagged(0x8100, 0x600a, b"t")),
            Some(tagged(0x8100, 10, b"t"))
        );
        assert_eq!(recv(&c, &tagged(0x8100, 13, b"t")), None);
        assert_eq!(send(&c, &tagged(0x8100, 13, b"t")), None);
        // A single tag works (upstream ignores a one-character tag string).
        let c = cfg("/t=5");
        assert_eq!(
            send(&c, &tagged(0x8100, 5, b"t")),
            Some(tagged(0x8100, 5, b"t"))
        );
    }

    #[test]
    fn trunk_passes_any_usable_vid() {
        let c = cfg("/x");
        for vid in [2, 100, 4094] {
            let f = tagged(0x8100, vid, b"k");
            assert_eq!(send(&c, &f), Some(f.clone()));
            assert_eq!(recv(&c, &f), Some(f.clone()));
        }
        for vid in [1, 4095] {
            let f = tagged(0x8100, vid, b"k");
            assert_eq!(send(&c, &f), None, "vid {vid}");
            assert_eq!(recv(&c, &f), None, "vid {vid}");
        }
    }

    #[test]
    fn qinq_adds_an_s_tag_over_a_c_tag() {
        let c = cfg("5/qinq");
        let inner = tagged(0x8100, 4, b"q");
        let mut expect = inner[..12].to_vec();
        expect.extend_from_slice(&[0x88, 0xa8, 0, 5]);
        expect.extend_from_slice(&inner[12..]);
        assert_eq!(send(&c, &inner), Some(expect.clone()));
        assert_eq!(recv(&c, &expect), Some(inner));
    }

    #[test]
    fn reserved_untagged_vlan_drops_local_untagged_traffic() {
        let c = cfg("4095");
        assert_eq!(send(&c, &plain(b"r")), None);
    }

    #[test]
    fn short_frames() {
        let c = cfg("3");
        assert_eq!(send(&c, &[0u8; 13]), None);
        assert_eq!(recv(&c, &[0u8; 13]), Some(vec![0u8; 13]));
        // A TPID without room for a tag is dropped, not read past its end.
        let mut f = plain(b"");
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&[0, 3]);
        assert_eq!(recv(&c, &f), None);
        assert_eq!(send(&c, &f), None);
    }

    #[test]
    fn a_grown_frame_is_cut_at_the_buffer() {
        let c = cfg("/u=4");
        let p = plain(&[7u8; 20]);
        let mut buf = p.clone();
        let n = c.incoming(&mut buf, p.len()).unwrap();
        assert_eq!(n, p.len());
        assert_eq!(&buf[..16], &tagged(0x8100, 4, b"")[..16]);
        // A buffer too small for any tagged frame gets nothing (found by fuzzing).
        let mut small = plain(b"x");
        assert_eq!(c.incoming(&mut small, 15), None);
    }
}
