//! `AF_PACKET` sockets on one interface (what `pcap://` needs and `rustix` does not
//! wrap: `sockaddr_ll`, the packet socket options, and `recvmsg` with the VLAN tag
//! the kernel took off a frame).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::{self as rnet, AddressFamily, SocketFlags, SocketType};

use crate::error::context;

/// `ARPHRD_ETHER`: the hardware type of an Ethernet interface.
const ARPHRD_ETHER: u16 = 1;
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20), not in every libc crate.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A packet socket bound to an interface, with what `open` learnt about it.
#[derive(Debug)]
pub struct PacketSocket {
    /// The socket: non-blocking, close-on-exec; every frame in or out has a
    /// `virtio_net_hdr` in front (`PACKET_VNET_HDR`).
    pub fd: OwnedFd,
    /// The interface's MAC address.
    pub mac: [u8; 6],
    /// The interface's index.
    #[allow(dead_code)] // kept for diagnostics and errors to come; learnt anyway
    pub index: u32,
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `v` is a live c_int for the call and its size is passed; the kernel
    // only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The hardware type and address of `ifname` (`SIOCGIFHWADDR`).
fn hw_addr(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<(u16, [u8; 6])> {
    let mut ifr = [0u8; 40];
    ifr[..ifname.len()].copy_from_slice(ifname.as_bytes());
    super::ifreq_ioctl(fd, libc::SIOCGIFHWADDR, &mut ifr)?;
    // struct ifreq: the name (16 bytes), then a sockaddr: family, then its data.
    let family = u16::from_ne_bytes([ifr[16], ifr[17]]);
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&ifr[18..24]);
    Ok((family, mac))
}

/// Opens a packet socket on the Ethernet interface `ifname`, receiving every
/// protocol, the interface in promiscuous mode (while the socket lives), frames
/// the host sends out on it left out, and a `virtio_net_hdr` before every frame.
pub fn open_packet(ifname: &str) -> io::Result<PacketSocket> {
    let what = |e: io::Error, step: &str| context(e, format!("interface {ifname}: {step}"));
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(what(
            io::Error::from_raw_os_error(libc::EINVAL),
            "a name has 1 to 15 bytes",
        ));
    }
    let fd = rnet::socket_with(
        AddressFamily::PACKET,
        SocketType::RAW,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        Some(rnet::eth::ALL),
    )
    .map_err(|e| what(e.into(), "a packet socket (it needs CAP_NET_RAW)"))?;
    let index = rnet::netdevice::name_to_index(&fd, ifname)
        .map_err(|e| what(e.into(), "no such interface"))?;
    let (family, mac) = hw_addr(fd.as_fd(), ifname).map_err(|e| what(e, "its address"))?;
    if family != ARPHRD_ETHER {
        return Err(what(
            io::Error::from_raw_os_error(libc::EINVAL),
            &format!("not an Ethernet interface (hardware type {family})"),
        ));
    }
    let raw = fd.as_raw_fd();
    let all = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: all-zero is a valid sockaddr_ll; the fields set are plain integers.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = all;
    sll.sll_ifindex = index as i32;
    // SAFETY: `sll` is a live sockaddr_ll and its size is passed; bind reads it only.
    let rc = unsafe {
        libc::bind(
            raw,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(what(io::Error::last_os_error(), "binding to it"));
    }
    let mreq = libc::packet_mreq {
        mr_ifindex: index as i32,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    // SAFETY: `mreq` is a live packet_mreq and its size is passed; the kernel reads
    // it only. The membership ends when the socket closes.
    let rc = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(what(io::Error::last_os_error(), "promiscuous mode"));
    }
    setsockopt_int(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)
        .map_err(|e| what(e, "PACKET_AUXDATA"))?;
    setsockopt_int(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)
        .map_err(|e| what(e, "PACKET_VNET_HDR"))?;
    // Older kernels lack it; then `packet_recv` still tells outgoing frames apart.
    let _ = setsockopt_int(fd.as_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
    Ok(PacketSocket { fd, mac, index })
}

/// What one [`packet_recv`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRecv {
    /// Bytes in the buffer (the `virtio_net_hdr`, then the frame).
    pub len: usize,
    /// The packet was longer than the buffer (the rest is lost).
    pub truncated: bool,
    /// The host sent it out on the interface (not received from the wire).
    pub outgoing: bool,
    /// The VLAN tag the kernel took off the frame: (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
}

/// Receives one packet into `buf`, with its direction and its stripped VLAN tag.
pub fn packet_recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<PacketRecv> {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    // Room for one tpacket_auxdata control message, 8-byte aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; its pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every buffer `msg` points to (`from`, `iov` over `buf`, `control`)
    // is live and writable for the lengths given, for the duration of the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    let mut vlan = None;
    // SAFETY: `msg` was filled by recvmsg: CMSG_FIRSTHDR/NXTHDR walk its control
    // buffer within `msg_controllen`, and a PACKET_AUXDATA message's data is a
    // tpacket_auxdata, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    vlan = Some((tpid, aux.tp_vlan_tci));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(PacketRecv {
        len: n.min(buf.len()),
        truncated: n > buf.len(),
        outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
        vlan,
    })
}
