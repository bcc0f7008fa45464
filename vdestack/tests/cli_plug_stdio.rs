//! `vdestack plug` with whatever stdin and stdout a shell or a container gives it,
//! side by side with Debian's `vde_plug` in the same situation: `/dev/null`, regular
//! files (which epoll refuses), a terminal that ends or hangs up, a switch that
//! dies; and errors that say what failed. Every run of ours is made twice: as an
//! ordinary process, and as PID 1 of a new pid namespace (`unshare -pf`), as a
//! container would run it.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rustix::fs::OFlags;
use vdestack::vde::stream::{encode, Decoder};

/// Who runs a plug command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    /// Debian's `vde_plug`: the reference.
    Debian,
    /// Our `vdestack plug`.
    Ours,
    /// Ours as PID 1 of a pid namespace of its own.
    OursPid1,
}
use Runner::*;

const ALL: [Runner; 3] = [Debian, Ours, OursPid1];

impl Runner {
    /// The plug command line with `args`.
    fn plug(self, args: &[&str]) -> Command {
        match self {
            Debian => {
                let mut c = Command::new("vde_plug");
                c.args(args);
                c
            }
            Ours => vdestack(false, "plug", args),
            OursPid1 => vdestack(true, "plug", args),
        }
    }
}

/// `vdestack SUB ARGS`, as PID 1 of a new pid namespace if `pid1`.
fn vdestack(pid1: bool, sub: &str, args: &[&str]) -> Command {
    let mut c = if pid1 {
        let mut c = Command::new("unshare");
        c.args(["-pf", "--mount-proc", "--"]).arg(vdestack_bin());
        c
    } else {
        Command::new(vdestack_bin())
    };
    c.arg(sub).args(args);
    c
}

/// Whether Debian's `vde_plug` is here and a pid namespace can be made (a process
/// in it is PID 1); if not, says why the test is skipped.
fn ready(test: &str) -> bool {
    if !have_tool(test, "vde_plug") {
        return false;
    }
    let out = Command::new("unshare")
        .args(["-pf", "--mount-proc", "sh", "-c", "echo $$"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "1" => true,
        other => {
            skip(
                test,
                &format!("cannot run a process as PID 1 (`unshare -pf`): {other:?}"),
            );
            false
        }
    }
}

/// Runs `c` to its end with this stdin and stdout: (exit code, stderr). A run that
/// does not end within 10 s fails the test.
fn finish(mut c: Command, stdin: Stdio, stdout: Stdio) -> (i32, String) {
    c.stdin(stdin).stdout(stdout).stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let err = drain(p.child.stderr.take().unwrap());
    let status = p
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{} hangs", p.what));
    drop(p);
    (status.code().unwrap_or(-1), err.join().unwrap())
}

/// Reads a pipe to its end in a thread.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Writes `frames` in stream framing to a new file.
fn frames_file(path: PathBuf, frames: &[Vec<u8>]) -> PathBuf {
    let mut wire = Vec::new();
    for f in frames {
        assert!(encode(f, &mut wire));
    }
    std::fs::write(&path, wire).unwrap();
    path
}

/// The frames in a file in stream framing.
fn frames_in(path: &Path) -> Vec<Vec<u8>> {
    let mut d = Decoder::new();
    d.push(&std::fs::read(path).unwrap_or_default());
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        out.push(f.unwrap().to_vec());
    }
    out
}

fn file_in(path: &Path) -> Stdio {
    File::open(path).unwrap().into()
}

fn file_out(path: &Path) -> Stdio {
    File::create(path).unwrap().into()
}

sandbox_test! {
    fn stdin_and_stdout_that_epoll_refuses_as_with_vde_plug() {
        const T: &str = "stdin_and_stdout_that_epoll_refuses_as_with_vde_plug";
        if !ready(T) {
            return;
        }
        let dir = TempDir::new("stdio");
        let frames = frames_file(dir.path("frames"), &test_frames(8, mac(1), mac(2), 5));
        let empty = frames_file(dir.path("empty"), &[]);
        type Input<'a> = &'a dyn Fn() -> Stdio;
        let null: Input = &|| Stdio::null();
        let nothing: Input = &|| file_in(&empty);
        let some: Input = &|| file_in(&frames);
        // (what, stdin, stdout to a regular file or else a pipe)
        let cases = [
            ("stdin /dev/null", null, false),
            ("stdin /dev/null, stdout a file", null, true),
            ("stdin an empty file", nothing, false),
            ("stdin a file of frames", some, false),
            ("stdin a file of frames, stdout a file", some, true),
        ];
        for (what, stdin, to_file) in cases {
            let mut seen = Vec::new();
            for r in ALL {
                let out = dir.path("out");
                let stdout = if to_file { file_out(&out) } else { Stdio::piped() };
                let (code, err) = finish(r.plug(&["null://"]), stdin(), stdout);
                if to_file {
                    assert!(frames_in(&out).is_empty(), "{what}: {r:?}: null:// sends nothing");
                }
                eprintln!("{what}: {r:?}: exit {code}, stderr {err:?}");
                seen.push((r, code, err));
            }
            let (_, code, err) = &seen[0];
            assert_eq!((*code, err.as_str()), (0, ""), "{what}: Debian's vde_plug");
            for (r, c, e) in &seen[1..] {
                assert_eq!((c, e), (code, err), "{what}: {r:?} differs from vde_plug");
            }
        }
    }
}

sandbox_test! {
    fn frames_from_a_file_and_to_a_file_as_with_vde_plug() {
        const T: &str = "frames_from_a_file_and_to_a_file_as_with_vde_plug";
        if !ready(T) {
            return;
        }
        let dir = TempDir::new("stdio-ptp");
        // 8 frames: they all fit in a unix datagram queue (10), so none is dropped
        // whoever reads them and when.
        let frames = test_frames(8, mac(1), mac(2), 9);
        let file = frames_file(dir.path("frames"), &frames);
        for (n, r) in ALL.into_iter().enumerate() {
            // In: the file on stdin, to Debian's `vde_plug ptp://` (the first end).
            let url = format!("ptp://{}", dir.join_str(&format!("in{n}")));
            let mut peer = StreamPeer::vde_plug(&url);
            wait_for_path(&dir.path(&format!("in{n}")));
            let (code, err) = finish(r.plug(&[&url]), file_in(&file), Stdio::null());
            assert_eq!((code, err.as_str()), (0, ""), "{r:?}: a file of frames on stdin");
            for (i, f) in frames.iter().enumerate() {
                let got = peer.recv(Duration::from_secs(5));
                assert_eq!(got.as_ref(), Some(f), "{r:?}: frame {i} from the file");
            }
            drop(peer);

            // Out: frames from the peer to a regular file on stdout, until stdin ends.
            let url = format!("ptp://{}", dir.join_str(&format!("out{n}")));
            let mut peer = StreamPeer::vde_plug(&url);
            wait_for_path(&dir.path(&format!("out{n}")));
            let out = dir.path(&format!("received{n}"));
            let mut c = r.plug(&[&url]);
            c.stdin(Stdio::piped()).stdout(file_out(&out)).stderr(Stdio::piped());
            let mut p = Proc::spawn(c);
            let err = drain(p.child.stderr.take().unwrap());
            wait_for_path(&dir.path(&format!("out{n}+")));
            for f in &frames {
                peer.send(f);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while frames_in(&out).len() < frames.len() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(p.child.stdin.take()); // EOF: the plug ends
            let status = p.wait_exit(Duration::from_secs(10)).expect("the plug ends at EOF");
            drop(p);
            assert_eq!((status.code(), err.join().unwrap().as_str()), (Some(0), ""), "{r:?}");
            assert_eq!(frames_in(&out), frames, "{r:?}: the frames written to stdout");
        }
    }
}

/// A new pseudo-terminal: (master, slave), both close-on-exec.
fn pty() -> (OwnedFd, OwnedFd) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let m = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&m).unwrap();
    unlockpt(&m).unwrap();
    let name = ptsname(&m, Vec::new()).unwrap();
    let s = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    (m, s)
}

sandbox_test! {
    fn a_terminal_that_ends_or_hangs_up_as_with_vde_plug() {
        const T: &str = "a_terminal_that_ends_or_hangs_up_as_with_vde_plug";
        if !ready(T) {
            return;
        }
        for hang_up in [false, true] {
            for r in ALL {
                let (master, slave) = pty();
                let stdio = || Stdio::from(slave.try_clone().unwrap());
                let mut c = r.plug(&["null://"]);
                c.stdin(stdio()).stdout(stdio()).stderr(Stdio::piped());
                let mut p = Proc::spawn(c);
                let err = drain(p.child.stderr.take().unwrap());
                if hang_up {
                    drop(master);
                } else {
                    // Ctrl-D at the start of a line: the terminal's end of file.
                    rustix::io::write(&master, b"\x04").unwrap();
                }
                let what = if hang_up { "hang-up" } else { "Ctrl-D" };
                let status = p
                    .wait_exit(Duration::from_secs(10))
                    .unwrap_or_else(|| panic!("{r:?}: a terminal's {what} does not end it"));
                drop(p);
                assert_eq!(status.code(), Some(0), "{r:?} after {what}");
                assert_eq!(err.join().unwrap(), "", "{r:?} after {what}");
                // The terminal is shared with whoever else uses it (a shell): it is
                // left blocking, as it was.
                let flags = rustix::fs::fcntl_getfl(slave.as_fd()).unwrap();
                assert!(!flags.contains(OFlags::NONBLOCK), "{r:?} left the terminal non-blocking");
            }
        }
    }
}

sandbox_test! {
    fn the_plug_says_when_its_switch_dies() {
        const T: &str = "the_plug_says_when_its_switch_dies";
        if !ready(T) || !have_tool(T, "vde_switch") {
            return;
        }
        let dir = TempDir::new("stdio-dies");
        for r in ALL {
            let sw = dir.path(&format!("sw-{r:?}"));
            let switch = debian_vde_switch(&sw);
            let url = format!("vde://{}", sw.display());
            let mut other = StreamPeer::vde_plug(&url);
            let mut c = r.plug(&[&url]);
            c.stderr(Stdio::piped());
            let mut plug = StreamPeer::spawn(c);
            let err = drain(plug.proc.child.stderr.take().unwrap());
            // Joined once a frame through the switch reaches it.
            let hello = &test_frames(1, mac(3), [0xff; 6], 1)[0];
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                other.send(hello);
                if plug.recv(Duration::from_millis(200)).is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "{r:?} never joined the switch");
            }
            drop(switch); // kill -9 (and reaped)
            let status = plug
                .proc
                .wait_exit(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{r:?} outlives its switch"));
            assert_eq!(status.code(), Some(0), "{r:?}: as vde_plug, a switch gone is an end");
            let err = err.join().unwrap();
            match r {
                Debian => assert_eq!(err, ""),
                _ => assert!(
                    err.contains(&format!("{url}: the network closed the connection")),
                    "{r:?}: {err:?}"
                ),
            }
        }
    }
}

sandbox_test! {
    fn a_stack_logs_once_when_its_switch_dies() {
        const T: &str = "a_stack_logs_once_when_its_switch_dies";
        if !ready(T) || !have_tool(T, "vde_switch") || !have_tun(T) {
            return;
        }
        let dir = TempDir::new("stdio-ns");
        for pid1 in [false, true] {
            let sw = dir.path(&format!("sw-{pid1}"));
            let switch = debian_vde_switch(&sw);
            let url = format!("vde://{}", sw.display());
            let go = dir.path(&format!("go-{pid1}"));
            let ready_file = dir.path(&format!("ready-{pid1}"));
            let script = format!(
                "touch {}; while [ ! -e {} ]; do sleep 0.05; done",
                ready_file.display(),
                go.display()
            );
            let mut c = vdestack(pid1, "ns", &[&url, "/bin/sh", "-c", &script]);
            c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
            let mut ns = Proc::spawn(c);
            let stderr = BufReader::new(ns.child.stderr.take().unwrap());
            let (tx, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for l in stderr.lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
            wait_for_path(&ready_file);
            drop(switch);
            // The relay says it once, naming the interface and its network.
            let want = format!("interface vde0 ({url}): the network closed the connection");
            let line = lines.recv_timeout(Duration::from_secs(10));
            File::create(&go).unwrap();
            let line = line.expect("the stack said nothing when its switch died");
            assert!(line.contains(&want), "pid1 {pid1}: {line:?}");
            let status = ns.wait_exit(Duration::from_secs(10)).expect("ns ends with its command");
            assert_eq!(status.code(), Some(0));
            let rest: Vec<String> = lines.try_iter().collect();
            assert!(
                !rest.iter().any(|l| l.contains("closed the connection")),
                "said more than once: {rest:?}"
            );
        }
    }
}

sandbox_test! {
    fn errors_say_what_failed() {
        const T: &str = "errors_say_what_failed";
        if !ready(T) {
            return;
        }
        let dir = TempDir::new("stdio-errors");
        let ptp = format!("ptp://{}[mode=zz]", dir.join_str("p"));
        let sw = format!("switch://{}[hashsize=0]", dir.join_str("sw"));
        // (URL, what the message must say)
        let cases = [
            ("////", "no switch at ////ctl"),
            ("vxlan://1.2.3", "bad group `1.2.3`"),
            ("vxvde://no-such-name.invalid", "the group name `no-such-name.invalid` did not resolve"),
            ("udp://5000->127.0.0.1:0", "bad destination port `0`"),
            (ptp.as_str(), "bad mode `zz`"),
            (sw.as_str(), "bad hashsize `0`"),
            ("tap://", "bad interface name ``"),
        ];
        for pid1 in [false, true] {
            for (url, want) in cases {
                let (code, err) =
                    finish(vdestack(pid1, "plug", &[url, "null://"]), Stdio::null(), Stdio::null());
                assert_eq!(code, 1, "{url}: {err}");
                assert!(err.contains(want), "{url}: {err:?}");
                if url.starts_with("vxvde") {
                    assert!(!err.contains("os error"), "a stray errno: {err:?}");
                }
            }
            // `ns` reads `////` as `plug` does (a vde:// path), not as a scheme `vde0://`.
            let (code, err) = finish(vdestack(pid1, "ns", &["////", "true"]), Stdio::null(), Stdio::null());
            assert_eq!(code, 1, "{err}");
            assert!(err.contains("no switch at ////ctl"), "{err:?}");
        }
        assert!(std::fs::read_dir(&dir.0).unwrap().next().is_none(), "nothing was made");
    }
}

sandbox_test! {
    /// A file of frames piped into `vdestack plug vde://SW` arrives whole at another
    /// port of the switch, though the plug ends at once at the file's end: it waits
    /// (briefly) for the switch to read what it sent before closing its port, where
    /// a switch forgets the frames still queued for it.
    fn the_last_frames_of_a_file_reach_the_switch() {
        const T: &str = "the_last_frames_of_a_file_reach_the_switch";
        if !have_tool(T, "vde_switch") || !have_tool(T, "vde_plug") {
            return;
        }
        let dir = TempDir::new("stdio-last");
        let sw = dir.path("sw");
        let _switch = debian_vde_switch(&sw);
        let url = format!("vde://{}", sw.display());
        // 8 frames, broadcast: they all fit in a unix datagram queue (10).
        let frames = test_frames(8, mac(1), [0xff; 6], 3);
        let file = frames_file(dir.path("frames"), &frames);
        let mut peer = StreamPeer::vde_plug(&url);
        std::thread::sleep(Duration::from_millis(200)); // the peer's port is open
        for round in 0..20 {
            let (code, err) = finish(Ours.plug(&[&url]), file_in(&file), Stdio::null());
            assert_eq!((code, err.as_str()), (0, ""), "round {round}");
            let mut got = 0;
            while got < frames.len() {
                match peer.recv(Duration::from_secs(5)) {
                    Some(f) if f[6..12] == mac(1) => {
                        assert_eq!(f, frames[got], "round {round}: frame {got}");
                        got += 1;
                    }
                    Some(_) => {} // not ours
                    None => panic!("round {round}: {got} of {} frames arrived", frames.len()),
                }
            }
        }
    }
}
