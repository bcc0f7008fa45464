//! Shared test harness: private network namespaces, peer processes, test frames.
//!
//! Every test that opens sockets, taps or multicast runs inside a network namespace
//! made for it: [`sandboxed`] re-executes the test binary for that one test under
//! `unshare` (`-n` as root, `-Urn` otherwise), brings `lo` up, routes multicast to
//! it, and refuses to run the body anywhere with more than `lo`. So a plain
//! `cargo test` never sends a frame outside loopback, as root or not. Where
//! namespaces cannot be made, the test prints `SKIPPED` with the reason and passes.
#![allow(dead_code)]

pub mod backends;
pub mod dnsmasq;
pub mod nl;
pub mod node;
pub mod pid1;
pub mod stacks;
pub mod vdens;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vdestack::vde::stream::{encode, Decoder};

const INSIDE: &str = "VDESTACK_TEST_SANDBOX";

/// How long one sandboxed test may run before it is killed and failed.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Declares a test whose body runs in a private network namespace.
#[macro_export]
macro_rules! sandbox_test {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            $crate::common::sandboxed(stringify!($name), || $body);
        }
    };
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Prints why a test is skipped (the test then passes).
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// Runs `body` for test `name` in a private network namespace.
pub fn sandboxed(name: &str, body: impl FnOnce()) {
    if std::env::var_os(INSIDE).is_some() {
        setup_inside();
        body();
        return;
    }
    let flags: &[&str] = if is_root() { &["-n"] } else { &["-Urn"] };
    match Command::new("unshare").args(flags).arg("true").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return skip(
                name,
                &format!(
                    "needs a private network namespace (`unshare {}` failed: {})",
                    flags.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )
        }
        Err(e) => return skip(name, &format!("needs util-linux `unshare`: {e}")),
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new("unshare")
        .args(flags)
        .arg("--")
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .stdin(Stdio::null())
        .spawn()
        .expect("re-executing the test under unshare");
    let deadline = Instant::now() + TEST_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name}: timed out after {TEST_TIMEOUT:?} in its namespace");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{name} failed in its namespace: {status}");
}

fn run(cmd: &str) {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let st = Command::new(words[0])
        .args(&words[1..])
        .status()
        .unwrap_or_else(|e| panic!("`{cmd}`: {e}"));
    assert!(st.success(), "`{cmd}` failed: {st}");
}

fn setup_inside() {
    // Refuse to run anywhere but a namespace of our own: only `lo` may exist.
    let links = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let ifaces = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let names: Vec<&str> = ifaces
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert!(
        names == ["lo"],
        "refusing to run a network test outside a private namespace: interfaces {names:?} ({links:?})"
    );
    run("ip link set lo up");
    run("ip link set lo multicast on");
    let _ = Command::new("ip")
        .args(["route", "add", "224.0.0.0/4", "dev", "lo"])
        .stderr(Stdio::null())
        .status();
    // No IPv6 multicast route on lo: Linux turns IPv6 routes through lo into reject
    // routes, so tests that need IPv6 multicast build a veth pair inside the namespace.
}

/// Whether a Debian tool is installed; if not, prints the skip message.
pub fn have_tool(test: &str, tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        skip(
            test,
            &format!("`{tool}` is not installed (run .ci/run, or apt install it)"),
        );
    }
    found
}

/// Whether `/dev/net/tun` can be opened here; if not, prints the skip message.
pub fn have_tun(test: &str) -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => true,
        Err(e) => {
            skip(test, &format!("needs access to /dev/net/tun ({e})"));
            false
        }
    }
}

/// A fresh directory for socket files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory of this test's own. Its name carries a random part:
    /// a test run as PID 1 of a pid namespace has the same pid as every other such
    /// test, and test runs of other checkouts may share `/tmp`.
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        loop {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut r = [0u8; 3];
            rustix::rand::getrandom(&mut r, rustix::rand::GetRandomFlags::empty()).unwrap();
            let p = std::env::temp_dir().join(format!(
                "vdestack-{tag}-{}-{n}-{:02x}{:02x}{:02x}",
                std::process::id(),
                r[0],
                r[1],
                r[2]
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => return TempDir(p),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("making {}: {e}", p.display()),
            }
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn join_str(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub what: String,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Self {
        let what = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        Proc { child, what }
    }

    /// Waits for the process to exit within `t`; returns its status.
    pub fn wait_exit(&mut self, t: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + t;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

/// Runs `cmd` to its end with its output captured, as `Command::output` does, but
/// gives up after `t`: the process is then killed and `None` returned, so a hung
/// program fails the test with a name instead of hanging it.
pub fn output_within(cmd: Command, t: Duration) -> Option<std::process::Output> {
    let (status, stdout, stderr) = output_or_killed(cmd, t);
    Some(std::process::Output {
        status: status?,
        stdout,
        stderr,
    })
}

/// Runs `cmd` for at most `limit`: its exit status (`None`: it was killed at the
/// limit) and what it wrote to stdout and stderr until then.
pub fn output_or_killed(
    mut cmd: Command,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, Vec<u8>, Vec<u8>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(p.child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(p.child.stderr.take().map(|r| Box::new(r) as _));
    let status = p.wait_exit(limit);
    drop(p); // kills it if it is still running, so the readers see EOF
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `path` exists (a switch's control socket), up to 10 s.
pub fn wait_for_path(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a switch's `ctl` socket in `dir` accepts connections, up to 10 s: the
/// file appears at bind(), a moment before listen(), and a client connecting in
/// between is refused.
pub fn wait_for_switch(dir: &Path) {
    let ctl = dir.join("ctl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&ctl).is_err() {
        assert!(
            Instant::now() < deadline,
            "no switch listens at {}",
            ctl.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts Debian's `vde_switch` on `dir` (no terminal, no management), returns once
/// its control socket exists.
pub fn debian_vde_switch(dir: &Path) -> Proc {
    let mut cmd = Command::new("vde_switch");
    cmd.arg("-s")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let p = Proc::spawn(cmd);
    wait_for_switch(dir);
    p
}

/// A peer reached through a process that speaks stream framing on stdin/stdout
/// (Debian's `vde_plug URL`, or our `vdestack plug URL`).
pub struct StreamPeer {
    pub proc: Proc,
    stdin: Option<std::process::ChildStdin>,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl StreamPeer {
    /// Runs `cmd` with piped stdin/stdout.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut proc = Proc::spawn(cmd);
        let stdin = proc.child.stdin.take();
        let mut stdout = proc.child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut d = Decoder::new();
            let mut buf = vec![0u8; 65536];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        d.push(&buf[..n]);
                        while let Some(f) = d.next_frame() {
                            if tx.send(f.unwrap().to_vec()).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        StreamPeer { proc, stdin, rx }
    }

    /// Debian's `vde_plug URL`.
    pub fn vde_plug(url: &str) -> Self {
        let mut c = Command::new("vde_plug");
        c.arg(url);
        Self::spawn(c)
    }

    pub fn send(&mut self, frame: &[u8]) {
        let mut wire = Vec::new();
        assert!(encode(frame, &mut wire));
        self.stdin.as_mut().unwrap().write_all(&wire).unwrap();
    }

    pub fn recv(&mut self, t: Duration) -> Option<Vec<u8>> {
        self.rx.recv_timeout(t).ok()
    }

    /// Closes our end of its stdin (the peer sees EOF).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Whether its stdout reached EOF within `t` (its reader thread ended).
    pub fn stdout_closed_within(&mut self, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        loop {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return true,
                _ if Instant::now() > deadline => return false,
                _ => {}
            }
        }
    }
}

/// A small deterministic random generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A MAC address for test station `n` (locally administered, unicast).
pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0x76, 0x64, 0x65, 0x00, n]
}

/// `count` frames from `src` to `dst` with random sizes in 14..=1514 and random
/// payloads; the first payload bytes hold the sequence number (when there is room).
pub fn test_frames(count: usize, src: [u8; 6], dst: [u8; 6], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let len = 14 + rng.below(1501) as usize;
            let mut f = Vec::with_capacity(len);
            f.extend_from_slice(&dst);
            f.extend_from_slice(&src);
            f.extend_from_slice(&[0x88, 0xb5]);
            let seq = (i as u32).to_be_bytes();
            while f.len() < len {
                let k = f.len() - 14;
                f.push(if k < 4 { seq[k] } else { rng.next() as u8 });
            }
            f
        })
        .collect()
}

/// Sends `frames` through `send` and checks that `recv` gets every one of them,
/// intact and in order, skipping unrelated frames (other ethertypes, other sources).
/// Sends in small windows so no buffer on the way overflows: a unix datagram socket
/// queues only `net.unix.max_dgram_qlen` (10) datagrams, and vde_switch drops beyond.
pub fn check_flow(
    what: &str,
    frames: &[Vec<u8>],
    send: impl FnMut(&[u8]),
    mut recv: impl FnMut(Duration) -> Option<Vec<u8>>,
) {
    check_flow_to_all(what, frames, send, &mut [&mut recv]);
}

/// [`check_flow`] with several receivers that must each get every frame (the ports
/// of a hub): each window waits for all of them, so a receiver that falls behind
/// (a peer process not scheduled for a while) never has more than a window queued.
pub fn check_flow_to_all(
    what: &str,
    frames: &[Vec<u8>],
    mut send: impl FnMut(&[u8]),
    receivers: &mut [&mut dyn FnMut(Duration) -> Option<Vec<u8>>],
) {
    // 8, not more: a unix datagram socket queues only net.unix.max_dgram_qlen (10)
    // datagrams, and vde_switch/vde_plug drop beyond (seen: frame 270 lost with 16).
    const WINDOW: usize = 8;
    let mut next = vec![0; receivers.len()];
    for (i, chunk) in frames.chunks(WINDOW).enumerate() {
        for f in chunk {
            send(f);
        }
        let upto = i * WINDOW + chunk.len();
        for (r, recv) in receivers.iter_mut().enumerate() {
            let next = &mut next[r];
            while *next < upto {
                let got = recv(Duration::from_secs(5)).unwrap_or_else(|| {
                    panic!(
                        "{what}: frame {next} of {} never arrived at receiver {r}",
                        frames.len()
                    )
                });
                let ours = got.len() >= 14 && got[6..14] == frames[*next][6..14];
                if !ours {
                    continue; // someone else's frame (e.g. an IPv6 router solicitation)
                }
                assert_eq!(
                    got,
                    frames[*next],
                    "{what}: frame {next} differs at receiver {r} (len {} vs {})",
                    got.len(),
                    frames[*next].len()
                );
                *next += 1;
            }
        }
    }
}

/// `ip -j ARGS` (iproute2's JSON output) parsed.
pub fn ipj(args: &str) -> serde_json::Value {
    let out = Command::new("ip")
        .arg("-j")
        .args(args.split_whitespace())
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip -j {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip -j {args}: {e}"))
}

/// Runs `ip ARGS` and checks it succeeded.
pub fn ip(args: &str) {
    let st = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .unwrap_or_else(|e| panic!("ip {args}: {e}"));
    assert!(st.success(), "ip {args} failed: {st}");
}

/// Our `vdestack` binary (`VDESTACK_BIN` overrides it, for runs from copied test
/// binaries, as `scripts/test` does for the unprivileged rerun). `option_env!`: the
/// harness is shared with vdestack-capi's tests, whose package has no such binary.
pub fn vdestack_bin() -> String {
    std::env::var("VDESTACK_BIN")
        .ok()
        .or_else(|| option_env!("CARGO_BIN_EXE_vdestack").map(str::to_string))
        .expect("the vdestack binary (set VDESTACK_BIN)")
}
