//! A MAC learning table with expiry, shared by the switch core, `vxvde://` and
//! `vxlan://`. Pure: the caller passes the current time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An Ethernet address.
pub type Mac = [u8; 6];

/// Whether a MAC is a group (multicast or broadcast) address: the I/G bit.
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// The destination MAC of a frame (the caller has checked it is at least 14 bytes).
pub fn dst_mac(frame: &[u8]) -> Mac {
    frame[0..6].try_into().expect("caller checked frame length")
}

/// The source MAC of a frame (the caller has checked it is at least 14 bytes).
pub fn src_mac(frame: &[u8]) -> Mac {
    frame[6..12]
        .try_into()
        .expect("caller checked frame length")
}

/// The 802.1Q VLAN id of a frame, or 0 if untagged.
pub fn vlan_of(frame: &[u8]) -> u16 {
    if frame.len() >= 16 && frame[12] == 0x81 && frame[13] == 0x00 {
        u16::from_be_bytes([frame[14], frame[15]]) & 0xfff
    } else {
        0
    }
}

#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    seen: Instant,
}

/// (MAC, VLAN) → where that MAC was last seen, forgotten after `expire`.
///
/// Bounded: when `capacity` entries are held, expired ones are purged, and if none
/// are, the new entry is not stored (the frame is flooded instead, which is always
/// correct for a learning switch).
#[derive(Debug, Clone)]
pub struct MacTable<V> {
    entries: HashMap<(Mac, u16), Entry<V>>,
    expire: Duration,
    capacity: usize,
}

impl<V: Clone + PartialEq> MacTable<V> {
    /// A table whose entries live for `expire` and that holds at most `capacity`.
    pub fn new(expire: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            expire,
            capacity: capacity.max(1),
        }
    }

    /// Records that `mac` on `vlan` was seen at `value`. Group MACs are not learned.
    pub fn learn(&mut self, mac: Mac, vlan: u16, value: V, now: Instant) {
        if is_group(&mac) {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&(mac, vlan)) {
            let expire = self.expire;
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.seen) < expire);
            if self.entries.len() >= self.capacity {
                return;
            }
        }
        self.entries.insert((mac, vlan), Entry { value, seen: now });
    }

    /// Where `mac` on `vlan` is, if it was learned and has not expired.
    pub fn lookup(&self, mac: &Mac, vlan: u16, now: Instant) -> Option<&V> {
        self.entries
            .get(&(*mac, vlan))
            .filter(|e| now.saturating_duration_since(e.seen) < self.expire)
            .map(|e| &e.value)
    }

    /// Forgets every entry pointing at `value` (a port that closed, a vxvde peer that
    /// said goodbye).
    pub fn forget(&mut self, value: &V) {
        self.entries.retain(|_, e| &e.value != value);
    }

    /// How many entries are held (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [2, 0, 0, 0, 0, 1];
    const B: Mac = [2, 0, 0, 0, 0, 2];
    const BCAST: Mac = [0xff; 6];

    #[test]
    fn learns_expires_and_forgets() {
        let t0 = Instant::now();
        let mut t = MacTable::new(Duration::from_secs(10), 16);
        t.learn(A, 0, 1u32, t0);
        t.learn(BCAST, 0, 2u32, t0);
        assert_eq!(t.lookup(&A, 0, t0), Some(&1));
        assert_eq!(t.lookup(&A, 5, t0), None, "vlan is part of the key");
        assert_eq!(
            t.lookup(&BCAST, 0, t0),
            None,
            "group MACs are never learned"
        );
        assert_eq!(t.lookup(&A, 0, t0 + Duration::from_secs(11)), None);
        t.learn(B, 0, 1, t0);
        t.forget(&1);
        assert!(t.is_empty());
    }

    #[test]
    fn bounded() {
        let t0 = Instant::now();
        let mut t = MacTable::new(Duration::from_secs(10), 2);
        t.learn(A, 0, 1u32, t0);
        t.learn(B, 0, 2, t0);
        t.learn([2, 0, 0, 0, 0, 3], 0, 3, t0);
        assert_eq!(t.len(), 2);
        // Once the old ones expire there is room again.
        let later = t0 + Duration::from_secs(20);
        t.learn([2, 0, 0, 0, 0, 3], 0, 3, later);
        assert_eq!(t.lookup(&[2, 0, 0, 0, 0, 3], 0, later), Some(&3));
    }

    #[test]
    fn vlan_tag() {
        let mut f = vec![0u8; 18];
        f[12] = 0x81;
        f[14] = 0x10;
        f[15] = 0x05;
        assert_eq!(vlan_of(&f), 0x005);
        f[12] = 0x08;
        assert_eq!(vlan_of(&f), 0);
    }
}
