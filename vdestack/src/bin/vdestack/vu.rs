//! `vdestack vu [OPTIONS] [URL...] [-- CMD ARGS...]`: a command (default
//! `$SHELL`) whose network system calls a stack of ours serves instead of the
//! kernel, with no namespace and no privilege (see the library's `vu` module).
//!
//! With URLs, the stack is a user-space TCP/IP stack with one interface per
//! URL (`vde0`, `vde1`, ...; `-` alone: only `lo`), and every IP socket of the
//! command is one of its sockets. Without, it is `--stack mem`: libnlq's
//! VUOS demonstration, a stack in memory with `lo` and `vde0` and no data
//! path. The command's exit status is ours (128+N if signal N killed it; 127
//! if it cannot be found, 126 if it cannot be executed, as a shell says).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;

use vdestack::error::context;
use vdestack::stack::{Backend, IfSpec, Stack};
use vdestack::vu::{MemNet, ServedNet, UserNet, Vu};

use crate::signals;

/// Arguments of `vdestack vu`.
#[derive(Debug, clap::Args)]
pub struct VuArgs {
    /// The stack that serves the command: `user` (a user-space TCP/IP stack on
    /// the URLs given; the default when URLs are given) or `mem` (a stack in
    /// memory with `lo` and `vde0` and no data path, libnlq's VUOS
    /// demonstration; the default without URLs).
    #[arg(long = "stack", value_name = "KIND")]
    stack: Option<String>,
    /// Interface name prefix: interfaces are PREFIX0, PREFIX1, ...
    #[arg(short = 'i', long = "iface", default_value = "vde")]
    prefix: String,
    /// Serve FILE's content when the command opens /etc/resolv.conf (ignored
    /// with -R).
    #[arg(short = 'r', long = "resolvconf", value_name = "FILE")]
    resolvconf: Option<PathBuf>,
    /// Name servers (comma-separated): the command's /etc/resolv.conf names
    /// them (served when it opens the file; the file is not touched).
    #[arg(short = 'R', long = "resolvaddr", value_name = "ADDRS")]
    resolvaddr: Option<String>,
    /// The networks: one interface per URL (`-`: none, only `lo`).
    #[arg(value_name = "URL")]
    urls: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    cmd: Vec<String>,
}

/// The stacks `--stack` names.
const STACKS: &str = "user, mem";

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The resolv.conf that `-R ADDRS` stands for.
fn resolv_of(addrs: &str) -> io::Result<Vec<u8>> {
    let mut out = String::new();
    for a in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        a.parse::<std::net::IpAddr>()
            .map_err(|_| invalid(format!("vu: -R: `{a}` is not an IP address")))?;
        out.push_str(&format!("nameserver {a}\n"));
    }
    Ok(out.into_bytes())
}

/// Runs `vdestack vu`; returns the command's exit status.
pub fn run(a: VuArgs) -> io::Result<i32> {
    let resolv = match (&a.resolvaddr, &a.resolvconf) {
        (Some(addrs), _) => Some(resolv_of(addrs)?),
        (None, Some(f)) => {
            Some(std::fs::read(f).map_err(|e| context(e, format!("vu: -r {}", f.display())))?)
        }
        (None, None) => None,
    };
    let kind = a
        .stack
        .clone()
        .unwrap_or_else(|| if a.urls.is_empty() { "mem" } else { "user" }.into());
    let urls: Vec<&String> = a
        .urls
        .iter()
        .filter(|u| !matches!(u.as_str(), "-" | "no" | ""))
        .collect();
    match kind.as_str() {
        "mem" if !a.urls.is_empty() => Err(invalid(
            "vu: --stack mem takes no URL (it has no data path)".into(),
        )),
        "mem" => serve(MemNet::netlinktest(), a.cmd, resolv),
        "user" => {
            // Name and URL apart: a URL is never split at a `:`.
            let specs = urls
                .iter()
                .enumerate()
                .map(|(i, u)| IfSpec::new(&format!("{}{i}", a.prefix), u))
                .collect::<io::Result<Vec<_>>>()?;
            let stack = Stack::builder()
                .specs(specs)
                .backend(Backend::User)
                .build()
                .map_err(|e| {
                    context(
                        e,
                        "vu: making the user-space stack (URLs come before `--`, the command \
                         after it)",
                    )
                })?;
            serve(UserNet::new(stack)?, a.cmd, resolv)
        }
        other => Err(invalid(format!(
            "vu: unknown --stack `{other}` (the stacks are: {STACKS})"
        ))),
    }
}

/// How long `vdestack vu` waits, once its command has ended, for the peers to
/// acknowledge what the command's connections still had on the way.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the command on `net`.
fn serve<N: ServedNet>(net: N, mut cmd: Vec<String>, resolv: Option<Vec<u8>>) -> io::Result<i32> {
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
    if let Some(r) = resolv {
        vu.resolv_conf(r);
    }
    let ran = vu.run(c);
    // What the command's closed connections still have on the way goes out
    // before the stack is dropped, as the kernel sends after a process exits.
    if !vu.net().settle(SETTLE) {
        eprintln!(
            "vdestack vu: some connections still had data unacknowledged {} s after the command \
             ended; they are dropped",
            SETTLE.as_secs()
        );
    }
    match ran {
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
