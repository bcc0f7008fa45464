//! `cmd://` with Debian's `vde_plug` as the coprocess, through Debian's `vde_switch`.

mod common;

use std::time::Duration;

use common::*;
use vdestack::vde::{self, recv_timeout, MAX_FRAME};

sandbox_test! {
    fn cmd_with_debian_vde_plug_through_debian_switch() {
        const T: &str = "cmd_with_debian_vde_plug_through_debian_switch";
        if !have_tool(T, "vde_switch") || !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("cmd");
        let sw = dir.path("sw");
        let _switch = debian_vde_switch(&sw);
        let mut ours = vde::open(&format!("cmd://vde_plug vde://{}", sw.display())).unwrap();
        let mut theirs = StreamPeer::vde_plug(&format!("vde://{}", sw.display()));
        let mut buf = vec![0u8; MAX_FRAME];
        // Both plugs are processes that join the switch in their own time (a loaded
        // machine took more than 200 ms): the switch drops what comes before the
        // receiver joins. Send probes until one arrives (their source MAC is not
        // the flow's, so a late probe is skipped by check_flow).
        let probe = &test_frames(1, mac(9), mac(2), 9)[0];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            ours.send(probe).unwrap();
            let _ = ours.recv(&mut buf);
            if theirs.recv(Duration::from_millis(100)).is_some_and(|f| f == *probe) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "cmd:// never reached vde_plug through the switch");
        }

        let there = test_frames(300, mac(1), mac(2), 1);
        {
            // Frames the pipe cannot take at once wait in the plug; a relay calls recv
            // when the plug's fd says so, which writes them on. Do the same here.
            let ours = std::cell::RefCell::new(&mut ours);
            let mut scratch = vec![0u8; MAX_FRAME];
            check_flow("cmd:// -> vde_switch -> vde_plug", &there, |f| {
                ours.borrow_mut().send(f).unwrap();
            }, |t| {
                let deadline = std::time::Instant::now() + t;
                loop {
                    let _ = ours.borrow_mut().recv(&mut scratch);
                    if let Some(f) = theirs.recv(Duration::from_millis(20)) {
                        return Some(f);
                    }
                    if std::time::Instant::now() > deadline {
                        return None;
                    }
                }
            });
        }

        let back = test_frames(300, mac(2), mac(1), 2);
        check_flow("vde_plug -> vde_switch -> cmd://", &back, |f| theirs.send(f), |t| {
            recv_timeout(ours.as_mut(), &mut buf, t).unwrap().map(|n| buf[..n].to_vec())
        });

        // Closing our side ends the coprocess; the Debian peer keeps running, and
        // when it goes, nothing of ours hangs.
        drop(ours);
        theirs.close_stdin();
        assert!(theirs.proc.wait_exit(Duration::from_secs(5)).is_some(), "vde_plug did not exit on EOF");
    }
}

sandbox_test! {
    fn cmd_reports_the_coprocess_exit() {
        let mut p = vde::open("cmd://sh -c 'exit 0'").unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        let e = recv_timeout(p.as_mut(), &mut buf, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
