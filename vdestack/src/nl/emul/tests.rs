//! The emulation over a fake dialog with canned replies: the bytes each request
//! writes, the messages it sends, the `/proc/net/dev` format, bad replies.

use std::io;
use std::net::Ipv4Addr;

use super::super::dialog::Dialog;
use super::super::wire::{self, Builder};
use super::rt::{IFA_BROADCAST, IFA_LABEL, IFLA_STATS, IFLA_STATS64, IFLA_TXQLEN};
use super::*;
use crate::error::errno_of;

const ETH: u16 = 1;

/// A peer that knows a few links and IPv4 addresses, answers like the kernel,
/// and records every change request.
#[derive(Default)]
struct Fake {
    links: Vec<Vec<u8>>,
    addrs: Vec<Vec<u8>>,
    changes: Vec<Vec<u8>>,
    /// The errno every change request gets (0: success).
    change_errno: i32,
}

fn link(index: u32, name: &str, flags: u32, extra: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut h = [0u8; 16];
    h[2..4].copy_from_slice(&ETH.to_ne_bytes());
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    let mut b = Builder::new(wire::RTM_NEWLINK, 0, 0)
        .raw(&h)
        .attr_str(wire::IFLA_IFNAME, name)
        .attr_u32(wire::IFLA_MTU, 1500)
        .attr_u32(IFLA_TXQLEN, 1000);
    for (k, v) in extra {
        b = b.attr(*k, v);
    }
    b.finish()[16..].to_vec()
}

fn addr(index: u32, prefix: u8, local: [u8; 4], brd: Option<[u8; 4]>, label: &str) -> Vec<u8> {
    let mut h = [libc::AF_INET as u8, prefix, 0x80, 0, 0, 0, 0, 0];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    let mut b = Builder::new(wire::RTM_NEWADDR, 0, 0)
        .raw(&h)
        .attr(wire::IFA_ADDRESS, &local)
        .attr(wire::IFA_LOCAL, &local);
    if let Some(x) = brd {
        b = b.attr(IFA_BROADCAST, &x);
    }
    b.attr_str(IFA_LABEL, label).finish()[16..].to_vec()
}

fn reply(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    Builder::new(kind, flags, 0).raw(payload).finish()
}

fn ack(errno: i32) -> Vec<u8> {
    reply(wire::NLMSG_ERROR, 0, &(-errno).to_ne_bytes())
}

impl Fake {
    fn standard() -> Self {
        let mac = vec![2, 0x11, 0x22, 0x33, 0x44, 0x55];
        Fake {
            links: vec![
                link(1, "lo", 0x10049, &[]),
                link(2, "eth0", 0x11043, &[(wire::IFLA_ADDRESS, mac)]),
            ],
            addrs: vec![
                addr(2, 24, [10, 0, 0, 1], Some([10, 0, 0, 255]), "eth0"),
                addr(2, 24, [10, 0, 0, 7], Some([10, 0, 0, 255]), "eth0:1"),
                addr(2, 16, [10, 9, 0, 1], None, "eth0:1"),
            ],
            ..Default::default()
        }
    }

    fn find_link(&self, req: &[u8]) -> Option<Vec<u8>> {
        let index = u32::from_ne_bytes(req[20..24].try_into().unwrap());
        let want = wire::attrs(&req[32..])
            .unwrap()
            .into_iter()
            .find(|(k, _)| *k == wire::IFLA_IFNAME)
            .map(|(_, v)| v.to_vec());
        self.links
            .iter()
            .find(|l| {
                let p = super::rt::parse_link(l).unwrap();
                if index > 0 {
                    p.index as u32 == index
                } else {
                    want.as_deref().map(|w| &w[..w.len() - 1]) == Some(&p.name[..])
                }
            })
            .cloned()
    }
}

impl Dialog for Fake {
    fn dialog(&mut self, req: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let m = wire::split(req)?[0];
        let done = reply(wire::NLMSG_DONE, wire::NLM_F_MULTI, &0i32.to_ne_bytes());
        let multi = |v: &Vec<Vec<u8>>, kind| {
            let mut out: Vec<Vec<u8>> = v
                .iter()
                .map(|p| reply(kind, wire::NLM_F_MULTI, p))
                .collect();
            out.push(done.clone());
            out
        };
        Ok(match m.kind {
            wire::RTM_GETLINK if m.flags & wire::NLM_F_DUMP != 0 => {
                multi(&self.links, wire::RTM_NEWLINK)
            }
            wire::RTM_GETADDR => multi(&self.addrs, wire::RTM_NEWADDR),
            wire::RTM_GETLINK => match self.find_link(req) {
                Some(l) => vec![reply(wire::RTM_NEWLINK, 0, &l), ack(0)],
                None => vec![ack(libc::ENODEV)],
            },
            _ => {
                self.changes.push(req.to_vec());
                if m.kind == wire::RTM_NEWLINK
                    && self.find_link(req).is_none()
                    && self.change_errno == 0
                {
                    return Ok(vec![ack(libc::ENODEV)]);
                }
                vec![ack(self.change_errno)]
            }
        })
    }
}

fn ifreq(name: &str, fill: u8) -> [u8; IFREQ_SIZE] {
    let mut r = [fill; IFREQ_SIZE];
    r[..16].fill(0);
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn errno(r: io::Result<impl std::fmt::Debug>) -> i32 {
    errno_of(&r.expect_err("expected an error"))
}

#[test]
fn gets_write_only_their_field() {
    let mut d = Fake::standard();
    let mut r = ifreq("eth0", 0xa5);
    r[15] = b'x'; // not a NUL: the kernel writes one there
    ioctl(&mut d, SIOCGIFFLAGS, &mut r).unwrap();
    // The short of ifi_flags (IFF_LOWER_UP, bit 16, is cut off), nothing else.
    assert_eq!(&r[16..18], &0x1043u16.to_ne_bytes());
    assert!(r[18..].iter().all(|&b| b == 0xa5));
    assert_eq!(r[15], 0);

    let mut r = ifreq("eth0:1", 0xa5);
    ioctl(&mut d, SIOCGIFHWADDR, &mut r).unwrap();
    assert_eq!(&r[..6], b"eth0:1", "the alias is given back");
    assert_eq!(&r[16..18], &ETH.to_ne_bytes());
    assert_eq!(&r[18..24], &[2, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert!(
        r[24..].iter().all(|&b| b == 0xa5),
        "past addr_len: untouched"
    );

    // lo has no IFLA_ADDRESS here: sa_data is zeroed.
    let mut r = ifreq("lo", 0xa5);
    ioctl(&mut d, SIOCGIFHWADDR, &mut r).unwrap();
    assert!(r[18..32].iter().all(|&b| b == 0));

    for (req, want) in [
        (SIOCGIFMTU, 1500),
        (SIOCGIFTXQLEN, 1000),
        (SIOCGIFINDEX, 2),
        (SIOCGIFMETRIC, 0),
    ] {
        let mut r = ifreq("eth0", 0xa5);
        ioctl(&mut d, req, &mut r).unwrap();
        assert_eq!(IfReq(r).int(), want, "{req:#x}");
        assert!(r[20..].iter().all(|&b| b == 0xa5));
    }
    assert_eq!(get_name(&mut d, 2).unwrap(), "eth0");
    assert_eq!(errno(get_name(&mut d, 0)), libc::ENODEV);
    assert_eq!(errno(get_name(&mut d, -3)), libc::ENODEV);
}

#[test]
fn errors_leave_the_buffer_alone() {
    let mut d = Fake::standard();
    let before = ifreq("nosuch", 0x77);
    let mut r = before;
    assert_eq!(errno(ioctl(&mut d, SIOCGIFMTU, &mut r)), libc::ENODEV);
    assert_eq!(r, before);
    let mut r = ifreq("lo", 0);
    assert_eq!(
        errno(ioctl(&mut d, SIOCGIFADDR, &mut r)),
        libc::EADDRNOTAVAIL
    );
    assert_eq!(errno(ioctl(&mut d, SIOCGIFSLAVE, &mut r)), libc::EINVAL);
    assert_eq!(errno(ioctl(&mut d, 0x5401, &mut r)), libc::ENOTTY);
    assert_eq!(errno(ioctl(&mut d, 0x8911, &mut r)), libc::ENOTTY);
    assert_eq!(errno(ioctl(&mut d, 0x8971, &mut r)), libc::EOPNOTSUPP);
    assert_eq!(errno(ioctl(&mut d, SIOCGIFCONF, &mut r)), libc::EINVAL);
    assert_eq!(errno(ioctl(&mut d, SIOCGIFMTU, &mut r[..39])), libc::EFAULT);
}

#[test]
fn addresses_by_label_and_hint() {
    let mut d = Fake::standard();
    assert_eq!(
        get_addr(&mut d, "eth0").unwrap(),
        Ipv4Addr::new(10, 0, 0, 1)
    );
    assert_eq!(
        get_addr(&mut d, "eth0:1").unwrap(),
        Ipv4Addr::new(10, 0, 0, 7)
    );
    assert_eq!(
        get_brdaddr(&mut d, "eth0:1").unwrap(),
        Ipv4Addr::new(10, 0, 0, 255)
    );
    // With an AF_INET address passed in, the address with that local wins.
    let mut r = IfReq::named("eth0:1");
    r.set_ipv4(Ipv4Addr::new(10, 9, 0, 1));
    ioctl(&mut d, SIOCGIFNETMASK, &mut r.0).unwrap();
    assert_eq!(r.ipv4(), Ipv4Addr::new(255, 255, 0, 0));
    r.set_ipv4(Ipv4Addr::new(10, 9, 0, 1));
    ioctl(&mut d, SIOCGIFBRDADDR, &mut r.0).unwrap();
    assert_eq!(r.ipv4(), Ipv4Addr::UNSPECIFIED, "no IFA_BROADCAST: 0.0.0.0");
    // The netmask written back is no hint: the first labelled address answers.
    ioctl(&mut d, SIOCGIFNETMASK, &mut r.0).unwrap();
    ioctl(&mut d, SIOCGIFBRDADDR, &mut r.0).unwrap();
    assert_eq!(r.ipv4(), Ipv4Addr::new(10, 0, 0, 255));
    assert_eq!(errno(get_addr(&mut d, "eth0:2")), libc::EADDRNOTAVAIL);
    assert_eq!(errno(get_addr(&mut d, "eth9:1")), libc::ENODEV);
}

/// A request's attributes, as (type, payload).
type Attrs = Vec<(u16, Vec<u8>)>;

/// The type, fixed header and attributes of the `n`th change request.
fn change(d: &Fake, n: usize) -> (u16, Vec<u8>, Attrs) {
    let m = wire::split(&d.changes[n]).unwrap()[0];
    let fixed = if m.kind == wire::RTM_NEWLINK { 16 } else { 8 };
    let attrs = wire::attrs(&m.payload[fixed..])
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect();
    (m.kind, m.payload[..fixed].to_vec(), attrs)
}

fn attr(attrs: &[(u16, Vec<u8>)], kind: u16) -> Option<&[u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| &v[..])
}

#[test]
fn set_requests_sent() {
    let mut d = Fake::standard();
    // ifr_flags is a short that the kernel sign-extends; ifi_change = ~0.
    set_flags(&mut d, "eth0", 0x8001).unwrap();
    let (kind, fixed, attrs) = change(&d, 0);
    assert_eq!(kind, wire::RTM_NEWLINK);
    assert_eq!(&fixed[8..12], &0xffff_8001u32.to_ne_bytes());
    assert_eq!(&fixed[12..16], &u32::MAX.to_ne_bytes());
    assert_eq!(attr(&attrs, wire::IFLA_IFNAME), Some(&b"eth0\0"[..]));

    set_mtu(&mut d, "eth0:1", 1400).unwrap();
    let (_, _, attrs) = change(&d, 1);
    assert_eq!(
        attr(&attrs, wire::IFLA_IFNAME),
        Some(&b"eth0\0"[..]),
        "alias stripped"
    );
    assert_eq!(
        attr(&attrs, wire::IFLA_MTU),
        Some(&1400u32.to_ne_bytes()[..])
    );

    assert_eq!(errno(set_txqlen(&mut d, "eth0", -1)), libc::EINVAL);
    assert_eq!(
        errno(set_hwaddr(&mut d, "eth0", 772, &[1; 6])),
        libc::EINVAL
    );
    assert_eq!(errno(set_name(&mut d, "eth0", "")), libc::EINVAL);

    // A new alias: classful prefix (/16 for 172.16/12), its broadcast, the label.
    d.changes.clear();
    set_addr(&mut d, "eth0:5", Ipv4Addr::new(172, 16, 5, 5)).unwrap();
    let (kind, fixed, attrs) = change(&d, 1); // after the permission probe
    assert_eq!(kind, wire::RTM_NEWADDR);
    assert_eq!(fixed[1], 16);
    assert_eq!(attr(&attrs, IFA_BROADCAST), Some(&[172, 16, 255, 255][..]));
    assert_eq!(attr(&attrs, IFA_LABEL), Some(&b"eth0:5\0"[..]));

    // A new netmask: delete then add, the broadcast following the mask.
    d.changes.clear();
    set_netmask(&mut d, "eth0", Ipv4Addr::new(255, 255, 255, 128)).unwrap();
    assert_eq!(change(&d, 1).0, wire::RTM_DELADDR);
    let (kind, fixed, attrs) = change(&d, 2);
    assert_eq!((kind, fixed[1]), (wire::RTM_NEWADDR, 25));
    assert_eq!(attr(&attrs, IFA_BROADCAST), Some(&[10, 0, 0, 127][..]));
    assert_eq!(
        attr(&attrs, wire::IFA_FLAGS),
        Some(&0u32.to_ne_bytes()[..]),
        "PERMANENT recomputed"
    );

    assert_eq!(
        errno(set_netmask(&mut d, "eth0", Ipv4Addr::new(255, 0, 255, 0))),
        libc::EINVAL
    );
    assert_eq!(
        errno(set_addr(&mut d, "eth0:6", Ipv4Addr::new(224, 0, 0, 1))),
        libc::EINVAL
    );
    assert_eq!(
        errno(set_brdaddr(&mut d, "eth0:6", Ipv4Addr::new(1, 2, 3, 4))),
        libc::EADDRNOTAVAIL
    );
    // An alias set down loses its address.
    d.changes.clear();
    set_flags(&mut d, "eth0:1", 0).unwrap();
    assert_eq!(change(&d, 1).0, wire::RTM_DELADDR);
    assert_eq!(errno(set_flags(&mut d, "eth0:4", 0)), libc::EADDRNOTAVAIL);

    // The peer's refusal comes back as is, and a wrong family loses to EPERM.
    d.change_errno = libc::EPERM;
    assert_eq!(errno(set_mtu(&mut d, "eth0", 1400)), libc::EPERM);
    let mut r = IfReq::named("eth0");
    r.0[16] = libc::AF_INET6 as u8;
    assert_eq!(errno(ioctl(&mut d, SIOCSIFADDR, &mut r.0)), libc::EPERM);
    d.change_errno = 0;
    assert_eq!(errno(ioctl(&mut d, SIOCSIFADDR, &mut r.0)), libc::EINVAL);
}

#[test]
fn ifconf_fills_whole_entries() {
    let mut d = Fake::standard();
    assert_eq!(ifconf(&mut d, None).unwrap(), 3 * IFREQ_SIZE);
    let mut buf = vec![0xa5u8; 2 * IFREQ_SIZE + 10];
    assert_eq!(ifconf(&mut d, Some(&mut buf)).unwrap(), 2 * IFREQ_SIZE);
    assert_eq!(&buf[40..46], b"eth0:1");
    assert_eq!(&buf[56..58], &(libc::AF_INET as u16).to_ne_bytes());
    assert_eq!(&buf[60..64], &[10, 0, 0, 7]);
    assert!(buf[46..56].iter().all(|&b| b == 0) && buf[64..80].iter().all(|&b| b == 0));
    assert!(buf[80..].iter().all(|&b| b == 0xa5));
    assert_eq!(
        get_conf(&mut d).unwrap()[2],
        ("eth0:1".into(), Ipv4Addr::new(10, 9, 0, 1))
    );
}

fn stats64(v: [u64; 23]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

#[test]
fn proc_net_dev_format() {
    let mut s = [0u64; 23];
    // rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors,
    // rx_dropped, tx_dropped, multicast, collisions, rx_length, rx_over, rx_crc,
    // rx_frame, rx_fifo, rx_missed, tx_aborted, tx_carrier, tx_fifo,
    // tx_heartbeat, tx_window, rx_compressed, tx_compressed.
    for (i, x) in s.iter_mut().enumerate() {
        *x = i as u64 + 1;
    }
    s[2] = 123_456_789; // rx_bytes: wider than %7
    let s32: Vec<u8> = (1..=23u32).flat_map(|x| x.to_ne_bytes()).collect();
    let mut d = Fake {
        links: vec![
            link(3, "averylongname", 0, &[(IFLA_STATS64, stats64(s))]),
            link(1, "lo", 0, &[]),
            link(2, "old", 0, &[(IFLA_STATS, s32)]),
        ],
        ..Default::default()
    };
    let text = proc_net_dev(&mut d).unwrap();
    let lines = [
        "    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0",
        "   old:       3       1    5   23   15    50         22         9        4       2    6    8   19    10      76         23",
        "averylongname: 123456789       1    5   23   15    50         22         9        4       2    6    8   19    10      76         23",
    ];
    let want = format!("{PROC_NET_DEV_HEADER}{}\n", lines.join("\n"));
    assert_eq!(text, want);
}

#[test]
fn bad_replies_are_errors() {
    struct Broken(Vec<Vec<u8>>);
    impl Dialog for Broken {
        fn dialog(&mut self, _: &[u8]) -> io::Result<Vec<Vec<u8>>> {
            Ok(self.0.clone())
        }
    }
    // A link message shorter than ifinfomsg; a truncated header; a bad attribute.
    let short = reply(wire::RTM_NEWLINK, 0, &[0; 8]);
    let mut bad_attr = reply(wire::RTM_NEWLINK, 0, &link(1, "lo", 0, &[]));
    bad_attr[32] = 0xff;
    for replies in [
        vec![short, ack(0)],
        vec![vec![1, 2, 3]],
        vec![bad_attr, ack(0)],
    ] {
        let mut d = Broken(replies);
        assert_eq!(errno(get_mtu(&mut d, "lo")), libc::EPROTO);
    }
    // No link message at all: as the kernel would say, no such device.
    assert_eq!(
        errno(get_mtu(&mut Broken(vec![ack(0)]), "lo")),
        libc::ENODEV
    );
    let mut d = Broken(vec![reply(
        wire::NLMSG_DONE,
        0,
        &(-libc::EBUSY).to_ne_bytes(),
    )]);
    assert_eq!(errno(proc_net_dev(&mut d)), libc::EBUSY);
}
