//! The client's side of the vde_switch handshake: naming and permitting our data
//! socket, and reading the switch's reply without hanging.

use std::fs::Permissions;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Target, REPLY_TIMEOUT};
use crate::error::context;
use crate::vde::netnode::protocol::SOCKADDR_LEN;

/// Removes a socket file when dropped (our data socket's name is only
/// needed until the switch has connected to it).
pub(super) struct Unlink(pub(super) Option<PathBuf>);

impl Drop for Unlink {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Reads the switch's 110-byte answer, with a time limit.
pub(super) fn read_reply(
    mut ctl: &UnixStream,
    url: &str,
    port: Option<u32>,
) -> io::Result<Vec<u8>> {
    let which = match port {
        Some(p) => format!("port {p} does not exist?"),
        None => "no free port?".to_string(),
    };
    ctl.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut reply = vec![0u8; SOCKADDR_LEN];
    let mut got = 0;
    while got < SOCKADDR_LEN {
        match ctl.read(&mut reply[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{url}: the switch did not answer within {REPLY_TIMEOUT:?} ({which})"),
                ))
            }
            Err(e) => return Err(context(e, format!("{url}: reading the switch's reply"))),
        }
    }
    if got == 0 {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("{url}: the switch refused the connection ({which})"),
        ));
    }
    reply.truncate(got);
    Ok(reply)
}

/// Binds our datagram socket as `<dir>/.<pid>-<n>`, or in a fallback directory when
/// `dir` is not writable for us.
pub(super) fn bind_data_socket(dir: &Path) -> io::Result<(UnixDatagram, PathBuf)> {
    // Start from a process-wide counter so that many plugs of one process rarely
    // collide; collisions (a stale file of a dead process) just move on.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let mut last = None;
    let fallbacks = ["/var/run", "/var/tmp", "/tmp"];
    let places =
        std::iter::once((dir, ".")).chain(fallbacks.iter().map(|d| (Path::new(*d), "vde.")));
    for (d, prefix) in places {
        for _ in 0..1000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) % 100_000;
            let path = d.join(format!("{prefix}{pid:05}-{n:05}"));
            match UnixDatagram::bind(&path) {
                Ok(s) => return Ok((s, path)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => {
                    last = Some(context(e, format!("binding {}", path.display())));
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()))
}

/// Gives the switch access to our socket, the way libvdeplug does.
pub(super) fn set_permissions(own: &Path, ctl: &Path, t: &Target) -> io::Result<()> {
    let mut mode = t.mode;
    if let Some(g) = &t.group {
        let gid = crate::sys::group_id(g)?;
        std::os::unix::fs::chown(own, None, Some(gid))?;
    } else if mode & 0o077 == 0 {
        // A switch run by someone else (not root, who can access anything) must
        // reach our socket: share it with the switch's group if we can, else with
        // everyone.
        if let Ok(m) = std::fs::metadata(ctl) {
            let euid = rustix::process::geteuid().as_raw();
            if m.uid() != 0 && m.uid() != euid {
                if std::os::unix::fs::chown(own, None, Some(m.gid())).is_ok() {
                    mode |= 0o070;
                } else {
                    mode |= 0o077;
                }
            }
        }
    }
    std::fs::set_permissions(own, Permissions::from_mode(mode))
}
