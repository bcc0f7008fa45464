//! A `vde://` client never hangs connecting to a switch that takes no connection:
//! a switch whose listen queue is full (stuck, or out of fds in a flood, as
//! Debian's `vde_switch` is with a small `ulimit -n`) gets a bounded wait, then an
//! error that names the socket. Without the bound, `vde::open` waited forever (a
//! unix-socket `connect` waits for room in the queue).

mod common;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use common::*;
use vdestack::vde::vde_client::CONNECT_TIMEOUT;

/// Connects non-blocking to `ctl` until the listener's queue refuses (`EAGAIN`)
/// several times in a row, or `max` connections are held; returns them.
fn fill_queue(ctl: &Path, max: usize) -> Vec<OwnedFd> {
    let addr = SocketAddrUnix::new(ctl).unwrap();
    let mut held = Vec::new();
    let mut refused = 0;
    while held.len() < max && refused < 20 {
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
                refused = 0;
            }
            Err(Errno::AGAIN) => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("filling {}: {e}", ctl.display()),
        }
    }
    assert!(refused >= 20, "{} still accepts after {max}", ctl.display());
    held
}

/// Opens `vde://dir` and checks it fails in bounded time with an error that says
/// what happened and where.
fn open_times_out(dir: &Path) {
    let url = format!("vde://{}", dir.display());
    let start = Instant::now();
    let e = match vdestack::vde::open(&url) {
        Ok(_) => panic!("{url}: joined a switch whose queue is full"),
        Err(e) => e,
    };
    let took = start.elapsed();
    let msg = e.to_string();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{msg}");
    assert!(msg.contains(&format!("{}/ctl", dir.display())), "{msg}");
    assert!(msg.contains("full"), "{msg}");
    // Generous: the bound is CONNECT_TIMEOUT; a hang is what this test is about.
    assert!(
        took < CONNECT_TIMEOUT * 6,
        "{url}: took {took:?} to fail (bound {CONNECT_TIMEOUT:?})"
    );
    eprintln!("{url}: {msg} (after {took:?})");
}

sandbox_test! {
    fn vde_open_gives_up_on_a_switch_that_accepts_nobody() {
        let dir = TempDir::new("fullq");
        let ctl = dir.path("ctl");
        // A listener that never accepts, with the smallest queue.
        let l = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::bind(&l, &SocketAddrUnix::new(&ctl).unwrap()).unwrap();
        rustix::net::listen(&l, 0).unwrap();
        let _held = fill_queue(&ctl, 64);
        open_times_out(&dir.0);
        // Once the switch takes the waiting connections, a client gets in again
        // (the request then fails on this fake switch, but not by timing out).
        drop(_held);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let acceptor = std::thread::spawn(move || {
            rustix::io::ioctl_fionbio(&l, true).unwrap();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match rustix::net::accept(&l) {
                    Ok(c) => drop(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        let e = vdestack::vde::open(&format!("vde://{}", dir.0.display()))
            .expect_err("a listener that closes at once is no switch");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        acceptor.join().unwrap();
        assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    }
}

sandbox_test! {
    fn vde_open_gives_up_on_debian_vde_switch_out_of_fds() {
        const T: &str = "vde_open_gives_up_on_debian_vde_switch_out_of_fds";
        if !have_tool(T, "vde_switch") {
            return;
        }
        let dir = TempDir::new("fullsw");
        let sw = dir.path("sw");
        // vde_switch with few fds: a flood of idle connections takes them all,
        // and what comes next waits in its listen queue (15) until it is full.
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"ulimit -n 24 && exec vde_switch -s "$1""#)
            .arg("sh")
            .arg(&sw)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _switch = Proc::spawn(c);
        wait_for_switch(&sw);
        let _flood = fill_queue(&sw.join("ctl"), 200);
        open_times_out(&sw);
    }
}
