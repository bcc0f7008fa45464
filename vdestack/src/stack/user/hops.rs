//! The hop limit (IPv4 TTL) datagrams arrive with, for the programs that ask
//! for it (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`: `ping` prints it). smoltcp's
//! sockets do not say it, so the devices note it as packets come in
//! ([`Recording`]), per source address: the last UDP or ICMP packet of each
//! source tells. A datagram is handed to its socket's pair in the poll that
//! received it, so the note is that of its own packet, unless two packets of
//! one source arrived in one poll with different hop limits.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, RxToken};
use smoltcp::time::Instant;

/// How many sources are remembered (then the notes start over).
const MAX_SOURCES: usize = 1024;

/// The hop limit of the last UDP or ICMP packet received from each source.
#[derive(Debug, Default)]
pub(super) struct Hops {
    last: HashMap<IpAddr, u8>,
}

impl Hops {
    /// Notes the hop limit of `frame` (with an Ethernet header if `ethernet`),
    /// if it is a UDP or ICMP packet.
    fn note(&mut self, frame: &[u8], ethernet: bool) {
        let packet = if ethernet {
            match frame.get(12..14) {
                Some([0x08, 0x00] | [0x86, 0xdd]) => &frame[14..],
                _ => return,
            }
        } else {
            frame
        };
        if let Some((src, hops)) = hop_limit_of(packet) {
            if self.last.len() >= MAX_SOURCES && !self.last.contains_key(&src) {
                self.last.clear();
            }
            self.last.insert(src, hops);
        }
    }

    /// The hop limit the last datagram from `src` arrived with.
    pub(super) fn of(&self, src: IpAddr) -> Option<u8> {
        self.last.get(&src).copied()
    }
}

/// The source and hop limit of an IP packet carrying UDP, ICMP or ICMPv6.
fn hop_limit_of(packet: &[u8]) -> Option<(IpAddr, u8)> {
    match packet.first()? >> 4 {
        4 => {
            let proto = *packet.get(9)?;
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            matches!(proto, 1 | 17).then(|| (IpAddr::V4(Ipv4Addr::from(src)), packet[8]))
        }
        6 => {
            let next = *packet.get(6)?;
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            matches!(next, 17 | 58).then(|| (IpAddr::V6(Ipv6Addr::from(src)), packet[7]))
        }
        _ => None,
    }
}

/// A device whose received packets' hop limits are noted in `hops`.
pub(super) struct Recording<'a, D> {
    pub(super) dev: &'a mut D,
    pub(super) hops: &'a mut Hops,
    /// Its frames start with an Ethernet header.
    pub(super) ethernet: bool,
}

pub(super) struct RecordingRx<'a, R> {
    rx: R,
    hops: &'a mut Hops,
    ethernet: bool,
}

impl<D: Device> Device for Recording<'_, D> {
    type RxToken<'b>
        = RecordingRx<'b, D::RxToken<'b>>
    where
        Self: 'b;
    type TxToken<'b>
        = D::TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.dev.receive(now)?;
        let rx = RecordingRx {
            rx,
            hops: &mut *self.hops,
            ethernet: self.ethernet,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.dev.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.dev.capabilities()
    }
}

impl<R: RxToken> RxToken for RecordingRx<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        let (hops, ethernet) = (self.hops, self.ethernet);
        self.rx.consume(|frame| {
            hops.note(frame, ethernet);
            f(frame)
        })
    }

    fn meta(&self) -> PacketMeta {
        self.rx.meta()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(proto: u8, ttl: u8) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[8] = ttl;
        p[9] = proto;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p
    }

    fn v6(next: u8, hops: u8) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = next;
        p[7] = hops;
        p[8..24].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        p
    }

    #[test]
    fn udp_and_icmp_packets_are_noted_by_source() {
        let mut h = Hops::default();
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let b: IpAddr = "fd00::2".parse().unwrap();
        h.note(&v4(1, 64), false);
        assert_eq!(h.of(a), Some(64));
        h.note(&v4(17, 63), false);
        assert_eq!(h.of(a), Some(63));
        // TCP is not noted.
        h.note(&v4(6, 9), false);
        assert_eq!(h.of(a), Some(63));
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x86, 0xdd]);
        eth.extend_from_slice(&v6(58, 255));
        h.note(&eth, true);
        assert_eq!(h.of(b), Some(255));
        // ARP, and short or foreign packets, are not.
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&v4(1, 1));
        h.note(&arp, true);
        h.note(&[0x45, 0, 0], false);
        h.note(&[], false);
        assert_eq!(h.of(a), Some(63));
    }

    #[test]
    fn the_notes_are_bounded() {
        let mut h = Hops::default();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let mut p = v4(17, 7);
            p[12..16].copy_from_slice(&i.to_be_bytes());
            h.note(&p, false);
        }
        assert!(h.last.len() <= MAX_SOURCES);
    }
}
