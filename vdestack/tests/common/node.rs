//! Helpers for the tests of our hub and switch processes: a client joining and
//! talking, our `vdestack plug`, a clean stop.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vdestack::vde::{recv_timeout, Plug, MAX_FRAME};

use super::{mac, test_frames, vdestack_bin, Proc, StreamPeer};

/// Frames between a client of ours (`a`, already joined) and a client that is
/// joining (`b`): `a` sends until `b` hears it (so `b` has joined), then `b`
/// answers. Returns how long `b` took to join, or `None` if not within `limit`.
pub fn joins(a: &mut dyn Plug, b: &mut StreamPeer, seed: u8, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let hello = &test_frames(1, mac(seed), [0xff; 6], seed.into())[0];
    let heard = loop {
        if start.elapsed() > limit {
            return None;
        }
        // A busy node's port socket may be full: that hello is lost, the next goes.
        match a.send(hello) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("sending a hello: {e}"),
        }
        if let Some(f) = b.recv(Duration::from_millis(50)) {
            if f == *hello {
                break start.elapsed();
            }
        }
    };
    let answer = &test_frames(1, mac(seed + 1), mac(seed), seed.into())[0];
    b.send(answer);
    let mut buf = vec![0u8; MAX_FRAME];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(n) = recv_timeout(a, &mut buf, Duration::from_millis(100)).unwrap() {
            if buf[..n] == answer[..] {
                return Some(heard);
            }
        }
    }
    panic!("the answer of a client that joined never arrived");
}

/// Our `vdestack plug URL` as a stream peer.
pub fn our_plug(url: &str) -> StreamPeer {
    let mut c = Command::new(vdestack_bin());
    c.arg("plug").arg(url).stderr(Stdio::null());
    StreamPeer::spawn(c)
}

/// Stops a node with SIGTERM; checks it exits cleanly and removes its directory.
pub fn stop(mut node: Proc, dir: &Path) {
    let pid = rustix::process::Pid::from_child(&node.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let st = node
        .wait_exit(Duration::from_secs(10))
        .expect("the node exits on SIGTERM");
    assert!(st.success(), "{st}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
