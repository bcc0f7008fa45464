//! Byte-exact expectations, written by hand from the table of `upstream.md` §3.3
//! (checked against what Debian's nlinline sends, traced with strace). The arrays
//! are for a little-endian host.
#![cfg(target_endian = "little")]

use super::*;
use crate::error::errno_of;

const HDR_ACK: [u8; 2] = [5, 0];
const HDR_CREATE: [u8; 2] = [5, 6];

fn hdr(len: u8, kind: u8, flags: [u8; 2]) -> Vec<u8> {
    vec![
        len, 0, 0, 0, kind, 0, flags[0], flags[1], 1, 0, 0, 0, 0, 0, 0, 0,
    ]
}

fn ifinfo(index: u8, flags: u8, change: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, index, 0, 0, 0, flags, 0, 0, 0, change, 0, 0, 0]
}

#[test]
fn if_nametoindex_bytes() {
    let mut want = hdr(44, 18, HDR_ACK);
    want.extend(ifinfo(0, 0, 0));
    want.extend([9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0]);
    assert_eq!(build_if_nametoindex(1, "eth0").unwrap(), want);
}

#[test]
fn linksetupdown_bytes() {
    let mut up = hdr(32, 19, HDR_ACK);
    up.extend(ifinfo(2, 1, 1));
    assert_eq!(build_linksetupdown(1, 2, true), up);
    let mut down = hdr(32, 19, HDR_ACK);
    down.extend(ifinfo(2, 0, 1));
    assert_eq!(build_linksetupdown(1, 2, false), down);
}

#[test]
fn linksetaddr_linkgetaddr_linksetmtu_bytes() {
    let mut want = hdr(44, 16, HDR_ACK);
    want.extend(ifinfo(2, 0, 0));
    want.extend([10, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(build_linksetaddr(1, 2, [2, 0, 0, 0, 0, 1]), want);

    let mut get = hdr(32, 18, [1, 0]);
    get.extend(ifinfo(7, 0, 0));
    assert_eq!(build_linkgetaddr(1, 7), get);

    let mut mtu = hdr(40, 16, HDR_ACK);
    mtu.extend(ifinfo(2, 0, 0));
    mtu.extend([8, 0, 4, 0, 0x78, 5, 0, 0]);
    assert_eq!(build_linksetmtu(1, 2, 1400), mtu);
}

#[test]
fn ipaddr_bytes() {
    let mut v4 = hdr(40, 20, HDR_CREATE);
    v4.extend([2, 24, 0, 0, 2, 0, 0, 0]);
    v4.extend([8, 0, 2, 0, 10, 0, 0, 1, 8, 0, 1, 0, 10, 0, 0, 1]);
    assert_eq!(
        build_ipaddr(1, Op::Add, AF_INET, &[10, 0, 0, 1], 24, 2).unwrap(),
        v4
    );

    let a6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut v6 = hdr(64, 21, HDR_ACK);
    // 0x70 magic: IFA_F_NODAD (0x02), scope link (253).
    v6.extend([10, 64, 2, 253, 3, 0, 0, 0]);
    v6.extend([20, 0, 2, 0]);
    v6.extend(a6);
    v6.extend([20, 0, 1, 0]);
    v6.extend(a6);
    let p = nl_addrdata2prefix(64, 2, 253);
    assert_eq!(p, 0x7002_fd40);
    assert_eq!(build_ipaddr(1, Op::Del, AF_INET6, &a6, p, 3).unwrap(), v6);
}

#[test]
fn iproute_bytes() {
    // Default route via a gateway, no interface: the RTA_UNSPEC filler comes first.
    let mut def = hdr(44, 24, HDR_CREATE);
    def.extend([2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
    def.extend([8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 5, 0, 10, 0, 0, 254]);
    let got = build_iproute(1, Op::Add, AF_INET, None, 0, Some(&[10, 0, 0, 254]), 0).unwrap();
    assert_eq!(got, def);

    // A prefix route on an interface, no gateway.
    let mut net = hdr(44, 25, HDR_ACK);
    net.extend([2, 16, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
    net.extend([8, 0, 4, 0, 3, 0, 0, 0, 8, 0, 1, 0, 10, 1, 0, 0]);
    let got = build_iproute(1, Op::Del, AF_INET, Some(&[10, 1, 0, 0]), 16, None, 3).unwrap();
    assert_eq!(got, net);

    // The 0x60 magic: type blackhole (6), scope 0, prefix 0, RTA_DST still sent.
    let p = nl_routedata2prefix(0, 6, 0);
    assert_eq!(p, 0x6006_0000);
    let mut bh = hdr(44, 24, HDR_CREATE);
    bh.extend([2, 0, 0, 0, 254, 3, 0, 6, 0, 0, 0, 0]);
    bh.extend([8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0]);
    let got = build_iproute(1, Op::Add, AF_INET, Some(&[0; 4]), p, None, 0).unwrap();
    assert_eq!(got, bh);

    // IPv6 default route via a gateway on interface 4: 16+12+8+20 bytes.
    let gw: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let got = build_iproute(1, Op::Add, AF_INET6, None, 0, Some(&gw), 4).unwrap();
    assert_eq!(got.len(), 56);
    assert_eq!(&got[16..28], &[10, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
    assert_eq!(&got[28..36], &[8, 0, 4, 0, 4, 0, 0, 0]);
    assert_eq!(&got[36..40], &[20, 0, 5, 0]);
}

#[test]
fn iplink_add_del_bytes() {
    let data = [IplinkData {
        tag: 1,
        data: 42u32.to_le_bytes().to_vec(),
    }];
    let mut want = hdr(76, 16, HDR_CREATE);
    want.extend(ifinfo(0, 0, 0));
    want.extend([8, 0, 3, 0, b'v', b'x', b'0', 0]);
    want.extend([5, 0, 49, 0, 0, 0, 0, 0]);
    want.extend([28, 0, 18, 0]);
    want.extend([10, 0, 1, 0, b'v', b'x', b'l', b'a', b'n', 0, 0, 0]);
    want.extend([12, 0, 2, 0, 8, 0, 1, 0, 42, 0, 0, 0]);
    assert_eq!(
        build_iplink_add(1, Some("vx0"), IFINDEX_ASK, "vxlan", &data).unwrap(),
        want
    );

    // No name, a chosen index, no data: LINKINFO holds the kind alone.
    let mut br = hdr(48, 16, HDR_CREATE);
    br.extend(ifinfo(9, 0, 0));
    br.extend([
        16, 0, 18, 0, 11, 0, 1, 0, b'b', b'r', b'i', b'd', b'g', b'e', 0, 0,
    ]);
    assert_eq!(build_iplink_add(1, None, 9, "bridge", &[]).unwrap(), br);

    let mut del = hdr(32, 17, HDR_ACK);
    del.extend(ifinfo(5, 0, 0));
    assert_eq!(build_iplink_del(1, None, 5).unwrap(), del);
    let mut byname = hdr(40, 17, HDR_ACK);
    byname.extend(ifinfo(0, 0, 0));
    byname.extend([7, 0, 3, 0, b'v', b'0', 0, 0]);
    assert_eq!(build_iplink_del(1, Some("v0"), 0).unwrap(), byname);
}

#[test]
fn bad_input_is_einval() {
    let e = build_ipaddr(1, Op::Add, AF_INET, &[10, 0, 0, 1], 33, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_ipaddr(
        1,
        Op::Add,
        AF_INET,
        &[10, 0, 0, 1],
        nl_addrdata2prefix(33, 0, 0),
        1,
    );
    assert_eq!(errno_of(&e.unwrap_err()), libc::EINVAL);
    let e = build_ipaddr(1, Op::Add, AF_INET6, &[0; 16], 129, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_ipaddr(1, Op::Add, AF_INET, &[0; 16], 8, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_ipaddr(1, Op::Add, 99, &[0; 4], 8, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_ipaddr(1, Op::Add, AF_INET, &[0; 4], 0x1234, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_iproute(1, Op::Add, AF_INET, None, 24, None, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_iproute(1, Op::Add, AF_INET, Some(&[0; 4]), 33, None, 1).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    let e = build_if_nametoindex(1, "sixteen-bytes-xx").unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
    assert!(build_if_nametoindex(1, "fifteen-bytes-x").is_ok());
    let e = build_iplink_add(1, Some(""), 0, "veth", &[]).unwrap_err();
    assert_eq!(errno_of(&e), libc::EINVAL);
}
