//! `vde://`, `hub://` and `switch://` against Debian's `vde_switch` and `vde_plug`,
//! and against each other.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use vdestack::vde::netnode::{Kind, NetNode};
use vdestack::vde::{self, recv_timeout, wait_readable, OpenArgs, Plug, Recv, MAX_FRAME};

const FRAMES: usize = 300;

/// The error of opening a VNL that must fail.
fn open_err(vnl: &str) -> std::io::Error {
    match vde::open(vnl) {
        Ok(_) => panic!("{vnl} opened"),
        Err(e) => e,
    }
}

/// Receives with `recv_timeout`, for `check_flow`.
fn rx(plug: &mut dyn Plug, buf: &mut [u8], t: Duration) -> Option<Vec<u8>> {
    recv_timeout(plug, buf, t)
        .unwrap()
        .map(|n| buf[..n].to_vec())
}

/// Waits until `plug` reports `Recv::Closed`, draining frames; returns how long it took.
fn wait_closed(plug: &mut dyn Plug, within: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        assert!(start.elapsed() < within, "the plug never reported Closed");
        if !wait_readable(plug, Some(Duration::from_millis(100))).unwrap() {
            continue;
        }
        match plug.recv(&mut buf) {
            Ok(Recv::Closed) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// Both directions between one of our plugs and a stream peer.
fn flow_both_ways(what: &str, ours: &mut dyn Plug, theirs: &mut StreamPeer) {
    let mut buf = vec![0u8; MAX_FRAME];
    let there = test_frames(FRAMES, mac(1), mac(2), 1);
    check_flow(
        &format!("{what}: ours -> theirs"),
        &there,
        |f| {
            ours.send(f).unwrap();
        },
        |t| theirs.recv(t),
    );
    let back = test_frames(FRAMES, mac(2), mac(1), 2);
    check_flow(
        &format!("{what}: theirs -> ours"),
        &back,
        |f| theirs.send(f),
        |t| rx(ours, &mut buf, t),
    );
}

/// Runs a node in a thread that handles its events (frames for the host are
/// dropped) until the returned flag is set.
fn run_node(node: NetNode) -> (Arc<AtomicBool>, JoinHandle<NetNode>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let h = std::thread::spawn(move || {
        let mut node = node;
        let mut buf = vec![0u8; MAX_FRAME];
        while !flag.load(Ordering::Relaxed) {
            if !wait_readable(&node, Some(Duration::from_millis(20))).unwrap() {
                continue;
            }
            loop {
                match node.recv(&mut buf) {
                    Ok(Recv::Closed) => panic!("a node never closes"),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("node recv: {e}"),
                }
            }
        }
        node
    });
    (stop, h)
}

fn stop_node(stop: Arc<AtomicBool>, h: JoinHandle<NetNode>) -> NetNode {
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap()
}

/// Socket files named `fd<N>` (a netnode's ports) in `dir`.
fn port_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("fd"))
        .count()
}

/// Hidden files (a client's leftover `.PID-N` data socket) in `dir`.
fn client_leftovers(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing of ours (ethertype 0x88b5) arrives at `peer` within `t`.
fn hears_nothing(peer: &mut StreamPeer, t: Duration) -> bool {
    let deadline = Instant::now() + t;
    while let Some(f) = peer.recv(deadline.saturating_duration_since(Instant::now())) {
        if f.len() >= 14 && f[12..14] == [0x88, 0xb5] {
            return false;
        }
    }
    true
}

sandbox_test! {
    fn our_client_through_debian_vde_switch() {
        const T: &str = "our_client_through_debian_vde_switch";
        if !have_tool(T, "vde_switch") || !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("vdesw");
        let sw = dir.path("sw");
        let switch = debian_vde_switch(&sw);
        let mut ours = vde::open(&format!("vde://{}", sw.display())).unwrap();
        assert!(ours.ctl_fd().is_some());
        assert_eq!(client_leftovers(&sw), 0, "our data socket's name is unlinked");
        let mut theirs = StreamPeer::vde_plug(&format!("vde://{}", sw.display()));
        std::thread::sleep(Duration::from_millis(300));
        flow_both_ways("vde:// -> vde_switch -> vde_plug", ours.as_mut(), &mut theirs);

        // The switch going away is a prompt Recv::Closed, and sending then fails
        // (or is dropped) without blocking.
        drop(switch);
        let took = wait_closed(ours.as_mut(), Duration::from_secs(5));
        assert!(took < Duration::from_secs(2), "took {took:?}");
        let _ = ours.send(&test_frames(1, mac(1), mac(2), 3)[0]);
    }
}

sandbox_test! {
    fn our_client_through_debian_vde_plug_switch() {
        const T: &str = "our_client_through_debian_vde_plug_switch";
        if !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("plugsw");
        let sw = dir.path("sw");
        let mut cmd = std::process::Command::new("vde_plug");
        cmd.arg("null://").arg(format!("switch://{}", sw.display()));
        let switch = Proc::spawn(cmd);
        wait_for_switch(&sw);
        let mut ours = vde::open(&format!("vde://{}", sw.display())).unwrap();
        let mut theirs = StreamPeer::vde_plug(&format!("vde://{}", sw.display()));
        std::thread::sleep(Duration::from_millis(300));
        flow_both_ways("vde:// -> vde_plug switch:// -> vde_plug", ours.as_mut(), &mut theirs);
        drop(switch);
        wait_closed(ours.as_mut(), Duration::from_secs(5));
    }
}

sandbox_test! {
    fn debian_clients_through_our_switch() {
        const T: &str = "debian_clients_through_our_switch";
        if !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("oursw");
        let sw = dir.path("sw");
        let node = NetNode::open(Kind::Switch, &sw.to_string_lossy(), &OpenArgs::default()).unwrap();
        let (stop, h) = run_node(node);
        let url = format!("vde://{}", sw.display());
        let mut a = StreamPeer::vde_plug(&url);
        let mut b = StreamPeer::vde_plug(&url);
        let mut c = StreamPeer::vde_plug(&url);
        wait_until("three ports", Duration::from_secs(5), || port_files(&sw) == 3);

        // Unknown destination: flooded, so C hears it; the answer is unicast.
        let hello = test_frames(1, mac(1), mac(2), 10);
        a.send(&hello[0]);
        assert_eq!(b.recv(Duration::from_secs(5)).unwrap(), hello[0]);
        assert_eq!(c.recv(Duration::from_secs(5)).unwrap(), hello[0]);
        let answer = test_frames(1, mac(2), mac(1), 11);
        b.send(&answer[0]);
        assert_eq!(a.recv(Duration::from_secs(5)).unwrap(), answer[0]);

        let there = test_frames(FRAMES, mac(1), mac(2), 1);
        check_flow("vde_plug -> our switch -> vde_plug", &there, |f| a.send(f), |t| b.recv(t));
        let back = test_frames(FRAMES, mac(2), mac(1), 2);
        check_flow("vde_plug <- our switch <- vde_plug", &back, |f| b.send(f), |t| a.recv(t));
        assert!(hears_nothing(&mut c, Duration::from_millis(300)), "a learned unicast was flooded");

        // A client leaving frees its port and its socket file.
        drop(c);
        wait_until("C's port removed", Duration::from_secs(5), || port_files(&sw) == 2);
        let again = test_frames(20, mac(1), mac(2), 5);
        check_flow("after a client left", &again, |f| a.send(f), |t| b.recv(t));

        let node = stop_node(stop, h);
        assert_eq!(node.port_count(), 2);
        drop(node);
        assert!(!sw.exists(), "the node removes its directory");
        // The clients see the switch go: vde_plug exits.
        assert!(a.stdout_closed_within(Duration::from_secs(5)));
    }
}

sandbox_test! {
    fn debian_clients_through_our_hub() {
        const T: &str = "debian_clients_through_our_hub";
        if !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("ourhub");
        let hub = dir.path("hub");
        let node = NetNode::open(Kind::Hub, &hub.to_string_lossy(), &OpenArgs::default()).unwrap();
        let (stop, h) = run_node(node);
        let url = format!("vde://{}", hub.display());
        let mut a = StreamPeer::vde_plug(&url);
        let mut b = StreamPeer::vde_plug(&url);
        let mut c = StreamPeer::vde_plug(&url);
        wait_until("three ports", Duration::from_secs(5), || port_files(&hub) == 3);
        let there = test_frames(FRAMES, mac(1), mac(2), 1);
        // A hub floods: B and C get every one of them, in order.
        check_flow_to_all(
            "vde_plug -> our hub -> vde_plug (B, C)",
            &there,
            |f| a.send(f),
            &mut [&mut |t| b.recv(t), &mut |t| c.recv(t)],
        );
        let back = test_frames(FRAMES, mac(2), mac(1), 2);
        check_flow("vde_plug <- our hub <- vde_plug", &back, |f| b.send(f), |t| a.recv(t));
        drop(c);
        wait_until("C's port removed", Duration::from_secs(5), || port_files(&hub) == 2);
        drop(stop_node(stop, h));
        assert!(!hub.exists());
    }
}

sandbox_test! {
    fn debian_client_and_our_switch_host() {
        const T: &str = "debian_client_and_our_switch_host";
        if !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("host");
        let sw = dir.path("sw");
        let mut node = vde::open(&format!("switch://{}[mode=0660]", sw.display())).unwrap();
        let mut theirs = StreamPeer::vde_plug(&format!("vde://{}", sw.display()));
        // Let the node accept the client (that happens inside recv).
        let mut buf = vec![0u8; MAX_FRAME];
        let deadline = Instant::now() + Duration::from_secs(5);
        while port_files(&sw) == 0 {
            assert!(Instant::now() < deadline, "vde_plug never joined");
            let _ = recv_timeout(node.as_mut(), &mut buf, Duration::from_millis(20)).unwrap();
        }
        flow_both_ways("switch:// host <-> vde_plug", node.as_mut(), &mut theirs);
        drop(node);
        assert!(theirs.stdout_closed_within(Duration::from_secs(5)), "vde_plug saw the switch go");
    }
}

sandbox_test! {
    fn our_client_through_our_switch() {
        let dir = TempDir::new("ours2");
        let sw = dir.path("sw");
        let node = NetNode::open(Kind::Switch, &sw.to_string_lossy(), &OpenArgs::default()).unwrap();
        let (stop, h) = run_node(node);
        let url = format!("vde://{}", sw.display());
        let mut a = vde::open(&url).unwrap();
        let mut b = vde::open(&format!("{url}[port=3]")).unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        let there = test_frames(FRAMES, mac(1), mac(2), 1);
        check_flow("vde:// -> our switch -> vde://", &there, |f| {
            a.send(f).unwrap();
        }, |t| rx(b.as_mut(), &mut buf, t));
        let back = test_frames(FRAMES, mac(2), mac(1), 2);
        check_flow("vde:// <- our switch <- vde://", &back, |f| {
            b.send(f).unwrap();
        }, |t| rx(a.as_mut(), &mut buf, t));
        // Jumbo frames pass between our own ends (vde_switch would truncate them).
        let mut jumbo = test_frames(1, mac(1), mac(2), 9).remove(0);
        jumbo.resize(9000, 0x5a);
        a.send(&jumbo).unwrap();
        assert_eq!(rx(b.as_mut(), &mut buf, Duration::from_secs(5)), Some(jumbo));
        drop(b);
        wait_until("b's port removed", Duration::from_secs(5), || port_files(&sw) == 1);
        drop(stop_node(stop, h));
        wait_closed(a.as_mut(), Duration::from_secs(2));
        // Sending to a switch that is gone is an error that says so, or a drop.
        if let Err(e) = a.send(&there[0]) {
            assert!(e.to_string().contains("switch is gone"), "{e}");
        }
    }
}

sandbox_test! {
    fn node_directory_rules() {
        let dir = TempDir::new("dirs");
        let sw = dir.path("sw");
        let first = NetNode::open(Kind::Switch, &sw.to_string_lossy(), &OpenArgs::default()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sw).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o2700);
        let mode = std::fs::metadata(sw.join("ctl")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A running node's directory is not taken over.
        let e = NetNode::open(Kind::Hub, &sw.to_string_lossy(), &OpenArgs::default()).unwrap_err();
        assert!(e.to_string().contains("is in use"), "{e}");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(first);
        assert!(!sw.exists());
        // A dead node's directory (only a `ctl` nobody listens on) is reused.
        std::fs::create_dir(&sw).unwrap();
        drop(std::os::unix::net::UnixListener::bind(sw.join("ctl")).unwrap());
        let reused = NetNode::open(Kind::Hub, &sw.to_string_lossy(), &OpenArgs::default()).unwrap();
        drop(reused);
        // Anything else in it is left alone.
        std::fs::create_dir(&sw).unwrap();
        std::fs::write(sw.join("precious"), b"x").unwrap();
        let e = NetNode::open(Kind::Hub, &sw.to_string_lossy(), &OpenArgs::default()).unwrap_err();
        assert!(e.to_string().contains("precious"), "the error names the file: {e}");
        assert!(sw.join("precious").exists());
    }
}

sandbox_test! {
    fn client_errors_are_clear_and_do_not_hang() {
        let dir = TempDir::new("errs");
        let missing = dir.path("nothing-here");
        let e = open_err(&format!("vde://{}", missing.display()));
        let msg = e.to_string();
        assert!(msg.contains(&format!("{}/ctl", missing.display())), "{msg}");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);

        let e = open_err(&format!("vde://{}[colour=red]", missing.display()));
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<vde::UrlError>());
        assert!(matches!(inner, Some(vde::UrlError::UnknownOption { key, .. }) if key == "colour"), "{e}");
        let e = open_err(&format!("switch://{}[bogus=1]", missing.display()));
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = open_err(&format!("vde://{}[mode=0]", missing.display()));
        assert!(e.to_string().contains("mode"), "{e}");
        let args = OpenArgs { mode: Some(0), ..OpenArgs::default() };
        assert!(vde::open_with(&format!("vde://{}", missing.display()), &args).is_err());

        if have_tool("client_errors_are_clear_and_do_not_hang", "vde_switch") {
            let sw = dir.path("sw");
            let _switch = debian_vde_switch(&sw);
            let start = Instant::now();
            let e = open_err(&format!("vde://{}[99]", sw.display()));
            assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
            assert!(e.to_string().contains("port 99"), "{e}");
            assert_eq!(client_leftovers(&sw), 0, "no data socket file left behind");
            // The switch still works afterwards.
            let mut ok = vde::open(&format!("vde://{}[5]", sw.display())).unwrap();
            assert!(ok.send(&test_frames(1, mac(1), mac(2), 1)[0]).is_ok());
        }
    }
}

sandbox_test! {
    fn raw_requests_to_our_switch() {
        use std::io::{Read, Write};
        use std::os::unix::net::{UnixDatagram, UnixStream};
        use vdestack::vde::netnode::protocol::{decode_sockaddr, Request};

        let dir = TempDir::new("raw");
        let sw = dir.path("sw");
        let node = NetNode::open(Kind::Switch, &sw.to_string_lossy(), &OpenArgs::default()).unwrap();
        let (stop, h) = run_node(node);

        // Garbage (bad magic), a version-2 request and a truncated request are
        // answered by closing the stream.
        let good = Request::new(None, dir.path("me").to_string_lossy().as_bytes(), b"raw test")
            .unwrap()
            .encode();
        let mut v2 = good.clone();
        v2[4] = 2;
        for bad in [&b"hello, switch"[..], &v2, &good[..100]] {
            let mut s = UnixStream::connect(sw.join("ctl")).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(bad).unwrap();
            let mut reply = [0u8; 110];
            assert_eq!(s.read(&mut reply).unwrap(), 0, "refused by closing");
        }

        // A well-formed v3 request gets the 110-byte address of a port socket.
        let me = UnixDatagram::bind(dir.path("me")).unwrap();
        let mut s = UnixStream::connect(sw.join("ctl")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&good).unwrap();
        let mut reply = [0u8; 110];
        s.read_exact(&mut reply).unwrap();
        let path = String::from_utf8(decode_sockaddr(&reply).unwrap()).unwrap();
        assert!(path.starts_with(&format!("{}/fd", sw.display())), "{path}");
        me.connect(&path).unwrap();
        me.send(&test_frames(1, mac(1), mac(2), 1)[0]).unwrap();
        drop(s);
        wait_until("the raw port removed", Duration::from_secs(5), || !Path::new(&path).exists());
        drop(stop_node(stop, h));
    }
}
