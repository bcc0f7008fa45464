//! Debian `vdens` as a test peer. Its exit status says nothing (it exits 0 whatever
//! its command did), and now and then it never reaps its finished shell (SIGCHLD
//! blocked: a zombie `sh`) and so never exits. So a peer's script ends by printing
//! its own status after a marker, and the peer is judged by its output alone: once
//! the marker is out, a peer that does not exit is killed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Proc;

/// The line a peer's script prints last: `MARKER=<status of the script>`.
pub const MARKER: &str = "__vdens_peer_status";

/// What a `vdens` peer printed.
#[derive(Debug)]
pub struct PeerOutput {
    /// Its stdout, the marker line included.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// The script's own exit status, from the marker; `None` if it never got there
    /// (killed at the time limit).
    pub script_status: Option<i32>,
}

impl PeerOutput {
    /// Whether the script ran to its end with status 0.
    pub fn ok(&self) -> bool {
        self.script_status == Some(0)
    }
}

impl std::fmt::Display for PeerOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "script status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.script_status, self.stdout, self.stderr
        )
    }
}

/// Runs `script` with `sh -c` in a Debian `vdens` on `url`, for at most `limit`.
pub fn vdens_run(url: &str, script: &str, limit: Duration) -> PeerOutput {
    let wrapped = format!("( {script} ); echo {MARKER}=$?");
    let mut c = Command::new("vdens");
    c.arg(url)
        .args(["/bin/sh", "-c", &wrapped])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        (
            p.child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            out.clone(),
        ),
        (
            p.child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            err.clone(),
        ),
    ]
    .into_iter()
    .map(|(r, sink)| {
        std::thread::spawn(move || {
            let Some(mut r) = r else { return };
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    })
    .collect();
    let deadline = Instant::now() + limit;
    let mut marked_at: Option<Instant> = None;
    while Instant::now() < deadline {
        if p.child.try_wait().unwrap().is_some() {
            break;
        }
        let marked = String::from_utf8_lossy(&out.lock().unwrap()).contains(MARKER);
        match (marked, marked_at) {
            (true, None) => marked_at = Some(Instant::now()),
            // Everything is out; give it a moment to exit, then stop waiting.
            (true, Some(t)) if t.elapsed() > Duration::from_secs(2) => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(p); // killed if still running: the readers see EOF
    for r in readers {
        let _ = r.join();
    }
    let stdout = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    let script_status = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{MARKER}=")))
        .and_then(|s| s.trim().parse().ok());
    PeerOutput {
        stdout,
        stderr,
        script_status,
    }
}
