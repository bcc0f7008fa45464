//! A hub or switch under a flood of connections that never make a request, with a
//! low fd limit (issue 12, item 3). Debian's `vde_switch` spins at a full CPU and
//! writes hundreds of MB of identical warnings in such a flood, and no client can
//! join; ours must stay quiet and cheap, keep serving its ports, and let a good
//! client in at once, or within about a second of the flood's end.
//!
//! The bounds on CPU time and log size are generous on purpose: the failure they
//! catch is a spin (the whole flood in CPU time, megabytes of log), and CI runs on
//! a small shared machine.

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::node::{joins, our_plug, stop};
use common::pid1::as_pid1;
use common::*;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use vdestack::vde::netnode::admission::HANDSHAKE;
use vdestack::vde::netnode::{Kind, NetNode};
use vdestack::vde::{self, recv_timeout, wait_readable, OpenArgs, Plug, Recv, MAX_FRAME};

/// The node's `ulimit -n` in the issue's scenario.
const NOFILE: u32 = 256;
/// Idle connections in the flood: more than the node has fds.
const FLOOD_CONNS: usize = 300;
/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(4);
/// CPU time the node may spend during the whole flood: a quarter of it. The bug
/// spent all of it; handling 300 connections takes a few milliseconds.
const MAX_CPU: Duration = Duration::from_secs(1);
/// Log the node may write during the flood, at `RUST_LOG=info`: rate-limited
/// lines take a few KB; the bug wrote 150-600 MB in 10 s.
const MAX_LOG: u64 = 64 * 1024;
/// How soon after the flood a good client must have joined: the issue asks for
/// about a second; this is doubled for a loaded machine (process start included).
const JOIN_AFTER: Duration = Duration::from_secs(2);

/// Lets this process hold the flood's connections.
fn raise_own_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    let want = l.maximum.unwrap_or(65536).min(65536);
    if l.current.is_some_and(|c| c < want) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: l.maximum,
            },
        )
        .unwrap();
    }
}

/// A node's log (its stderr), counted, and kept up to [`LOG_KEPT`] bytes: a node
/// that spins may write hundreds of MB.
#[derive(Clone)]
struct Log {
    bytes: Arc<AtomicU64>,
    kept: Arc<Mutex<Vec<u8>>>,
}

const LOG_KEPT: usize = 256 * 1024;

impl Log {
    fn capture(mut from: impl Read + Send + 'static) -> Self {
        let log = Log {
            bytes: Arc::new(AtomicU64::new(0)),
            kept: Arc::new(Mutex::new(Vec::new())),
        };
        let l = log.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    return;
                }
                l.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let mut kept = l.kept.lock().unwrap();
                let room = LOG_KEPT.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buf[..room]);
            }
        });
        log
    }

    fn size(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept.lock().unwrap()).into_owned()
    }

    /// The last lines kept, for a failure message.
    fn tail(&self) -> String {
        let s = self.text();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }
}

/// Runs `program ARGS` with `ulimit -n nofile` and `RUST_LOG=info`, its stderr
/// captured; returns once a switch listens at `dir`.
fn spawn_limited(nofile: u32, program: &str, args: &[&str], dir: &Path) -> (Proc, Log) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(r#"ulimit -n "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(nofile.to_string())
        .arg(program)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped()) // Debian's vde_switch reads commands there
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let log = Log::capture(p.child.stderr.take().unwrap());
    wait_for_switch(dir);
    (p, log)
}

/// `vdestack KIND DIR` with `ulimit -n nofile`.
fn spawn_node(kind: &str, dir: &Path, nofile: u32) -> (Proc, Log) {
    let dir_s = dir.to_string_lossy();
    spawn_limited(nofile, &vdestack_bin(), &[kind, &dir_s], dir)
}

/// CPU time process `pid` has used: user + system time from `/proc/PID/stat` (in
/// ticks of 10 ms: `USER_HZ` is 100 on every Linux architecture we run on), or the
/// run time in `/proc/PID/schedstat` (nanoseconds) where that is more.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let ns = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10).max(Duration::from_nanos(ns))
}

/// Idle connections to a `ctl` socket, opened by a thread until it holds `n`
/// (retrying while the listener's queue is full) and held until dropped.
struct Flood {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicUsize>,
    thread: Option<JoinHandle<Vec<OwnedFd>>>,
}

impl Flood {
    fn start(ctl: &Path, n: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicUsize::new(0));
        let addr = SocketAddrUnix::new(ctl).unwrap();
        let (s, c) = (stop.clone(), connected.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::with_capacity(n);
            while held.len() < n && !s.load(Ordering::Relaxed) {
                let fd = rustix::net::socket_with(
                    AddressFamily::UNIX,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                    None,
                )
                .unwrap();
                match rustix::net::connect(&fd, &addr) {
                    Ok(()) => {
                        held.push(fd);
                        c.store(held.len(), Ordering::Relaxed);
                    }
                    // The queue is full: the node does not accept (fast enough).
                    Err(Errno::AGAIN) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("flood connect: {e}"),
                }
            }
            held
        });
        Flood {
            stop,
            connected,
            thread: Some(thread),
        }
    }

    fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Ends the flood: every connection is closed.
    fn end(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.thread.take().unwrap().join().unwrap());
    }
}

/// The issue's scenario: `ulimit -n 256`, 300 idle connections held for seconds.
fn flood_of_idle_connections() {
    raise_own_fd_limit();
    let tmp = TempDir::new("flood");
    let sw = tmp.path("sw");
    let (node, log) = spawn_node("switch", &sw, NOFILE);
    let url = format!("vde://{}", sw.display());
    let mut a = vde::open(&url).unwrap();
    let pid = node.child.id();
    let (cpu0, log0) = (cpu_time(pid), log.size());

    let started = Instant::now();
    let flood = Flood::start(&sw.join("ctl"), FLOOD_CONNS);
    // The node keeps accepting (and closing the idlest): all 300 get in.
    while flood.connected() < FLOOD_CONNS {
        assert!(
            started.elapsed() < FLOOD * 2,
            "only {} connected",
            flood.connected()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // During the flood, good clients join at once: Debian's and ours.
    if have_tool("flood_of_idle_connections", "vde_plug") {
        let mut b = StreamPeer::vde_plug(&url);
        let t = joins(a.as_mut(), &mut b, 10, FLOOD).expect("vde_plug joins during the flood");
        eprintln!("vde_plug joined during the flood in {t:?}");
    }
    let mut b = our_plug(&url);
    let t = joins(a.as_mut(), &mut b, 20, FLOOD).expect("our plug joins during the flood");
    eprintln!("vdestack plug joined during the flood in {t:?}");
    std::thread::sleep(FLOOD.saturating_sub(started.elapsed()));
    let cpu = cpu_time(pid) - cpu0;
    let logged = log.size() - log0;
    let lasted = started.elapsed();
    flood.end();
    eprintln!("a flood of {lasted:?}: the switch used {cpu:?} of CPU and logged {logged} bytes");
    assert!(
        cpu <= MAX_CPU,
        "{cpu:?} of CPU in {lasted:?}\n{}",
        log.tail()
    );
    assert!(logged <= MAX_LOG, "{logged} bytes of log\n{}", log.tail());

    // After it, within about a second: Debian's vde_plug and ours.
    if have_tool("flood_of_idle_connections", "vde_plug") {
        let mut c = StreamPeer::vde_plug(&url);
        let t = joins(a.as_mut(), &mut c, 30, JOIN_AFTER).expect("vde_plug joins after the flood");
        eprintln!("vde_plug joined after the flood in {t:?}");
    }
    let mut d = our_plug(&url);
    let t = joins(a.as_mut(), &mut d, 40, JOIN_AFTER).expect("our plug joins after the flood");
    eprintln!("vdestack plug joined after the flood in {t:?}");
    drop(a);
    stop(node, &sw);
}

/// Every fd of the node taken by joined ports, then a flood: `accept` fails with
/// `EMFILE` on every try. The node backs off, sheds, logs a few lines, keeps
/// forwarding between its ports, and lets a client in once a port leaves.
fn flood_with_no_fd_left(kind: &str) {
    const T: &str = "flood_with_no_fd_left";
    raise_own_fd_limit();
    let tmp = TempDir::new("nofds");
    let node_dir = tmp.path(kind);
    let (node, log) = spawn_node(kind, &node_dir, 40);
    let url = format!("vde://{}", node_dir.display());
    // Join until the node has no fd left; the client it cannot take is told so.
    let mut joined: Vec<Box<dyn Plug>> = Vec::new();
    let refused = loop {
        assert!(joined.len() < 40, "40 ports with 40 fds?");
        match vde::open(&url) {
            Ok(p) => joined.push(p),
            Err(e) => break e,
        }
    };
    assert!(joined.len() >= 4, "only {} ports joined", joined.len());
    assert!(
        !matches!(
            refused.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "the client the node could not take waited for nothing: {refused}"
    );
    eprintln!("{} ports joined, then: {refused}", joined.len());

    let pid = node.child.id();
    let (cpu0, log0) = (cpu_time(pid), log.size());
    let started = Instant::now();
    let flood = Flood::start(&node_dir.join("ctl"), FLOOD_CONNS);
    // The ports still work during the flood.
    let mut buf = vec![0u8; MAX_FRAME];
    let frames = test_frames(50, mac(1), mac(2), 7);
    let (first, rest) = joined.split_at_mut(1);
    check_flow(
        &format!("between two ports of a {kind} out of fds"),
        &frames,
        |f| {
            first[0].send(f).unwrap();
        },
        |t| {
            recv_timeout(rest[0].as_mut(), &mut buf, t)
                .unwrap()
                .map(|n| buf[..n].to_vec())
        },
    );
    std::thread::sleep(FLOOD.saturating_sub(started.elapsed()));
    let cpu = cpu_time(pid) - cpu0;
    let logged = log.size() - log0;
    let lasted = started.elapsed();
    flood.end();
    eprintln!(
        "a flood of {lasted:?} with no fd left: the {kind} used {cpu:?} of CPU and logged {logged} bytes"
    );
    assert!(
        cpu <= MAX_CPU,
        "{cpu:?} of CPU in {lasted:?}\n{}",
        log.tail()
    );
    assert!(logged <= MAX_LOG, "{logged} bytes of log\n{}", log.tail());
    assert!(
        log.text().contains("Too many open files"),
        "the node says why it turns clients away:\n{}",
        log.tail()
    );

    // A port leaves: a good client gets its place within about a second.
    joined.pop();
    if have_tool(T, "vde_plug") {
        let mut c = StreamPeer::vde_plug(&url);
        let t = joins(joined[0].as_mut(), &mut c, 30, JOIN_AFTER)
            .expect("vde_plug joins once a port left");
        eprintln!("vde_plug joined {t:?} after a port left");
        drop(c);
    }
    joined.pop();
    let mut d = our_plug(&url);
    let t =
        joins(joined[0].as_mut(), &mut d, 40, JOIN_AFTER).expect("our plug joins once a port left");
    eprintln!("vdestack plug joined {t:?} after a port left");
    drop(joined);
    stop(node, &node_dir);
}

/// Runs an in-process node, handling its events, until the flag is set.
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

/// A connection that never sends its request is closed at the deadline, by the
/// CLI switch and by an in-process `hub://`; joined ports are not timed out.
fn half_open_handshakes_are_dropped() {
    let tmp = TempDir::new("deadline");
    let sw = tmp.path("sw");
    let (cli, log) = spawn_node("switch", &sw, NOFILE);
    let hub = tmp.path("hub");
    let node = NetNode::open(Kind::Hub, &hub.to_string_lossy(), &OpenArgs::default()).unwrap();
    let (stop_hub, h) = run_node(node);
    let mut pairs = Vec::new();
    for dir in [&sw, &hub] {
        let url = format!("vde://{}", dir.display());
        pairs.push((vde::open(&url).unwrap(), vde::open(&url).unwrap()));
    }
    let connect = |dir: &PathBuf| {
        let s = std::os::unix::net::UnixStream::connect(dir.join("ctl")).unwrap();
        s.set_read_timeout(Some(HANDSHAKE * 3)).unwrap();
        s
    };
    let start = Instant::now();
    let idle: Vec<_> = [&sw, &hub].into_iter().map(connect).collect();
    for (mut s, dir) in idle.into_iter().zip([&sw, &hub]) {
        let mut b = [0u8; 16];
        let n = s.read(&mut b).unwrap_or_else(|e| {
            panic!("{}: the idle connection was not closed: {e}", dir.display())
        });
        let took = start.elapsed();
        assert_eq!(n, 0, "{}: EOF expected", dir.display());
        // Not before the deadline (less a little for clock granularity).
        assert!(
            took + Duration::from_millis(200) >= HANDSHAKE,
            "{}: closed after only {took:?}",
            dir.display()
        );
        eprintln!(
            "{}: an idle connection closed after {took:?}",
            dir.display()
        );
    }
    // The joined ports, older than the deadline, still carry frames.
    let mut buf = vec![0u8; MAX_FRAME];
    for (i, (a, b)) in pairs.iter_mut().enumerate() {
        let frames = test_frames(20, mac(1), mac(2), i as u64);
        check_flow(
            "a port older than the handshake deadline",
            &frames,
            |f| {
                a.send(f).unwrap();
            },
            |t| {
                recv_timeout(b.as_mut(), &mut buf, t)
                    .unwrap()
                    .map(|n| buf[..n].to_vec())
            },
        );
    }
    drop(pairs);
    stop_hub.store(true, Ordering::Relaxed);
    drop(h.join().unwrap());
    assert!(!hub.exists());
    stop(cli, &sw);
    assert!(
        log.text().contains("sent no request within"),
        "the switch logs why it closed the connection:\n{}",
        log.tail()
    );
}

sandbox_test! {
    fn switch_under_a_flood_of_idle_connections() {
        flood_of_idle_connections();
    }
}

sandbox_test! {
    fn switch_under_a_flood_of_idle_connections_as_pid1() {
        as_pid1("switch_under_a_flood_of_idle_connections_as_pid1", flood_of_idle_connections);
    }
}

sandbox_test! {
    fn hub_out_of_fds_under_a_flood() {
        flood_with_no_fd_left("hub");
    }
}

sandbox_test! {
    fn switch_out_of_fds_under_a_flood_as_pid1() {
        as_pid1("switch_out_of_fds_under_a_flood_as_pid1", || flood_with_no_fd_left("switch"));
    }
}

sandbox_test! {
    fn half_open_handshakes_are_dropped_after_the_deadline() {
        half_open_handshakes_are_dropped();
    }
}

sandbox_test! {
    fn half_open_handshakes_are_dropped_after_the_deadline_as_pid1() {
        as_pid1(
            "half_open_handshakes_are_dropped_after_the_deadline_as_pid1",
            half_open_handshakes_are_dropped,
        );
    }
}

/// Measures a switch (`program ARGS`, at `dir`) under the issue's flood, for the
/// record: CPU time and log written during the flood, and whether and when a
/// Debian `vde_plug` joins during it and after it.
fn record(name: &str, program: &str, args: &[&str], dir: &Path) {
    let (node, log) = spawn_limited(NOFILE, program, args, dir);
    let url = format!("vde://{}", dir.display());
    let mut a = vde::open(&url).unwrap();
    let pid = node.child.id();
    let (cpu0, log0) = (cpu_time(pid), log.size());
    let started = Instant::now();
    let flood = Flood::start(&dir.join("ctl"), FLOOD_CONNS);
    std::thread::sleep(Duration::from_millis(500));
    let mut b = StreamPeer::vde_plug(&url);
    let during = joins(
        a.as_mut(),
        &mut b,
        10,
        FLOOD.saturating_sub(started.elapsed()),
    );
    drop(b);
    std::thread::sleep(FLOOD.saturating_sub(started.elapsed()));
    let cpu = cpu_time(pid) - cpu0;
    let logged = log.size() - log0;
    let (lasted, connected) = (started.elapsed(), flood.connected());
    flood.end();
    let mut c = StreamPeer::vde_plug(&url);
    let after = joins(a.as_mut(), &mut c, 30, Duration::from_secs(5));
    eprintln!(
        "RECORD {name}: a flood of {lasted:.1?} ({connected} of {FLOOD_CONNS} idle connections \
         got in, ulimit -n {NOFILE}): {cpu:?} of CPU, {logged} bytes of log; vde_plug joined \
         during the flood: {during:?}, after it: {after:?}"
    );
    eprintln!("{name}'s log ends with:\n{}", log.tail());
}

sandbox_test! {
    /// For the README: Debian's `vde_switch` and ours side by side. Runs only with
    /// `VDESTACK_RECORD=1` (Debian's switch spins a CPU for the whole flood);
    /// `VDESTACK_BIN` picks the build of ours to measure.
    fn record_debian_vde_switch_and_ours_under_the_flood() {
        const T: &str = "record_debian_vde_switch_and_ours_under_the_flood";
        if std::env::var_os("VDESTACK_RECORD").is_none() {
            return skip(T, "a measurement for the record: run with VDESTACK_RECORD=1");
        }
        if !have_tool(T, "vde_switch") || !have_tool(T, "vde_plug") {
            return;
        }
        raise_own_fd_limit();
        let tmp = TempDir::new("record");
        let theirs = tmp.path("theirs");
        record("Debian vde_switch", "vde_switch", &["-s", &theirs.to_string_lossy()], &theirs);
        let ours = tmp.path("ours");
        record("vdestack switch", &vdestack_bin(), &["switch", &ours.to_string_lossy()], &ours);
    }
}
