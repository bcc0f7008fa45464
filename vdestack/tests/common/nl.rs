//! Helpers shared by the netlink client's tests (against the kernel, and against
//! our netlink server).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vdestack::error::errno_of;
use vdestack::nl::{LinkKind, NlClient};

pub fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

pub fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

pub fn v6b(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

/// The errno of a call that must fail.
pub fn errno(r: io::Result<impl std::fmt::Debug>) -> i32 {
    errno_of(&r.expect_err("expected an error"))
}

/// A veth pair `va`/`vb`, both up; returns their indexes.
pub fn veth_up(c: &NlClient) -> (u32, u32) {
    let a = c
        .link_add("va", &LinkKind::Veth { peer: "vb".into() })
        .unwrap();
    let b = c.link_index("vb").unwrap();
    c.link_set_up(a, true).unwrap();
    c.link_set_up(b, true).unwrap();
    (a, b)
}
