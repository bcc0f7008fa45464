//! Renewers that live in a process of their own (`vdestack ip config ...,dhcp`
//! leaves one behind, as it exits at once): each says where it is in a pid file
//! named after the interface it renews (its network namespace's cookie and
//! index), and gives its lease back on SIGTERM.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The pid file of the renewer of interface `index` in namespace `cookie`.
pub fn pid_file(cookie: u64, index: u32) -> PathBuf {
    std::env::temp_dir().join(format!("vdestack-dhcp-{cookie}-{index}.pid"))
}

/// How a renewer process is told from any other process: its command line.
pub const MARK: &str = "--dhcp-renewer";

/// Records this process as the renewer of interface `index` in namespace `cookie`.
pub fn register(cookie: u64, index: u32) -> io::Result<()> {
    std::fs::write(pid_file(cookie, index), format!("{}\n", std::process::id()))
}

/// Forgets this process as a renewer (its pid file, if it is still ours).
pub fn unregister(cookie: u64, index: u32) {
    let path = pid_file(cookie, index);
    if read_pid(&path) == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(path);
    }
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is a renewer process (and not some process that reused its pid).
fn is_renewer(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|w| w == MARK.as_bytes()))
        .unwrap_or(false)
}

/// Asks the renewer process of interface `index` to give its lease back, and
/// waits (up to 10 s) until it has. Returns whether there was one.
pub fn stop(cookie: u64, index: u32) -> io::Result<bool> {
    let path = pid_file(cookie, index);
    let Some(pid) = read_pid(&path) else {
        return Ok(false);
    };
    if !is_renewer(pid) {
        let _ = std::fs::remove_file(&path);
        return Ok(false);
    }
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return Ok(false);
    };
    rustix::process::kill_process(p, rustix::process::Signal::TERM)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_renewer(pid) {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("dhcp: the renewer process {pid} did not give its lease back in 10 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(true)
}
