//! `vde://PATH[PORT|PORTGROUP|opts]` (or a bare path): a client of a `vde_switch`,
//! or of a `hub://`/`switch://` node, with the classic control protocol
//! ([`super::netnode::protocol`]).
//!
//! The client connects a stream socket to the switch's `ctl`, binds a datagram
//! socket of its own, sends one request naming it, and gets back the address of the
//! datagram socket the switch made for the port. Frames then travel one per
//! datagram; the control stream stays open and silent, and its EOF means the switch
//! closed the port.
//!
//! | option | meaning |
//! |---|---|
//! | `[N]`, `port=N` | ask for port N (0 is the management port) |
//! | `[NAME]`, `portgroup=NAME` | connect to the port-group socket `PATH/NAME` |
//! | `group=G` | group owning our data socket (so a switch run by another user reaches it) |
//! | `mode=M` | octal permissions of our data socket (default 0700) |
//!
//! An empty PATH means `/var/run/vde.ctl`, then `/tmp/vde.ctl`.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::RecvFlags;

use super::batch::SegmentBatch;
use super::datagram::{self, DatagramPlug, Out};
use super::netnode::parse_mode;
use super::netnode::protocol::{self, Request};
use super::url::{bad_value, parse_number, parse_path_style};
use super::{Backlog, OpenArgs, Plug, Recv, RecvBatch, RecvBatching, SegmentBatching};
use crate::error::context;

mod handshake;

use handshake::{bind_data_socket, read_reply, set_permissions, Unlink};

const TAGS: &[&str] = &["", "port", "portgroup", "group", "mode"];

/// How long the switch has to answer a request. vde_switch before vde-2 PR #58 never
/// answers a request for a port it does not have: without a limit we would hang.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a switch has to take our connection on its `ctl` socket. A switch that
/// does not accept (one out of fds in a flood, or stopped) lets its listen queue
/// fill up, and a unix-socket `connect` then waits for room without end.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The switches tried, in order, for an empty path.
pub const DEFAULT_SWITCHES: &[&str] = &["/var/run/vde.ctl", "/tmp/vde.ctl"];

/// Where a `vde://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Candidate switch directories, tried in order.
    pub dirs: Vec<PathBuf>,
    /// The port asked for.
    pub port: Option<u32>,
    /// The port group socket, if any.
    pub portgroup: Option<String>,
    /// Group owning our data socket.
    pub group: Option<String>,
    /// Permissions of our data socket.
    pub mode: u32,
}

impl Target {
    /// Reads `PATH[opts]` and the open arguments (the URL wins over `args`).
    pub fn parse(arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let (path, opts) = parse_path_style("vde", arg, TAGS)?;
        let dirs = if path.is_empty() {
            DEFAULT_SWITCHES.iter().map(PathBuf::from).collect()
        } else if Path::new(&path).is_absolute() {
            vec![PathBuf::from(&path)]
        } else {
            let abs = std::fs::canonicalize(&path)
                .map_err(|e| context(e, format!("vde://{arg}: no switch at {path}")))?;
            vec![abs]
        };
        let mut port = None;
        let mut portgroup = None;
        if let Some(w) = opts.get("").filter(|w| !w.is_empty()) {
            match parse_number(w) {
                Some(n) => port = Some(check_port(w, n)?),
                None => portgroup = Some(w.to_string()),
            }
        }
        if let Some(v) = opts.get("port") {
            let n =
                parse_number(v).ok_or_else(|| bad_value("vde", "port", v, "expected a number"))?;
            port = Some(check_port(v, n)?);
        }
        if let Some(v) = opts.get("portgroup") {
            if v.is_empty() || v.contains('/') {
                return Err(bad_value("vde", "portgroup", v, "expected a socket name").into());
            }
            portgroup = Some(v.to_string());
        }
        let mode = match opts.get("mode") {
            Some(v) => Some(parse_mode("vde", "mode", v)?),
            None => args.mode,
        };
        if mode == Some(0) {
            return Err(bad_value(
                "vde",
                "mode",
                "0",
                "the switch could not connect back to a data socket with mode 0",
            )
            .into());
        }
        Ok(Self {
            dirs,
            port: port.or(args.port),
            portgroup,
            group: opts
                .get("group")
                .map(str::to_string)
                .or_else(|| args.group.clone()),
            mode: mode.unwrap_or(0o700),
        })
    }
}

fn check_port(v: &str, n: u64) -> io::Result<u32> {
    if n > u64::from(protocol::MAX_PORT) {
        return Err(bad_value("vde", "port", v, "too large").into());
    }
    Ok(n as u32)
}

/// A client of a vde_switch.
#[derive(Debug)]
pub struct VdeClient {
    ctl: UnixStream,
    data: UnixDatagram,
    /// Holds `data` and `ctl`, so one poll sees frames and the switch going away.
    epoll: OwnedFd,
    url: String,
    /// The frames of the large segment being sent (and those a full peer has not
    /// taken yet, once asked to keep them).
    batch: SegmentBatch,
}

impl VdeClient {
    /// Connects to the switch named by `arg` (`PATH[opts]`).
    pub fn open(arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let url = format!("vde://{arg}");
        let target = Target::parse(arg, args)?;
        let mut last_err = None;
        for dir in &target.dirs {
            match Self::connect(dir, &target, args, &url) {
                Ok(c) => return Ok(c),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one switch directory"))
    }

    fn connect(dir: &Path, t: &Target, args: &OpenArgs, url: &str) -> io::Result<Self> {
        // A port group is a socket of its own; if it is not there, use `ctl`.
        let pg = t.portgroup.as_ref().map(|g| dir.join(g));
        let (ctl, ctl_path, via_ctl) = match pg.as_ref().map(|p| (connect_ctl(p, url), p)) {
            Some((Ok(s), p)) => (s, p.clone(), false),
            // A switch too busy to take us will not take us on `ctl` either.
            Some((Err(e), _)) if e.kind() == io::ErrorKind::TimedOut => return Err(e),
            _ => {
                let p = dir.join("ctl");
                (connect_ctl(&p, url)?, p, true)
            }
        };
        let (data, name) = bind_data_socket(dir)?;
        let name = Unlink(Some(name));
        let own = name.0.as_deref().expect("set above");
        set_permissions(own, &ctl_path, t)
            .map_err(|e| context(e, format!("{url}: {}", own.display())))?;

        let port = if via_ctl { t.port } else { None };
        let req = Request::new(
            port,
            own.as_os_str().as_bytes(),
            args.full_description().as_bytes(),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {e}")))?;
        ctl.set_write_timeout(Some(REPLY_TIMEOUT))?;
        (&ctl).write_all(&req.encode()).map_err(|e| {
            context(
                e,
                format!("{url}: sending the request to {}", ctl_path.display()),
            )
        })?;

        let reply = read_reply(&ctl, url, t.port)?;
        let sw = protocol::decode_sockaddr(&reply).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{url}: bad reply from the switch: {e}"),
            )
        })?;
        let sw = Path::new(std::ffi::OsStr::from_bytes(&sw));
        data.connect(sw).map_err(|e| {
            context(
                e,
                format!("{url}: connecting to the port socket {}", sw.display()),
            )
        })?;
        drop(name); // the switch is connected to us; the name is not needed any more

        ctl.set_read_timeout(None)?;
        ctl.set_write_timeout(None)?;
        ctl.set_nonblocking(true)?;
        data.set_nonblocking(true)?;
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        epoll::add(&epoll, &data, EventData::new_u64(0), EventFlags::IN)?;
        epoll::add(&epoll, &ctl, EventData::new_u64(1), EventFlags::IN)?;
        Ok(Self {
            ctl,
            data,
            epoll,
            url: url.to_string(),
            batch: SegmentBatch::default(),
        })
    }

    fn gone(&self, e: Errno) -> io::Error {
        context(e, format!("{}: the switch is gone", self.url))
    }
}

/// How long a dropped client waits for its switch to read the frames it sent.
const FLUSH_ON_DROP: Duration = Duration::from_secs(1);

impl Drop for VdeClient {
    /// A switch forgets a port, and the frames still queued on its socket, once the
    /// control stream closes: so the frames sent last (a file piped into `vdestack
    /// plug`, a program's goodbye) wait, briefly, until the switch has read them.
    /// A switch that is gone has nothing queued; one that reads nothing costs at
    /// most `FLUSH_ON_DROP`.
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + FLUSH_ON_DROP;
        while crate::sys::unread_sent_bytes(self.data.as_fd()).is_ok_and(|n| n > 0)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Connects a stream socket to a switch's `ctl` (or port-group) socket, waiting at
/// most [`CONNECT_TIMEOUT`] for the switch to have room in its listen queue.
///
/// A non-blocking `connect` and `poll` cannot do this for unix sockets: Linux
/// answers a full queue with `EAGAIN` at once, not `EINPROGRESS`, and `poll` on
/// the unconnected socket reports it writable straight away. A blocking connect
/// waits for room, bounded by the socket's send timeout (`SO_SNDTIMEO`), and
/// fails with `EAGAIN` when that runs out; it wakes as soon as the switch
/// accepts someone.
fn connect_ctl(path: &Path, url: &str) -> io::Result<UnixStream> {
    use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(CONNECT_TIMEOUT))?;
    let addr = SocketAddrUnix::new(path).map_err(|e| {
        context(
            e,
            format!("{url}: {} is too long for a unix socket", path.display()),
        )
    })?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{url}: the switch at {} took no connection within {CONNECT_TIMEOUT:?} \
                         (its queue of connections waiting to be accepted is full: is it \
                         overloaded or stuck?)",
                        path.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(context(
                    e,
                    format!("{url}: no switch at {}", path.display()),
                ))
            }
        }
    }
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, None)?;
    Ok(UnixStream::from(fd))
}

/// The send buffer of a `vde://` data socket whose owner waits for room
/// ([`Backlog::keep`](crate::vde::Backlog::keep)): the kernel doubles it, to 64 KiB, a quarter of what a
/// switch's socket toward a receiver holds by default (`net.core.wmem_default`),
/// so a burst through the switch cannot overflow the receiver's side. Measured
/// between two stacks over Debian's `vde_switch` (200 MiB, 1 then 4 streams): TCP
/// retransmitted 10-23 % of its segments with the default buffer, 0.3-3 % with
/// this one, and 4 streams went from 200-350 MB/s to 310-350.
const BACKLOG_SNDBUF: usize = 32 * 1024;

impl VdeClient {
    /// Reads the control stream, when the data socket is empty: its EOF means the
    /// switch closed the port.
    fn ctl_event(&self) -> io::Result<Recv> {
        let mut scratch = [0u8; 64];
        match rustix::io::read(&self.ctl, &mut scratch) {
            Ok(0) | Err(Errno::CONNRESET) => Ok(Recv::Closed),
            Ok(_) => Ok(Recv::Nothing), // a switch has nothing to say; ignore it
            Err(Errno::AGAIN) => Err(io::ErrorKind::WouldBlock.into()),
            Err(Errno::INTR) => Err(io::ErrorKind::Interrupted.into()),
            Err(e) => Err(context(e, format!("{}: control stream", self.url))),
        }
    }

    /// What a send error means: the switch gone, a full queue, or another failure.
    fn send_error(&self, e: Errno) -> io::Error {
        match e {
            Errno::AGAIN | Errno::NOBUFS => io::ErrorKind::WouldBlock.into(),
            Errno::CONNREFUSED | Errno::NOTCONN | Errno::CONNRESET => self.gone(e),
            e => context(e, format!("{}: send", self.url)),
        }
    }
}

impl DatagramPlug for VdeClient {
    fn out(&mut self) -> Out<'_> {
        Out {
            fd: self.data.as_fd(),
            batch: &mut self.batch,
            prefix: &[],
            route: None,
        }
    }

    fn batch(&self) -> &SegmentBatch {
        &self.batch
    }

    fn socket(&self) -> BorrowedFd<'_> {
        self.data.as_fd()
    }

    fn send_failed(&self, e: Errno) -> Option<io::Error> {
        Some(self.send_error(e))
    }

    /// The switch's port socket refuses datagrams (`EAGAIN`) while our send
    /// buffer is full, and is writable again when the switch has read them. The
    /// buffer shrinks to 32 KiB (64 KiB as the kernel counts): a C switch forwards at once what it
    /// reads, and drops what its own buffer toward a slow receiver cannot take, so
    /// what waits on our side stays in our relay (which waits), not in the switch
    /// (which drops).
    fn keeping(&mut self) {
        if let Err(e) =
            rustix::net::sockopt::set_socket_send_buffer_size(&self.data, BACKLOG_SNDBUF)
        {
            log::debug!("{}: send buffer: {e}", self.url);
        }
    }
}

impl Plug for VdeClient {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        datagram::send(self, frame)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        // Frames first: those that arrived before the switch closed still count.
        match rustix::net::recv(&self.data, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(Recv::Frame(n)),
            Err(Errno::AGAIN | Errno::INTR) => {}
            // The switch's port socket is gone: so is the port, for good.
            Err(Errno::CONNREFUSED | Errno::CONNRESET) => return Ok(Recv::Closed),
            Err(e) => return Err(context(e, format!("{}: recv", self.url))),
        }
        self.ctl_event()
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    fn ctl_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.ctl.as_fd())
    }

    fn segment_batching(&mut self) -> Option<&mut dyn SegmentBatching> {
        Some(self)
    }

    fn recv_batching(&mut self) -> Option<&mut dyn RecvBatching> {
        Some(self)
    }

    fn backlog(&mut self) -> Option<&mut dyn Backlog> {
        Some(self)
    }
}

impl RecvBatching for VdeClient {
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<Recv> {
        // As `recv`: frames first, then the control stream.
        match batch.receive(&self.data, false) {
            Ok(n) => {
                for i in 0..n {
                    batch.keep(i, 0, usize::MAX);
                }
                return Ok(batch.outcome());
            }
            Err(e) => match e.raw_os_error().map(Errno::from_raw_os_error) {
                Some(Errno::AGAIN | Errno::INTR) => {}
                Some(Errno::CONNREFUSED | Errno::CONNRESET) => return Ok(Recv::Closed),
                _ => return Err(context(e, format!("{}: recv", self.url))),
            },
        }
        self.ctl_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arg: &str) -> io::Result<Target> {
        Target::parse(arg, &OpenArgs::default())
    }

    #[test]
    fn ports_and_portgroups() {
        let t = parse("/tmp/sw").unwrap();
        assert_eq!(t.dirs, [PathBuf::from("/tmp/sw")]);
        assert_eq!(
            (t.port, t.portgroup.as_deref(), t.mode),
            (None, None, 0o700)
        );
        assert_eq!(parse("/tmp/sw[5]").unwrap().port, Some(5));
        assert_eq!(parse("/tmp/sw[port=7]").unwrap().port, Some(7));
        assert_eq!(parse("/tmp/sw[0]").unwrap().port, Some(0));
        let t = parse("/tmp/sw[lan]").unwrap();
        assert_eq!((t.port, t.portgroup.as_deref()), (None, Some("lan")));
        assert_eq!(
            parse("/tmp/sw[portgroup=x]").unwrap().portgroup.as_deref(),
            Some("x")
        );
        let t = parse("/tmp/sw[mode=0770/group=0]").unwrap();
        assert_eq!((t.mode, t.group.as_deref()), (0o770, Some("0")));
        let args = OpenArgs {
            port: Some(3),
            mode: Some(0o750),
            ..OpenArgs::default()
        };
        let t = Target::parse("/tmp/sw", &args).unwrap();
        assert_eq!((t.port, t.mode), (Some(3), 0o750));
        assert_eq!(Target::parse("/tmp/sw[4]", &args).unwrap().port, Some(4));
    }

    #[test]
    fn defaults_and_relative_paths() {
        let t = parse("").unwrap();
        assert_eq!(
            t.dirs,
            [
                PathBuf::from("/var/run/vde.ctl"),
                PathBuf::from("/tmp/vde.ctl")
            ]
        );
        let e = parse("no/such/relative/switch").unwrap_err();
        assert!(e.to_string().contains("no/such/relative/switch"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn bad_options() {
        for (arg, key) in [
            ("/tmp/sw[colour=red]", "colour"),
            ("/tmp/sw[port=x]", "port"),
            ("/tmp/sw[port=99999999999]", "port"),
            ("/tmp/sw[mode=9]", "mode"),
            ("/tmp/sw[mode=0]", "mode"),
        ] {
            let e = parse(arg).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{arg}");
            assert!(e.to_string().contains(key), "{arg}: {e}");
        }
        let args = OpenArgs {
            mode: Some(0),
            ..OpenArgs::default()
        };
        assert!(Target::parse("/tmp/sw", &args).is_err());
    }
}
