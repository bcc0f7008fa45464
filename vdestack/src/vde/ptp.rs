//! `ptp://PATH`: a point-to-point cable over a pair of unix datagram sockets, the
//! variant of Debian vdeplug 4.0.1 (so Debian's `vde_plug ptp://PATH` can be either
//! end). Both ends use the same URL:
//!
//! * the *first* end binds `PATH` and sends to `PATH+`;
//! * the *second* end (`PATH` is taken by a live socket) binds `PATH+` and sends to
//!   `PATH`; a third opener finds both taken and gets `EADDRINUSE`.
//!
//! A socket file left by a dead process (connecting to it is refused) is removed and
//! reused. Frames are raw, one per datagram. Unlike upstream, sends never block (a
//! full peer drops the frame) since two blocking senders deadlock. Until the other end
//! exists, frames are dropped as an unplugged cable drops them. Socket files get the
//! open arguments' mode (default 0700) and group, or those of the URL's options
//! (`ptp://PATH[mode=0660/group=vde]`, path style as `vde://`: Debian's plugin has
//! none and would take the brackets as part of the file name); each end removes its
//! own on drop.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Gid, Mode};
use rustix::io::Errno;
use rustix::net::{
    self as rnet, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use super::netnode::parse_mode;
use super::url::{bad_value, parse_path_style};
use super::{OpenArgs, Plug, Recv, MIN_FRAME};
use crate::error::context;

/// Options in `ptp://PATH[mode=0660/group=vde]`: the open arguments' mode and group
/// (`-m`, `-g`), which the URL overrides.
const TAGS: &[&str] = &["mode", "group"];

/// A `ptp://` cable end.
#[derive(Debug)]
pub struct Ptp {
    fd: OwnedFd,
    /// The socket file we bound (and remove on drop).
    own: PathBuf,
    /// The other end's socket file.
    peer: PathBuf,
    connected: bool,
    /// Whether we are the second end (bound to `PATH+`).
    second: bool,
}

fn dgram_socket() -> io::Result<OwnedFd> {
    Ok(rnet::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

fn unix_addr(path: &Path) -> io::Result<SocketAddrUnix> {
    SocketAddrUnix::new(path).map_err(|e| context(e, format!("socket path {}", path.display())))
}

/// Binds `fd` to `path`, first removing a stale socket file there. A live socket
/// (one that accepts a connection) gives `EADDRINUSE`.
fn claim(fd: &OwnedFd, path: &Path) -> io::Result<()> {
    let addr = unix_addr(path)?;
    if let Ok(st) = rustix::fs::lstat(path) {
        if FileType::from_raw_mode(st.st_mode) == FileType::Socket {
            let probe = dgram_socket()?;
            match rnet::connect(&probe, &addr) {
                Ok(()) => return Err(Errno::ADDRINUSE.into()),
                Err(Errno::CONNREFUSED) => {
                    let _ = rustix::fs::unlink(path);
                }
                Err(_) => {}
            }
        }
    }
    rnet::bind(fd, &addr)?;
    Ok(())
}

impl Ptp {
    /// Opens `ptp://PATH` as whichever end is free.
    pub fn open(url_arg: &str, args: &OpenArgs) -> io::Result<Self> {
        let (path, opts) = parse_path_style("ptp", url_arg, TAGS)?;
        if path.is_empty() {
            return Err(bad_value("ptp", "path", url_arg, "ptp:// needs a socket path").into());
        }
        let arg = path.as_str();
        let mode = match opts.get("mode") {
            Some(v) => parse_mode("ptp", "mode", v)?,
            None => args.mode.unwrap_or(0o700),
        };
        if mode & 0o777 == 0 {
            return Err(bad_value(
                "ptp",
                "mode",
                &format!("{mode:o}"),
                "the other end could not use the socket",
            )
            .into());
        }
        let group = opts.get("group").map(str::to_string).or(args.group.clone());
        let gid = match &group {
            Some(g) => Some(
                crate::sys::group_id(g).map_err(|e| context(e, format!("ptp://{arg}: group")))?,
            ),
            None => None,
        };
        let first = PathBuf::from(arg);
        let second = PathBuf::from(format!("{arg}+"));
        let fd = dgram_socket()?;
        let mut p = match claim(&fd, &first) {
            Ok(()) => Self {
                fd,
                own: first,
                peer: second,
                connected: false,
                second: false,
            },
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                match claim(&fd, &second) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                        return Err(context(
                            e,
                            format!("ptp://{arg}: both ends are in use ({arg} and {arg}+)"),
                        ))
                    }
                    Err(e) => return Err(context(e, format!("ptp://{arg}: binding {arg}+"))),
                }
                let mut p = Self {
                    fd,
                    own: second,
                    peer: first,
                    connected: false,
                    second: true,
                };
                // The first end is there: connect now, so that only it is heard. EPERM
                // means it is still connected to a second end that died; it lets go
                // at its next send, and we connect at ours.
                match p.connect() {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                    Err(e) => {
                        return Err(context(
                            e,
                            format!("ptp://{arg}: connecting to the first end"),
                        ))
                    }
                }
                p
            }
            Err(e) => return Err(context(e, format!("ptp://{arg}: binding {arg}"))),
        };
        p.set_permissions(mode, gid)
            .map_err(|e| context(e, format!("ptp://{arg}: permissions")))?;
        Ok(p)
    }

    fn set_permissions(&mut self, mode: u32, gid: Option<u32>) -> io::Result<()> {
        if let Some(g) = gid {
            rustix::fs::chown(&self.own, None, Some(Gid::from_raw_unchecked(g)))?;
        }
        rustix::fs::chmod(&self.own, Mode::from_raw_mode(mode & 0o7777))?;
        Ok(())
    }

    fn connect(&mut self) -> io::Result<()> {
        rnet::connect(&self.fd, &unix_addr(&self.peer)?)?;
        self.connected = true;
        Ok(())
    }

    /// Whether this is the second end (bound to `PATH+`).
    pub fn is_second(&self) -> bool {
        self.second
    }

    fn send_connected(&self, frame: &[u8]) -> Result<usize, Errno> {
        rnet::send(&self.fd, frame, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
    }
}

impl Plug for Ptp {
    fn send(&mut self, frame: &[u8]) -> io::Result<usize> {
        if frame.len() < MIN_FRAME {
            return Ok(frame.len());
        }
        // (Re)connect lazily: the other end may not exist yet, or may have been
        // replaced by a new process since (the old connection is then refused).
        for _ in 0..2 {
            if !self.connected && self.connect().is_err() {
                return Ok(frame.len()); // nobody at the other end: dropped
            }
            match self.send_connected(frame) {
                Ok(n) => return Ok(n),
                Err(Errno::CONNREFUSED | Errno::NOTCONN | Errno::CONNRESET) => {
                    self.connected = false
                }
                Err(e) => {
                    let e = io::Error::from(e);
                    return if crate::sys::would_block(&e) {
                        Err(io::ErrorKind::WouldBlock.into())
                    } else {
                        Err(e)
                    };
                }
            }
        }
        Ok(frame.len())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match rnet::recv(&self.fd, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) if n >= MIN_FRAME => Ok(Recv::Frame(n.min(buf.len()))),
            Ok(_) => Ok(Recv::Nothing),
            // The other end went away while we were connected to it.
            Err(Errno::CONNREFUSED | Errno::CONNRESET) => {
                self.connected = false;
                Ok(Recv::Nothing)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn data_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Ptp {
    fn drop(&mut self) {
        let _ = rustix::fs::unlink(&self.own);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_mode_zero_and_empty_path() {
        let args = OpenArgs {
            mode: Some(0),
            ..OpenArgs::default()
        };
        let e = Ptp::open("/tmp/never-made", &args).unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
        assert!(Ptp::open("", &OpenArgs::default()).is_err());
        assert!(Ptp::open("[mode=0600]", &OpenArgs::default()).is_err());
    }

    #[test]
    fn options_are_checked_and_named() {
        let d = OpenArgs::default();
        let e = Ptp::open("/tmp/never-made[mode=zz]", &d).unwrap_err();
        assert!(e.to_string().contains("bad mode `zz`"), "{e}");
        let e = Ptp::open("/tmp/never-made[mode=0]", &d).unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
        let e = Ptp::open("/tmp/never-made[colour=red]", &d).unwrap_err();
        assert!(e.to_string().contains("unknown option `colour`"), "{e}");
        let e = Ptp::open("/tmp/never-made[group=no-such-group-here]", &d).unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
        assert!(!Path::new("/tmp/never-made").exists());
    }

    #[test]
    fn two_ends_then_a_refused_third() {
        // Unix sockets in a private temporary directory: no network involved.
        let dir = std::env::temp_dir().join(format!("vdestack-ptp-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c").to_string_lossy().into_owned();
        let a = Ptp::open(&path, &OpenArgs::default()).unwrap();
        let b = Ptp::open(&path, &OpenArgs::default()).unwrap();
        assert!(!a.is_second() && b.is_second());
        let e = Ptp::open(&path, &OpenArgs::default()).unwrap_err();
        assert_eq!(crate::error::errno_of(&e), libc::EADDRINUSE, "{e}");
        drop((a, b));
        assert!(!Path::new(&path).exists() && !Path::new(&format!("{path}+")).exists());
        // With options: the mode is the URL's.
        let a = Ptp::open(&format!("{path}[mode=0640]"), &OpenArgs::default()).unwrap();
        let st = rustix::fs::stat(path.as_str()).unwrap();
        assert_eq!(st.st_mode & 0o777, 0o640);
        drop(a);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
