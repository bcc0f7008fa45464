//! smoltcp devices: a VDE plug ([`PlugDevice`], frames straight between smoltcp
//! and the plug, through the pool thread's buffers, so an idle stack holds no
//! frame buffer), and `lo` ([`LoopDevice`], a queue of IP packets).

use std::collections::VecDeque;
use std::io;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::vde::{Plug, Recv};

/// Ethernet header bytes on top of the MTU.
const ETH_HDR: usize = 14;

/// A plug seen by smoltcp for one poll.
pub(super) struct PlugDevice<'a> {
    pub(super) plug: &'a mut dyn Plug,
    pub(super) rx: &'a mut [u8],
    pub(super) tx: &'a mut [u8],
    /// The link's MTU (IP bytes).
    pub(super) mtu: usize,
    /// Set when the plug says its network is gone.
    pub(super) closed: bool,
}

pub(super) struct PlugRx<'a> {
    frame: &'a [u8],
}

pub(super) struct PlugTx<'a> {
    plug: &'a mut dyn Plug,
    buf: &'a mut [u8],
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
        let n = recv_frame(self.plug, self.rx, &mut self.closed)?;
        Some((
            PlugRx {
                frame: &self.rx[..n],
            },
            PlugTx {
                plug: self.plug,
                buf: self.tx,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<PlugTx<'_>> {
        Some(PlugTx {
            plug: self.plug,
            buf: self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        caps(Medium::Ethernet, self.mtu + ETH_HDR)
    }
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
        // A full peer drops the frame, as a wire would; TCP sends it again.
        let _ = self.plug.send(&self.buf[..len]);
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
