//! `struct msghdr` and `struct iovec` as a 64-bit program passes them to
//! `sendmsg`/`recvmsg` (LP64: x86_64, aarch64, riscv64), read from its memory
//! as bytes. No I/O here.

use crate::vu::Errno;

/// `sizeof(struct msghdr)`.
pub(crate) const MSGHDR_SIZE: usize = 56;
/// Where `msg_namelen` is.
pub(crate) const MSG_NAMELEN_AT: u64 = 8;
/// Where `msg_controllen` is.
pub(crate) const MSG_CONTROLLEN_AT: u64 = 40;
/// Where `msg_flags` is.
pub(crate) const MSG_FLAGS_AT: u64 = 48;
/// `sizeof(struct iovec)`.
pub(crate) const IOVEC_SIZE: usize = 16;
/// `UIO_MAXIOV`: more buffers are `EMSGSIZE`.
pub(crate) const UIO_MAXIOV: u64 = 1024;

/// The fields of a `struct msghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MsgHdr {
    /// `msg_name`: where the address is (or goes).
    pub name: u64,
    /// `msg_namelen`.
    pub namelen: u32,
    /// `msg_iov`.
    pub iov: u64,
    /// `msg_iovlen`.
    pub iovlen: u64,
    /// `msg_control`.
    pub control: u64,
    /// `msg_controllen`.
    pub controllen: u64,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

/// Reads the fields of a `struct msghdr` (missing bytes read as 0).
pub(crate) fn parse_msghdr(b: &[u8]) -> MsgHdr {
    MsgHdr {
        name: u64_at(b, 0),
        namelen: u32_at(b, 8),
        iov: u64_at(b, 16),
        iovlen: u64_at(b, 24),
        control: u64_at(b, 32),
        controllen: u64_at(b, 40),
    }
}

/// The `(base, len)` of each `struct iovec` in `b`; `EINVAL` if the lengths
/// add up past `isize::MAX`, as the kernel says (`rw_copy_check_uvector`).
pub(crate) fn parse_iovecs(b: &[u8]) -> Result<Vec<(u64, u64)>, Errno> {
    let mut total: u64 = 0;
    let mut v = Vec::with_capacity(b.len() / IOVEC_SIZE);
    for c in b.chunks_exact(IOVEC_SIZE) {
        let (base, len) = (u64_at(c, 0), u64_at(c, 8));
        total = total.checked_add(len).ok_or(libc::EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(libc::EINVAL);
        }
        v.push((base, len));
    }
    Ok(v)
}

/// How `n` bytes fall into buffers `iov`: `(base, bytes)` for each piece.
pub(crate) fn scatter(iov: &[(u64, u64)], mut n: usize) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    for &(base, len) in iov {
        if n == 0 {
            break;
        }
        let k = (len.min(n as u64)) as usize;
        if k > 0 {
            out.push((base, k));
        }
        n -= k;
    }
    out
}

/// `sizeof(struct cmsghdr)`: `cmsg_len` (a `size_t`), `cmsg_level`, `cmsg_type`.
const CMSGHDR_SIZE: usize = 16;

/// Control messages whose data is an `int` ((level, type, value) each), laid
/// out in `room` bytes as the kernel's `put_cmsg` lays them: the bytes (each
/// message `CMSG_SPACE` long, the last one cut to what is left), and whether
/// one did not fit whole (`MSG_CTRUNC`). The length of the bytes is the
/// `msg_controllen` the caller reads back.
pub(crate) fn int_cmsgs(msgs: &[(i32, i32, i32)], room: usize) -> (Vec<u8>, bool) {
    const LEN: usize = CMSGHDR_SIZE + 4; // CMSG_LEN(sizeof(int))
    const SPACE: usize = (LEN + 7) & !7; // CMSG_SPACE(sizeof(int))
    let mut out = Vec::new();
    let mut cut = false;
    for &(level, kind, value) in msgs {
        let left = room - out.len();
        if left < CMSGHDR_SIZE {
            cut = true;
            break;
        }
        let len = LEN.min(left);
        cut |= len < LEN;
        let mut m = Vec::with_capacity(SPACE);
        m.extend_from_slice(&(len as u64).to_ne_bytes());
        m.extend_from_slice(&level.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&value.to_ne_bytes());
        m.resize(SPACE.min(left), 0);
        out.extend_from_slice(&m);
    }
    (out, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_msghdr_and_its_buffers() {
        let mut b = vec![0u8; MSGHDR_SIZE];
        b[0..8].copy_from_slice(&0x1000u64.to_ne_bytes());
        b[8..12].copy_from_slice(&16u32.to_ne_bytes());
        b[16..24].copy_from_slice(&0x2000u64.to_ne_bytes());
        b[24..32].copy_from_slice(&2u64.to_ne_bytes());
        b[40..48].copy_from_slice(&64u64.to_ne_bytes());
        let m = parse_msghdr(&b);
        assert_eq!(
            m,
            MsgHdr {
                name: 0x1000,
                namelen: 16,
                iov: 0x2000,
                iovlen: 2,
                control: 0,
                controllen: 64
            }
        );
        let mut iov = Vec::new();
        for (base, len) in [(0x3000u64, 10u64), (0x4000, 100)] {
            iov.extend_from_slice(&base.to_ne_bytes());
            iov.extend_from_slice(&len.to_ne_bytes());
        }
        let v = parse_iovecs(&iov).unwrap();
        assert_eq!(v, [(0x3000, 10), (0x4000, 100)]);
        assert_eq!(scatter(&v, 15), [(0x3000, 10), (0x4000, 5)]);
        assert_eq!(scatter(&v, 4), [(0x3000, 4)]);
        assert_eq!(scatter(&v, 500), [(0x3000, 10), (0x4000, 100)]);
        let mut huge = Vec::new();
        for _ in 0..2 {
            huge.extend_from_slice(&0u64.to_ne_bytes());
            huge.extend_from_slice(&(u64::MAX / 2).to_ne_bytes());
        }
        assert_eq!(parse_iovecs(&huge), Err(libc::EINVAL));
    }

    #[test]
    fn int_control_messages_as_the_kernel_lays_them() {
        let ttl = (libc::IPPROTO_IP, libc::IP_TTL, 64);
        let (b, cut) = int_cmsgs(&[ttl], 64);
        assert!(!cut);
        assert_eq!(b.len(), 24, "CMSG_SPACE(sizeof(int))");
        assert_eq!(u64::from_ne_bytes(b[0..8].try_into().unwrap()), 20);
        assert_eq!(
            i32::from_ne_bytes(b[8..12].try_into().unwrap()),
            libc::IPPROTO_IP
        );
        assert_eq!(
            i32::from_ne_bytes(b[12..16].try_into().unwrap()),
            libc::IP_TTL
        );
        assert_eq!(i32::from_ne_bytes(b[16..20].try_into().unwrap()), 64);
        // Two fit in 48; the second is cut in 40, dropped in 30.
        let hl = (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, 255);
        assert_eq!(int_cmsgs(&[ttl, hl], 48).0.len(), 48);
        let (b, cut) = int_cmsgs(&[ttl, hl], 40);
        assert!(cut);
        assert_eq!(b.len(), 40);
        assert_eq!(u64::from_ne_bytes(b[24..32].try_into().unwrap()), 16);
        let (b, cut) = int_cmsgs(&[ttl, hl], 30);
        assert!(cut);
        assert_eq!(b.len(), 24);
        // A whole message in exactly CMSG_LEN bytes is not cut.
        let (b, cut) = int_cmsgs(&[ttl], 20);
        assert_eq!((b.len(), cut), (20, false));
        assert_eq!(int_cmsgs(&[ttl], 0), (Vec::new(), true));
        assert_eq!(int_cmsgs(&[], 0), (Vec::new(), false));
    }
}
