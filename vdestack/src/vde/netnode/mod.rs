//! `hub://PATH[opts]`, `switch://PATH[opts]`, `multi://PATH[opts]` and
//! `bonding://PATH[opts]`: a hub, a learning switch, a multilink or a bond that
//! `vde://PATH` clients (ours, Debian's `vde_plug`, anything using libvdeplug) join
//! with the vde_switch control protocol ([`protocol`]).
//!
//! A multilink and a bond are one cable of several links: each client is a link
//! (a `vde_plug` cable to a switch, a VM), and what a link sends goes to the host
//! only ([`forward`]). `multi` sends the host's frames on every link, so a new link
//! can be set up before the old one is closed (a hand-off without a gap; while
//! both live, frames arrive twice); `bonding` sends each on the next link in turn.
//!
//! The process that opens the node is itself a port (the "host"): frames it sends
//! with [`Plug::send`] are forwarded like any other, and [`Plug::recv`] returns the
//! frames forwarded to it. Every event (a client connecting, a request, a frame, a
//! client leaving) is handled inside `recv`, driven by one epoll fd, which is the
//! [`Plug::data_fd`]; `recv` returns [`Recv::Nothing`] when the event produced no
//! frame for the host. So `vde_plug null:// switch:///tmp/sw` is a standalone switch.
//!
//! Options (path style, `switch:///tmp/sw[mode=0660/grp=vde]`):
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `mode=` | octal permissions of `ctl` and the port sockets | 0600 (or `-m`) |
//! | `dirmode=` | octal permissions of the directory | 02700, or derived from `mode` |
//! | `grp=` | group owning the directory and sockets | `-g`, else none |
//! | `hashsize=` | (switch) how many addresses the MAC table holds (at least 1) | 256 |
//! | `hashseed=` | (switch) a number, accepted for compatibility; our table needs no seed | |
//! | `expiretime=` | (switch) seconds a learned address is trusted (at least 1) | 120 |
//!
//! An empty PATH is `/tmp/vdenode_<username>`.
//!
//! What a client may cost is bounded ([`admission`]): a connection has a deadline
//! for its request, few may wait at once, and `accept` failing (no fd left) backs
//! off instead of spinning; the log lines a flood repeats are rate-limited
//! ([`crate::vde::rate_limit`]). A directory left by a node that died (`kill -9`)
//! is taken over when nothing answers on its `ctl` and it holds only a node's
//! sockets; anything else is refused with an error that names it.

pub mod admission;
mod dir;
pub mod forward;
mod listener;
pub mod protocol;
mod server;
mod timer;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

use super::gso::VnetHdr;
use super::url::{bad_value, parse_path_style};
use super::{OpenArgs, Plug, Recv, SegmentBatching};

/// Which forwarding a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Floods every frame to every other port.
    Hub,
    /// Learns MAC addresses.
    Switch,
    /// A multilink: the host's frames go on every link, the links' frames to the
    /// host only (several cables at once, for a hand-off without a gap).
    Multi,
    /// A bond: the host's frames go on one link at a time, in turn; the links'
    /// frames to the host only.
    Bonding,
}

impl Kind {
    /// The URL scheme of this kind of node.
    pub fn scheme(self) -> &'static str {
        match self {
            Kind::Hub => "hub",
            Kind::Switch => "switch",
            Kind::Multi => "multi",
            Kind::Bonding => "bonding",
        }
    }

    fn tags(self) -> &'static [&'static str] {
        match self {
            Kind::Hub | Kind::Multi | Kind::Bonding => &["mode", "dirmode", "grp"],
            Kind::Switch => &[
                "mode",
                "dirmode",
                "grp",
                "hashsize",
                "hashseed",
                "expiretime",
            ],
        }
    }
}

/// Everything [`NetNode::open`] reads from the URL and the open arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The directory holding `ctl` and the port sockets.
    pub dir: PathBuf,
    /// Permissions of `ctl` and of the port sockets.
    pub mode: u32,
    /// Permissions of the directory.
    pub dirmode: u32,
    /// Group owning the directory and sockets.
    pub gid: Option<u32>,
    /// MAC table capacity.
    pub hashsize: usize,
    /// How long a learned address is trusted.
    pub expire: Duration,
}

/// Parses an octal permission value (`0600`, `660`).
pub(crate) fn parse_mode(
    scheme: &'static str,
    what: &'static str,
    v: &str,
) -> Result<u32, super::UrlError> {
    u32::from_str_radix(v.trim(), 8)
        .ok()
        .filter(|&m| m <= 0o7777)
        .ok_or_else(|| bad_value(scheme, what, v, "expected octal permissions such as 0660"))
}

impl Config {
    /// Reads the configuration of a `kind` node from `arg` (`PATH[opts]`) and `args`.
    pub fn parse(kind: Kind, arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let scheme = kind.scheme();
        let (path, opts) = parse_path_style(scheme, arg, kind.tags())?;
        let dir = if path.is_empty() {
            default_dir()
        } else {
            PathBuf::from(path)
        };
        let mode = match opts.get("mode") {
            Some(v) => Some(parse_mode(scheme, "mode", v)?),
            None => args.mode,
        };
        if mode == Some(0) {
            return Err(bad_value(
                scheme,
                "mode",
                "0",
                "nobody could connect to a control socket with mode 0",
            )
            .into());
        }
        let dirmode = match opts.get("dirmode") {
            Some(v) => match parse_mode(scheme, "dirmode", v)? {
                0 => {
                    return Err(bad_value(
                        scheme,
                        "dirmode",
                        v,
                        "nobody could reach the sockets in a directory of mode 0",
                    )
                    .into())
                }
                m => m,
            },
            // Whoever may use the sockets may also reach them: read implies search.
            None => match mode {
                Some(m) => 0o2000 | m | (m & 0o444) >> 2 | (m & 0o222) >> 1,
                None => 0o2700,
            },
        };
        let group = opts
            .get("grp")
            .map(str::to_string)
            .or_else(|| args.group.clone());
        let gid =
            match group {
                Some(g) => Some(crate::sys::group_id(&g).map_err(|e| {
                    crate::error::context(e, format!("{scheme}://{arg}: group `{g}`"))
                })?),
                None => None,
            };
        // Unused, but a value that is not a number is still a mistake to report.
        opts.number(scheme, "hashseed")?;
        Ok(Self {
            dir,
            mode: mode.unwrap_or(0o600),
            dirmode,
            gid,
            hashsize: opts
                .nonzero(scheme, "hashsize", "a table of 0 addresses learns none")?
                .unwrap_or(256) as usize,
            expire: opts
                .nonzero(
                    scheme,
                    "expiretime",
                    "addresses would be forgotten as learned",
                )?
                .map(Duration::from_secs)
                .unwrap_or(forward::DEFAULT_EXPIRE),
        })
    }
}

/// `/tmp/vdenode_<username>`, or `/tmp/vdenode_u<euid>` for a user without a name.
fn default_dir() -> PathBuf {
    let euid = rustix::process::geteuid().as_raw();
    match crate::sys::user_name(euid) {
        Some(name) => PathBuf::from(format!("/tmp/vdenode_{name}")),
        None => PathBuf::from(format!("/tmp/vdenode_u{euid}")),
    }
}

/// A hub or switch server.
#[derive(Debug)]
pub struct NetNode {
    server: server::Server,
}

impl NetNode {
    /// Starts a `kind` node at `arg` (`PATH[opts]`): creates the directory and its
    /// `ctl` socket.
    pub fn open(kind: Kind, arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let config = Config::parse(kind, arg, args)?;
        let server = server::Server::start(kind, config)
            .map_err(|e| crate::error::context(e, format!("{}://{arg}", kind.scheme())))?;
        Ok(Self { server })
    }

    /// The node's directory.
    pub fn dir(&self) -> &std::path::Path {
        self.server.dir()
    }

    /// How many client ports are connected (the host not counted).
    pub fn port_count(&self) -> usize {
        self.server.port_count()
    }
}

impl Plug for NetNode {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        Ok(self.server.send_from_host(frame))
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        self.server.recv(buf)
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.server.epoll().as_fd()
    }

    fn segment_batching(&mut self) -> Option<&mut dyn SegmentBatching> {
        Some(self)
    }
}

impl SegmentBatching for NetNode {
    /// The host port takes large segments from a stack's tap and cuts them once,
    /// in the process; frames from the clients are joined toward the tap. The
    /// clients see ordinary frames.
    fn send_segment(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<usize> {
        super::send_offload_each(self, hdr, frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: Kind, arg: &str) -> io::Result<Config> {
        Config::parse(kind, arg, &OpenArgs::default())
    }

    #[test]
    fn defaults() {
        let c = parse(Kind::Switch, "/tmp/sw").unwrap();
        assert_eq!(c.dir, PathBuf::from("/tmp/sw"));
        assert_eq!((c.mode, c.dirmode, c.gid), (0o600, 0o2700, None));
        assert_eq!((c.hashsize, c.expire), (256, Duration::from_secs(120)));
        let c = parse(Kind::Hub, "").unwrap();
        assert!(
            c.dir.to_string_lossy().starts_with("/tmp/vdenode_"),
            "{c:?}"
        );
    }

    #[test]
    fn options() {
        let c = parse(
            Kind::Switch,
            "/tmp/sw[mode=0660/hashsize=1k/expire=30/hashseed=7]",
        )
        .unwrap();
        assert_eq!(c.mode, 0o660);
        assert_eq!(
            c.dirmode,
            0o2000 | 0o660 | 0o110,
            "derived: read and write imply search"
        );
        assert_eq!(c.hashsize, 1024);
        assert_eq!(c.expire, Duration::from_secs(30));
        let c = parse(Kind::Hub, "/tmp/h[dirmode=0755/mode=0666]").unwrap();
        assert_eq!((c.mode, c.dirmode), (0o666, 0o755));
        let c = parse(Kind::Hub, "/tmp/h[grp=0]").unwrap();
        assert_eq!(c.gid, Some(0));
        let args = OpenArgs {
            mode: Some(0o640),
            ..OpenArgs::default()
        };
        let c = Config::parse(Kind::Hub, "/tmp/h", &args).unwrap();
        assert_eq!((c.mode, c.dirmode), (0o640, 0o2000 | 0o640 | 0o110));
    }

    #[test]
    fn bad_options_name_the_key() {
        let e = parse(Kind::Hub, "/tmp/h[hashsize=3]").unwrap_err();
        assert!(e.to_string().contains("hashsize"), "{e}");
        let e = parse(Kind::Switch, "/tmp/h[colour=blue]").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = parse(Kind::Switch, "/tmp/h[mode=999]").unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
        let e = parse(Kind::Switch, "/tmp/h[mode=0]").unwrap_err();
        assert!(e.to_string().contains("mode 0"), "{e}");
        let e = parse(Kind::Switch, "/tmp/h[expiretime=soon]").unwrap_err();
        assert!(e.to_string().contains("expiretime"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn zero_where_zero_means_nothing_is_refused() {
        for (arg, key) in [
            ("/tmp/h[hashsize=0]", "hashsize"),
            ("/tmp/h[expiretime=0]", "expiretime"),
            ("/tmp/h[dirmode=0]", "dirmode"),
            ("/tmp/h[hashseed=zz]", "hashseed"),
        ] {
            let e = parse(Kind::Switch, arg).unwrap_err();
            assert!(
                e.to_string().contains(&format!("bad {key} `")),
                "{arg}: {e}"
            );
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{arg}");
        }
        assert_eq!(
            parse(Kind::Switch, "/tmp/h[hashsize=1]").unwrap().hashsize,
            1
        );
    }
}
