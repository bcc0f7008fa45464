//! `vdestack switch PATH` and `vdestack hub PATH`: standalone servers.

use std::io;
use std::os::fd::AsFd;

use vdestack::vde::cable;
use vdestack::vde::netnode::{Kind, NetNode};
use vdestack::vde::null::Null;
use vdestack::vde::OpenArgs;

use vdestack::error::context;

use crate::{parse_mode, say_what, signals, DaemonArgs};

/// Arguments of `vdestack switch` and `vdestack hub`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Group owning the directory and sockets (so its members can join).
    #[arg(short = 'g', long = "group")]
    group: Option<String>,
    /// Octal mode of the control and port sockets (default 0600).
    #[arg(short = 'm', long = "mod", value_parser = parse_mode)]
    mode: Option<u32>,
    /// Directory of the switch, with optional `[opts]` as in `switch://PATH[opts]`
    /// (e.g. `/tmp/sw[expiretime=60]`). Empty: `/tmp/vdenode_<user>`.
    #[arg(value_name = "PATH", default_value = "")]
    path: String,
}

/// Runs the server until SIGINT/SIGTERM/SIGHUP, then removes its files.
pub fn run(kind: Kind, a: NodeArgs) -> io::Result<()> {
    let args = OpenArgs {
        descr: format!("vdestack {}:", kind.scheme()),
        group: a.group.clone(),
        mode: a.mode,
        port: None,
    };
    let mut node = NetNode::open(kind, &a.path, &args)?;
    if !a.daemon.daemon {
        eprintln!(
            "vdestack: {} at {} (join with vde://{}); Ctrl-C to stop",
            kind.scheme(),
            node.dir().display(),
            node.dir().display()
        );
    }
    let _pid = a.daemon.detach()?;
    let stop = signals::stop_fd()?;
    let mut host = Null::open("").map_err(|e| say_what(e, "the host port (null://)"))?;
    let (end, _) = cable::run_named(
        &mut node,
        &mut host,
        [kind.scheme(), "the host port"],
        Some(stop.as_fd()),
    )
    .map_err(|e| context(e, format!("{} at {}", kind.scheme(), node.dir().display())))?;
    log::info!("{} stopped: {end:?}", kind.scheme());
    Ok(())
}
