//! The node's directory: created (or taken over from a node that died), owned and
//! permitted as configured, and removed when the node goes.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Removes the node's `ctl` and directory when dropped (last, after the sockets).
#[derive(Debug)]
pub(super) struct DirGuard {
    pub(super) dir: PathBuf,
    pub(super) ctl: Option<PathBuf>,
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

/// Creates the directory, failing if it exists, unless what exists is the remains
/// of a node that died.
pub(super) fn mkdir_or_reuse(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A node that crashed leaves its directory with a dead `ctl` behind.
            // If that is all there is and nobody answers on it, taking the place
            // over is safe: no running node can be using it.
            if is_stale(dir) {
                log::info!(
                    "{}: reusing the directory of a node that is gone",
                    dir.display()
                );
                std::fs::remove_file(dir.join("ctl"))?;
                Ok(())
            } else {
                Err(crate::error::context(
                    e,
                    format!(
                        "{} already exists (is another hub or switch running there?)",
                        dir.display()
                    ),
                ))
            }
        }
        Err(e) => Err(crate::error::context(
            e,
            format!("cannot create {}", dir.display()),
        )),
    }
}

/// Whether `dir` holds nothing but a `ctl` socket that refuses connections.
fn is_stale(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    if names.len() != 1 || names[0].file_name() != "ctl" {
        return false;
    }
    let is_socket = names[0].file_type().map(|t| t.is_socket()).unwrap_or(false);
    is_socket
        && matches!(UnixStream::connect(dir.join("ctl")),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

/// Gives `path` to group `gid` (if any), then sets its permissions.
pub(super) fn set_owner_and_mode(path: &Path, gid: Option<u32>, mode: u32) -> io::Result<()> {
    if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g))
            .map_err(|e| crate::error::context(e, format!("chown {}", path.display())))?;
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode))
        .map_err(|e| crate::error::context(e, format!("chmod {}", path.display())))
}
