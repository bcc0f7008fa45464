//! `vxvde://` with Debian's `vde_plug vxvde://` and with itself, and `vxlan://` with
//! a Linux kernel `vxlan` device. Every test runs in a private network namespace;
//! each uses its own group and port so they never hear each other.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use vdestack::vde::{self, recv_timeout, Plug, MAX_FRAME};

/// Receives the next frame from one of our plugs, for [`check_flow`].
fn ours_recv(p: &mut dyn Plug, t: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_FRAME];
    recv_timeout(p, &mut buf, t)
        .unwrap()
        .map(|n| buf[..n].to_vec())
}

/// Whether `p` receives a frame from `src` within `t` (other frames are skipped).
fn hears_from(p: &mut dyn Plug, src: [u8; 6], t: Duration) -> bool {
    let deadline = std::time::Instant::now() + t;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match ours_recv(p, left) {
            Some(f) if f[6..12] == src => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

/// Gives IPv6 multicast somewhere to go. Linux turns routes via `lo` into reject
/// routes for IPv6, so the harness's `ff00::/8 dev lo` does not carry anything; a
/// veth pair whose both ends stay in this namespace does (the sender's own copy is
/// looped back locally). Only one end has IPv6, so there is one multicast route.
fn ipv6_multicast_underlay() {
    ip("link add v6a type veth peer name v6b");
    let st = Command::new("sysctl")
        .args([
            "-qw",
            "net.ipv6.conf.v6b.disable_ipv6=1",
            "net.ipv6.conf.v6a.accept_dad=0",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "sysctl for the IPv6 underlay");
    ip("link set v6b up");
    ip("link set v6a up");
    ip("addr add fd00:76::1/64 dev v6a nodad");
}

fn debian_both_ways(test: &str, url: &str) {
    if !have_tool(test, "vde_plug") {
        return;
    }
    if url["vxvde://".len()..].contains(':') || url.contains("/v6") {
        ipv6_multicast_underlay();
    }
    let mut ours = vde::open(url).unwrap();
    let mut theirs = StreamPeer::vde_plug(url);
    std::thread::sleep(Duration::from_millis(300));

    let there = test_frames(300, mac(1), mac(2), 11);
    check_flow(
        &format!("ours -> Debian {url}"),
        &there,
        |f| {
            ours.send(f).unwrap();
        },
        |t| theirs.recv(t),
    );
    let back = test_frames(300, mac(2), mac(1), 12);
    check_flow(
        &format!("Debian -> ours {url}"),
        &back,
        |f| theirs.send(f),
        |t| ours_recv(ours.as_mut(), t),
    );
    // Now both have learned each other: a second round goes unicast both ways.
    let again = test_frames(100, mac(1), mac(2), 13);
    check_flow(
        &format!("ours -> Debian unicast {url}"),
        &again,
        |f| {
            ours.send(f).unwrap();
        },
        |t| theirs.recv(t),
    );

    // Closing either side leaves the other running and quiet; nothing hangs.
    drop(ours);
    theirs.close_stdin();
    assert!(
        theirs.proc.wait_exit(Duration::from_secs(5)).is_some(),
        "vde_plug did not exit on EOF"
    );
}

sandbox_test! {
    fn vxvde_with_debian_ipv4() {
        debian_both_ways("vxvde_with_debian_ipv4", "vxvde://239.5.0.1/port=24001");
    }
}

sandbox_test! {
    fn vxvde_with_debian_default_group() {
        debian_both_ways("vxvde_with_debian_default_group", "vxvde://");
    }
}

sandbox_test! {
    fn vxvde_with_debian_ipv6() {
        debian_both_ways("vxvde_with_debian_ipv6", "vxvde://ff05:56de::7/port=24002");
    }
}

sandbox_test! {
    fn vxvde_with_debian_v6_default_group_and_vni() {
        debian_both_ways("vxvde_with_debian_v6_default_group_and_vni", "vxvde:///v6/vni=1234/port=24003");
    }
}

sandbox_test! {
    fn vxvde_two_of_ours_and_goodbye() {
        two_of_ours_and_goodbye("vxvde://239.5.0.4/port=24004");
    }
}

sandbox_test! {
    fn vxvde_two_of_ours_and_goodbye_ipv6() {
        ipv6_multicast_underlay();
        two_of_ours_and_goodbye("vxvde://ff05:56de::4/port=24006");
    }
}

fn two_of_ours_and_goodbye(url: &str) {
    {
        let mut a = vde::open(url).unwrap();
        let mut b = vde::open(url).unwrap();
        let mut c = vde::open(url).unwrap();
        // Our own multicast comes back to our group socket; it must not be taken.
        let hello = test_frames(1, mac(9), [0xff; 6], 20);
        a.send(&hello[0]).unwrap();
        assert!(
            hears_from(b.as_mut(), mac(9), Duration::from_secs(2)),
            "b hears a's broadcast"
        );
        assert!(
            !hears_from(a.as_mut(), mac(9), Duration::from_millis(300)),
            "a must not hear itself"
        );
        let ab = test_frames(300, mac(1), mac(2), 21);
        check_flow(
            "a -> b",
            &ab,
            |f| {
                a.send(f).unwrap();
            },
            |t| ours_recv(b.as_mut(), t),
        );
        let ba = test_frames(300, mac(2), mac(1), 22);
        check_flow(
            "b -> a",
            &ba,
            |f| {
                b.send(f).unwrap();
            },
            |t| ours_recv(a.as_mut(), t),
        );
        // b has learned mac(1) behind a: a frame to it is unicast, c does not see it.
        while ours_recv(c.as_mut(), Duration::from_millis(200)).is_some() {}
        let probe = test_frames(1, mac(2), mac(1), 23);
        b.send(&probe[0]).unwrap();
        assert!(
            hears_from(a.as_mut(), mac(2), Duration::from_secs(2)),
            "a gets the unicast"
        );
        assert!(
            !hears_from(c.as_mut(), mac(2), Duration::from_millis(500)),
            "c must not see a unicast"
        );
        // a says goodbye: b forgets mac(1), the next frame to it floods and c sees it.
        drop(a);
        std::thread::sleep(Duration::from_millis(200));
        let mut sink = vec![0u8; MAX_FRAME];
        while recv_timeout(b.as_mut(), &mut sink, Duration::from_millis(100))
            .unwrap()
            .is_some()
        {}
        b.send(&probe[0]).unwrap();
        assert!(
            hears_from(c.as_mut(), mac(2), Duration::from_secs(2)),
            "after the goodbye b floods"
        );
    }
}

sandbox_test! {
    fn vxvde_sees_debian_goodbye() {
        const T: &str = "vxvde_sees_debian_goodbye";
        if !have_tool(T, "vde_plug") {
            return;
        }
        let url = "vxvde://239.5.0.5/port=24005";
        let mut ours = vde::open(url).unwrap();
        let mut watcher = vde::open(url).unwrap();
        let mut theirs = StreamPeer::vde_plug(url);
        std::thread::sleep(Duration::from_millis(300));
        let from_them = test_frames(20, mac(2), mac(1), 31);
        check_flow("Debian -> ours", &from_them, |f| theirs.send(f), |t| ours_recv(ours.as_mut(), t));
        while ours_recv(watcher.as_mut(), Duration::from_millis(200)).is_some() {}
        let to_them = test_frames(1, mac(1), mac(2), 32);
        ours.send(&to_them[0]).unwrap();
        assert_eq!(theirs.recv(Duration::from_secs(2)).as_deref(), Some(&to_them[0][..]));
        assert!(!hears_from(watcher.as_mut(), mac(1), Duration::from_millis(500)), "learned: unicast");
        theirs.close_stdin();
        assert!(theirs.proc.wait_exit(Duration::from_secs(5)).is_some());
        std::thread::sleep(Duration::from_millis(200));
        let mut sink = vec![0u8; MAX_FRAME];
        while recv_timeout(ours.as_mut(), &mut sink, Duration::from_millis(100)).unwrap().is_some() {}
        ours.send(&to_them[0]).unwrap();
        assert!(hears_from(watcher.as_mut(), mac(1), Duration::from_secs(2)), "after Debian's goodbye we flood");
    }
}

sandbox_test! {
    fn vx_bad_urls_are_clear_errors() {
        let e = vde::open("vxvde://10.1.2.3").expect_err("unicast group refused");
        assert!(e.to_string().contains("multicast"), "{e}");
        let e = vde::open("vxvde://239.0.0.1/colour=red").expect_err("unknown option refused");
        assert!(e.to_string().contains("colour"), "{e}");
        let e = vde::open("vxlan:///bind=127.0.0.1").expect_err("vxlan has no bind=");
        assert!(e.to_string().contains("bind"), "{e}");
        let e = vde::open("vxvde:///vni=abc%zz").expect_err("bad vni");
        assert!(e.to_string().contains("vni"), "{e}");
        assert!(vde::open("vxvde://no.such.group.invalid").is_err());
        assert!(vde::open("vxvde:///if=nosuchif0").is_err());
    }
}

// ---- vxlan:// against the kernel ------------------------------------------------

fn ip_in(pid: u32, args: &str) {
    let words: Vec<&str> = args.split_whitespace().collect();
    let st = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip"])
        .args(&words)
        .status()
        .unwrap();
    assert!(st.success(), "ip {args} (in the peer namespace)");
}

const VX_IP: [u8; 4] = [10, 9, 0, 1];
const OUR_IP: [u8; 4] = [10, 9, 0, 2];

fn arp_request(src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&OUR_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&VX_IP);
    f
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request from us to the kernel's vxlan address.
fn ping(src: [u8; 6], dst: [u8; 6], seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut iph = vec![0x45, 0];
    iph.extend_from_slice(&total.to_be_bytes());
    iph.extend_from_slice(&[0, 0, 0x40, 0, 64, 1, 0, 0]);
    iph.extend_from_slice(&OUR_IP);
    iph.extend_from_slice(&VX_IP);
    let c = checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&iph);
    f.extend_from_slice(&icmp);
    f
}

sandbox_test! {
    fn vxlan_with_kernel_device() {
        const T: &str = "vxlan_with_kernel_device";
        if !is_root() {
            return skip(T, "needs root to create veth and vxlan devices");
        }
        if !have_tool(T, "nsenter") {
            return;
        }
        // A second namespace (made here, inside ours) holds the kernel's vxlan device,
        // since it wants port 4789 for itself; a veth pair is the underlay.
        let mut holder = Command::new("unshare");
        holder.args(["-n", "sleep", "600"]);
        let peer = Proc::spawn(holder);
        let pid = peer.child.id();
        std::thread::sleep(Duration::from_millis(200));
        ip("link add va type veth peer name vb");
        ip(&format!("link set vb netns {pid}"));
        ip("addr add 10.77.0.1/24 dev va");
        ip("link set va up");
        ip_in(pid, "link set lo up");
        ip_in(pid, "addr add 10.77.0.2/24 dev vb");
        ip_in(pid, "link set vb up");
        ip_in(pid, "link add vx0 type vxlan id 42 group 239.1.1.1 dstport 4789 dev vb");
        ip_in(pid, "addr add 10.9.0.1/24 dev vx0");
        ip_in(pid, "link set vx0 up");
        std::thread::sleep(Duration::from_millis(300));

        let mut ours = vde::open("vxlan://239.1.1.1/vni=42/if=va").unwrap();
        let me = mac(1);
        // ARP: the request floods to the group, the reply comes back unicast.
        let mut vx_mac = None;
        for _ in 0..20 {
            ours.send(&arp_request(me)).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                match ours_recv(ours.as_mut(), left) {
                    Some(f) if f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == VX_IP => {
                        vx_mac = Some(<[u8; 6]>::try_from(&f[22..28]).unwrap());
                        break;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            if vx_mac.is_some() {
                break;
            }
        }
        let vx_mac = vx_mac.expect("the kernel's vxlan device answered our ARP request");

        // Pings of random sizes: each reply carries our payload back intact.
        let mut rng = Rng::new(7);
        for seq in 0..200u16 {
            let payload: Vec<u8> = (0..rng.below(1400)).map(|_| rng.next() as u8).collect();
            ours.send(&ping(me, vx_mac, seq, &payload)).unwrap();
            let reply = loop {
                let f = ours_recv(ours.as_mut(), Duration::from_secs(3))
                    .unwrap_or_else(|| panic!("no echo reply for {seq}"));
                if f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == 0 {
                    break f;
                }
            };
            assert_eq!(&reply[0..6], &me, "reply to our MAC");
            assert_eq!(&reply[40..42], &seq.to_be_bytes(), "echo sequence");
            assert_eq!(&reply[42..], &payload[..], "echo payload of {seq}");
        }
        drop(ours);
        drop(peer);
    }
}

sandbox_test! {
    fn vxvde_tells_how_many_frames_a_member_queues() {
        // A member's socket buffer: the kernel's default, or twice `rcvbuf=`.
        let default: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let frames = |url: &str| vde::open(url).unwrap().flight_frames();
        assert_eq!(frames("vxvde://239.5.0.9/port=24009"), Some(default / 4608));
        assert_eq!(
            frames("vxvde://239.5.0.9/port=24009/rcvbuf=262144"),
            Some(2 * 262_144 / 4608)
        );
        // A wrapper's receivers are its nested plug's.
        assert_eq!(
            frames("vlan://5{vxvde://239.5.0.9/port=24009}"),
            Some(default / 4608)
        );
        assert_eq!(frames("vxlan://239.5.0.10/port=24010"), Some(default / 4608));
        assert_eq!(frames("inproc://flight-frames"), None);
    }
}
