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

use std::collections::VecDeque;
use std::io;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::vde::gso::{self, VnetHdr};
use crate::vde::{Plug, Recv};

/// The IP packet size smoltcp is told a large-segment link takes.
pub(super) const LARGE_MTU: usize = 65535;

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
                moved: &mut self.moved,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<PlugTx<'_>> {
        Some(PlugTx {
            plug: self.plug,
            buf: self.tx,
            large_mtu: self.large.then_some(self.mtu),
            moved: &mut self.moved,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        caps(Medium::Ethernet, link_max(self.mtu, self.large))
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
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(self.buf.len());
        let r = f(&mut self.buf[..len]);
        let frame = &self.buf[..len];
        *self.moved += len;
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

    #[test]
    fn smoltcp_is_told_64k_only_where_segments_go_whole() {
        assert_eq!(link_max(1500, false), 1514);
        assert_eq!(link_max(1500, true), LARGE_MTU + 14);
    }
}
