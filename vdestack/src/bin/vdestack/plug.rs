//! `vdestack plug`: vde_plug's three forms.

use std::io;
use std::os::fd::AsFd;
use std::process::Command;

use vdestack::vde::cable::{self, CableEnd};
use vdestack::vde::cmd::Cmd;
use vdestack::vde::stream_plug::StreamPlug;
use vdestack::vde::{self, OpenArgs, Plug};

use crate::{parse_mode, signals, DaemonArgs};

/// Arguments of `vdestack plug`.
#[derive(Debug, clap::Args)]
pub struct PlugArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Description shown by the switch for this port.
    #[arg(short = 'D', long = "descr", default_value = "vdestack plug:")]
    descr: String,
    /// Group given access to socket files the (first) plug creates.
    #[arg(short = 'g', long = "group")]
    group: Option<String>,
    /// Octal mode of socket files the (first) plug creates (default 0700).
    #[arg(short = 'm', long = "mod", value_parser = parse_mode)]
    mode: Option<u32>,
    /// Group for the second plug of a cable.
    #[arg(short = 'G', long = "group2")]
    group2: Option<String>,
    /// Octal mode for the second plug of a cable.
    #[arg(short = 'M', long = "mod2", value_parser = parse_mode)]
    mode2: Option<u32>,
    /// Switch port to ask for (obsolete: prefer `vde:///path[N]`).
    #[arg(long = "port")]
    port: Option<u32>,
    /// Switch port for the second plug of a cable.
    #[arg(long = "port2")]
    port2: Option<u32>,
    /// `[URL]`, `URL1 URL2`, or `[URL] = CMD ARGS...`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "URL"
    )]
    args: Vec<String>,
}

/// What the positional arguments ask for.
#[derive(Debug, PartialEq, Eq)]
enum Form<'a> {
    Stdio(&'a str),
    Cable(&'a str, &'a str),
    Coprocess(&'a str, &'a [String]),
}

fn form(args: &[String]) -> Result<Form<'_>, String> {
    if let Some(eq) = args.iter().position(|a| a == "=") {
        let url = match &args[..eq] {
            [] => "",
            [u] => u.as_str(),
            _ => return Err("at most one URL goes before `=`".into()),
        };
        let cmd = &args[eq + 1..];
        if cmd.is_empty() {
            return Err("a command must follow `=`".into());
        }
        return Ok(Form::Coprocess(url, cmd));
    }
    match args {
        [] => Ok(Form::Stdio("")),
        [u] => Ok(Form::Stdio(u)),
        [a, b] => Ok(Form::Cable(a, b)),
        _ => Err(format!(
            "too many URLs ({}): give one (stdio), two (a cable), or `URL = CMD ARGS`",
            args.len()
        )),
    }
}

fn open(url: &str, a: &PlugArgs, second: bool) -> io::Result<Box<dyn Plug>> {
    let args = OpenArgs {
        descr: a.descr.clone(),
        group: if second { &a.group2 } else { &a.group }.clone(),
        mode: if second { a.mode2 } else { a.mode },
        port: if second { a.port2 } else { a.port },
    };
    // The plugins name the URL in their errors; only the default needs saying.
    vde::open_with(url, &args).map_err(|e| {
        if url.is_empty() {
            vdestack::error::context(e, "the default switch ($HOME/.vdeplug/default)")
        } else {
            e
        }
    })
}

fn stdio() -> io::Result<StreamPlug> {
    let input = rustix::io::fcntl_dupfd_cloexec(io::stdin().as_fd(), 3)?;
    let output = rustix::io::fcntl_dupfd_cloexec(io::stdout().as_fd(), 3)?;
    StreamPlug::new(input, output)
}

/// Runs `vdestack plug`.
pub fn run(a: PlugArgs) -> io::Result<()> {
    let f = form(&a.args).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (mut first, mut second): (Box<dyn Plug>, Box<dyn Plug>) = match f {
        Form::Stdio(url) => (open(url, &a, false)?, Box::new(stdio()?)),
        Form::Cable(u1, u2) => (open(u1, &a, false)?, open(u2, &a, true)?),
        Form::Coprocess(url, cmd) => {
            let plug = open(url, &a, false)?;
            let mut c = Command::new(&cmd[0]);
            c.args(&cmd[1..]);
            let co = Cmd::spawn(c).map_err(|e| vdestack::error::context(e, &cmd[0]))?;
            (plug, Box::new(co))
        }
    };
    let _pid = a.daemon.detach()?;
    let stop = signals::stop_fd()?;
    let (end, stats) = cable::run(first.as_mut(), second.as_mut(), Some(stop.as_fd()))?;
    log::info!(
        "plug ended ({end:?}): {} frames out, {} in, {} dropped",
        stats.first_to_second,
        stats.second_to_first,
        stats.dropped
    );
    if end != CableEnd::Stopped {
        log::info!("a side closed: {end:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn forms_like_vde_plug() {
        assert_eq!(form(&s(&[])).unwrap(), Form::Stdio(""));
        assert_eq!(form(&s(&["vde://"])).unwrap(), Form::Stdio("vde://"));
        assert_eq!(form(&s(&["a", "b"])).unwrap(), Form::Cable("a", "b"));
        let args = s(&["vde://", "=", "ssh", "-x", "h"]);
        match form(&args).unwrap() {
            Form::Coprocess(u, c) => {
                assert_eq!(u, "vde://");
                assert_eq!(c, &s(&["ssh", "-x", "h"])[..]);
            }
            f => panic!("{f:?}"),
        }
        assert!(matches!(
            form(&s(&["=", "cat"])).unwrap(),
            Form::Coprocess("", _)
        ));
        assert!(form(&s(&["a", "="])).is_err());
        assert!(form(&s(&["a", "b", "c"])).is_err());
        assert!(form(&s(&["a", "b", "=", "c"])).is_err());
    }
}
