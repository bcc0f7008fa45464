//! `pcap://IFNAME`: the frames of a kernel Ethernet interface, through an
//! `AF_PACKET` socket (what Debian's libvdeplug-pcap does through libpcap): frames
//! the interface receives are the plug's, frames sent on the plug go out of the
//! interface. `vdestack plug pcap://eth1 vde:///tmp/sw` joins the interface's
//! network to a switch. It needs `CAP_NET_RAW` (root, or a namespace of one's own).
//!
//! As the C plugin: the interface is put in promiscuous mode (for as long as the
//! plug is open), and frames whose source is the interface's own address are not
//! taken. Differences, to deliver what the wire carried rather than the kernel's
//! shortcuts (libpcap's raw capture does neither):
//! * frames the host itself sends out on the interface are never taken, whatever
//!   their source address (so two `pcap://` plugs on one interface do not hear each
//!   other, as the C plugin's manual says);
//! * frames that arrive with their checksum still to compute (a veth's peer hands
//!   them over so) get it computed, and the large TCP segments a veth's peer hands
//!   over whole are cut into the frames the wire would have carried; a VLAN tag the
//!   kernel took off is put back.

use std::io;
use std::io::IoSlice;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{epoll, eventfd, EventfdFlags};
use rustix::io::Errno;

use super::gso::{self, VnetHdr, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, MAX_GSO_FRAME, VNET_HDR_LEN};
use super::url::bad_value;
use super::{Plug, Recv, MIN_FRAME};
use crate::error::context;
use crate::sys::{open_packet, packet_recv, PacketSocket};

/// Room for a VLAN tag put back in front of a frame.
const TAG_LEN: usize = 4;

/// Frames cut from one large segment, handed out one per `recv`.
#[derive(Debug, Default)]
struct Pending {
    out: Vec<u8>,
    ends: Vec<usize>,
    next: usize,
}

impl Pending {
    fn left(&self) -> bool {
        self.next < self.ends.len()
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let start = if self.next == 0 {
            0
        } else {
            self.ends[self.next - 1]
        };
        let frame = &self.out[start..self.ends[self.next]];
        self.next += 1;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        n
    }
}

/// A plug on a kernel interface.
#[derive(Debug)]
pub struct Pcap {
    sock: PacketSocket,
    name: String,
    /// Readable when the socket is, or while cut frames wait.
    epoll: OwnedFd,
    /// Signalled while cut frames wait in `pending`.
    wake: OwnedFd,
    pending: Pending,
    /// Where packets are received: the `virtio_net_hdr`, room for a tag, the frame.
    rx: Box<[u8]>,
}

impl Pcap {
    /// Opens `pcap://IFNAME` (the whole text after `pcap://` is the name).
    pub fn open(arg: &str) -> io::Result<Self> {
        if arg.is_empty() {
            return Err(bad_value("pcap", "interface", arg, "no interface name given").into());
        }
        let sock = open_packet(arg).map_err(|e| context(e, format!("pcap://{arg}")))?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        for (fd, key) in [(sock.fd.as_fd(), 0), (wake.as_fd(), 1)] {
            epoll::add(
                &epoll,
                fd,
                epoll::EventData::new_u64(key),
                epoll::EventFlags::IN,
            )?;
        }
        Ok(Self {
            sock,
            name: arg.to_string(),
            epoll,
            wake,
            pending: Pending::default(),
            rx: vec![0u8; VNET_HDR_LEN + TAG_LEN + MAX_GSO_FRAME].into_boxed_slice(),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's MAC address (frames from it are not taken).
    pub fn mac(&self) -> [u8; 6] {
        self.sock.mac
    }

    fn set_waiting(&self, waiting: bool) -> io::Result<()> {
        let r = if waiting {
            rustix::io::write(&self.wake, &1u64.to_ne_bytes())
        } else {
            rustix::io::read(&self.wake, &mut [0u8; 8])
        };
        match r {
            Ok(_) | Err(Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Hands out the next cut frame.
    fn next_pending(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        let n = self.pending.take(buf);
        if !self.pending.left() {
            self.set_waiting(false)?;
        }
        Ok(Recv::Frame(n))
    }
}

impl Plug for Pcap {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        let hdr = VnetHdr::PLAIN.to_bytes();
        match rustix::io::writev(&self.sock.fd, &[IoSlice::new(&hdr), IoSlice::new(frame)]) {
            Ok(_) => Ok(frame.len()),
            // A down interface drops what is sent to it, as a cable with no peer.
            Err(Errno::NETDOWN) => Ok(frame.len()),
            Err(e) => Err(crate::sys::send_error(e)),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        if self.pending.left() {
            return self.next_pending(buf);
        }
        // The frame goes after the header and a gap a put-back tag may fill.
        let at = VNET_HDR_LEN + TAG_LEN;
        let got = packet_recv(self.sock.fd.as_fd(), &mut self.rx[TAG_LEN..])?;
        if got.outgoing || got.truncated || got.len < VNET_HDR_LEN + MIN_FRAME {
            return Ok(Recv::Nothing);
        }
        let Some(mut hdr) = VnetHdr::parse(&self.rx[TAG_LEN..at]) else {
            return Ok(Recv::Nothing);
        };
        let mut start = at;
        let end = TAG_LEN + got.len;
        if self.rx[at + 6..at + 12] == self.sock.mac {
            return Ok(Recv::Nothing);
        }
        if let Some((tpid, tci)) = got.vlan {
            // Put the tag back after the addresses: the frame starts 4 bytes earlier.
            self.rx.copy_within(at..at + 12, at - TAG_LEN);
            start = at - TAG_LEN;
            self.rx[start + 12..start + 14].copy_from_slice(&tpid.to_be_bytes());
            self.rx[start + 14..start + 16].copy_from_slice(&tci.to_be_bytes());
            if hdr.flags & F_NEEDS_CSUM != 0 {
                hdr.csum_start += TAG_LEN as u16;
            }
            if hdr.hdr_len > 0 {
                hdr.hdr_len += TAG_LEN as u16;
            }
        }
        let frame = &mut self.rx[start..end];
        if hdr.gso_type & !GSO_ECN == GSO_NONE {
            if gso::complete_checksum(&hdr, frame).is_err() {
                return Ok(Recv::Nothing);
            }
            let n = frame.len().min(buf.len());
            buf[..n].copy_from_slice(&frame[..n]);
            return Ok(Recv::Frame(n));
        }
        if self.pending.out.is_empty() {
            self.pending.out = vec![0u8; 2 * MAX_GSO_FRAME];
        }
        self.pending.next = 0;
        match gso::segment_tcp_packed(&hdr, frame, &mut self.pending.out, &mut self.pending.ends) {
            Ok(_) => {}
            Err(e) => {
                log::debug!("pcap://{}: a large segment not cut: {e}", self.name);
                self.pending.ends.clear();
                return Ok(Recv::Nothing);
            }
        }
        if self.pending.ends.len() > 1 {
            self.set_waiting(true)?;
        }
        self.next_pending(buf)
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_with_the_name() {
        let e = Pcap::open("").unwrap_err().to_string();
        assert!(e.contains("pcap") && e.contains("interface"), "{e}");
        let e = Pcap::open("this-name-is-too-long").unwrap_err().to_string();
        assert!(e.contains("this-name-is-too-long"), "{e}");
    }
}
