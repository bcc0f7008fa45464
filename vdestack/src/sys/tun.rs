//! Opening tap interfaces through `/dev/net/tun`.

#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::error::context;

/// The longest interface name the kernel takes (IFNAMSIZ - 1).
pub const TAP_NAME_MAX: usize = 15;

pub(super) const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `_IOW('T', 203, int)`.
pub(super) const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
pub(super) const IFF_TAP: libc::c_short = 0x0002;
pub(super) const IFF_NO_PI: libc::c_short = 0x1000;
/// Frames read and written with a `struct virtio_net_hdr` in front.
pub(super) const IFF_VNET_HDR: libc::c_short = 0x4000;

/// `_IOW('T', 208, unsigned int)`: which offloads the tap's reader takes.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_TSO_ECN: libc::c_uint = 0x08;

#[repr(C)]
pub(super) struct IfReq {
    pub(super) name: [u8; libc::IFNAMSIZ],
    pub(super) flags: libc::c_short,
    pub(super) _pad: [u8; 22],
}

/// Opens (creating it if needed) the tap interface `name` (`IFF_TAP | IFF_NO_PI`),
/// non-blocking and close-on-exec. An empty name lets the kernel choose. Returns the
/// fd and the interface's name.
pub fn open_tap(name: &str) -> io::Result<(OwnedFd, String)> {
    if name.len() > TAP_NAME_MAX || name.contains('\0') || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name `{name}`: at most {TAP_NAME_MAX} bytes, no `/`"),
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(|e| context(e, "open /dev/net/tun"))?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    let fd = OwnedFd::from(file);
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which IfReq matches in
    // layout and size (40 bytes on Linux); `req` outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(context(
            io::Error::last_os_error(),
            format!("creating tap `{name}` (TUNSETIFF)"),
        ));
    }
    let len = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(libc::IFNAMSIZ);
    let got = String::from_utf8_lossy(&req.name[..len]).into_owned();
    Ok((fd, got))
}

/// Sets up a tap opened with `IFF_VNET_HDR` for large segments: `TUNSETOFFLOAD`
/// with partial checksums and TCP segmentation over IPv4 and IPv6 (with ECN), so
/// the kernel hands out TCP segments of up to 64 KiB and turns on TSO for the
/// interface. UDP segmentation is not asked for: nothing downstream would cut it.
/// The header stays the kernel's default for a new tap, the 10 bytes of
/// `crate::vde::gso::VNET_HDR_LEN`: no `TUNSETVNETHDRSZ` (each tap ioctl takes the
/// kernel's RTNL lock, which the clean-up of old namespaces holds for long spells).
pub fn enable_tap_offload(tap: BorrowedFd<'_>) -> io::Result<()> {
    let features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    // SAFETY: TUNSETOFFLOAD takes the feature mask as the integer argument itself,
    // not a pointer; the fd is borrowed, so open.
    let rc = unsafe {
        libc::ioctl(
            tap.as_raw_fd(),
            TUNSETOFFLOAD as _,
            features as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(context(io::Error::last_os_error(), "TUNSETOFFLOAD"));
    }
    Ok(())
}
