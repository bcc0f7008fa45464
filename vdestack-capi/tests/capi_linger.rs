//! The namespace helper lingers a moment after the last `vde_delstack`, and a child
//! `fork()`ed meanwhile (no exec) does not keep it alive (`tests/c/forklinger.c`):
//! it is gone after the linger while the child lives on, as when a daemon forks and
//! its parent exits. Runs in a pid namespace with its own `/proc` (under a shell as
//! its init), where the helper is the one other process.
//!
//! And a program that closes "all other fds" after its last `vde_delstack` (as
//! daemons do) while the helper lingers, then opens files that get the same
//! numbers (`tests/c/closeall.c`): the library must neither use them as its own
//! nor close them when the linger ends, and a new stack must work.

#[path = "../../vdestack/tests/common/mod.rs"]
mod common;

mod capi;

use std::process::{Command, Stdio};
use std::time::Duration;

use capi::{have_c_toolchain, Built, Lib};
use common::*;

sandbox_test! {
    fn a_forked_child_does_not_keep_a_lingering_helper() {
        const T: &str = "a_forked_child_does_not_keep_a_lingering_helper";
        if !have_c_toolchain(T) || !have_tool(T, "unshare") {
            return;
        }
        let Some(ours) = Built::new(T, Lib::Ours, &["forklinger"]) else { return };
        let mut cmd = Command::new("unshare");
        cmd.args(["-pfm", "--mount-proc", "--", "sh", "-c", "\"$0\"; true"])
            .arg(ours.path("forklinger"))
            .env("LD_LIBRARY_PATH", ours.dir())
            .env_remove("VDESTACK_HELPER_LINGER_MS")
            .stdin(Stdio::null());
        let out = output_within(cmd, Duration::from_secs(60)).expect("forklinger did not finish in 60 s");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        for line in ["helper_found=yes", "helper_lingers=yes", "helper_gone_while_child_lives=yes", "end=ok"] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }
}

sandbox_test! {
    fn closing_all_fds_during_the_linger_is_safe() {
        const T: &str = "closing_all_fds_during_the_linger_is_safe";
        if !have_c_toolchain(T) {
            return;
        }
        let Some(ours) = Built::new(T, Lib::Ours, &["closeall"]) else { return };
        let mut cmd = ours.command("closeall");
        cmd.env_remove("VDESTACK_HELPER_LINGER_MS").stdin(Stdio::null());
        let out = output_within(cmd, Duration::from_secs(60)).expect("closeall did not finish in 60 s");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        for line in ["addstack_after_closeall=ok", "msocket_after_closeall=ok", "own_files_intact=16/16", "end=ok"] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }
}
