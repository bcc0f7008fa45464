//! The C calls' logic in safe Rust: C strings arrive as byte slices (`None` for
//! NULL), handles as `usize`, results as `io::Result`; `sys` turns them into
//! return values and errno.

use std::io;
use std::os::fd::{AsFd, IntoRawFd, RawFd};

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use vdestack::error::context;
use vdestack::net::{AddressFamily, Protocol, SocketFlags, SocketType};
use vdestack::stack::{IfSpec, Stack};

use crate::handles;

/// The interface name when `vde_addstack` gets NULL, as upstream.
const DEFAULT_IFNAME: &str = "vde0";

fn einval(what: impl Into<String>) -> io::Error {
    context(io::Error::from_raw_os_error(libc::EINVAL), what)
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> io::Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| einval(format!("{what} is not UTF-8")))
}

/// `vde_addstack(vdenet, ifname)`: NULL or `""` gives a stack with only `lo` (the
/// name is ignored); otherwise one interface named `ifname` (NULL: `vde0`) plugged
/// into `vdenet`, a VNL or `=COMMAND`. A name upstream would truncate (over 15
/// bytes) or that could not be a name (empty, `:`, `/`, blanks) is refused.
pub fn addstack(vdenet: Option<&[u8]>, ifname: Option<&[u8]>) -> io::Result<usize> {
    let vdenet = match vdenet {
        None | Some(b"") => return Ok(handles::insert(Stack::new()?)),
        Some(v) => utf8(v, "the network")?,
    };
    let ifname = match ifname {
        None => DEFAULT_IFNAME,
        Some(n) => utf8(n, "the interface name")?,
    };
    vdestack::nl::nlinline::check_ifname(ifname)?;
    if ifname.contains(':') {
        return Err(einval(format!(
            "bad interface name {ifname:?}: it has a ':'"
        )));
    }
    // Name and network apart, as upstream passes `vdenet` whole to vde_open:
    // `////` is a vde:// path, not a scheme `vde0://` after `vde0:`.
    let stack = Stack::with_specs(vec![IfSpec::new(ifname, vdenet)?])?;
    Ok(handles::insert(stack))
}

/// `vde_delstack`: unregisters the stack; it is dropped (helper gone, taps and
/// plugs closed) once no other thread is still using it.
pub fn delstack(handle: usize) -> io::Result<()> {
    let stack = handles::remove(handle)?;
    drop(stack);
    Ok(())
}

/// `vde_msocket`: a socket made in the stack, close-on-exec only if `ty` asks for
/// it (as `socket()`; the Rust API always sets it).
pub fn msocket(handle: usize, domain: i32, ty: i32, protocol: i32) -> io::Result<RawFd> {
    let stack = handles::get(handle)?;
    // The C integers as the Rust API's types, bit for bit: the kernel judges
    // them as it would judge them from socket().
    let family = u16::try_from(domain)
        .map(AddressFamily::from_raw)
        .map_err(|_| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
    let flag_bits = ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let kind = SocketType::from_raw((ty & !flag_bits) as u32);
    let flags = SocketFlags::from_bits_retain(flag_bits as u32);
    let protocol = std::num::NonZeroU32::new(protocol as u32).map(Protocol::from_raw);
    let fd = stack.socket_with(family, kind, flags, protocol)?;
    drop(stack);
    if ty & libc::SOCK_CLOEXEC == 0 {
        crate::sys::set_cloexec(fd.as_fd(), false)?;
    }
    Ok(fd.into_raw_fd())
}

/// `vde_stackcmd`: [`Stack::run`]'s status as a shell says it: the exit status,
/// or 128+N for a command killed by signal N.
pub fn stackcmd(handle: usize, cmds: &[u8]) -> io::Result<i32> {
    let cmds = utf8(cmds, "the command")?;
    Ok(shell_code(handles::get(handle)?.run(cmds)?))
}

/// An exit status as a shell reports it: the exit status, or 128+N for signal N.
fn shell_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// `vde_stack_onecmd`: runs one argv (no `PATH` search, no shell) and returns its
/// status as [`stackcmd`] does. Arguments are taken as they are (bytes, empty ones
/// included).
pub fn onecmd(handle: usize, argv: &[&[u8]]) -> io::Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let stack = handles::get(handle)?;
    if argv.is_empty() {
        return Err(einval("an empty argv"));
    }
    let words: Vec<&std::ffi::OsStr> = argv
        .iter()
        .map(|a| std::ffi::OsStr::from_bytes(a))
        .collect();
    Ok(shell_code(stack.run_argv(&words)?))
}

/// `vde_default_stack`: the stack plain `socket()` calls use from now on (0: none).
pub fn default_stack(handle: usize) -> io::Result<()> {
    handles::set_default(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_handles_and_names_are_einval() {
        let errno = |r: io::Result<i32>| vdestack::error::errno_of(&r.unwrap_err());
        assert_eq!(
            errno(msocket(0, libc::AF_INET, libc::SOCK_STREAM, 0)),
            libc::EINVAL
        );
        assert_eq!(errno(stackcmd(12345, b"/bin/true")), libc::EINVAL);
        assert_eq!(errno(delstack(8).map(|_| 0)), libc::EINVAL);
        assert_eq!(errno(default_stack(16).map(|_| 0)), libc::EINVAL);
        for name in [&b"abcdefghijklmnop"[..], b"a:b", b"", b"a b", b"\xff"] {
            let r = addstack(Some(b"null://"), Some(name)).map(|_| 0);
            assert_eq!(errno(r), libc::EINVAL, "{name:?}");
        }
    }
}
