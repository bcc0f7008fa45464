//! The netdevice ioctl and `/proc/net/dev` emulation (`nl::emul`) over the
//! kernel's netlink (`KernelDialog`), against the real thing, in a private network
//! namespace: every get ioctl gives the same bytes and errno as the real ioctl on
//! an `AF_INET` socket; every set ioctl, applied by emulation to one interface and
//! for real to its twin, leaves the two in the same state (links, addresses,
//! routes, as `ip -j` shows them) with the same result; `SIOCGIFCONF` and
//! `/proc/net/dev` are the kernel's byte for byte.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;

use common::*;
use serde_json::Value;
use vdestack::diagnostics::{ifconf_ioctl, ifreq_ioctl};
use vdestack::error::errno_of;
use vdestack::nl::emul::{self, *};
use vdestack::nl::KernelDialog;

fn sh(cmd: &str) {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let out = Command::new(words[0])
        .args(&words[1..])
        .output()
        .unwrap_or_else(|e| panic!("`{cmd}`: {e}"));
    assert!(
        out.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this runs in a user namespace other than the initial one (whose
/// `uid_map` maps every id to itself).
fn in_user_namespace() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// An `AF_INET` datagram socket: the one programs use for these ioctls.
fn inet_socket() -> OwnedFd {
    UdpSocket::bind("127.0.0.1:0").unwrap().into()
}

/// Quiet links: no IPv6 autoconfiguration traffic moving counters meanwhile.
fn no_ipv6() {
    for k in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{k}/disable_ipv6"), "1");
    }
}

/// lo; veth va/vb (va up with a changed MTU and MAC, three IPv4 addresses, two of
/// them under `va:N` labels; vb up with a changed queue length and a
/// point-to-point address); veth vc/vd (vc down, vd with two addresses under one
/// label); a bridge br0 with an address; a macvlan mv0 on vb.
fn setup() {
    no_ipv6();
    for c in [
        "ip link add va type veth peer name vb",
        "ip link add vc type veth peer name vd",
        "ip link add br0 type bridge",
        "ip link set va mtu 1400 address 02:11:22:33:44:55 up",
        "ip link set vb txqueuelen 500 up",
        "ip link set vd up",
        "ip link set br0 up",
        "ip addr add 10.1.0.1/24 brd + dev va",
        "ip addr add 10.1.0.5/24 dev va label va:1",
        "ip addr add 10.2.0.1/16 dev va label va:2",
        "ip addr add 10.3.0.1 peer 10.3.0.2/32 dev vb",
        "ip addr add 192.168.7.1/24 brd 192.168.7.255 dev br0",
        "ip addr add 10.9.0.1/24 dev vd label vd:x",
        "ip addr add 10.9.1.1/24 dev vd label vd:x",
    ] {
        sh(c);
    }
    // macvlan may be missing from a kernel; the rest does without it.
    let _ = Command::new("ip")
        .args("link add mv0 link vb type macvlan mode bridge".split(' '))
        .output();
}

/// The result of an ioctl: the errno, and the ifreq bytes afterwards.
type Outcome = (i32, [u8; IFREQ_SIZE]);

fn real(fd: &OwnedFd, req: u64, mut r: [u8; IFREQ_SIZE]) -> Outcome {
    let e = ifreq_ioctl(fd.as_fd(), req, &mut r).err();
    (e.map_or(0, |e| e.raw_os_error().unwrap()), r)
}

fn emulated(d: &mut KernelDialog, req: u64, mut r: [u8; IFREQ_SIZE]) -> Outcome {
    let e = emul::ioctl(d, req, &mut r).err();
    (e.map_or(0, |e| errno_of(&e)), r)
}

/// An ifreq naming `name` whose union is filled with a pattern, to see exactly
/// which bytes a request writes.
fn req_named(name: &[u8], fill: u8) -> [u8; IFREQ_SIZE] {
    let mut r = [fill; IFREQ_SIZE];
    r[..16].fill(0);
    r[..name.len().min(16)].copy_from_slice(&name[..name.len().min(16)]);
    r
}

const GETS: &[(u64, &str)] = &[
    (SIOCGIFINDEX, "SIOCGIFINDEX"),
    (SIOCGIFFLAGS, "SIOCGIFFLAGS"),
    (SIOCGIFMTU, "SIOCGIFMTU"),
    (SIOCGIFTXQLEN, "SIOCGIFTXQLEN"),
    (SIOCGIFMETRIC, "SIOCGIFMETRIC"),
    (SIOCGIFMAP, "SIOCGIFMAP"),
    (SIOCGIFHWADDR, "SIOCGIFHWADDR"),
    (SIOCGIFSLAVE, "SIOCGIFSLAVE"),
    (SIOCGIFADDR, "SIOCGIFADDR"),
    (SIOCGIFDSTADDR, "SIOCGIFDSTADDR"),
    (SIOCGIFBRDADDR, "SIOCGIFBRDADDR"),
    (SIOCGIFNETMASK, "SIOCGIFNETMASK"),
    (SIOCGIFPFLAGS, "SIOCGIFPFLAGS"),
];

sandbox_test! {
    fn get_ioctls_equal_the_kernels() {
        setup();
        let fd = inet_socket();
        let mut d = KernelDialog::new().unwrap();
        let names: &[&[u8]] = &[
            b"lo", b"va", b"vb", b"vc", b"vd", b"br0", b"mv0", b"va:1", b"va:2", b"va:9",
            b"vb:0", b"vd:x", b"nosuchlink", b"", b"br0:", b":", b"abcdefghijklmnopqrs",
            b"va:123456789012345",
        ];
        let mut checked = 0;
        for name in names {
            for fill in [0u8, 0xa5] {
                for (req, what) in GETS {
                    let r = req_named(name, fill);
                    let want = real(&fd, *req, r);
                    let got = emulated(&mut d, *req, r);
                    assert_eq!(
                        got, want,
                        "{what} on {:?} (fill {fill:#x}): emulated, real",
                        String::from_utf8_lossy(name)
                    );
                    checked += 1;
                }
            }
            // The 4.4BSD match: a local address passed in picks that address among
            // those with the label.
            for hint in ["10.9.1.1", "10.9.0.1", "10.1.0.5", "1.2.3.4"] {
                for req in [SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFBRDADDR, SIOCGIFDSTADDR] {
                    let mut r = IfReq(req_named(name, 0x5a));
                    r.set_ipv4(hint.parse().unwrap());
                    assert_eq!(
                        emulated(&mut d, req, r.0),
                        real(&fd, req, r.0),
                        "{req:#x} on {:?} with {hint}",
                        String::from_utf8_lossy(name)
                    );
                    checked += 1;
                }
            }
        }
        for index in [-1i32, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 4242] {
            for fill in [0u8, 0xa5] {
                let mut r = [fill; IFREQ_SIZE];
                r[16..20].copy_from_slice(&index.to_ne_bytes());
                assert_eq!(
                    emulated(&mut d, SIOCGIFNAME, r),
                    real(&fd, SIOCGIFNAME, r),
                    "SIOCGIFNAME {index} fill {fill:#x}"
                );
                checked += 1;
            }
        }
        // Requests the kernel does not know at all on a socket.
        for req in [0x8911u64, 0x891f, 0x8920, 0x5401] {
            let r = req_named(b"va", 0);
            assert_eq!(emulated(&mut d, req, r), real(&fd, req, r), "request {req:#x}");
            checked += 1;
        }
        eprintln!("{checked} get requests: same bytes and errno as the kernel's");
    }
}

/// What `ip -j` shows of link `name` and of its IPv4 addresses and routes, with
/// the name and index taken out, for comparing twins.
fn state(name: &str) -> Value {
    let mut link = ipj(&format!("-d link show dev {name}"))[0].clone();
    let l = link.as_object_mut().unwrap();
    for k in [
        "ifindex",
        "ifname",
        "link",
        "linkinfo",
        "link_index",
        "inet6_addr_gen_mode",
        "parentbus",
        "parentdev",
        "num_tx_queues",
        "num_rx_queues",
    ] {
        l.remove(k);
    }
    let mut addrs = ipj(&format!("-4 addr show dev {name}"))[0]["addr_info"].clone();
    for a in addrs.as_array_mut().unwrap() {
        if let Some(lb) = a.get("label").and_then(Value::as_str) {
            a["label"] = Value::from(lb.replacen(name, "X", 1));
        }
    }
    let mut routes = ipj(&format!("-4 route show table all dev {name}"));
    for r in routes.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("dev");
    }
    serde_json::json!({"link": link, "addrs": addrs, "routes": routes})
}

/// Two identical interfaces t1 and t2 (veth ends whose peers are up), with a
/// primary address, a secondary under `:1`, and a point-to-point address under
/// `:p`.
fn twins() {
    no_ipv6();
    for t in ["t1", "t2"] {
        for c in [
            format!("ip link add {t} type veth peer name {t}peer"),
            format!("ip link set {t}peer up"),
            format!("ip link set {t} address 02:00:00:00:00:01 up"),
            format!("ip addr add 10.50.0.1/24 brd + dev {t}"),
            format!("ip addr add 10.50.0.9/24 dev {t} label {t}:1"),
            format!("ip addr add 10.60.0.1 peer 10.60.0.2/32 dev {t} label {t}:p"),
        ] {
            sh(&c);
        }
    }
}

/// One set request: the request, the label suffix (appended to the twin's name),
/// and how its union is filled.
struct Set {
    req: u64,
    suffix: &'static str,
    fill: fn(&mut IfReq),
}

fn ipv4_of(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn sets() -> Vec<Set> {
    macro_rules! set {
        ($req:expr, $suffix:expr, |$r:ident| $body:expr) => {
            Set {
                req: $req,
                suffix: $suffix,
                fill: |$r: &mut IfReq| {
                    $body;
                },
            }
        };
    }
    vec![
        set!(SIOCSIFMTU, "", |r| r.set_int(1280)),
        set!(SIOCSIFMTU, "", |r| r.set_int(100_000)),
        set!(SIOCSIFMTU, "", |r| r.set_int(-5)),
        set!(SIOCSIFMTU, ":1", |r| r.set_int(1300)),
        set!(SIOCSIFTXQLEN, "", |r| r.set_int(77)),
        set!(SIOCSIFTXQLEN, "", |r| r.set_int(-1)),
        set!(SIOCSIFHWADDR, "", |r| {
            r.0[16..18].copy_from_slice(&1u16.to_ne_bytes());
            r.0[18..24].copy_from_slice(&[2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        }),
        set!(SIOCSIFHWADDR, "", |r| {
            r.0[16..18].copy_from_slice(&772u16.to_ne_bytes());
            r.0[18..24].copy_from_slice(&[2, 1, 1, 1, 1, 1]);
        }),
        set!(SIOCSIFFLAGS, "", |r| r.set_flags(0x1003 | 0x100)), // up, promisc
        set!(SIOCSIFFLAGS, "", |r| r.set_flags(0x1002)),         // down
        set!(SIOCSIFFLAGS, "", |r| r.set_flags(0x1003 | 0x80)),  // up, noarp
        set!(SIOCSIFFLAGS, "", |r| r.set_flags(0x8000 | 0x1003)), // sign bit
        set!(SIOCSIFFLAGS, ":7", |r| r.set_flags(0)),
        set!(SIOCSIFFLAGS, ":1", |r| r.set_flags(1)),
        set!(SIOCSIFFLAGS, ":1", |r| r.set_flags(0)),
        set!(SIOCSIFADDR, ":3", |r| r.set_ipv4(ipv4_of("172.16.5.5"))),
        set!(SIOCSIFADDR, ":4", |r| r.set_ipv4(ipv4_of("224.1.1.1"))),
        set!(SIOCSIFADDR, ":4", |r| r.set_ipv4(ipv4_of("0.0.0.0"))),
        set!(SIOCSIFADDR, ":5", |r| r.set_ipv4(ipv4_of("127.0.0.5"))),
        set!(SIOCSIFADDR, ":6", |r| r.set_ipv4(ipv4_of("240.1.2.3"))),
        set!(SIOCSIFADDR, ":8", |r| r.set_ipv4(ipv4_of("192.168.40.4"))),
        set!(SIOCSIFADDR, ":8", |r| {
            r.set_ipv4(ipv4_of("192.168.40.5"));
            r.0[16..18].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        }),
        set!(SIOCSIFNETMASK, ":3", |r| r
            .set_ipv4(ipv4_of("255.255.255.0"))),
        set!(SIOCSIFNETMASK, ":3", |r| r.set_ipv4(ipv4_of("255.0.255.0"))),
        set!(SIOCSIFNETMASK, ":9", |r| r.set_ipv4(ipv4_of("255.255.0.0"))),
        set!(SIOCSIFBRDADDR, ":3", |r| r
            .set_ipv4(ipv4_of("172.16.5.200"))),
        set!(SIOCSIFNETMASK, ":3", |r| r
            .set_ipv4(ipv4_of("255.255.255.128"))),
        set!(SIOCSIFDSTADDR, ":p", |r| r.set_ipv4(ipv4_of("10.60.0.3"))),
        set!(SIOCSIFDSTADDR, ":p", |r| r.set_ipv4(ipv4_of("230.0.0.1"))),
        set!(SIOCSIFBRDADDR, ":9", |r| r.set_ipv4(ipv4_of("10.0.0.255"))),
        set!(SIOCSIFADDR, "", |r| r.set_ipv4(ipv4_of("10.50.0.2"))),
        set!(SIOCSIFADDR, "", |r| r.set_ipv4(ipv4_of("10.50.0.2"))),
        set!(SIOCSIFADDR, ":3", |r| r.set_ipv4(ipv4_of("0.0.0.0"))),
        set!(SIOCSIFMETRIC, "", |r| r.set_int(3)),
        set!(SIOCSIFPFLAGS, "", |r| r.set_int(3)),
        // The new name is the twin's own plus "x": t1x, t2x.
        set!(SIOCSIFNAME, "", |r| {
            let (a, b) = (r.0[0], r.0[1]);
            r.0[16..20].copy_from_slice(&[a, b, b'x', 0]);
        }),
        set!(SIOCSIFNAME, "", |r| r.0[16..17].copy_from_slice(b"\0")),
        set!(SIOCSIFFLAGS, "", |r| r.set_flags(0x1002)),
        set!(SIOCSIFADDR, "", |r| r.set_ipv4(ipv4_of("10.70.0.1"))),
        set!(SIOCSIFFLAGS, "", |r| r.set_flags(0x1003)),
    ]
}

sandbox_test! {
    fn set_ioctls_do_what_the_kernels_do() {
        twins();
        let fd = inet_socket();
        let mut d = KernelDialog::new().unwrap();
        assert_eq!(state("t1"), state("t2"), "twins differ before any change");
        for (i, s) in sets().iter().enumerate() {
            let mut r1 = IfReq::named(&format!("t1{}", s.suffix));
            let mut r2 = IfReq::named(&format!("t2{}", s.suffix));
            (s.fill)(&mut r1);
            (s.fill)(&mut r2);
            let (e1, after1) = emulated(&mut d, s.req, r1.0);
            let (e2, after2) = real(&fd, s.req, r2.0);
            if s.req == SIOCSIFTXQLEN && e2 == libc::EPERM && in_user_namespace() {
                // The one known difference: the kernel's SIOCSIFTXQLEN wants
                // CAP_NET_ADMIN in the initial user namespace, netlink (and so the
                // emulation) only in the namespace's own. Keep the twins in step.
                let q = IfReq(r2.0).int();
                assert_eq!(e1, if q < 0 { libc::EINVAL } else { 0 }, "step {i}");
                if q >= 0 {
                    sh(&format!("ip link set t2 txqlen {q}"));
                }
                eprintln!("step {i}: SIOCSIFTXQLEN: EPERM for the real ioctl in a user namespace");
                continue;
            }
            assert_eq!(e1, e2, "step {i} ({:#x} on :{}): errno, emulated vs real", s.req, s.suffix);
            eprintln!("step {i}: {:#x} on t1{}/t2{}: errno {e1}", s.req, s.suffix, s.suffix);
            if s.req != SIOCSIFNAME {
                assert_eq!(after1[16..], after2[16..], "step {i}: the union afterwards");
            }
            assert_eq!(
                &after1[2..16], &after2[2..16],
                "step {i}: the name afterwards"
            );
            if s.req == SIOCSIFNAME && e1 == 0 {
                // Renamed: compare under the new names, then take the old back.
                assert_eq!(state("t1x"), state("t2x"), "step {i}: renamed");
                sh("ip link set t1x name t1");
                sh("ip link set t2x name t2");
            }
            assert_eq!(state("t1"), state("t2"), "step {i} ({:#x} on :{})", s.req, s.suffix);
        }
        // Unknown names fail alike for every set.
        for s in sets() {
            let mut r = IfReq::named("nosuch");
            (s.fill)(&mut r);
            let (e1, _) = emulated(&mut d, s.req, r.0);
            let (e2, _) = real(&fd, s.req, r.0);
            if s.req == SIOCSIFTXQLEN && e2 == libc::EPERM && in_user_namespace() {
                continue; // the known difference above
            }
            assert_eq!(e1, e2, "{:#x} on an unknown link", s.req);
        }
    }
}

sandbox_test! {
    fn typed_api_reads_what_ip_shows() {
        setup();
        let mut d = KernelDialog::new().unwrap();
        let va = ipj("link show dev va")[0].clone();
        assert_eq!(get_index(&mut d, "va").unwrap() as u64, va["ifindex"].as_u64().unwrap());
        assert_eq!(get_name(&mut d, 1).unwrap(), "lo");
        assert_eq!(get_mtu(&mut d, "va").unwrap(), 1400);
        assert_eq!(get_txqlen(&mut d, "vb").unwrap(), 500);
        assert_eq!(get_flags(&mut d, "vc").unwrap() & 1, 0);
        assert_eq!(get_flags(&mut d, "va:1").unwrap() & 1, 1);
        assert_eq!(get_metric(&mut d, "lo").unwrap(), 0);
        let hw = get_hwaddr(&mut d, "va").unwrap();
        assert_eq!((hw.family, &hw.data[..6]), (1, &[2, 0x11, 0x22, 0x33, 0x44, 0x55][..]));
        assert_eq!(get_addr(&mut d, "va").unwrap(), ipv4_of("10.1.0.1"));
        assert_eq!(get_addr(&mut d, "va:1").unwrap(), ipv4_of("10.1.0.5"));
        assert_eq!(get_netmask(&mut d, "va:2").unwrap(), ipv4_of("255.255.0.0"));
        assert_eq!(get_brdaddr(&mut d, "va").unwrap(), ipv4_of("10.1.0.255"));
        assert_eq!(get_dstaddr(&mut d, "vb").unwrap(), ipv4_of("10.3.0.2"));
        assert_eq!(errno_of(&get_addr(&mut d, "vc").unwrap_err()), libc::EADDRNOTAVAIL);
        assert_eq!(errno_of(&get_mtu(&mut d, "nosuch").unwrap_err()), libc::ENODEV);
        set_mtu(&mut d, "vc", 1234).unwrap();
        set_txqlen(&mut d, "vc", 99).unwrap();
        set_hwaddr(&mut d, "vc", 1, &[2, 9, 9, 9, 9, 9]).unwrap();
        set_flags(&mut d, "vc", 0x1003).unwrap();
        set_addr(&mut d, "vc", ipv4_of("172.20.1.1")).unwrap();
        set_netmask(&mut d, "vc", ipv4_of("255.255.255.0")).unwrap();
        set_brdaddr(&mut d, "vc", ipv4_of("172.20.1.254")).unwrap();
        let link = ipj("link show dev vc")[0].clone();
        assert_eq!(link["mtu"], 1234);
        assert_eq!(link["txqlen"], 99);
        assert_eq!(link["address"], "02:09:09:09:09:09");
        assert!(link["flags"].as_array().unwrap().contains(&Value::from("UP")));
        let vc = ipj("-4 addr show dev vc")[0].clone();
        let a = &vc["addr_info"][0];
        assert_eq!((a["local"].as_str(), a["prefixlen"].as_u64()), (Some("172.20.1.1"), Some(24)));
        assert_eq!(a["broadcast"], "172.20.1.254");
        let conf = get_conf(&mut d).unwrap();
        assert!(conf.contains(&("vd:x".to_string(), ipv4_of("10.9.1.1"))), "{conf:?}");
        set_flags(&mut d, "vc", 0x1002).unwrap();
        set_name(&mut d, "vc", "vcnew").unwrap();
        assert_eq!(get_mtu(&mut d, "vcnew").unwrap(), 1234);
    }
}

sandbox_test! {
    fn ifconf_equals_the_kernels() {
        setup();
        let fd = inet_socket();
        let mut d = KernelDialog::new().unwrap();
        let need = ifconf_ioctl(fd.as_fd(), None).unwrap();
        assert_eq!(ifconf(&mut d, None).unwrap(), need);
        assert_eq!(need % IFREQ_SIZE, 0);
        assert!(need / IFREQ_SIZE >= 7, "only {} addresses", need / IFREQ_SIZE);
        // Room for all, for all and some, for three and a half, for none.
        for room in [need, need + 100, 3 * IFREQ_SIZE + 20, 10, 0] {
            let mut want = vec![0xa5u8; room];
            let mut got = want.clone();
            let n_want = ifconf_ioctl(fd.as_fd(), Some(&mut want)).unwrap();
            let n_got = ifconf(&mut d, Some(&mut got)).unwrap();
            assert_eq!(n_got, n_want, "ifc_len with room for {room} bytes");
            assert_eq!(got, want, "the buffer with room for {room} bytes");
        }
    }
}

/// Sends over 10 MB over lo (so its byte counters take 8 digits, where the
/// kernel's `%6s: %7llu` and libnlq's `%6s:%8llu` differ), and a few datagrams
/// over va and br0 to addresses nobody has (the ARP requests cross to vb), so
/// that counters are not all zero.
fn traffic() {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    let big = vec![0u8; 60_000];
    for _ in 0..200 {
        s.send_to(&big, "127.0.0.1:9").unwrap();
    }
    for _ in 0..5 {
        s.send_to(b"counters", "127.0.0.1:9").unwrap();
        let _ = s.send_to(b"counters", "10.1.0.99:9");
        let _ = s.send_to(b"counters", "192.168.7.99:9");
    }
}

sandbox_test! {
    fn proc_net_dev_equals_the_kernels() {
        setup();
        traffic();
        let mut d = KernelDialog::new().unwrap();
        // Counters may move between two reads (ARP retries): a line of the
        // emulation must equal that line in the real file read just before or
        // just after it; a few rounds rule out a change in both intervals.
        let mut last = String::new();
        for round in 0..5 {
            let before = std::fs::read_to_string("/proc/net/dev").unwrap();
            let ours = proc_net_dev(&mut d).unwrap();
            let after = std::fs::read_to_string("/proc/net/dev").unwrap();
            assert!(ours.starts_with(PROC_NET_DEV_HEADER));
            assert!(before.starts_with(PROC_NET_DEV_HEADER), "the kernel's header changed:\n{before}");
            let (b, o, a): (Vec<&str>, Vec<&str>, Vec<&str>) =
                (before.lines().collect(), ours.lines().collect(), after.lines().collect());
            let same = o.len() == b.len()
                && o.len() == a.len()
                && o.iter().zip(b.iter().zip(&a)).all(|(o, (b, a))| o == b || o == a);
            if same {
                let moved = o
                    .iter()
                    .skip(2)
                    .filter(|l| l.split(':').nth(1).unwrap().split_whitespace().any(|n| n != "0"))
                    .count();
                eprintln!("round {round}: byte for byte, {} lines, {moved} with traffic\n{ours}", o.len());
                assert!(ours.contains("\n    lo: 1"), "lo has not counted 10 MB: {ours}");
                return;
            }
            last = format!("kernel before:\n{before}\nemulated:\n{ours}\nkernel after:\n{after}");
        }
        panic!("/proc/net/dev differs:\n{last}");
    }
}

const CHILD: &str = "NL_EMUL_UNPRIVILEGED_CHILD";

sandbox_test! {
    fn set_ioctls_check_permission_first() {
        if in_user_namespace() {
            return skip(
                "set_ioctls_check_permission_first",
                "needs root in the initial user namespace, to run a child as nobody in the test's namespace",
            );
        }
        if !have_tool("set_ioctls_check_permission_first", "setpriv") {
            return;
        }
        twins();
        // A copy of this binary that nobody may run.
        let dir = std::env::temp_dir().join(format!("nl_emul_child_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("nl_emul");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        sh(&format!("chmod -R a+rX {}", dir.display()));
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe)
            .args(["unprivileged_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the unprivileged child failed:\n{text}");
        assert!(text.contains("as nobody:"), "the child did not run:\n{text}");
        eprintln!("{}", text.lines().filter(|l| l.contains("as nobody:")).collect::<Vec<_>>().join("\n"));
    }
}

/// Run only by `set_ioctls_check_permission_first`, as nobody inside its
/// namespace: without CAP_NET_ADMIN, every set fails as the kernel's does
/// (`EPERM` before `ENODEV` and before a wrong family), and gets still work.
#[test]
fn unprivileged_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    // Only in the parent's namespace, which has the twins.
    let devs = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(
        devs.contains("\nt1peer:"),
        "not in the test's namespace:\n{devs}"
    );
    let fd = inet_socket();
    let mut d = KernelDialog::new().unwrap();
    let mut n = 0;
    for s in sets() {
        for name in [
            format!("t1{}", s.suffix),
            format!("t2{}", s.suffix),
            "nosuch".into(),
        ] {
            let mut r = IfReq::named(&name);
            (s.fill)(&mut r);
            assert_eq!(
                emulated(&mut d, s.req, r.0),
                real(&fd, s.req, r.0),
                "{:#x} on {name}",
                s.req
            );
            n += 1;
        }
    }
    for (req, what) in GETS {
        for name in [&b"t1"[..], b"t1:1", b"nosuch"] {
            let r = req_named(name, 0x33);
            assert_eq!(emulated(&mut d, *req, r), real(&fd, *req, r), "{what}");
            n += 1;
        }
    }
    eprintln!("as nobody: {n} requests, same errno and bytes as the kernel's");
}

sandbox_test! {
    fn inside_a_stack_through_its_own_sockets() {
        let stack = match vdestack::stack::Stack::with_interfaces(&["null://"]) {
            Ok(s) => s,
            Err(e) => return skip("inside_a_stack_through_its_own_sockets", &format!("no stack: {e}")),
        };
        let nl = stack.socket(vdestack::net::AddressFamily::NETLINK, vdestack::net::SocketType::RAW, None).unwrap();
        let fd = stack.socket(vdestack::net::AddressFamily::INET, vdestack::net::SocketType::DGRAM, None).unwrap();
        let mut d = KernelDialog::from_fd(nl);
        // Configured through the emulation only.
        set_flags(&mut d, "lo", 0x9).unwrap();
        set_flags(&mut d, "vde0", 0x1003).unwrap();
        set_addr(&mut d, "vde0", ipv4_of("10.7.0.1")).unwrap();
        set_netmask(&mut d, "vde0", ipv4_of("255.255.255.0")).unwrap();
        set_addr(&mut d, "vde0:1", ipv4_of("10.7.0.9")).unwrap();
        set_mtu(&mut d, "vde0", 1492).unwrap();
        for name in [&b"lo"[..], b"vde0", b"vde0:1", b"nosuch"] {
            for (req, what) in GETS {
                let r = req_named(name, 0x3c);
                assert_eq!(emulated(&mut d, *req, r), real(&fd, *req, r), "{what} in the stack");
            }
        }
        let mut want = vec![0u8; 400];
        let mut got = want.clone();
        let n = ifconf_ioctl(fd.as_fd(), Some(&mut want)).unwrap();
        assert_eq!(ifconf(&mut d, Some(&mut got)).unwrap(), n);
        assert_eq!(got, want);
        assert_eq!(n, 3 * IFREQ_SIZE, "lo (127.0.0.1 comes with up), vde0, vde0:1");
        // The stack's own /proc/net/dev, read by a command in the stack
        // (/proc/self/net follows the reader's network namespace).
        let read = || {
            let out = stack.command("/bin/cat").arg("/proc/self/net/dev").output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        let before = read();
        let ours = proc_net_dev(&mut d).unwrap();
        let after = read();
        assert!(ours == before || ours == after, "kernel:\n{before}\nemulated:\n{ours}");
        assert!(ours.contains("\n  vde0:"), "{ours}");
    }
}

sandbox_test! {
    fn kernel_dialog_ends_each_answer_where_the_trait_says() {
        use vdestack::nl::dialog::Dialog;
        use vdestack::nl::wire::{self, Builder};
        let mut d = KernelDialog::new().unwrap();
        let kinds = |msgs: &[Vec<u8>]| -> Vec<(u16, u16, u32)> {
            msgs.iter()
                .map(|m| {
                    let x = wire::split(m).unwrap();
                    assert_eq!(x.len(), 1, "one whole message per item");
                    (x[0].kind, x[0].flags, x[0].seq)
                })
                .collect()
        };
        let get = |flags: u16, name: &str| {
            Builder::new(wire::RTM_GETLINK, wire::NLM_F_REQUEST | flags, 999)
                .ifinfomsg(0, 0, 0, 0)
                .attr_str(wire::IFLA_IFNAME, name)
                .finish()
        };
        // A dump ends at NLMSG_DONE, every part before it flagged MULTI.
        let dump = Builder::new(wire::RTM_GETLINK, wire::NLM_F_REQUEST | wire::NLM_F_DUMP, 0)
            .ifinfomsg(0, 0, 0, 0)
            .finish();
        let k = kinds(&d.dialog(&dump).unwrap());
        assert_eq!(k.last().unwrap().0, wire::NLMSG_DONE);
        assert!(k[..k.len() - 1].iter().all(|(t, f, _)| *t == wire::RTM_NEWLINK && f & wire::NLM_F_MULTI != 0));
        let seq = k[0].2;
        assert!(seq != 0 && k.iter().all(|x| x.2 == seq), "the dialog's own sequence number");
        // A request with ACK ends at the ack; without, at its one reply.
        let k = kinds(&d.dialog(&get(wire::NLM_F_ACK, "lo")).unwrap());
        assert_eq!(k.iter().map(|x| x.0).collect::<Vec<_>>(), [wire::RTM_NEWLINK, wire::NLMSG_ERROR]);
        assert_eq!(k[0].2, seq + 1);
        let k = kinds(&d.dialog(&get(0, "lo")).unwrap());
        assert_eq!(k.iter().map(|x| x.0).collect::<Vec<_>>(), [wire::RTM_NEWLINK]);
        // An error is the NLMSG_ERROR, returned as a reply, not as an Err.
        let r = d.dialog(&get(wire::NLM_F_ACK, "nosuch")).unwrap();
        let m = wire::split(&r[0]).unwrap()[0];
        assert_eq!((r.len(), m.kind), (1, wire::NLMSG_ERROR));
        assert_eq!(wire::error_code(m.payload).unwrap(), -libc::ENODEV);
        assert_eq!(errno_of(&d.dialog(&[1, 2, 3]).unwrap_err()), libc::EINVAL);
    }
}
