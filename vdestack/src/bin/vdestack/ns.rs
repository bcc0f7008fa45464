//! `vdestack ns`: our vdens. A shell (or a command) in a new user and network
//! namespace joined to VDE networks:
//!
//! * `vdestack ns [OPTS] [URL [CMD ARGS]]`: one network, interface `vde0`;
//! * `vdestack ns -m [OPTS] URL... [-- CMD ARGS]`: one interface per URL, `vde0`,
//!   `vde1`, ...
//!
//! A URL of `-`, `no` or `""` means no interface; `=COMMAND` a stream coprocess. The
//! command defaults to `$SHELL`. Its exit status is ours (128+N if it was killed by
//! signal N).

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use vdestack::error::context;
use vdestack::stack::{CommandOptions, IfSpec, Stack};

use crate::{say_what, signals};

/// Arguments of `vdestack ns`.
#[derive(Debug, clap::Args)]
pub struct NsArgs {
    /// Interface name prefix: interfaces are PREFIX0, PREFIX1, ...
    #[arg(short = 'i', long = "iface", default_value = "vde")]
    prefix: String,
    /// Bind-mount FILE over /etc/resolv.conf (ignored with -R).
    #[arg(short = 'r', long = "resolvconf", env = "VDE_RESOLVCONF")]
    resolvconf: Option<PathBuf>,
    /// Name servers (comma-separated) for a resolv.conf of the namespace's own.
    #[arg(short = 'R', long = "resolvaddr", env = "VDE_RESOLVADDR")]
    resolvaddr: Option<String>,
    /// Also grant CAP_SYS_ADMIN (in the namespace), with a mount namespace of its own.
    #[arg(short = 's', long = "sysadm")]
    sysadm: bool,
    /// Several networks: URLs up to `--`, then the command.
    #[arg(short = 'm', long = "multi")]
    multi: bool,
    /// `[URL [CMD ARGS]]`, or with -m `URL... [-- CMD ARGS]`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

/// The networks and the command the arguments ask for.
fn split(a: &NsArgs) -> (Vec<String>, Vec<String>) {
    let (urls, cmd): (Vec<String>, Vec<String>) = if a.multi {
        match a.args.iter().position(|x| x == "--") {
            Some(i) => (a.args[..i].to_vec(), a.args[i + 1..].to_vec()),
            None => (a.args.clone(), Vec::new()),
        }
    } else {
        match a.args.split_first() {
            Some((u, rest)) => (vec![u.clone()], rest.to_vec()),
            None => (Vec::new(), Vec::new()),
        }
    };
    let urls = urls
        .into_iter()
        .filter(|u| !matches!(u.as_str(), "-" | "no" | ""))
        .collect();
    (urls, cmd)
}

/// A resolv.conf of our own, removed when dropped.
struct TempResolv(PathBuf);

impl Drop for TempResolv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_resolv(addrs: &str) -> io::Result<TempResolv> {
    let path = std::env::temp_dir().join(format!("vdestack-resolv-{}", std::process::id()));
    let shown = path.display().to_string();
    let what = |e| context(e, format!("-R: writing {shown}"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&path)
        .map_err(what)?;
    let guard = TempResolv(path);
    for a in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        a.parse::<std::net::IpAddr>().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("-R: `{a}` is not an IP address"),
            )
        })?;
        writeln!(f, "nameserver {a}").map_err(what)?;
    }
    Ok(guard)
}

/// Runs `vdestack ns`; returns the command's exit status.
pub fn run(a: NsArgs) -> io::Result<i32> {
    let (urls, mut cmd) = split(&a);
    if cmd.is_empty() {
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no command given and $SHELL is not set",
                )
            })?;
        cmd.push(shell);
    }
    // Name and URL apart: a URL is never split at a `:` (`////` is a vde:// path).
    let specs = urls
        .iter()
        .enumerate()
        .map(|(i, u)| IfSpec::new(&format!("{}{i}", a.prefix), u))
        .collect::<io::Result<Vec<_>>>()?;
    let temp = match &a.resolvaddr {
        Some(addrs) => Some(write_resolv(addrs)?),
        None => None,
    };
    let options = CommandOptions {
        sysadmin: a.sysadm,
        resolv_conf: temp
            .as_ref()
            .map(|t| t.0.clone())
            .or_else(|| a.resolvconf.clone()),
    };
    let stack = Stack::with_specs(specs)
        .map_err(|e| say_what(e, "making the namespace (user and network)"))?;
    // Like a shell waiting for a job: Ctrl-C goes to the command, not to us (the
    // handlers only make these signals harmless here).
    let _quiet = signals::stop_fd()?;
    let status = stack
        .command_with(&cmd[0], &options)
        .map_err(|e| say_what(e, format!("preparing {} in the namespace", cmd[0])))?
        .args(&cmd[1..])
        .status()
        .map_err(|e| context(e, format!("running {}", cmd[0])))?;
    drop(stack);
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
