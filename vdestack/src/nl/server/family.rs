//! What differs between the families in the kernel's answers: message sizes, which
//! address families it serves, and how `NLM_F_*` and "not found" turn into errnos
//! (`net/core/rtnetlink.c`, `net/ipv4/devinet.c`, `net/ipv4/fib_trie.c`,
//! `net/ipv6/addrconf.c`, `net/ipv6/route.c`).

use netlink_packet_core::{DecodeError, Emitable, Parseable};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::AddressFamily;

use super::handler::Errno;

/// `NLM_F_REPLACE`.
pub const NLM_F_REPLACE: u16 = 0x100;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// What happens to a NEW request for an object that exists.
pub enum OnExisting {
    /// Change it.
    Change,
    /// Fail with this errno.
    Fail(Errno),
}

/// The per-family rules of the kernel.
pub trait Family: Sized + Emitable {
    /// The fixed header's size (`ifinfomsg` 16, `ifaddrmsg` 8, `rtmsg` 12).
    const FIXED: usize;

    /// Parses a request payload (header and attributes).
    fn parse(payload: &[u8]) -> Result<Self, DecodeError>;

    /// A request that selects everything of address family `family` (for dumps whose
    /// header is shorter than `FIXED`, like iproute2's `rtgenmsg`).
    fn of_family(family: u8) -> Self;

    /// Whether the kernel serves this (address family, operation) pair;
    /// `op` is `nlmsg_type & 3` (0 new, 1 del, 2 get, 3 set). Otherwise: `EOPNOTSUPP`.
    fn serves(family: u8, op: u16, dump: bool) -> bool;

    /// A NEW for an existing object.
    fn on_existing(flags: u16) -> OnExisting;

    /// A NEW for a missing object: `Ok` to create it, or the errno.
    fn on_missing(flags: u16, family: u8) -> Result<(), Errno>;

    /// DEL or SET of a missing object.
    const MISSING: Errno;
}

fn on_existing_addr_route(flags: u16) -> OnExisting {
    use crate::nl::wire::NLM_F_EXCL;
    if flags & NLM_F_EXCL != 0 || flags & NLM_F_REPLACE == 0 {
        OnExisting::Fail(Errno::EXIST)
    } else {
        OnExisting::Change
    }
}

impl Family for LinkMessage {
    const FIXED: usize = 16;
    const MISSING: Errno = Errno::NODEV;

    fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        <LinkMessage as Parseable<[u8]>>::parse(payload)
    }

    fn of_family(family: u8) -> Self {
        let mut m = LinkMessage::default();
        m.header.interface_family = AddressFamily::from(family);
        m
    }

    fn serves(_family: u8, _op: u16, _dump: bool) -> bool {
        // Links are served for every family (the kernel falls back to PF_UNSPEC;
        // AF_BRIDGE's own handlers are not modelled).
        true
    }

    fn on_existing(flags: u16) -> OnExisting {
        if flags & crate::nl::wire::NLM_F_EXCL != 0 {
            OnExisting::Fail(Errno::EXIST)
        } else if flags & NLM_F_REPLACE != 0 {
            OnExisting::Fail(Errno::OPNOTSUPP)
        } else {
            OnExisting::Change
        }
    }

    fn on_missing(flags: u16, _family: u8) -> Result<(), Errno> {
        if flags & crate::nl::wire::NLM_F_CREATE != 0 {
            Ok(())
        } else {
            Err(Errno::NODEV)
        }
    }
}

impl Family for AddressMessage {
    const FIXED: usize = 8;
    const MISSING: Errno = Errno::ADDRNOTAVAIL;

    fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        <AddressMessage as Parseable<[u8]>>::parse(payload)
    }

    fn of_family(family: u8) -> Self {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::from(family);
        m
    }

    fn serves(family: u8, op: u16, dump: bool) -> bool {
        match family {
            // IPv4 has no single-address GET, only the dump.
            AF_INET => op != 2 || dump,
            AF_INET6 => true,
            // AF_UNSPEC dumps every family.
            0 => op == 2 && dump,
            _ => false,
        }
    }

    fn on_existing(flags: u16) -> OnExisting {
        on_existing_addr_route(flags)
    }

    fn on_missing(_flags: u16, _family: u8) -> Result<(), Errno> {
        // Addresses are created without NLM_F_CREATE.
        Ok(())
    }
}

impl Family for RouteMessage {
    const FIXED: usize = 12;
    const MISSING: Errno = Errno::SRCH;

    fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        <RouteMessage as Parseable<[u8]>>::parse(payload)
    }

    fn of_family(family: u8) -> Self {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::from(family);
        m
    }

    fn serves(family: u8, op: u16, dump: bool) -> bool {
        match family {
            AF_INET | AF_INET6 => true,
            0 => op == 2 && dump,
            _ => false,
        }
    }

    fn on_existing(flags: u16) -> OnExisting {
        on_existing_addr_route(flags)
    }

    fn on_missing(flags: u16, family: u8) -> Result<(), Errno> {
        // IPv4 insists on NLM_F_CREATE (ENOENT); IPv6 only warns.
        if family == AF_INET && flags & crate::nl::wire::NLM_F_CREATE == 0 {
            Err(Errno::NOENT)
        } else {
            Ok(())
        }
    }
}
