//! Point-to-point plugs against Debian's `vde_plug`: `udp://` over 127.0.0.1 and ::1,
//! `ptp://` with ours as the first and as the second end. Each test runs in a private
//! network namespace.

mod common;

use std::time::Duration;

use common::*;
use vdestack::vde::{self, recv_timeout, OpenArgs, Plug, MAX_FRAME};

fn ours_recv(p: &mut dyn Plug, t: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_FRAME];
    recv_timeout(p, &mut buf, t)
        .unwrap()
        .map(|n| buf[..n].to_vec())
}

/// Frames both ways between one of our plugs and a Debian `vde_plug`, then the
/// Debian side goes away: ours keeps working (sends are dropped), nothing hangs.
fn both_ways(what: &str, ours: &mut dyn Plug, theirs: &mut StreamPeer) {
    let there = test_frames(300, mac(1), mac(2), 41);
    check_flow(
        &format!("ours -> Debian {what}"),
        &there,
        |f| {
            ours.send(f).unwrap();
        },
        |t| theirs.recv(t),
    );
    let back = test_frames(300, mac(2), mac(1), 42);
    check_flow(
        &format!("Debian -> ours {what}"),
        &back,
        |f| theirs.send(f),
        |t| ours_recv(ours, t),
    );

    theirs.close_stdin();
    assert!(
        theirs.proc.wait_exit(Duration::from_secs(5)).is_some(),
        "vde_plug did not exit on EOF"
    );
    for f in &there[..20] {
        ours.send(f)
            .expect("a send after the peer left is dropped, not an error");
    }
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(
        recv_timeout(ours, &mut buf, Duration::from_millis(300)).unwrap(),
        None
    );
}

fn udp_with_debian(test: &str, ours_url: &str, theirs_url: &str) {
    if !have_tool(test, "vde_plug") {
        return;
    }
    let mut ours = vde::open(ours_url).unwrap();
    let mut theirs = StreamPeer::vde_plug(theirs_url);
    std::thread::sleep(Duration::from_millis(300));
    both_ways(ours_url, ours.as_mut(), &mut theirs);
}

sandbox_test! {
    fn udp_with_debian_ipv4() {
        udp_with_debian("udp_with_debian_ipv4", "udp://25001->127.0.0.1:25002", "udp://25002->127.0.0.1:25001");
    }
}

sandbox_test! {
    fn udp_with_debian_ipv6() {
        udp_with_debian("udp_with_debian_ipv6", "udp://::1:25003->::1:25004", "udp://25004->::1:25003");
    }
}

sandbox_test! {
    fn udp_two_of_ours_and_strangers_ignored() {
        let mut a = vde::open("udp://127.0.0.1:25005->127.0.0.1:25006").unwrap();
        let mut b = vde::open("udp://25006->127.0.0.1:25005").unwrap();
        let ab = test_frames(300, mac(1), mac(2), 43);
        check_flow("udp a -> b", &ab, |f| { a.send(f).unwrap(); }, |t| ours_recv(b.as_mut(), t));
        let ba = test_frames(300, mac(2), mac(1), 44);
        check_flow("udp b -> a", &ba, |f| { b.send(f).unwrap(); }, |t| ours_recv(a.as_mut(), t));
        // A datagram from anyone else is not taken.
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(&ab[0], "127.0.0.1:25005").unwrap();
        assert_eq!(ours_recv(a.as_mut(), Duration::from_millis(300)), None);
        drop(b);
        a.send(&ab[0]).expect("the peer's absence drops the frame");
        assert_eq!(ours_recv(a.as_mut(), Duration::from_millis(300)), None);
    }
}

sandbox_test! {
    fn udp_errors_name_the_part() {
        let e = vde::open("udp://25000").expect_err("no ->");
        assert!(e.to_string().contains("->"), "{e}");
        let e = vde::open("udp://abc->127.0.0.1:1").expect_err("bad port");
        assert!(e.to_string().contains("source port"), "{e}");
        let e = vde::open("udp://1->127.0.0.1:99999").expect_err("bad port");
        assert!(e.to_string().contains("destination port"), "{e}");
        let e = vde::open("udp://1->no.such.host.invalid:5").expect_err("unresolvable");
        assert!(e.to_string().contains("no.such.host.invalid"), "{e}");
    }
}

fn ptp_with_debian(test: &str, ours_first: bool) {
    if !have_tool(test, "vde_plug") {
        return;
    }
    let dir = TempDir::new("ptp");
    let url = format!("ptp://{}", dir.join_str("cable"));
    let (mut ours, mut theirs);
    if ours_first {
        ours = vde::open(&url).unwrap();
        theirs = StreamPeer::vde_plug(&url);
        wait_for_path(&dir.path("cable+"));
    } else {
        theirs = StreamPeer::vde_plug(&url);
        wait_for_path(&dir.path("cable"));
        ours = vde::open(&url).unwrap();
        assert!(dir.path("cable+").exists(), "we are the second end");
    }
    std::thread::sleep(Duration::from_millis(100));
    // A third opener finds both ends taken.
    let e = vde::open(&url).expect_err("a third end is refused");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(e.to_string().contains("in use"), "{e}");
    both_ways(&url, ours.as_mut(), &mut theirs);
    let own = if ours_first { "cable" } else { "cable+" };
    assert!(dir.path(own).exists());
    drop(ours);
    assert!(
        !dir.path(own).exists(),
        "our socket file is removed on drop"
    );
}

sandbox_test! {
    fn ptp_ours_first_debian_second() {
        ptp_with_debian("ptp_ours_first_debian_second", true);
    }
}

sandbox_test! {
    fn ptp_debian_first_ours_second() {
        ptp_with_debian("ptp_debian_first_ours_second", false);
    }
}

sandbox_test! {
    fn ptp_two_of_ours_stale_files_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("ptp2");
        let path = dir.join_str("c");
        // A stale socket file (its process is gone) is replaced.
        drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
        assert!(dir.path("c").exists());
        let args = OpenArgs { mode: Some(0o660), ..OpenArgs::default() };
        let mut a = vde::open_with(&format!("ptp://{path}"), &args).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let mut b = vde::open(&format!("ptp://{path}")).unwrap();
        let ab = test_frames(300, mac(1), mac(2), 51);
        check_flow("ptp a -> b", &ab, |f| { a.send(f).unwrap(); }, |t| ours_recv(b.as_mut(), t));
        let ba = test_frames(300, mac(2), mac(1), 52);
        check_flow("ptp b -> a", &ba, |f| { b.send(f).unwrap(); }, |t| ours_recv(a.as_mut(), t));
        // A full peer drops frames instead of blocking (the upstream deadlock).
        let big = vec![0x42u8; 1514];
        let mut dropped = false;
        for _ in 0..100_000 {
            match a.send(&big) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    dropped = true;
                    break;
                }
                Err(e) => panic!("send to a full peer: {e}"),
            }
        }
        assert!(dropped, "a full peer reports WouldBlock");
        // b goes away and comes back: a reconnects to the new b.
        drop(b);
        let mut b = vde::open(&format!("ptp://{path}")).unwrap();
        let again = test_frames(50, mac(1), mac(2), 53);
        check_flow("ptp a -> new b", &again, |f| { a.send(f).unwrap(); }, |t| ours_recv(b.as_mut(), t));
        let e = vde::open_with("ptp:///x", &OpenArgs { mode: Some(0), ..OpenArgs::default() }).err().unwrap();
        assert!(e.to_string().contains("mode"), "{e}");
    }
}
