//! smoltcp devices: a VDE plug ([`PlugDevice`], frames straight between smoltcp
//! and the plug, through the pool thread's buffers, so an idle stack holds no
//! frame buffer), and `lo` ([`LoopDevice`], a queue of IP packets).
//!
//! Large segments: on a plug that carries them whole ([`crate::vde::Offload`]:
//! `inproc://`, whose ports are all stacks of this process), smoltcp is told the
//! link takes 64 KiB packets, so its TCP sends (and announces) segments of up to
//! 64 KiB; each goes out with a [`VnetHdr`] that says how to cut it into frames of
//! the link's real MTU ([`gso_header`]): whole to a port that offloads (another
//! such stack, a kernel stack's tap), cut by the segment for any other. Frames
//! that come in whole have their pending checksum completed first.
//!
//! Segmentation offload: on a multicast datagram link whose plug cuts segments
//! itself (`vxvde://`, `vxlan://`: [`crate::vde::SegmentBatching`], one
//! `sendmmsg` per segment), smoltcp keeps the link's real MTU and MSS but sends
//! TCP segments of up to [`TSO_MOST`] bytes, which the plug cuts at the
//! connection's MSS; smoltcp then leaves TCP checksums to this device
//! ([`fill_tcp_checksum`] for the frames it does not cut). Only those links:
//! a `vde://` switch's queue (a Unix datagram socket's ten frames) drops such
//! bursts, which cost a two-user-stack echo through a Debian `vde_switch` 17 s
//! instead of 1 s.

use std::collections::VecDeque;
use std::io;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::vde::gso::{self, VnetHdr};
use crate::vde::{Plug, Recv};

/// The IP packet size smoltcp is told a large-segment link takes.
pub(super) const LARGE_MTU: usize = 65535;

/// The largest TCP segment (frame bytes) smoltcp hands a plug that cuts segments
/// itself: about 11 full-size frames, sent with one `sendmmsg`. Larger bursts
/// overran a `vxvde://` member's socket queue (about 46 frames) more often: toward
/// a Debian vdens, 16 KiB gave 77-92 MB/s with one stream, 64 KiB 73-76.
const TSO_MOST: usize = 16 << 10;

/// Ethernet header bytes on top of the MTU.
const ETH_HDR: usize = 14;

/// A plug seen by smoltcp for one poll.
pub(super) struct PlugDevice<'a> {
    pub(super) plug: &'a mut dyn Plug,
    pub(super) rx: &'a mut [u8],
    pub(super) tx: &'a mut [u8],
    /// The link's MTU (IP bytes).
    pub(super) mtu: usize,
    /// The plug carries large segments whole (its offload is on).
    pub(super) large: bool,
    /// The plug cuts large TCP segments itself ([`crate::vde::SegmentBatching`]):
    /// smoltcp hands it segments of up to [`TSO_MOST`] bytes with the link's
    /// real MSS (its segmentation offload), and leaves TCP checksums to this
    /// device.
    pub(super) tso: bool,
    /// The link's addresses, when smoltcp takes any and frames for others are
    /// dropped here (see `filter.rs`).
    pub(super) only: Option<&'a super::filter::Addrs>,
    /// Set when the plug says its network is gone.
    pub(super) closed: bool,
    /// The bytes of the frames received and sent (what tells bulk traffic).
    pub(super) moved: usize,
}

pub(super) struct PlugRx<'a> {
    frame: &'a [u8],
}

pub(super) struct PlugTx<'a> {
    plug: &'a mut dyn Plug,
    buf: &'a mut [u8],
    /// The link's real MTU, when large segments go whole.
    large_mtu: Option<usize>,
    /// The plug cuts large segments, and TCP checksums are ours to fill.
    tso: bool,
    /// The MSS smoltcp asked this frame to be cut at (segmentation offload).
    cut_at: Option<u16>,
    moved: &'a mut usize,
}

/// Receives one frame from `plug` into `buf`: its length, or `None` when nothing
/// is queued (or the plug is closed: `closed` set).
pub(super) fn recv_frame(plug: &mut dyn Plug, buf: &mut [u8], closed: &mut bool) -> Option<usize> {
    loop {
        match plug.recv(buf) {
            Ok(Recv::Frame(n)) => return Some(n),
            Ok(Recv::Nothing) => continue,
            Ok(Recv::Closed) => {
                *closed = true;
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

impl Device for PlugDevice<'_> {
    type RxToken<'b>
        = PlugRx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = PlugTx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(PlugRx<'_>, PlugTx<'_>)> {
        let n = loop {
            let n = if self.large {
                let n = recv_large(self.plug, self.rx, &mut self.closed)?;
                super::mss::widen_syn_mss(&mut self.rx[..n], self.mtu);
                n
            } else {
                recv_frame(self.plug, self.rx, &mut self.closed)?
            };
            match self.only {
                Some(addrs) if !super::filter::wanted(&self.rx[..n], addrs) => continue,
                _ => break n,
            }
        };
        let large_mtu = self.large.then_some(self.mtu);
        self.moved += n;
        Some((
            PlugRx {
                frame: &self.rx[..n],
            },
            PlugTx {
                plug: self.plug,
                buf: self.tx,
                large_mtu,
                tso: self.tso,
                cut_at: None,
                moved: &mut self.moved,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<PlugTx<'_>> {
        Some(PlugTx {
            plug: self.plug,
            buf: self.tx,
            large_mtu: self.large.then_some(self.mtu),
            tso: self.tso,
            cut_at: None,
            moved: &mut self.moved,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        plug_caps(self.mtu, self.large, self.tso)
    }
}

/// The largest frame smoltcp is told a link takes.
pub(super) fn link_max(mtu: usize, large: bool) -> usize {
    if large {
        LARGE_MTU + ETH_HDR
    } else {
        mtu + ETH_HDR
    }
}

/// Receives one frame, whole if large, its pending checksum completed.
fn recv_large(plug: &mut dyn Plug, buf: &mut [u8], closed: &mut bool) -> Option<usize> {
    loop {
        let mut hdr = VnetHdr::PLAIN;
        let got = match plug.offload() {
            Some(o) => o.recv_offload(&mut hdr, buf),
            None => plug.recv(buf),
        };
        match got {
            Ok(Recv::Frame(n)) => {
                if gso::complete_checksum(&hdr, &mut buf[..n]).is_err() {
                    continue;
                }
                return Some(n);
            }
            Ok(Recv::Nothing) => continue,
            Ok(Recv::Closed) => {
                *closed = true;
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// The header that tells how to cut `frame`, a TCP segment larger than the
/// link's `mtu`, into frames of the link: `None` if it is not TCP (then it is
/// dropped: only TCP is sent larger than the link takes).
pub(super) fn gso_header(frame: &[u8], mtu: usize) -> Option<VnetHdr> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (ip_len, proto, gso_type) = match ethertype {
        0x0800 => (
            usize::from(frame.get(14)? & 0x0f) * 4,
            *frame.get(23)?,
            gso::GSO_TCPV4,
        ),
        0x86dd => (40, *frame.get(20)?, gso::GSO_TCPV6),
        _ => return None,
    };
    if proto != 6 {
        return None;
    }
    let l4 = ETH_HDR + ip_len;
    let tcp_len = usize::from(frame.get(l4 + 12)? >> 4) * 4;
    let mss = mtu.checked_sub(ip_len + tcp_len)?;
    Some(VnetHdr {
        flags: 0,
        gso_type,
        hdr_len: u16::try_from(l4 + tcp_len).ok()?,
        gso_size: u16::try_from(mss).ok()?,
        csum_start: u16::try_from(l4).ok()?,
        csum_offset: 16,
    })
}

/// The header that has the plug cut `frame`, a TCP segment, at `mss` payload
/// bytes (each frame's checksums computed as it is cut).
fn tso_header(frame: &[u8], mss: u16) -> Option<VnetHdr> {
    // Any MTU above the headers: the cut is at the MSS smoltcp asked for.
    let mut hdr = gso_header(frame, LARGE_MTU)?;
    hdr.gso_size = mss;
    Some(hdr)
}

/// Fills in the TCP checksum of `frame` (an Ethernet frame; anything else is
/// left alone): smoltcp leaves it zero on a device that cuts segments.
pub(super) fn fill_tcp_checksum(frame: &mut [u8]) {
    let Some(ethertype) = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]])) else {
        return;
    };
    // Where TCP starts, the offset of its protocol byte, where the IP length
    // field is and what it counts from, and where the addresses are.
    let (l4, proto_at, len_at, len_from, addrs) = match ethertype {
        0x0800 => {
            let Some(&vihl) = frame.get(14) else { return };
            (
                ETH_HDR + usize::from(vihl & 0x0f) * 4,
                23,
                16,
                ETH_HDR,
                26..34,
            )
        }
        0x86dd => (ETH_HDR + 40, 20, 18, ETH_HDR + 40, 22..54),
        _ => return,
    };
    if frame.get(proto_at) != Some(&6) || frame.len() < l4 + 20 {
        return;
    }
    let ip_len = usize::from(u16::from_be_bytes([frame[len_at], frame[len_at + 1]]));
    // Ethernet pads short frames: the TCP segment ends where IP says.
    let end = (len_from + ip_len).min(frame.len());
    if end < l4 + 20 {
        return;
    }
    let pseudo = gso::sum_words(&frame[addrs]) + 6 + (end - l4) as u64;
    let at = l4 + 16;
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    let c = !gso::fold(pseudo + gso::sum_words(&frame[l4..end]));
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// The capabilities of a plug's device: frames of the link's MTU, or 64 KiB
/// packets where they go whole (`large`); with `tso`, TCP segments of up to
/// [`TSO_MOST`] bytes that the plug cuts, and TCP checksums left to [`PlugTx`].
pub(super) fn plug_caps(mtu: usize, large: bool, tso: bool) -> DeviceCapabilities {
    let mut c = caps(Medium::Ethernet, link_max(mtu, large));
    if tso && !large {
        c.checksum.tcp = phy::Checksum::Rx;
        let most = std::num::NonZeroUsize::new(TSO_MOST);
        c.segmentation.tcpv4 = most;
        c.segmentation.tcpv6 = most;
    }
    c
}

/// The capabilities of a device of `medium` carrying frames of `max` bytes.
pub(super) fn caps(medium: Medium, max: usize) -> DeviceCapabilities {
    let mut c = DeviceCapabilities::default();
    c.medium = medium;
    c.max_transmission_unit = max;
    c
}

impl phy::RxToken for PlugRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl phy::TxToken for PlugTx<'_> {
    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.cut_at = meta.segmentation_offload_size.map(|n| n.get());
    }

    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(self.buf.len());
        let r = f(&mut self.buf[..len]);
        *self.moved += len;
        if self.tso {
            // smoltcp left the TCP checksum to us: a segment to cut gets it
            // from the plug, one frame at a time; any other TCP frame here.
            let frame = &mut self.buf[..len];
            match self.cut_at.and_then(|mss| tso_header(frame, mss)) {
                Some(hdr) => {
                    let _ = crate::vde::send_segment(self.plug, &hdr, frame);
                }
                None => {
                    fill_tcp_checksum(frame);
                    let _ = self.plug.send(frame);
                }
            }
            return r;
        }
        let frame = &self.buf[..len];
        // A full peer drops the frame, as a wire would; TCP sends it again.
        match self.large_mtu {
            Some(mtu) if len > mtu + ETH_HDR => {
                if let (Some(hdr), Some(o)) = (gso_header(frame, mtu), self.plug.offload()) {
                    let _ = o.send_offload(&hdr, frame);
                }
            }
            _ => {
                let _ = self.plug.send(frame);
            }
        }
        r
    }
}

/// `lo`: what is sent is received, as IP packets (no Ethernet).
#[derive(Debug, Default)]
pub(super) struct LoopDevice {
    pub(super) queue: VecDeque<Vec<u8>>,
    pub(super) mtu: usize,
}

pub(super) struct LoopRx {
    packet: Vec<u8>,
}

pub(super) struct LoopTx<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
}

impl Device for LoopDevice {
    type RxToken<'b>
        = LoopRx
    where
        Self: 'b;
    type TxToken<'b>
        = LoopTx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(LoopRx, LoopTx<'_>)> {
        let packet = self.queue.pop_front()?;
        Some((
            LoopRx { packet },
            LoopTx {
                queue: &mut self.queue,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<LoopTx<'_>> {
        Some(LoopTx {
            queue: &mut self.queue,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        caps(Medium::Ip, self.mtu)
    }
}

impl phy::RxToken for LoopRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.packet)
    }
}

impl phy::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0u8; len];
        let r = f(&mut packet);
        self.queue.push_back(packet);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16, proto: u8, tcp_words: u8) -> Vec<u8> {
        let mut f = vec![0u8; 3000];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        let l4 = if ethertype == 0x0800 {
            f[14] = 0x45;
            f[23] = proto;
            34
        } else {
            f[14] = 0x60;
            f[20] = proto;
            54
        };
        f[l4 + 12] = tcp_words << 4;
        f
    }

    #[test]
    fn large_tcp_segments_are_cut_at_the_link_mss() {
        let h = gso_header(&frame(0x0800, 6, 8), 1500).unwrap();
        assert_eq!(h.gso_type, gso::GSO_TCPV4);
        assert_eq!(
            (h.hdr_len, h.gso_size, h.csum_start, h.csum_offset),
            (66, 1448, 34, 16)
        );
        let h = gso_header(&frame(0x86dd, 6, 5), 1500).unwrap();
        assert_eq!(h.gso_type, gso::GSO_TCPV6);
        assert_eq!((h.hdr_len, h.gso_size, h.csum_start), (74, 1440, 54));
    }

    #[test]
    fn only_tcp_is_sent_large() {
        assert!(gso_header(&frame(0x0800, 17, 5), 1500).is_none());
        assert!(gso_header(&frame(0x0806, 6, 5), 1500).is_none());
        assert!(gso_header(&[0u8; 10], 1500).is_none());
    }

    /// An Ethernet frame holding a TCP segment of `payload` bytes with the
    /// checksum smoltcp computes, over IPv4 or IPv6.
    fn tcp_frame(v6: bool, payload: usize) -> Vec<u8> {
        use smoltcp::wire::{IpAddress, TcpPacket};
        let (l3, src, dst): (usize, IpAddress, IpAddress) = if v6 {
            (40, "fc00::1".parse().unwrap(), "fc00::2".parse().unwrap())
        } else {
            (20, "10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        };
        let tcp_len = 20 + payload;
        let mut f = vec![0u8; ETH_HDR + l3 + tcp_len];
        if v6 {
            f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            f[14] = 0x60;
            f[18..20].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            f[20] = 6;
            f[22..38].copy_from_slice(&"fc00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
            f[38..54].copy_from_slice(&"fc00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        } else {
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[16..18].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            f[23] = 6;
            f[26..34].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        }
        let l4 = ETH_HDR + l3;
        for (i, b) in f[l4..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        f[l4 + 12] = 5 << 4;
        let mut tcp = TcpPacket::new_unchecked(&mut f[l4..]);
        tcp.fill_checksum(&src, &dst);
        f
    }

    #[test]
    fn tcp_checksums_are_filled_as_smoltcp_would() {
        for v6 in [false, true] {
            for payload in [0, 1, 1001] {
                let want = tcp_frame(v6, payload);
                let mut got = want.clone();
                let at = ETH_HDR + if v6 { 40 } else { 20 } + 16;
                got[at..at + 2].copy_from_slice(&[0, 0]);
                fill_tcp_checksum(&mut got);
                assert_eq!(got, want, "v6 {v6}, {payload} bytes");
            }
        }
    }

    #[test]
    fn ethernet_padding_is_not_summed() {
        let want = tcp_frame(false, 0);
        let mut got = want.clone();
        got.extend_from_slice(&[0xee; 6]);
        got[ETH_HDR + 36..ETH_HDR + 38].copy_from_slice(&[0, 0]);
        fill_tcp_checksum(&mut got);
        assert_eq!(got[..want.len()], want[..]);
    }

    #[test]
    fn a_segment_to_cut_is_cut_at_the_mss_smoltcp_asked_for() {
        let f = tcp_frame(true, 4000);
        let h = tso_header(&f, 1428).unwrap();
        assert_eq!(h.gso_type, gso::GSO_TCPV6);
        assert_eq!((h.gso_size, h.hdr_len, h.csum_start), (1428, 74, 54));
        assert!(tso_header(&f, 88).is_some(), "any MSS, headers aside");
    }

    #[test]
    fn a_plug_that_cuts_segments_is_given_them_and_the_tcp_checksums() {
        let c = plug_caps(1500, false, true);
        assert_eq!(c.max_transmission_unit, 1514);
        assert_eq!(c.segmentation.tcpv4.map(|n| n.get()), Some(TSO_MOST));
        assert!(!c.checksum.tcp.tx() && c.checksum.tcp.rx());
        let plain = plug_caps(1500, false, false);
        assert!(plain.segmentation.tcpv4.is_none() && plain.checksum.tcp.tx());
    }

    #[test]
    fn smoltcp_is_told_64k_only_where_segments_go_whole() {
        assert_eq!(link_max(1500, false), 1514);
        assert_eq!(link_max(1500, true), LARGE_MTU + 14);
    }
}
