//! `recvmmsg(MSG_DONTWAIT)`: several datagrams with one syscall. rustix 1.1 wraps
//! `sendmmsg` but not `recvmmsg`, so this calls libc.

#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

/// The most datagrams one [`recv_mmsg`] call takes.
pub const RECV_MMSG_MAX: usize = 32;

/// What the kernel said about one received datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes stored in its slot (at most the slot's length).
    pub len: usize,
    /// The datagram was longer than its slot: the rest is lost (as with `recv`).
    pub truncated: bool,
    /// The sender, when asked for and an IPv4 or IPv6 address.
    pub from: Option<SocketAddr>,
}

/// Receives, without waiting, up to `out.len()` datagrams (at most
/// [`RECV_MMSG_MAX`], and as many as `slots` has room for) from `fd` with one
/// `recvmmsg`: datagram `i` lands in `slots[i * slot_len..][..slot_len]` and is
/// described by `out[i]`. Returns how many arrived (at least one), or the error:
/// of kind `WouldBlock` when none was queued. `want_from`: fill [`Datagram::from`].
pub fn recv_mmsg(
    fd: impl AsFd,
    slots: &mut [u8],
    slot_len: usize,
    out: &mut [Datagram],
    want_from: bool,
) -> io::Result<usize> {
    let room = slots.len().checked_div(slot_len).unwrap_or(0);
    let count = out.len().min(RECV_MMSG_MAX).min(room);
    if count == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "recvmmsg: no room for a datagram",
        ));
    }
    let base = slots.as_mut_ptr();
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; RECV_MMSG_MAX];
    // SAFETY: sockaddr_storage is a plain C struct of integers: all zeroes is a
    // valid value (family AF_UNSPEC).
    let mut names: [libc::sockaddr_storage; RECV_MMSG_MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: mmsghdr is a plain C struct of integers and raw pointers: all zeroes
    // is a valid value (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; RECV_MMSG_MAX] = unsafe { std::mem::zeroed() };
    for (i, iov) in iovs.iter_mut().enumerate().take(count) {
        // In bounds: count * slot_len <= slots.len().
        iov.iov_base = base.wrapping_add(i * slot_len).cast();
        iov.iov_len = slot_len;
    }
    let (iov_ptr, name_ptr) = (iovs.as_mut_ptr(), names.as_mut_ptr());
    for (i, m) in hdrs.iter_mut().enumerate().take(count) {
        let h = &mut m.msg_hdr;
        h.msg_iov = iov_ptr.wrapping_add(i);
        h.msg_iovlen = 1;
        if want_from {
            h.msg_name = name_ptr.wrapping_add(i).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
    }
    // SAFETY: `hdrs[..count]` are initialised message headers whose iovecs point
    // into disjoint `slot_len`-byte slots of `slots` (exclusively borrowed for this
    // call) and whose names point into `names`; all outlive the call. A null
    // timeout is allowed (MSG_DONTWAIT makes it return at once anyway).
    let n = unsafe {
        libc::recvmmsg(
            fd.as_fd().as_raw_fd(),
            hdrs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (n as usize).min(count);
    for (i, d) in out.iter_mut().enumerate().take(n) {
        let h = &hdrs[i];
        *d = Datagram {
            len: (h.msg_len as usize).min(slot_len),
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            from: if want_from {
                socket_addr(&names[i], h.msg_hdr.msg_namelen)
            } else {
                None
            },
        };
    }
    Ok(n)
}

/// An IPv4 or IPv6 address the kernel wrote into `ss` (`len` bytes); `None` for
/// any other family.
fn socket_addr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is large and aligned enough for any socket
            // address, and the kernel wrote a whole sockaddr_in (family and length
            // say so).
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a whole sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn pair() -> (UnixDatagram, UnixDatagram) {
        let (a, b) = UnixDatagram::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn empty_socket_would_block() {
        let (_a, b) = pair();
        let mut slots = vec![0u8; 4 * 16];
        let mut out = [Datagram::default(); 4];
        let e = recv_mmsg(&b, &mut slots, 16, &mut out, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn datagrams_land_in_their_slots_and_long_ones_are_cut() {
        let (a, b) = pair();
        a.send(b"one").unwrap();
        a.send(b"").unwrap();
        a.send(b"a much longer datagram").unwrap();
        let mut slots = vec![0u8; 8 * 4];
        let mut out = [Datagram::default(); 8];
        let n = recv_mmsg(&b, &mut slots, 8, &mut out, true).unwrap();
        assert_eq!(n, 3);
        assert_eq!(&slots[..3], b"one");
        assert_eq!(
            (out[0].len, out[0].truncated, out[0].from),
            (3, false, None)
        );
        assert_eq!((out[1].len, out[1].truncated), (0, false));
        assert_eq!(&slots[16..24], b"a much l");
        assert_eq!((out[2].len, out[2].truncated), (8, true));
    }

    #[test]
    fn no_more_than_the_slots_hold() {
        let (a, b) = pair();
        for i in 0..5u8 {
            a.send(&[i]).unwrap();
        }
        let mut slots = vec![0u8; 2 * 4];
        let mut out = [Datagram::default(); 8];
        assert_eq!(recv_mmsg(&b, &mut slots, 4, &mut out, false).unwrap(), 2);
        assert_eq!(
            recv_mmsg(&b, &mut slots, 4, &mut out[..1], false).unwrap(),
            1
        );
        assert_eq!(slots[0], 2, "the third datagram, next in order");
        assert_eq!(recv_mmsg(&b, &mut slots, 4, &mut out, false).unwrap(), 2);
        let e = recv_mmsg(&b, &mut slots, 0, &mut out, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn senders_are_decoded() {
        // Loopback only.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        let mut slots = vec![0u8; 64];
        let mut out = [Datagram::default(); 1];
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // Wait for it without busy-looping: a blocking peek.
        rx.peek(&mut [0u8; 1]).unwrap();
        assert_eq!(recv_mmsg(&rx, &mut slots, 64, &mut out, true).unwrap(), 1);
        assert_eq!(out[0].from, Some(tx.local_addr().unwrap()));
        assert_eq!(&slots[..5], b"hello");
    }
}
