//! The plug over a socket pair: URLs, frames delayed through the fd in both
//! directions, the management socket while frames flow.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

use super::*;
use crate::vde::seqpacket::SeqPacket;
use crate::vde::{wait_readable, MAX_FRAME};

fn pair() -> (Box<dyn Plug>, SeqPacket) {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .unwrap();
    (
        Box::new(SeqPacket::from_fd(a).unwrap()),
        SeqPacket::from_fd(b).unwrap(),
    )
}

fn wired(outer: &str) -> (Wirefilter, SeqPacket) {
    let (inner, net) = pair();
    (Wirefilter::wrap(parse(outer).unwrap(), inner).unwrap(), net)
}

fn frame(tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0] = 2;
    f[14] = tag;
    f
}

/// Serves the plug as an owner would (poll, recv) until `done` says so, for at
/// most 5 s; returns the frames it delivered.
fn serve_until(w: &mut Wirefilter, mut done: impl FnMut(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    while !done(&got) {
        assert!(Instant::now() < deadline, "nothing came in time");
        if !wait_readable(w, Some(Duration::from_millis(50))).unwrap() {
            continue;
        }
        loop {
            match w.recv(&mut buf) {
                Ok(Recv::Frame(n)) => got.push(buf[..n].to_vec()),
                Ok(Recv::Nothing) => {}
                Ok(Recv::Closed) => return got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    got
}

/// One round of an owner's loop: waits up to 20 ms, then receives what is there
/// (frames delivered to the owner are dropped).
fn pump(w: &mut Wirefilter) {
    if wait_readable(w, Some(Duration::from_millis(20))).unwrap() {
        let mut buf = vec![0u8; MAX_FRAME];
        for _ in 0..64 {
            if !matches!(w.recv(&mut buf), Ok(Recv::Frame(_) | Recv::Nothing)) {
                break;
            }
        }
    }
}

#[test]
fn urls_of_the_plugin_and_bad_values() {
    let s = parse("[delay=LR50 RL10/loss=30/nofifo/seed=7/mgmtmode=0770]").unwrap();
    assert_eq!(s.settings.get(Param::Delay, Dir::LR).value, 50.0);
    assert_eq!(s.settings.get(Param::Delay, Dir::RL).value, 10.0);
    assert_eq!(s.settings.get(Param::Loss, Dir::RL).value, 30.0);
    assert!(!s.settings.fifo);
    assert_eq!((s.seed, s.mgmt_mode), (Some(7), 0o770));
    assert_eq!(parse("").unwrap().settings, Settings::default());
    // Prefixes pick the plugin's first match: `l` is loss, `b` bufsize.
    let s = parse("[l=5/b=1K/capacity=2K/ba=100]").unwrap();
    assert_eq!(s.settings.get(Param::Loss, Dir::LR).value, 5.0);
    assert_eq!(s.settings.get(Param::BufSize, Dir::LR).value, 2048.0);
    assert_eq!(s.settings.get(Param::Bandwidth, Dir::LR).value, 100.0);
    for (url, needle) in [
        ("[loss=150]", "loss"),
        ("[delay=-1]", "delay"),
        ("[dup=100]", "dup"),
        ("[delay=fast]", "fast"),
        ("[colour=red]", "colour"),
        ("[blink=/tmp/b]", "blink"),
        ("[mgmtmode=9]", "mgmtmode"),
        ("[seed=x]", "seed"),
        ("/tmp/x[delay=1]", "brackets"),
    ] {
        let e = parse(url).unwrap_err().to_string();
        assert!(e.contains("wirefilter") && e.contains(needle), "{url}: {e}");
    }
    // Through open(): the option is named before the nested plug is opened.
    let e = match crate::vde::open("wirefilter://[loss=150]{vde:///no/such/switch}") {
        Ok(_) => panic!("loss=150 accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("loss") && e.contains("150"), "{e}");
}

#[test]
fn no_impairment_passes_frames_both_ways_at_once() {
    let (mut w, mut net) = wired("");
    w.send(&frame(1)).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(net.recv(&mut buf).unwrap(), Recv::Frame(60));
    net.send(&frame(2)).unwrap();
    let got = serve_until(&mut w, |g| !g.is_empty());
    assert_eq!(got, vec![frame(2)]);
    assert!(w.offload().is_none() && w.segment_batching().is_none());
    assert!(w.recv_batching().is_none() && w.tap_delivery().is_none());
    drop(net);
    assert_eq!(w.recv(&mut buf).unwrap(), Recv::Closed);
}

#[test]
fn delayed_frames_go_out_through_the_owners_poll() {
    let (mut w, mut net) = wired("[delay=LR40]");
    let t0 = Instant::now();
    for i in 0..5 {
        w.send(&frame(i)).unwrap();
    }
    let mut buf = vec![0u8; MAX_FRAME];
    assert!(net.recv(&mut buf).is_err(), "nothing before its time");
    // The owner's poll wakes for the timer; recv sends them on.
    let mut out = Vec::new();
    while out.len() < 5 {
        assert!(t0.elapsed() < Duration::from_secs(5));
        pump(&mut w);
        while let Ok(Recv::Frame(n)) = net.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
    }
    assert!(t0.elapsed() >= Duration::from_millis(40));
    assert_eq!(out, (0..5).map(frame).collect::<Vec<_>>(), "in order");
}

#[test]
fn frames_delayed_on_their_way_in_all_arrive_in_order() {
    let (mut w, mut net) = wired("[delay=RL30]");
    let t0 = Instant::now();
    for i in 0..20 {
        net.send(&frame(i)).unwrap();
    }
    let got = serve_until(&mut w, |g| g.len() == 20);
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(got, (0..20).map(frame).collect::<Vec<_>>());
    assert_eq!(w.engine().stats(Dir::RL).passed, 20);
}

#[test]
fn speed_paces_what_comes_in() {
    // 100 KiB/s: a 1024-byte frame takes 10 ms.
    let (mut w, mut net) = wired("[speed=RL100K]");
    let t0 = Instant::now();
    let big = vec![7u8; 1024];
    for _ in 0..5 {
        net.send(&big).unwrap();
    }
    let got = serve_until(&mut w, |g| g.len() == 5);
    assert_eq!(got.len(), 5);
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

#[test]
fn the_management_socket_changes_the_wire_while_frames_flow() {
    let dir = std::env::temp_dir().join(format!("vdestack-wfmgmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("mgmt");
    let (mut w, mut net) = wired(&format!("[mgmt='{}']", sock.display()));
    let mode = std::fs::metadata(&sock).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o700
    );
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = String::new();
    let mut read_until = |c: &mut UnixStream, w: &mut Wirefilter, what: &str| {
        let mut b = [0u8; 4096];
        reply.clear();
        c.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !reply.contains(what) {
            assert!(Instant::now() < deadline, "no `{what}` in {reply:?}");
            pump(w);
            if let Ok(n) = c.read(&mut b) {
                reply.push_str(&String::from_utf8_lossy(&b[..n]));
            }
        }
        reply.clone()
    };
    let banner = read_until(&mut c, &mut w, "VDEwf$ ");
    assert!(banner.contains("VDE wirefilter"), "{banner}");
    // Frames pass, then the loss is set to 100% on the way out, then lifted.
    w.send(&frame(1)).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(net.recv(&mut buf).unwrap(), Recv::Frame(60));
    c.write_all(b"loss LR100\n").unwrap();
    let r = read_until(&mut c, &mut w, "VDEwf$ ");
    assert!(r.contains("1000 Success"), "{r}");
    w.send(&frame(2)).unwrap();
    assert!(net.recv(&mut buf).is_err(), "lost");
    c.write_all(b"loss 150\n").unwrap();
    let r = read_until(&mut c, &mut w, "VDEwf$ ");
    assert!(r.contains("1022") && r.contains("loss"), "{r}");
    c.write_all(b"showinfo\n").unwrap();
    let r = read_until(&mut c, &mut w, "VDEwf$ ");
    assert!(r.contains("Loss   L->R 100+0U"), "{r}");
    c.write_all(b"loss 0\n").unwrap();
    read_until(&mut c, &mut w, "VDEwf$ ");
    w.send(&frame(3)).unwrap();
    assert_eq!(net.recv(&mut buf).unwrap(), Recv::Frame(60));
    // shutdown closes the wire.
    c.write_all(b"shutdown\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline);
        let _ = wait_readable(&w, Some(Duration::from_millis(20)));
        if let Ok(Recv::Closed) = w.recv(&mut buf) {
            break;
        }
    }
    assert!(w.send(&frame(4)).is_err());
    drop(w);
    assert!(!sock.exists(), "the socket file is removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_rc_file_sets_the_wire_and_a_bad_line_is_named() {
    let dir = std::env::temp_dir().join(format!("vdestack-wfrc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rc = dir.join("rc");
    std::fs::write(&rc, "delay 20\nloss RL5\n").unwrap();
    let (w, _net) = wired(&format!("[rc='{}']", rc.display()));
    assert_eq!(w.engine().settings().get(Param::Delay, Dir::LR).value, 20.0);
    std::fs::write(&rc, "delay 20\nloss 300\n").unwrap();
    let (inner, _net) = pair();
    let e = Wirefilter::wrap(parse(&format!("[rc='{}']", rc.display())).unwrap(), inner)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("loss 300"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
