//! Which opened paths are the served `/proc/net` files: `/proc/net/X`,
//! `/proc/self/net/X`, `/proc/thread-self/net/X`, `/proc/PID/net/X` and
//! `/proc/PID/task/TID/net/X` for `X` in `dev`, `if_inet6`, `route`,
//! `ipv6_route`. Paths are normalised lexically (`//`, `.`, `..`), which is
//! exact for these paths: `/proc/net` is a link to `self/net`, one level deep
//! as `..` sees it.

use std::io;

use super::served::{NetDialog, ServedNet};
use crate::nl::emul;

/// A served file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcNetFile {
    /// `dev`.
    Dev,
    /// `if_inet6`.
    IfInet6,
    /// `route`.
    Route,
    /// `ipv6_route`.
    Ipv6Route,
}

/// Whose `net` directory a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whose {
    /// The caller's (`/proc/net`, `/proc/self`, `/proc/thread-self`).
    Caller,
    /// Process (or thread) `pid`: served only if it is supervised.
    Pid(i32),
}

impl ProcNetFile {
    fn of(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"dev" => ProcNetFile::Dev,
            b"if_inet6" => ProcNetFile::IfInet6,
            b"route" => ProcNetFile::Route,
            b"ipv6_route" => ProcNetFile::Ipv6Route,
            _ => return None,
        })
    }

    /// The memfd's name (shown by `readlink /proc/PID/fd/N`).
    pub(crate) fn memfd_name(self) -> &'static str {
        match self {
            ProcNetFile::Dev => "proc-net-dev",
            ProcNetFile::IfInet6 => "proc-net-if_inet6",
            ProcNetFile::Route => "proc-net-route",
            ProcNetFile::Ipv6Route => "proc-net-ipv6_route",
        }
    }

    /// The file's content, made from the stack.
    pub(crate) fn content<N: ServedNet + ?Sized>(self, net: &mut N) -> io::Result<Vec<u8>> {
        let d = &mut NetDialog::new(net);
        match self {
            ProcNetFile::Dev => emul::proc_net_dev_bytes(d),
            ProcNetFile::IfInet6 => emul::proc_net_if_inet6(d),
            ProcNetFile::Route => emul::proc_net_route(d),
            ProcNetFile::Ipv6Route => emul::proc_net_ipv6_route(d),
        }
    }
}

/// Whether the last component of a (relative) path could name a served file:
/// only then is the directory it is relative to worth looking up.
pub(crate) fn may_match(path: &[u8]) -> bool {
    let last = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
    ProcNetFile::of(last).is_some()
}

/// The components of an absolute path, `.` and `..` resolved lexically.
fn normalise(path: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in path.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn number(c: &[u8]) -> Option<i32> {
    if c.is_empty() || c.len() > 9 || !c.iter().all(u8::is_ascii_digit) || c[0] == b'0' {
        return None;
    }
    std::str::from_utf8(c).ok()?.parse().ok()
}

/// The served file an absolute path names, and whose it is.
pub(crate) fn match_path(path: &[u8]) -> Option<(Whose, ProcNetFile)> {
    if path.first() != Some(&b'/') {
        return None;
    }
    let c = normalise(path);
    let (whose, rest) = match c.as_slice() {
        [b"proc", b"net", rest @ ..] => (Whose::Caller, rest),
        [b"proc", b"self" | b"thread-self", b"net", rest @ ..] => (Whose::Caller, rest),
        [b"proc", b"self", b"task", t, b"net", rest @ ..] => (Whose::Pid(number(t)?), rest),
        [b"proc", p, b"net", rest @ ..] => (Whose::Pid(number(p)?), rest),
        [b"proc", _, b"task", t, b"net", rest @ ..] => (Whose::Pid(number(t)?), rest),
        _ => return None,
    };
    match rest {
        [name] => Some((whose, ProcNetFile::of(name)?)),
        _ => None,
    }
}

/// Whether an absolute path names `/etc/resolv.conf` (lexically: a link to it
/// elsewhere is not seen).
pub(crate) fn is_resolv_conf(path: &[u8]) -> bool {
    path.first() == Some(&b'/') && normalise(path) == [b"etc".as_slice(), b"resolv.conf"]
}

/// Joins a directory (absolute) and a relative path.
pub(crate) fn join(dir: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    p.push(b'/');
    p.extend_from_slice(rel);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_paths() {
        assert!(is_resolv_conf(b"/etc/resolv.conf"));
        assert!(is_resolv_conf(b"//etc/./resolv.conf"));
        assert!(is_resolv_conf(b"/tmp/../etc/resolv.conf"));
        assert!(!is_resolv_conf(b"etc/resolv.conf"));
        assert!(!is_resolv_conf(b"/etc/resolv.conf.bak"));
    }

    #[test]
    fn paths() {
        use ProcNetFile::*;
        let m = |p: &str| match_path(p.as_bytes());
        assert_eq!(m("/proc/net/dev"), Some((Whose::Caller, Dev)));
        assert_eq!(m("/proc/self/net/route"), Some((Whose::Caller, Route)));
        assert_eq!(
            m("/proc/thread-self/net/if_inet6"),
            Some((Whose::Caller, IfInet6))
        );
        assert_eq!(
            m("/proc/123/net/ipv6_route"),
            Some((Whose::Pid(123), Ipv6Route))
        );
        assert_eq!(m("/proc/12/task/13/net/dev"), Some((Whose::Pid(13), Dev)));
        assert_eq!(m("/proc/self/task/13/net/dev"), Some((Whose::Pid(13), Dev)));
        assert_eq!(m("//proc/./net//dev"), Some((Whose::Caller, Dev)));
        assert_eq!(m("/proc/net/../net/dev"), Some((Whose::Caller, Dev)));
        assert_eq!(m("/proc/net/tcp"), None);
        assert_eq!(m("/proc/net/dev/x"), None);
        assert_eq!(m("/proc/012/net/dev"), None);
        assert_eq!(m("/proc/abc/net/dev"), None);
        assert_eq!(m("proc/net/dev"), None);
        assert_eq!(m("/etc/passwd"), None);
        assert!(may_match(b"dev"));
        assert!(may_match(b"net/route"));
        assert!(!may_match(b"lib/libc.so.6"));
        assert_eq!(join(b"/proc/7/net", b"dev"), b"/proc/7/net/dev");
    }
}
