//! A switch killed with `kill -9` leaves its directory behind (`ctl` and a socket
//! per port); a new one must start there, as Debian's `vde_switch` does, when
//! nothing answers on the old `ctl` (issue 12, item 4). A switch that answers is
//! still refused, and files that are not a switch's are never removed.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::node::{joins, stop};
use common::pid1::as_pid1;
use common::*;
use vdestack::vde;

/// `vdestack switch DIR`, once it listens; fails the test with its message if it
/// exits instead.
fn our_switch(dir: &Path) -> Proc {
    let mut c = Command::new(vdestack_bin());
    c.arg("switch")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(dir.join("ctl")).is_err() {
        if let Some(st) = p.child.try_wait().unwrap() {
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut p.child.stderr.take().unwrap(), &mut msg);
            panic!("vdestack switch {} exited ({st}): {msg}", dir.display());
        }
        assert!(Instant::now() < deadline, "no switch at {}", dir.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    p
}

/// `vdestack switch DIR` that must fail: its error message.
fn refused(dir: &Path) -> String {
    let out = output_within(
        {
            let mut c = Command::new(vdestack_bin());
            c.arg("switch").arg(dir).stdin(Stdio::null());
            c
        },
        Duration::from_secs(10),
    )
    .expect("vdestack switch answers at once");
    assert!(
        !out.status.success(),
        "a switch started at {}",
        dir.display()
    );
    let msg = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(msg.contains(&*dir.to_string_lossy()), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");
    msg
}

/// The names of the sockets in `dir`, sorted.
fn sockets(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_9(p: &mut Proc) {
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();
}

fn restart_after_kill_9() {
    const T: &str = "restart_after_kill_9";
    let debian = have_tool(T, "vde_plug");
    let tmp = TempDir::new("restart");
    let sw = tmp.path("sw");
    let url = format!("vde://{}", sw.display());

    // A switch with two clients, killed with -9: `ctl` and two port sockets stay.
    let mut first = our_switch(&sw);
    let a = vde::open(&url).unwrap();
    let b = vde::open(&url).unwrap();
    wait_until("two ports", Duration::from_secs(5), || {
        sockets(&sw).len() == 3
    });
    kill_9(&mut first);
    let left = sockets(&sw);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().any(|n| n == "ctl"), "{left:?}");
    assert!(
        left.iter().filter(|n| n.starts_with("fd")).count() == 2,
        "{left:?}"
    );
    drop((a, b));

    // It starts again there, having removed the dead switch's sockets.
    let second = our_switch(&sw);
    assert_eq!(sockets(&sw), ["ctl"], "the old port sockets are gone");
    let mut a = vde::open(&url).unwrap();
    if debian {
        let mut c = StreamPeer::vde_plug(&url);
        joins(a.as_mut(), &mut c, 1, Duration::from_secs(10))
            .expect("Debian's vde_plug joins the restarted switch and exchanges frames");
    }
    // A switch that lives is still refused, and keeps working.
    let msg = refused(&sw);
    assert!(msg.contains("in use"), "{msg}");
    let mut d = common::node::our_plug(&url);
    joins(a.as_mut(), &mut d, 3, Duration::from_secs(10)).expect("still serving");
    drop((a, d));
    stop(second, &sw);

    // A stale directory holding anything else is refused, and left as it was.
    let odd = tmp.path("odd");
    std::fs::create_dir(&odd).unwrap();
    drop(std::os::unix::net::UnixListener::bind(odd.join("ctl")).unwrap());
    std::fs::write(odd.join("notes.txt"), b"mine").unwrap();
    let msg = refused(&odd);
    assert!(msg.contains("notes.txt"), "the error names the file: {msg}");
    assert!(odd.join("ctl").exists() && odd.join("notes.txt").exists());
    // A file with a port's name that is no socket is not a port.
    std::fs::remove_file(odd.join("notes.txt")).unwrap();
    std::fs::write(odd.join("fd7"), b"not a socket").unwrap();
    let msg = refused(&odd);
    assert!(msg.contains("fd7"), "{msg}");
    assert!(odd.join("fd7").exists());
    std::fs::remove_file(odd.join("fd7")).unwrap();
    // Only the stale ctl left: taken over.
    stop(our_switch(&odd), &odd);

    if !have_tool(T, "vde_switch") || !debian {
        return;
    }
    // Debian's switch answers on its ctl: refused (found by asking, not by lock).
    let deb = tmp.path("deb");
    let mut theirs = debian_vde_switch(&deb);
    let mut e = StreamPeer::vde_plug(&format!("vde://{}", deb.display()));
    wait_until("a port on Debian's switch", Duration::from_secs(5), || {
        sockets(&deb).len() == 2
    });
    let msg = refused(&deb);
    assert!(msg.contains("answers on"), "{msg}");
    // Killed with -9, its leftovers (`ctl`, `NNN.FD`) are taken over too.
    kill_9(&mut theirs);
    assert!(e.stdout_closed_within(Duration::from_secs(5)));
    assert_eq!(sockets(&deb).len(), 2, "Debian's switch left its sockets");
    let ours = our_switch(&deb);
    assert_eq!(sockets(&deb), ["ctl"]);
    let mut a = vde::open(&format!("vde://{}", deb.display())).unwrap();
    let mut c = StreamPeer::vde_plug(&format!("vde://{}", deb.display()));
    joins(a.as_mut(), &mut c, 5, Duration::from_secs(10)).expect("vde_plug joins");
    drop((a, c));
    stop(ours, &deb);
}

sandbox_test! {
    fn a_switch_killed_with_kill_9_can_be_restarted_on_its_path() {
        restart_after_kill_9();
    }
}

sandbox_test! {
    fn a_switch_killed_with_kill_9_can_be_restarted_on_its_path_as_pid1() {
        as_pid1(
            "a_switch_killed_with_kill_9_can_be_restarted_on_its_path_as_pid1",
            restart_after_kill_9,
        );
    }
}
