//! No zombie of ours through the C ABI either (`tests/c/zombies.c`), whatever the
//! program is: PID 1 of a pid namespace (`unshare -pf`, as in a container), a
//! child subreaper, or neither. The program never calls `wait()`: the namespace
//! helper, re-parented to such a program, and every process the library starts
//! (`vde_stackcmd`'s keepers and commands, `=COMMAND` and `cmd://` coprocesses)
//! must be reaped by the library, after the cycles and after the helper's linger.
//! With the default linger and with `VDESTACK_HELPER_LINGER_MS=0` (a helper per
//! stack). (Debian's libvdestack is not run: its `vde_stackcmd` never returns on
//! a stack without a network.)

#[path = "../../vdestack/tests/common/mod.rs"]
mod common;

mod capi;

use std::process::{Command, Stdio};
use std::time::Duration;

use capi::{have_c_toolchain, Built, Lib};
use common::*;

sandbox_test! {
    fn no_zombies_as_pid1_subreaper_or_neither() {
        const T: &str = "no_zombies_as_pid1_subreaper_or_neither";
        if !have_c_toolchain(T) || !have_tool(T, "unshare") {
            return;
        }
        let Some(ours) = Built::new(T, Lib::Ours, &["zombies"]) else { return };
        ours.assert_loads_its_library("zombies");
        let tun = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").is_ok();
        let mut problems = Vec::new();
        for mode in ["pid1", "subreaper", "neither"] {
            for linger in [None, Some("0")] {
                let mut cmd = if mode == "pid1" {
                    let mut c = Command::new("unshare");
                    c.args(["-pf", "--"]).arg(ours.path("zombies"));
                    c.env("LD_LIBRARY_PATH", ours.dir());
                    c
                } else {
                    ours.command("zombies")
                };
                cmd.arg("20").stdin(Stdio::null());
                if mode == "subreaper" {
                    cmd.arg("subreaper");
                }
                if tun {
                    cmd.arg("tap");
                }
                match linger {
                    Some(ms) => cmd.env("VDESTACK_HELPER_LINGER_MS", ms),
                    None => cmd.env_remove("VDESTACK_HELPER_LINGER_MS"),
                };
                let what = format!("{mode}, linger {linger:?}");
                let out = output_within(cmd, Duration::from_secs(120))
                    .unwrap_or_else(|| panic!("{what}: zombies did not finish in 120 s"));
                let text = String::from_utf8_lossy(&out.stdout);
                eprintln!("--- {what} (tap: {tun}):\n{text}");
                assert!(out.status.success(), "{what}: {}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
                assert!(text.contains("end=ok"), "{what}: {text}");
                if mode == "pid1" {
                    assert!(text.contains("pid=1\n"), "{what}: not PID 1: {text}");
                }
                for key in ["zombies_after_cycles", "zombies_after_linger", "children_after_linger"] {
                    let line = format!("{key}=0");
                    if !text.lines().any(|l| l == line) {
                        problems.push(format!("{what}: {}", text.lines().find(|l| l.starts_with(key)).unwrap_or(key)));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
