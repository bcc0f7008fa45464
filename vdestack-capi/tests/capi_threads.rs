//! Thread safety of our C ABI: eight threads share one stack, making sockets with
//! `vde_msocket` and, through `vde_default_stack`, with plain `socket()`, and running
//! commands with `vde_stackcmd`, all at once (`tests/c/threads.c`). Every socket must
//! be in the stack and every command's status its own; then a forked child and its
//! parent make sockets in the stack at the same time. (Debian's libvdestack is not
//! run: its `vde_stackcmd` never returns on a stack without a network.)

#[path = "../../vdestack/tests/common/mod.rs"]
mod common;

mod capi;

use capi::{have_c_toolchain, Built, Lib};
use common::*;

sandbox_test! {
    fn many_threads_share_one_stack() {
        const T: &str = "many_threads_share_one_stack";
        if !have_c_toolchain(T) {
            return;
        }
        let Some(ours) = Built::new(T, Lib::Ours, &["threads"]) else { return };
        ours.assert_loads_its_library("threads");
        let mut cmd = ours.command("threads");
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped());
        let mut p = Proc::spawn(cmd);
        let status = p
            .wait_exit(std::time::Duration::from_secs(60))
            .expect("the threads program hangs");
        let mut text = String::new();
        std::io::Read::read_to_string(p.child.stdout.as_mut().unwrap(), &mut text).unwrap();
        assert!(status.success() && text.contains("threads ok"), "{status}: {text}");
    }
}
