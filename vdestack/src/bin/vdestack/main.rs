//! `vdestack`: one command line for vdestack's tools.
//!
//! * `vdestack plug [OPTS] [URL]`: frames on stdin/stdout in stream framing, like
//!   `vde_plug URL`; `vdestack plug URL1 URL2`: a cable between two networks;
//!   `vdestack plug [URL] = CMD ARGS`: a coprocess on the network.
//! * `vdestack switch [OPTS] PATH`, `vdestack hub [OPTS] PATH`: standalone servers
//!   that `vde://PATH` clients join; removed cleanly on SIGINT/SIGTERM.
//! * `vdestack ip link|addr|route|config ...`: inspect and configure the stack this
//!   runs in, through netlink, with iproute2's words and output.
//! * `vdestack ns [OPTS] [URL [CMD ARGS]]`, `vdestack ns -m URL... [-- CMD ARGS]`: a
//!   shell or command in a private network namespace on VDE networks (our vdens).
//! * `vdestack vu [--stack mem] [-- CMD ARGS]`: a command whose network system calls
//!   a stack of ours serves (seccomp user notification; no namespace, no privilege).
//! * `vdestack demo`: the main job: a self-contained tour on an embedded switch.

mod demo;
mod ip;
mod node;
mod ns;
mod plug;
mod signals;
mod vu;

use clap::{Parser, Subcommand};

/// Internet of Threads: VDE networks for programs, threads and tests.
#[derive(Debug, Parser)]
#[command(name = "vdestack", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plug into a VDE network (like vde_plug): stdin/stdout, a cable, or a coprocess.
    ///
    /// Forms: `plug [URL]` (frames on stdin/stdout, 2-byte length framing),
    /// `plug URL1 URL2` (a cable), `plug [URL] = CMD ARGS...` (a coprocess).
    Plug(plug::PlugArgs),
    /// Run a learning switch that `vde://PATH` clients join.
    Switch(node::NodeArgs),
    /// Run a hub (every frame to every other port) that `vde://PATH` clients join.
    Hub(node::NodeArgs),
    /// The main job: an embedded switch, clients on it, frames through it, all cleaned up.
    Demo(demo::DemoArgs),
    /// Inspect and configure the network stack this runs in, like iproute2's `ip`.
    Ip(ip::IpArgs),
    /// A shell or command in a private network namespace on VDE networks (like vdens).
    Ns(ns::NsArgs),
    /// A shell or command whose network system calls a stack of ours serves, with no
    /// namespace and no privilege (like VUOS with libnlq).
    Vu(vu::VuArgs),
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plug(a) => plug::run(a),
        Command::Switch(a) => node::run(vdestack::vde::netnode::Kind::Switch, a),
        Command::Hub(a) => node::run(vdestack::vde::netnode::Kind::Hub, a),
        Command::Demo(a) => demo::run(a),
        Command::Ip(a) => ip::run(a),
        Command::Ns(a) => match ns::run(a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Command::Vu(a) => match vu::run(a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        eprintln!("vdestack: {e}");
        std::process::exit(1);
    }
}

/// Says what failed for an error that would otherwise print as a bare errno
/// (`Operation not permitted (os error 1)`); an error that already says what it is
/// about is left as it is.
fn say_what(e: std::io::Error, what: impl std::fmt::Display) -> std::io::Error {
    if e.get_ref().is_none() {
        vdestack::error::context(e, what.to_string())
    } else {
        e
    }
}

/// Parses an octal permission mode (`0700`, `660`).
fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("`{s}` is not an octal mode such as 0660"))
}

/// Options shared by the commands that detach (`-d`, `-p`).
#[derive(Debug, Clone, clap::Args)]
struct DaemonArgs {
    /// Run in the background (after the networks are open, so errors still show).
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Write the process id to this file (removed on exit).
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pidfile: Option<std::path::PathBuf>,
}

/// A pid file that removes itself.
struct PidFile(Option<std::path::PathBuf>);

impl DaemonArgs {
    /// Daemonises if asked, then writes the pid file.
    fn detach(&self) -> std::io::Result<PidFile> {
        if self.daemon {
            vdestack::process::daemonize()
                .map_err(|e| vdestack::error::context(e, "going to the background (-d)"))?;
        }
        if let Some(p) = &self.pidfile {
            std::fs::write(p, format!("{}\n", std::process::id())).map_err(|e| {
                vdestack::error::context(e, format!("writing pid file {}", p.display()))
            })?;
        }
        Ok(PidFile(self.pidfile.clone()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_errno_gets_said_what_failed_and_no_more() {
        let bare = std::io::Error::from_raw_os_error(libc::EPERM);
        let e = say_what(bare, "opening x");
        assert!(e.to_string().starts_with("opening x: "), "{e}");
        assert_eq!(vdestack::error::errno_of(&e), libc::EPERM);
        let said = say_what(e, "again");
        assert!(said.to_string().starts_with("opening x: "), "{said}");
    }
}
