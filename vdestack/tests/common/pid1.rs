//! Running a test body as PID 1 of a pid namespace of its own, as a container's
//! init runs: orphans are reparented to it, and nobody reaps them but it.
//!
//! Call [`as_pid1`] inside a `sandbox_test!` body: it re-executes the test binary
//! for that one test under `unshare -pf --mount-proc` (so `/proc` shows the new
//! namespace, and `/proc/PID` of a child is that child), where the body runs as
//! PID 1. Where such a namespace cannot be made, the test says `SKIPPED`.

use std::process::{Command, Stdio};

const PID1: &str = "VDESTACK_TEST_PID1";

/// Runs `body` for test `name` as PID 1 of a new pid namespace.
pub fn as_pid1(name: &str, body: impl FnOnce()) {
    if std::env::var_os(PID1).is_some() {
        assert_eq!(std::process::id(), 1, "{name}: not PID 1 in its namespace");
        body();
        return;
    }
    let flags = ["-pf", "--mount-proc"];
    match Command::new("unshare").args(flags).arg("true").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return super::skip(
                name,
                &format!(
                    "needs a pid namespace (`unshare -pf --mount-proc` failed: {})",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )
        }
        Err(e) => return super::skip(name, &format!("needs util-linux `unshare`: {e}")),
    }
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new("unshare")
        .args(flags)
        .arg("--")
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(PID1, "1")
        .stdin(Stdio::null())
        .status()
        .expect("re-executing the test under unshare -pf");
    assert!(status.success(), "{name} failed as PID 1: {status}");
}
