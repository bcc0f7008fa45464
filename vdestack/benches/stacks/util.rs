//! Small helpers: child processes, temporary directories, `key=value` output, and
//! what `/proc` says about fds, threads, processes and memory.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process: SIGTERM, then SIGKILL if it lingers; always reaped on drop.
pub struct Proc {
    pub child: Child,
    /// `vde_switch` in the foreground quits on EOF of its stdin: keep a pipe open.
    _stdin: Option<ChildStdin>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> io::Result<Self> {
        let mut child = cmd.stdin(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take();
        Ok(Proc {
            child,
            _stdin: stdin,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.wait();
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> io::Result<Self> {
        let p = std::env::temp_dir().join(format!("vdestack-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until a switch's `ctl` socket in `dir` accepts connections (up to 5 s).
pub fn wait_for_switch(dir: &Path, what: &str, p: &mut Proc) -> io::Result<()> {
    let ctl = dir.join("ctl");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&ctl).is_err() {
        if let Some(st) = p.child.try_wait()? {
            return Err(io::Error::other(format!("{what} exited at once ({st})")));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("{what} did not come up in 5 s")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// `key=value key=value` (one line) as a map.
pub fn keyvals(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A number from a `keyvals` map, or an error naming what is missing.
pub fn num(kv: &HashMap<String, String>, key: &str) -> io::Result<f64> {
    kv.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {key}= in the output")))
}

/// Runs a measuring program and parses the last line of its standard output.
pub fn run_keyvals(mut cmd: Command) -> io::Result<HashMap<String, String>> {
    let what = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(keyvals(text.lines().last().unwrap_or("")))
}

pub fn count_dir(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Proportional set size of a process, KiB.
pub fn pss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The processes below `pid` (children of all its threads, recursively).
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<i32>().ok())
        {
            out.push(k);
            out.extend(descendants(k));
        }
    }
    out
}

/// Seconds all CPUs of the machine have been busy so far (`/proc/stat`: every
/// state but idle and iowait), or 0 where it cannot be read.
pub fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...; USER_HZ is 100 on Linux.
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy as f64 / 100.0
}

/// Waits (up to 10 s) until the machine is idle, under 5 % busy over 100 ms: the
/// kernel tears network namespaces down in the background, and the clean-up of one
/// step's stacks (a thousand, for the most-stacks step) must not land on the next
/// step's timings, ours or C's.
pub fn settle() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    while std::time::Instant::now() < deadline {
        let before = machine_busy_secs();
        std::thread::sleep(std::time::Duration::from_millis(100));
        if machine_busy_secs() - before < 0.1 * cpus * 0.05 {
            return;
        }
    }
}

/// The value of `--secs` (seconds in (0, 60]) from the next argument.
pub fn arg_secs(args: &mut impl Iterator<Item = String>) -> Result<f64, &'static str> {
    args.next()
        .and_then(|v| v.parse().ok())
        .filter(|&s: &f64| s > 0.0 && s <= 60.0)
        .ok_or("--secs needs a number of seconds in (0, 60]")
}

/// The value of `--rounds` (1 to 20) from the next argument.
pub fn arg_rounds(args: &mut impl Iterator<Item = String>) -> Result<u32, &'static str> {
    args.next()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0 && n <= 20)
        .ok_or("--rounds needs a number in 1..=20")
}

/// The value of `--only` (a comma-separated list) from the next argument.
pub fn arg_list(args: &mut impl Iterator<Item = String>) -> Result<Vec<String>, &'static str> {
    Ok(args
        .next()
        .ok_or("--only needs a comma-separated list")?
        .split(',')
        .map(str::to_string)
        .collect())
}
