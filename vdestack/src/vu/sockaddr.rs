//! Socket addresses as a program passes them (bytes of a `struct sockaddr_*`),
//! checked the way the kernel checks them.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::vu::Errno;

/// `sizeof(struct sockaddr_nl)`.
pub(crate) const SOCKADDR_NL_LEN: usize = 12;
/// `sizeof(struct sockaddr_in)`.
const SOCKADDR_IN_LEN: usize = 16;
/// `SIN6_LEN_RFC2133`: the shortest `sockaddr_in6` the kernel takes (no scope id).
const SOCKADDR_IN6_MIN: usize = 24;
/// `sizeof(struct sockaddr_in6)`.
const SOCKADDR_IN6_LEN: usize = 28;
/// The longest address read from a program (`sizeof(struct sockaddr_storage)`).
pub(crate) const SOCKADDR_MAX: usize = 128;

/// The family field of an address (`EINVAL` if it has none).
pub(crate) fn family(b: &[u8]) -> Result<i32, Errno> {
    if b.len() < 2 {
        return Err(libc::EINVAL);
    }
    Ok(u16::from_ne_bytes([b[0], b[1]]) as i32)
}

/// An `AF_INET`/`AF_INET6` address for a socket of `want` family, with the
/// kernel's checks: too short is `EINVAL`, another family `EAFNOSUPPORT`.
pub(crate) fn parse_inet(b: &[u8], want: i32) -> Result<SocketAddr, Errno> {
    if want == libc::AF_INET {
        if b.len() < SOCKADDR_IN_LEN {
            return Err(libc::EINVAL);
        }
        if family(b)? != libc::AF_INET {
            return Err(libc::EAFNOSUPPORT);
        }
        let port = u16::from_be_bytes([b[2], b[3]]);
        let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
        return Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)));
    }
    if b.len() < SOCKADDR_IN6_MIN {
        return Err(libc::EINVAL);
    }
    if family(b)? != libc::AF_INET6 {
        return Err(libc::EAFNOSUPPORT);
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[8..24]);
    let scope = if b.len() >= SOCKADDR_IN6_LEN {
        u32::from_ne_bytes([b[24], b[25], b[26], b[27]])
    } else {
        0
    };
    Ok(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::from(a),
        port,
        flow,
        scope,
    )))
}

/// The bytes of a `sockaddr_in` (16) or `sockaddr_in6` (28) as the kernel fills
/// them in.
pub(crate) fn encode_inet(a: &SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(v4) => {
            let mut b = vec![0u8; SOCKADDR_IN_LEN];
            b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            b
        }
        SocketAddr::V6(v6) => {
            let mut b = vec![0u8; SOCKADDR_IN6_LEN];
            b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            b
        }
    }
}

/// The unspecified address and port 0 of a family (an unbound socket's name).
pub(crate) fn unspecified(family: i32) -> SocketAddr {
    if family == libc::AF_INET6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }
}

/// A `sockaddr_nl`: family 16, port id and groups.
pub(crate) fn encode_nl(port: u32, groups: u32) -> [u8; SOCKADDR_NL_LEN] {
    let mut b = [0u8; SOCKADDR_NL_LEN];
    b[0..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
    b[4..8].copy_from_slice(&port.to_ne_bytes());
    b[8..12].copy_from_slice(&groups.to_ne_bytes());
    b
}

/// The port id and groups of a `sockaddr_nl` (at least 12 bytes, checked by the
/// caller).
pub(crate) fn parse_nl(b: &[u8]) -> (u32, u32) {
    let port = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
    let groups = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
    (port, groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_round_trip_and_checks() {
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(parse_inet(&encode_inet(&a), libc::AF_INET), Ok(a));
        let b: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(parse_inet(&encode_inet(&b), libc::AF_INET6), Ok(b));
        assert_eq!(parse_inet(&encode_inet(&b)[..24], libc::AF_INET6), Ok(b));
        assert_eq!(
            parse_inet(&encode_inet(&a)[..8], libc::AF_INET),
            Err(libc::EINVAL)
        );
        assert_eq!(
            parse_inet(&encode_inet(&a), libc::AF_INET6),
            Err(libc::EINVAL)
        );
        let mut v6_as_v4 = encode_inet(&b);
        v6_as_v4.truncate(16);
        assert_eq!(
            parse_inet(&v6_as_v4, libc::AF_INET),
            Err(libc::EAFNOSUPPORT)
        );
    }

    #[test]
    fn netlink_addresses() {
        let b = encode_nl(1234, 5);
        assert_eq!(family(&b), Ok(libc::AF_NETLINK));
        assert_eq!(parse_nl(&b), (1234, 5));
    }
}
