//! The node's directory: created, or taken over from a node that died (a
//! `kill -9` leaves `ctl` and the port sockets behind), owned and permitted as
//! configured, locked while the node lives, and removed when it goes.
//!
//! Taking over is safe when nothing answers on the old `ctl` (`connect` is
//! refused: no process listens) and the directory holds nothing but what hubs,
//! switches and their clients put there; those files are removed, as vde_switch
//! removes a stale `ctl`. A `ctl` that answers, a file of any other name or type,
//! or a directory that is not ours is refused with an error that says which.
//! Our nodes also hold an exclusive `flock` on the directory for their lifetime,
//! so two of them starting at once on a stale directory cannot both take it.

use std::ffi::OsStr;
use std::fs::Permissions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::context;

/// Removes the node's `ctl` and directory when dropped (last, after the sockets),
/// then lets go of the directory's lock.
#[derive(Debug)]
pub(super) struct DirGuard {
    pub(super) dir: PathBuf,
    pub(super) ctl: Option<PathBuf>,
    /// The directory, open and `flock`ed while the node lives.
    pub(super) _lock: OwnedFd,
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(ctl) = &self.ctl {
            let _ = std::fs::remove_file(ctl);
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            log::warn!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// What a file in a node's directory is, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leftover {
    /// `ctl`, the control socket.
    Ctl,
    /// `fd<N>`: a port of one of our nodes (or a vdeplug4 netnode).
    NodePort,
    /// `<NNN>.<N>`: a port of a vde_switch.
    SwitchPort,
    /// `.<pid>-<n>`: a libvdeplug client's data socket, named before its
    /// handshake and removed after it.
    ClientSocket,
}

/// Sorts a file name of a node's directory; `None`: not a node's.
pub(super) fn leftover_kind(name: &OsStr) -> Option<Leftover> {
    let name = name.to_str()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name == "ctl" {
        return Some(Leftover::Ctl);
    }
    if name.strip_prefix("fd").is_some_and(digits) {
        return Some(Leftover::NodePort);
    }
    if let Some((port, fd)) = name.split_once('.') {
        if digits(port) && digits(fd) {
            return Some(Leftover::SwitchPort);
        }
    }
    if let Some((pid, n)) = name.strip_prefix('.').and_then(|s| s.split_once('-')) {
        if digits(pid) && digits(n) {
            return Some(Leftover::ClientSocket);
        }
    }
    None
}

/// Creates the node's directory, or takes over the directory of a node that is
/// gone; returns the directory locked.
pub(super) fn claim_dir(dir: &Path) -> io::Result<OwnedFd> {
    let created = match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(context(e, format!("cannot create {}", dir.display()))),
    };
    let lock = lock(dir)?;
    if !created {
        take_over(dir)?;
    }
    Ok(lock)
}

/// Opens `dir` (not through a symlink) and locks it, or says who holds it.
fn lock(dir: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let file_type = std::fs::symlink_metadata(dir).map(|m| m.file_type());
        let why = match file_type {
            Ok(t) if t.is_symlink() => "is a symbolic link, which a node does not follow",
            Ok(t) if !t.is_dir() => "exists and is not a directory",
            _ => "cannot be opened",
        };
        context(io::Error::from(e), format!("{} {why}", dir.display()))
    })?;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(fd),
        Err(e) if e == Errno::WOULDBLOCK => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} is in use: another hub or switch of ours runs there",
                dir.display()
            ),
        )),
        Err(e) => Err(context(
            io::Error::from(e),
            format!("cannot lock {}", dir.display()),
        )),
    }
}

/// Takes over an existing directory: checks it is ours and holds only the remains
/// of a node that is gone, then removes them.
fn take_over(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} already exists and belongs to uid {}, not to us (uid {euid}): not taking it over",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    let mut leftovers = Vec::new();
    let mut foreign = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| context(e, format!("cannot list {}", dir.display())))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let socket = entry.file_type().is_ok_and(|t| t.is_socket());
        match leftover_kind(&name) {
            Some(kind) if socket => leftovers.push((kind, entry.path())),
            _ => foreign.push(name.to_string_lossy().into_owned()),
        }
    }
    let ctl = dir.join("ctl");
    if leftovers.iter().any(|(k, _)| *k == Leftover::Ctl) && answers(&ctl)? {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} is in use: a hub or switch answers on {}",
                dir.display(),
                ctl.display()
            ),
        ));
    }
    if !foreign.is_empty() {
        foreign.sort();
        let more = foreign.len().saturating_sub(5);
        foreign.truncate(5);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists and holds files that are not a hub's or switch's ({}{more}): not touching them",
                dir.display(),
                foreign.join(", ")
            ),
        ));
    }
    for (_, path) in &leftovers {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(e, format!("cannot remove {}", path.display()))),
        }
    }
    if !leftovers.is_empty() {
        log::info!(
            "{}: took over from a node that is gone (removed {} of its sockets)",
            dir.display(),
            leftovers.len()
        );
    }
    Ok(())
}

/// Whether something listens on the socket `path`: `connect` succeeds, or the
/// listener's queue is full. A refused connection means nobody does; any other
/// error cannot tell, and is returned.
fn answers(path: &Path) -> io::Result<bool> {
    let probe = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    match rustix::net::connect(&probe, &SocketAddrUnix::new(path)?) {
        Ok(()) => Ok(true),
        Err(e) if e == Errno::AGAIN || e == Errno::INPROGRESS => Ok(true),
        Err(e) if e == Errno::CONNREFUSED || e == Errno::NOENT => Ok(false),
        Err(e) => Err(context(
            io::Error::from(e),
            format!("cannot tell whether a switch answers on {}", path.display()),
        )),
    }
}

/// Gives `path` to group `gid` (if any), then sets its permissions.
pub(super) fn set_owner_and_mode(path: &Path, gid: Option<u32>, mode: u32) -> io::Result<()> {
    if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g))
            .map_err(|e| context(e, format!("chown {}", path.display())))?;
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode))
        .map_err(|e| context(e, format!("chmod {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_node_names_are_leftovers() {
        let k = |s: &str| leftover_kind(OsStr::new(s));
        assert_eq!(k("ctl"), Some(Leftover::Ctl));
        assert_eq!(k("fd5"), Some(Leftover::NodePort));
        assert_eq!(k("fd123"), Some(Leftover::NodePort));
        assert_eq!(k("001.5"), Some(Leftover::SwitchPort));
        assert_eq!(k("032.17"), Some(Leftover::SwitchPort));
        assert_eq!(k(".20492-00000"), Some(Leftover::ClientSocket));
        for other in [
            "",
            "fd",
            "fdx",
            "fd5x",
            "ctl2",
            "CTL",
            "notes.txt",
            "1.",
            ".5",
            "a.5",
            ".-1",
            ".12-",
            ".12-3x",
            "..",
            ".",
            "001.5.6",
        ] {
            assert_eq!(k(other), None, "{other:?}");
        }
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(leftover_kind(OsStr::from_bytes(b"fd\xff")), None);
    }
}
