//! Interface addresses: add, delete, list.
//!
//! Requests are nlinline's (`IFA_LOCAL` then `IFA_ADDRESS`); flags above the 8
//! bits of `ifa_flags` (e.g. `IFA_F_NOPREFIXROUTE`) add an `IFA_FLAGS` attribute
//! after them, as iproute2 does.

use std::io;
use std::net::IpAddr;

use super::client::NlClient;
use super::decode::{self, Addr};
use super::nlinline::{self, Op, AF_INET, AF_INET6};
use super::wire::{self, Builder, RTM_GETADDR, RTM_NEWADDR};

/// An address to add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddrSpec {
    /// The link's index.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (at most 32 for IPv4, 128 for IPv6).
    pub prefix_len: u8,
    /// `IFA_F_*` flags (e.g. [`AddrSpec::NODAD`]).
    pub flags: u32,
    /// The scope (`RT_SCOPE_*`; 0 universe).
    pub scope: u8,
}

impl AddrSpec {
    /// Flag: no duplicate address detection (IPv6), so the address is usable at
    /// once (`IFA_F_NODAD`).
    pub const NODAD: u32 = 0x02;
    /// Flag: no prefix route for this address (`IFA_F_NOPREFIXROUTE`).
    pub const NOPREFIXROUTE: u32 = 0x200;

    /// `addr/prefix_len` on link `index`, no flags, universe scope.
    pub fn new(index: u32, addr: IpAddr, prefix_len: u8) -> Self {
        AddrSpec {
            index,
            addr,
            prefix_len,
            flags: 0,
            scope: 0,
        }
    }

    /// Adds [`AddrSpec::NODAD`]: an IPv6 address usable at once.
    pub fn no_dad(self) -> Self {
        let flags = self.flags | Self::NODAD;
        self.flags(flags)
    }

    /// Sets the `IFA_F_*` flags ([`AddrSpec::NODAD`], [`AddrSpec::NOPREFIXROUTE`]).
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// With this scope.
    pub fn scope(mut self, scope: u8) -> Self {
        self.scope = scope;
        self
    }
}

/// The family and bytes of an address.
pub(crate) fn ip_parts(a: &IpAddr) -> (i32, Vec<u8>) {
    match a {
        IpAddr::V4(v) => (AF_INET, v.octets().to_vec()),
        IpAddr::V6(v) => (AF_INET6, v.octets().to_vec()),
    }
}

/// Builds the request for `spec` (pure; byte-identical to nlinline's `ipaddr_add`
/// or `ipaddr_del` when there are no flags above 8 bits).
pub fn build_addr(seq: u32, op: Op, spec: &AddrSpec) -> io::Result<Vec<u8>> {
    let (family, bytes) = ip_parts(&spec.addr);
    let p = if spec.flags == 0 && spec.scope == 0 {
        spec.prefix_len as u32
    } else {
        nlinline::nl_addrdata2prefix(spec.prefix_len, spec.flags as u8, spec.scope)
    };
    let mut msg = nlinline::build_ipaddr(seq, op, family, &bytes, p, spec.index)?;
    if spec.flags > 0xff {
        let extra = Builder::new(0, 0, 0)
            .attr_u32(wire::IFA_FLAGS, spec.flags)
            .finish();
        msg.extend_from_slice(&extra[wire::NLMSG_HDRLEN..]);
        let len = msg.len() as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
    }
    Ok(msg)
}

impl NlClient {
    /// Adds an address (`EEXIST` if it is there already).
    pub fn addr_add(&self, spec: &AddrSpec) -> io::Result<()> {
        let what = || {
            format!(
                "add address {}/{} on link {}",
                spec.addr, spec.prefix_len, spec.index
            )
        };
        self.ack(what, |s| build_addr(s, Op::Add, spec))?;
        Ok(())
    }

    /// Deletes an address (`EADDRNOTAVAIL` if it is not there).
    pub fn addr_del(&self, spec: &AddrSpec) -> io::Result<()> {
        let what = || {
            format!(
                "delete address {}/{} on link {}",
                spec.addr, spec.prefix_len, spec.index
            )
        };
        self.ack(what, |s| build_addr(s, Op::Del, spec))?;
        Ok(())
    }

    /// Every address of every link (a dump).
    pub fn addrs(&self) -> io::Result<Vec<Addr>> {
        self.dump(RTM_GETADDR, &[0; 8], RTM_NEWADDR, "dump addresses")?
            .iter()
            .map(|p| decode::addr(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_requests_are_nlinline_bytes() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let typed = build_addr(1, Op::Add, &AddrSpec::new(2, a, 24)).unwrap();
        let raw = nlinline::build_ipaddr(1, Op::Add, AF_INET, &[10, 0, 0, 1], 24, 2).unwrap();
        assert_eq!(typed, raw);
        let typed = build_addr(
            1,
            Op::Add,
            &AddrSpec::new(2, a, 24).flags(AddrSpec::NODAD).scope(253),
        );
        let raw = nlinline::build_ipaddr(
            1,
            Op::Add,
            AF_INET,
            &[10, 0, 0, 1],
            nlinline::nl_addrdata2prefix(24, 2, 253),
            2,
        );
        assert_eq!(typed.unwrap(), raw.unwrap());
    }

    #[test]
    fn wide_flags_add_ifa_flags() {
        let a: IpAddr = "fd00::1".parse().unwrap();
        let spec = AddrSpec::new(2, a, 64).flags(AddrSpec::NODAD | AddrSpec::NOPREFIXROUTE);
        let m = build_addr(1, Op::Add, &spec).unwrap();
        assert_eq!(m.len(), 64 + 8);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 72);
        assert_eq!(
            m[16 + 2],
            AddrSpec::NODAD as u8,
            "the low 8 bits stay in ifaddrmsg"
        );
        let attrs = wire::attrs(&m[24..]).unwrap();
        assert_eq!(
            attrs.last().unwrap(),
            &(wire::IFA_FLAGS, &0x202u32.to_ne_bytes()[..])
        );
    }
}
