//! `vdestack plug`: vde_plug's three forms.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use rustix::fs::OFlags;

use vdestack::error::context;
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
    /// Switch port to ask for, from 1 (obsolete: prefer `vde:///path[N]`).
    #[arg(long = "port", value_parser = clap::value_parser!(u32).range(1..))]
    port: Option<u32>,
    /// Switch port for the second plug of a cable, from 1.
    #[arg(long = "port2", value_parser = clap::value_parser!(u32).range(1..))]
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
            context(e, "the default switch ($HOME/.vdeplug/default)")
        } else {
            e
        }
    })
}

/// Our stdin and stdout as a plug, in stream framing, as `vde_plug URL` uses them.
///
/// They may be anything a shell gives: a pipe, a terminal, a socket, or a regular
/// file or `/dev/null`, which epoll refuses ([`StreamPlug`] reads those to their end).
/// The stream needs them non-blocking; that flag belongs to the open file, which a
/// terminal shares with the shell, so it is put back as it was when the plug goes.
/// Frames still waiting for a slow stdout are written first (for a while).
#[derive(Debug)]
struct Stdio {
    plug: StreamPlug,
    /// Dropped after `plug` (fields drop in order).
    _flags: RestoreFlags,
}

/// How long frames waiting for stdout may delay the end.
const STDOUT_DRAIN: Duration = Duration::from_secs(2);

/// Puts the `O_NONBLOCK` of the files stdin and stdout were back as it was, when
/// dropped (through copies of the fds: after `-d`, fds 0 and 1 are `/dev/null`).
#[derive(Debug)]
struct RestoreFlags {
    saved: Vec<(OwnedFd, bool)>,
}

/// stdin and stdout, by name.
fn stdio_fds() -> [(&'static str, BorrowedFd<'static>); 2] {
    [
        ("stdin", rustix::stdio::stdin()),
        ("stdout", rustix::stdio::stdout()),
    ]
}

/// A close-on-exec copy of `fd` (above the standard three), or what failed.
fn dup(what: &str, fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(|e| context(e, format!("duplicating {what}")))
}

impl RestoreFlags {
    fn save() -> io::Result<Self> {
        let mut saved = Vec::with_capacity(2);
        for (what, fd) in stdio_fds() {
            let flags = rustix::fs::fcntl_getfl(fd).map_err(|e| context(e, what))?;
            saved.push((dup(what, fd)?, flags.contains(OFlags::NONBLOCK)));
        }
        Ok(Self { saved })
    }
}

impl Drop for RestoreFlags {
    fn drop(&mut self) {
        for (fd, was) in &self.saved {
            if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
                let flags = match was {
                    true => flags | OFlags::NONBLOCK,
                    false => flags - OFlags::NONBLOCK,
                };
                let _ = rustix::fs::fcntl_setfl(fd, flags);
            }
        }
    }
}

impl Stdio {
    fn open() -> io::Result<Self> {
        let flags = RestoreFlags::save()?;
        let [input, output] = stdio_fds().map(|(what, fd)| dup(what, fd));
        let plug = StreamPlug::new(input?, output?)
            .map_err(|e| context(e, "stdin/stdout as a stream of frames"))?;
        Ok(Self {
            plug,
            _flags: flags,
        })
    }
}

impl Plug for Stdio {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        self.plug.send(frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<vde::Recv> {
        self.plug.recv(buf)
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.plug.data_fd()
    }
}

impl Drop for Stdio {
    fn drop(&mut self) {
        self.plug.drain(STDOUT_DRAIN);
    }
}

/// The name stdin/stdout go by in messages.
const STDIO: &str = "stdin/stdout";

/// Runs `vdestack plug`.
pub fn run(a: PlugArgs) -> io::Result<()> {
    let f = form(&a.args).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (mut first, mut second): (Box<dyn Plug>, Box<dyn Plug>) = match f {
        Form::Stdio(url) => (open(url, &a, false)?, Box::new(Stdio::open()?)),
        Form::Cable(u1, u2) => (open(u1, &a, false)?, open(u2, &a, true)?),
        Form::Coprocess(url, cmd) => {
            let plug = open(url, &a, false)?;
            let mut c = Command::new(&cmd[0]);
            c.args(&cmd[1..]);
            let co = Cmd::spawn(c).map_err(|e| context(e, &cmd[0]))?;
            (plug, Box::new(co))
        }
    };
    let names = names(&f);
    let _pid = a.daemon.detach()?;
    let stop = signals::stop_fd()?;
    let (end, stats) =
        cable::run_named(first.as_mut(), second.as_mut(), names, Some(stop.as_fd()))?;
    log::info!(
        "plug ended ({end:?}): {} frames out, {} in, {} dropped",
        stats.first_to_second,
        stats.second_to_first,
        stats.dropped
    );
    if let Some(why) = end_message(&f, end) {
        log::warn!("{why}");
    }
    Ok(())
}

/// What each side of the cable is called in messages.
fn names<'a>(f: &Form<'a>) -> [&'a str; 2] {
    let url = |u: &'a str| {
        if u.is_empty() {
            "the default switch"
        } else {
            u
        }
    };
    match f {
        Form::Stdio(u) => [url(u), STDIO],
        Form::Cable(a, b) => [url(a), url(b)],
        Form::Coprocess(u, cmd) => [url(u), cmd[0].as_str()],
    }
}

/// What to tell when the cable ended: nothing when it was asked to stop or the
/// local side ended (stdin at its end, the command exited: as `vde_plug`, quietly),
/// but a network that goes (its switch died, its peer closed) is said once.
fn end_message(f: &Form<'_>, end: CableEnd) -> Option<String> {
    let [first, second] = names(f);
    let network =
        |n: &str| format!("{n}: the network closed the connection (its switch or peer went away)");
    match (f, end) {
        (_, CableEnd::Stopped) => None,
        (_, CableEnd::FirstClosed) => Some(network(first)),
        (Form::Cable(..), CableEnd::SecondClosed) => Some(network(second)),
        (_, CableEnd::SecondClosed) => None,
    }
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

    #[test]
    fn says_when_a_network_goes_not_when_the_local_side_ends() {
        let stdio = Form::Stdio("vde:///sw");
        assert!(end_message(&stdio, CableEnd::FirstClosed)
            .unwrap()
            .starts_with("vde:///sw: the network closed"));
        assert_eq!(end_message(&stdio, CableEnd::SecondClosed), None);
        assert_eq!(end_message(&stdio, CableEnd::Stopped), None);
        let cable = Form::Cable("a://", "b://");
        assert!(end_message(&cable, CableEnd::SecondClosed)
            .unwrap()
            .starts_with("b://: "));
        let cmd = s(&["cat"]);
        let co = Form::Coprocess("", &cmd);
        assert!(end_message(&co, CableEnd::FirstClosed)
            .unwrap()
            .starts_with("the default switch: "));
        assert_eq!(end_message(&co, CableEnd::SecondClosed), None);
        assert_eq!(names(&co), ["the default switch", "cat"]);
    }
}
