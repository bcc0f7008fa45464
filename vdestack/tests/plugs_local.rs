//! `tap://`, `seqpacket://`, `null://` and the `vdestack plug` command line, against the
//! kernel and Debian's `vde_plug`.

mod common;

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use vdestack::vde::{self, recv_timeout, MAX_FRAME};

/// An ARP request from `mac(1)` / 10.77.0.2 for `target`.
fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&[10, 77, 0, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

fn is_arp_reply_from(f: &[u8], ip: [u8; 4]) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] && f[28..32] == ip
}

sandbox_test! {
    fn tap_talks_to_the_kernel() {
        const T: &str = "tap_talks_to_the_kernel";
        if !have_tun(T) {
            return;
        }
        let mut tap = vde::open("tap://vdetap0").unwrap();
        ip("link set vdetap0 up");
        ip("addr add 10.77.0.1/24 dev vdetap0");
        let mut buf = vec![0u8; MAX_FRAME];
        let mut answered = false;
        for _ in 0..5 {
            tap.send(&arp_request([10, 77, 0, 1])).unwrap();
            while let Some(n) = recv_timeout(tap.as_mut(), &mut buf, Duration::from_millis(500)).unwrap() {
                if is_arp_reply_from(&buf[..n], [10, 77, 0, 1]) {
                    answered = true;
                    break;
                }
            }
            if answered {
                break;
            }
        }
        assert!(answered, "the kernel never answered our ARP request through tap://");
        // Bad names are refused before the kernel sees them.
        let e = vde::open("tap://a-name-far-too-long-for-linux").err().unwrap();
        assert!(e.to_string().contains("at most 15"), "{e}");
        drop(tap);
        // The tap was not persistent: dropping the plug removes the interface.
        assert!(!std::path::Path::new("/sys/class/net/vdetap0").exists());
    }
}

sandbox_test! {
    fn seqpacket_fd_and_null() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(a);
        let mut p = vde::open(&format!("seqpacket://{raw}")).unwrap();
        let frames = test_frames(200, mac(1), mac(2), 5);
        let mut buf = vec![0u8; MAX_FRAME];
        check_flow("seqpacket:// out", &frames, |f| {
            p.send(f).unwrap();
        }, |_| {
            let n = rustix::net::recv(&b, &mut buf[..], rustix::net::RecvFlags::empty()).unwrap().0;
            Some(buf[..n].to_vec())
        });
        let mut rbuf = vec![0u8; MAX_FRAME];
        check_flow("seqpacket:// in", &frames, |f| {
            rustix::net::send(&b, f, rustix::net::SendFlags::empty()).unwrap();
        }, |t| recv_timeout(p.as_mut(), &mut rbuf, t).unwrap().map(|n| rbuf[..n].to_vec()));
        drop(b);
        let e = recv_timeout(p.as_mut(), &mut rbuf, Duration::from_secs(2)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        drop(p);
        // The plug owned the fd: it is closed now.
        assert!(
            !std::path::Path::new(&format!("/proc/self/fd/{raw}")).exists(),
            "fd {raw} still open after the plug was dropped"
        );

        assert!(vde::open("seqpacket://notanumber").is_err());
        assert!(vde::open("seqpacket://987654").is_err());
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = vde::open(&format!("seqpacket://{}", f.as_raw_fd())).err().unwrap();
        assert!(e.to_string().contains("SOCK_SEQPACKET"), "{e}");
        // The rejected fd was not closed behind our back.
        assert!(f.metadata().is_ok());

        let mut n = vde::open("null://").unwrap();
        assert_eq!(n.send(&[0; 60]).unwrap(), 60);
        assert!(recv_timeout(n.as_mut(), &mut rbuf, Duration::from_millis(50)).unwrap().is_none());
    }
}

sandbox_test! {
    fn vdestack_plug_stdio_and_coprocess_with_debian_vde_plug() {
        const T: &str = "vdestack_plug_stdio_and_coprocess_with_debian_vde_plug";
        if !have_tool(T, "vde_switch") || !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("cli");
        let sw = dir.path("sw");
        let _switch = debian_vde_switch(&sw);
        let url = format!("vde://{}", sw.display());

        // `vdestack plug URL`: stream framing on stdio, like `vde_plug URL`.
        let mut c = Command::new(vdestack_bin());
        c.args(["plug", &url]);
        let mut ours = StreamPeer::spawn(c);
        let mut theirs = StreamPeer::vde_plug(&url);
        std::thread::sleep(Duration::from_millis(200));
        let frames = test_frames(300, mac(1), mac(2), 21);
        check_flow("vdestack plug -> vde_plug", &frames, |f| ours.send(f), |t| theirs.recv(t));
        let frames = test_frames(300, mac(2), mac(1), 22);
        check_flow("vde_plug -> vdestack plug", &frames, |f| theirs.send(f), |t| ours.recv(t));
        // EOF on our stdin ends `vdestack plug` with status 0.
        ours.close_stdin();
        let st = ours.proc.wait_exit(Duration::from_secs(5)).expect("plug exits on EOF");
        assert!(st.success(), "{st}");

        // `vdestack plug URL = vde_plug URL`: Debian vde_plug as our coprocess, joining
        // the same switch: a cable switch<->switch through two processes. Frames from
        // one vde_plug reach the other only through it... so check with a second
        // switch.
        let sw2 = dir.path("sw2");
        let _switch2 = debian_vde_switch(&sw2);
        let url2 = format!("vde://{}", sw2.display());
        let mut co = Command::new(vdestack_bin());
        co.args(["plug", &url, "=", "vde_plug", &url2]).stdin(Stdio::null());
        let mut co = Proc::spawn(co);
        let mut far = StreamPeer::vde_plug(&url2);
        std::thread::sleep(Duration::from_millis(300));
        let frames = test_frames(300, mac(3), mac(4), 23);
        check_flow("vde_plug -> sw -> vdestack plug = vde_plug -> sw2", &frames, |f| theirs.send(f), |t| far.recv(t));
        let frames = test_frames(300, mac(4), mac(3), 24);
        check_flow("sw2 -> coprocess -> sw", &frames, |f| far.send(f), |t| theirs.recv(t));
        // The coprocess ending ends the cable.
        drop(far);
        drop(_switch2);
        let st = co.wait_exit(Duration::from_secs(10)).expect("plug exits when its coprocess does");
        assert!(st.success(), "{st}");
    }
}

sandbox_test! {
    fn vdestack_switch_cli_cleans_up_and_rejects_bad_input() {
        let dir = TempDir::new("swcli");
        let sw = dir.path("sw");
        let mut c = Command::new(vdestack_bin());
        c.arg("switch").arg(&sw).stderr(Stdio::null());
        let mut p = Proc::spawn(c);
        wait_for_switch(&sw);
        // A second switch on the same directory is refused with a clear message.
        let out = Command::new(vdestack_bin()).arg("switch").arg(&sw).output().unwrap();
        assert!(!out.status.success());
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains(&*sw.to_string_lossy()), "{msg}");
        rustix::process::kill_process(rustix::process::Pid::from_child(&p.child), rustix::process::Signal::INT).unwrap();
        let st = p.wait_exit(Duration::from_secs(5)).expect("exits on SIGINT");
        assert!(st.success());
        assert!(!sw.exists(), "directory removed on SIGINT");

        for (args, needle) in [
            (vec!["plug", "bogus://x"], "unknown VDE plug scheme"),
            (vec!["plug", "vxvde://239.0.0.1/colour=1"], "colour"),
            (vec!["plug", "/no/such/switch"], "/no/such/switch"),
            (vec!["plug", "a", "b", "c"], "too many"),
            (vec!["plug", "udp://1234"], "->"),
            (vec!["switch", "-m", "9z", "/tmp/x"], "octal"),
        ] {
            let out = Command::new(vdestack_bin()).args(&args).stdin(Stdio::null()).output().unwrap();
            assert!(!out.status.success(), "{args:?} should fail");
            let msg = String::from_utf8_lossy(&out.stderr);
            assert!(msg.contains(needle), "{args:?}: {msg}");
            assert!(!msg.contains("panicked"), "{args:?}: {msg}");
        }
    }
}
