//! The netdevice ioctl numbers and the byte image of `struct ifreq` (40 bytes on
//! 64-bit Linux: `ifr_name[16]` then a 24-byte union), read and written in place,
//! so a C caller's buffer is served as plain bytes, with no raw pointers.

use std::io;
use std::net::Ipv4Addr;

/// `sizeof(struct ifreq)` on 64-bit Linux.
pub const IFREQ_SIZE: usize = 40;
/// `IFNAMSIZ`: the name field, its NUL included.
pub const IFNAMSIZ: usize = 16;
/// Where the union starts (`ifr_addr`, `ifr_flags`, `ifr_mtu`, ...).
pub(crate) const UNION: usize = 16;

/// `SIOCGIFNAME`: index to name.
pub const SIOCGIFNAME: u64 = 0x8910;
/// `SIOCGIFCONF`: the IPv4 addresses (takes a `struct ifconf`, see [`super::ifconf`]).
pub const SIOCGIFCONF: u64 = 0x8912;
/// `SIOCGIFFLAGS`.
pub const SIOCGIFFLAGS: u64 = 0x8913;
/// `SIOCSIFFLAGS`.
pub const SIOCSIFFLAGS: u64 = 0x8914;
/// `SIOCGIFADDR`.
pub const SIOCGIFADDR: u64 = 0x8915;
/// `SIOCSIFADDR`.
pub const SIOCSIFADDR: u64 = 0x8916;
/// `SIOCGIFDSTADDR`.
pub const SIOCGIFDSTADDR: u64 = 0x8917;
/// `SIOCSIFDSTADDR`.
pub const SIOCSIFDSTADDR: u64 = 0x8918;
/// `SIOCGIFBRDADDR`.
pub const SIOCGIFBRDADDR: u64 = 0x8919;
/// `SIOCSIFBRDADDR`.
pub const SIOCSIFBRDADDR: u64 = 0x891a;
/// `SIOCGIFNETMASK`.
pub const SIOCGIFNETMASK: u64 = 0x891b;
/// `SIOCSIFNETMASK`.
pub const SIOCSIFNETMASK: u64 = 0x891c;
/// `SIOCGIFMETRIC`.
pub const SIOCGIFMETRIC: u64 = 0x891d;
/// `SIOCSIFMETRIC`.
pub const SIOCSIFMETRIC: u64 = 0x891e;
/// `SIOCGIFMTU`.
pub const SIOCGIFMTU: u64 = 0x8921;
/// `SIOCSIFMTU`.
pub const SIOCSIFMTU: u64 = 0x8922;
/// `SIOCSIFNAME`: rename (the new name in `ifr_newname`).
pub const SIOCSIFNAME: u64 = 0x8923;
/// `SIOCSIFHWADDR`.
pub const SIOCSIFHWADDR: u64 = 0x8924;
/// `SIOCGIFHWADDR`.
pub const SIOCGIFHWADDR: u64 = 0x8927;
/// `SIOCGIFSLAVE`.
pub const SIOCGIFSLAVE: u64 = 0x8929;
/// `SIOCGIFINDEX`.
pub const SIOCGIFINDEX: u64 = 0x8933;
/// `SIOCSIFPFLAGS`.
pub const SIOCSIFPFLAGS: u64 = 0x8934;
/// `SIOCGIFPFLAGS`.
pub const SIOCGIFPFLAGS: u64 = 0x8935;
/// `SIOCGIFTXQLEN`.
pub const SIOCGIFTXQLEN: u64 = 0x8942;
/// `SIOCSIFTXQLEN`.
pub const SIOCSIFTXQLEN: u64 = 0x8943;
/// `SIOCGIFMAP`.
pub const SIOCGIFMAP: u64 = 0x8970;

/// A `struct ifreq` image with typed accessors, for the typed API and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfReq(pub [u8; IFREQ_SIZE]);

impl IfReq {
    /// An all-zero request naming `name`, copied like `strncpy(ifr_name, name,
    /// IFNAMSIZ)`: a name of 16 bytes or more is cut by the kernel at 15.
    pub fn named(name: &str) -> Self {
        let mut r = IfReq([0; IFREQ_SIZE]);
        let n = name.len().min(IFNAMSIZ);
        r.0[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }

    /// An all-zero request carrying `index` in `ifr_ifindex` (for `SIOCGIFNAME`).
    pub fn with_index(index: i32) -> Self {
        let mut r = IfReq([0; IFREQ_SIZE]);
        r.set_int(index);
        r
    }

    /// `ifr_name` up to its NUL (at most 16 bytes).
    pub fn name(&self) -> &[u8] {
        let end = self.0[..IFNAMSIZ]
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(IFNAMSIZ);
        &self.0[..end]
    }

    /// The int of the union (`ifr_ifindex`, `ifr_mtu`, `ifr_qlen`, `ifr_metric`).
    pub fn int(&self) -> i32 {
        i32::from_ne_bytes(self.0[UNION..UNION + 4].try_into().unwrap_or([0; 4]))
    }

    /// Sets the int of the union.
    pub fn set_int(&mut self, v: i32) {
        self.0[UNION..UNION + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// `ifr_flags` (a C `short`).
    pub fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.0[UNION], self.0[UNION + 1]])
    }

    /// Sets `ifr_flags`.
    pub fn set_flags(&mut self, v: u16) {
        self.0[UNION..UNION + 2].copy_from_slice(&v.to_ne_bytes());
    }

    /// `sa_family` of the union's `struct sockaddr`.
    pub fn family(&self) -> u16 {
        self.flags()
    }

    /// The IPv4 address of the union's `struct sockaddr_in`.
    pub fn ipv4(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.0[UNION + 4..UNION + 8].try_into().unwrap_or([0; 4]);
        Ipv4Addr::from(b)
    }

    /// Sets the union to a `struct sockaddr_in` (`AF_INET`, port 0, `addr`).
    pub fn set_ipv4(&mut self, addr: Ipv4Addr) {
        self.0[UNION..UNION + 16].fill(0);
        self.0[UNION..UNION + 2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        self.0[UNION + 4..UNION + 8].copy_from_slice(&addr.octets());
    }

    /// `sa_data` of the union's `struct sockaddr` (14 bytes).
    pub fn sa_data(&self) -> &[u8] {
        &self.0[UNION + 2..UNION + 16]
    }
}

/// `ifreq_bytes` as a fixed image; `EFAULT` if it is shorter than a `struct ifreq`
/// (the kernel copies 40 bytes in and out).
pub(crate) fn image(ifreq_bytes: &[u8]) -> io::Result<[u8; IFREQ_SIZE]> {
    ifreq_bytes
        .get(..IFREQ_SIZE)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            crate::error::context(
                io::Error::from_raw_os_error(libc::EFAULT),
                format!("an ifreq is {IFREQ_SIZE} bytes, got {}", ifreq_bytes.len()),
            )
        })
}
