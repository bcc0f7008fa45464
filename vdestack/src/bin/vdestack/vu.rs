//! `vdestack vu [--stack KIND] [-- CMD ARGS...]`: a command (default `$SHELL`)
//! whose network system calls a stack of ours serves instead of the kernel,
//! with no namespace and no privilege (see the library's `vu` module). Its exit
//! status is ours (128+N if signal N killed it; 127 if it cannot be found, 126
//! if it cannot be executed, as a shell says).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use vdestack::vu::{MemNet, Vu};

use crate::signals;

/// Arguments of `vdestack vu`.
#[derive(Debug, clap::Args)]
pub struct VuArgs {
    /// The stack that serves the command: `mem` (a stack in memory with `lo` and
    /// `vde0`, libnlq's VUOS demonstration; configurable, with no data path).
    #[arg(long = "stack", default_value = "mem", value_name = "KIND")]
    stack: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    cmd: Vec<String>,
}

/// The stacks `--stack` names.
const STACKS: &str = "mem";

/// Runs `vdestack vu`; returns the command's exit status.
pub fn run(a: VuArgs) -> io::Result<i32> {
    let net = match a.stack.as_str() {
        "mem" => MemNet::netlinktest(),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("vu: unknown --stack `{other}` (the stacks are: {STACKS})"),
            ))
        }
    };
    let mut cmd = a.cmd;
    if cmd.is_empty() {
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "vu: no command given and $SHELL is not set",
                )
            })?;
        cmd.push(shell);
    }
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..]);
    // Like a shell waiting for a job: Ctrl-C goes to the command, not to us.
    let _quiet = signals::stop_fd()?;
    let mut vu = Vu::new(net);
    match vu.run(c) {
        Ok(st) => Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("vdestack vu: {}: {e}", cmd[0]);
            Ok(127)
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            eprintln!("vdestack vu: {}: {e}", cmd[0]);
            Ok(126)
        }
        Err(e) => Err(e),
    }
}
