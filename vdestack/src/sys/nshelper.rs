//! The namespace helper of a stack: a process living in a new user namespace and a
//! new network namespace, which creates the stack's taps and, on request, sockets,
//! and hands them back over a `SOCK_SEQPACKET` socket pair with `SCM_RIGHTS`.
//!
//! ## How it is made, and why this way
//!
//! The caller is multithreaded (a library cannot assume otherwise; `cargo test`
//! always is), and `unshare(CLONE_NEWUSER)` refuses a multithreaded process. So the
//! helper is a forked process. Between `fork` and the helper's end it runs only raw
//! system calls through libc's thin wrappers: no allocation, no lock, no panic
//! path. Every buffer, path, map line and `struct ifreq` is prepared before the
//! fork. libvdestack instead `clone`s with `CLONE_VM|CLONE_FILES`, sharing memory
//! and TLS with the application, and so pollutes its fd table; we share neither.
//!
//! It is a *double* fork: the intermediate process exits at once and we reap it by
//! its pid, so the helper is re-parented to init (or the nearest subreaper) and an
//! application's own `waitpid(-1)` or SIGCHLD handler never sees it. We watch it
//! with a pidfd that the helper opens on itself and sends us (no pid-reuse race).
//!
//! The helper:
//! 1. closes every inherited fd but its end of the pair (so it pins no other
//!    stack's pair, plug or tap), resets signal handlers, starts a new session
//!    (no terminal signals);
//! 2. `unshare(CLONE_NEWUSER|CLONE_NEWNET)` and writes its own identity maps
//!    (`setgroups` deny, `uid_map` "euid euid 1", `gid_map` "egid egid 1"), as
//!    `unshare -U` does: no parent has to write them, nothing to synchronise;
//! 3. sends its pidfd, its user and network namespace fds, then one tap per
//!    interface (`IFF_TAP|IFF_NO_PI`, non-blocking);
//! 4. serves socket requests until its end of the pair reads EOF: the stack was
//!    dropped or the application died (no polling of the parent as upstream).
//!    Each request carries its own reply socket, so concurrent requesters (threads,
//!    or forked children sharing the pair) need no lock and get their own answers.
//!
//! Cost: a forked process keeps copy-on-write references to the memory the
//! application had at fork time; pages the application later writes are copied.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use super::tun::{IfReq, IFF_NO_PI, IFF_TAP, TUNSETIFF};
use crate::error::context;

/// The steps a helper reports, in order.
const STEP_SOCKET: i32 = 0;
const STEP_UNSHARE: i32 = 1;
const STEP_SETGROUPS: i32 = 2;
const STEP_UID_MAP: i32 = 3;
const STEP_GID_MAP: i32 = 4;
const STEP_PIDFD: i32 = 5;
const STEP_USERNS: i32 = 6;
const STEP_NETNS: i32 = 7;
/// Tap `i` is step `STEP_TAP + i`.
const STEP_TAP: i32 = 8;

/// A reply: `[step, errno, value]` (value: the helper's pid in the pidfd reply),
/// with one fd attached when errno is 0 and the step produces one.
type Reply = [i32; 3];
const REPLY_LEN: usize = std::mem::size_of::<Reply>();
/// A request: `[domain, type, protocol]` for socket(2), with the reply socket
/// attached (`SCM_RIGHTS`).
const REQ_LEN: usize = 12;

/// A running helper and what it sent at start.
#[derive(Debug)]
pub struct Helper {
    /// Our end of the socket pair (close it and the helper exits).
    pub ctl: OwnedFd,
    /// A pidfd of the helper: readable once it has exited.
    pub pidfd: OwnedFd,
    /// The helper's pid (in our pid namespace), for diagnostics.
    pub pid: i32,
    /// Its user namespace (`/proc/PID/ns/user`).
    pub userns: OwnedFd,
    /// Its network namespace (`/proc/PID/ns/net`).
    pub netns: OwnedFd,
    /// One tap per requested name, in order: non-blocking, close-on-exec.
    pub taps: Vec<OwnedFd>,
}

/// Everything the helper needs, prepared before the fork.
struct Prepared {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    ifreqs: Vec<IfReq>,
}

fn step_name(step: i32) -> String {
    match step {
        STEP_UNSHARE => "unshare(CLONE_NEWUSER|CLONE_NEWNET)".into(),
        STEP_SETGROUPS => "writing /proc/self/setgroups".into(),
        STEP_UID_MAP => "writing /proc/self/uid_map".into(),
        STEP_GID_MAP => "writing /proc/self/gid_map".into(),
        STEP_PIDFD => "pidfd_open".into(),
        STEP_USERNS => "opening /proc/self/ns/user".into(),
        STEP_NETNS => "opening /proc/self/ns/net".into(),
        s => format!("step {s}"),
    }
}

/// Starts a helper in a new user and network namespace, with one tap named after
/// each of `taps` (each already checked: 1 to 15 bytes).
pub fn spawn_helper(taps: &[&str]) -> io::Result<Helper> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let mut ifreqs = Vec::with_capacity(taps.len());
    for name in taps {
        if name.is_empty() || name.len() > super::TAP_NAME_MAX || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        ifreqs.push(req);
    }
    let prep = Prepared {
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        ifreqs,
    };
    let (ctl, theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| context(e, "socketpair for the stack helper"))?;

    // SAFETY: fork() is allowed in a multithreaded process; the child (the
    // intermediate) runs only async-signal-safe calls: fork, _exit, and in the
    // grandchild `helper_main`, which makes raw system calls on memory prepared
    // above (no allocation, no locks, no unwinding).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(context(io::Error::last_os_error(), "fork (stack helper)"));
    }
    if pid == 0 {
        // SAFETY: as above: the intermediate forks once more and exits.
        let p2 = unsafe { libc::fork() };
        if p2 == 0 {
            helper_main(theirs.as_raw_fd(), &prep);
        }
        // SAFETY: _exit ends the intermediate without running any Rust or libc
        // clean-up (atexit handlers, destructors) inherited from the parent.
        unsafe { libc::_exit(if p2 < 0 { 1 } else { 0 }) };
    }
    drop(theirs);
    reap(pid);
    drop(prep);
    receive_setup(ctl, taps)
}

/// Reaps the intermediate process by pid (an application's `waitpid(-1)` may have
/// taken it already: ECHILD is fine).
fn reap(pid: i32) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a valid local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn receive_setup(ctl: OwnedFd, taps: &[&str]) -> io::Result<Helper> {
    let next = |want: i32| -> io::Result<(i32, OwnedFd)> {
        let what = if want >= STEP_TAP {
            let name = taps.get((want - STEP_TAP) as usize).copied().unwrap_or("?");
            format!("stack helper: creating tap `{name}`")
        } else {
            format!("stack helper: {}", step_name(want))
        };
        match recv_reply(ctl.as_fd())? {
            None => Err(context(
                io::Error::from_raw_os_error(libc::ECONNRESET),
                "the stack helper ended while starting",
            )),
            Some(([step, err, _], _)) if err != 0 => {
                let what = if step == want {
                    what
                } else if step >= STEP_TAP {
                    let name = taps.get((step - STEP_TAP) as usize).copied().unwrap_or("?");
                    format!("stack helper: creating tap `{name}`")
                } else {
                    format!("stack helper: {}", step_name(step))
                };
                Err(context(io::Error::from_raw_os_error(err), what))
            }
            Some(([step, _, value], Some(fd))) if step == want => Ok((value, fd)),
            Some(_) => Err(context(
                io::Error::from_raw_os_error(libc::EPROTO),
                format!("{what}: unexpected reply"),
            )),
        }
    };
    let (pid, pidfd) = next(STEP_PIDFD)?;
    let (_, userns) = next(STEP_USERNS)?;
    let (_, netns) = next(STEP_NETNS)?;
    let mut tapfds = Vec::with_capacity(taps.len());
    for i in 0..taps.len() {
        tapfds.push(next(STEP_TAP + i as i32)?.1);
    }
    Ok(Helper {
        ctl,
        pidfd,
        pid,
        userns,
        netns,
        taps: tapfds,
    })
}

/// Receives one reply; `None` at EOF (the helper is gone).
fn recv_reply(ctl: BorrowedFd<'_>) -> io::Result<Option<(Reply, Option<OwnedFd>)>> {
    let mut bytes = [0u8; REPLY_LEN];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match recvmsg(
            ctl,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(context(e, "talking to the stack helper")),
        }
    };
    let mut fd = None;
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for f in fds {
                // Keep the first; any other is dropped (closed) here.
                if fd.is_none() {
                    fd = Some(f);
                }
            }
        }
    }
    if got.bytes == 0 {
        return Ok(None);
    }
    if got.bytes != REPLY_LEN {
        return Err(io::Error::from_raw_os_error(libc::EPROTO));
    }
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
        i32::from_ne_bytes(w)
    };
    Ok(Some(([word(0), word(1), word(2)], fd)))
}

/// Asks the helper behind `ctl` for `socket(domain, type, protocol)` made in its
/// namespace; the fd comes back close-on-exec.
///
/// Each request carries a fresh socket pair's end (`SCM_RIGHTS`) on which the
/// helper answers, so requests need no lock: threads, and processes forked from the
/// application (which share `ctl`), never receive each other's replies.
pub fn helper_socket(
    ctl: BorrowedFd<'_>,
    domain: i32,
    ty: i32,
    protocol: i32,
) -> io::Result<OwnedFd> {
    let (mine, theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| context(e, "socketpair for a stack socket request"))?;
    let mut req = [0u8; REQ_LEN];
    req[0..4].copy_from_slice(&domain.to_ne_bytes());
    req[4..8].copy_from_slice(&ty.to_ne_bytes());
    req[8..12].copy_from_slice(&protocol.to_ne_bytes());
    let fds = [theirs.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    loop {
        match sendmsg(ctl, &[IoSlice::new(&req)], &mut anc, SendFlags::NOSIGNAL) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(context(e, "the stack helper is gone")),
        }
    }
    // Only the helper holds the other end now: EOF means it is gone.
    drop(theirs);
    match recv_reply(mine.as_fd())? {
        None => Err(context(
            io::Error::from_raw_os_error(libc::ECONNRESET),
            "the stack helper is gone",
        )),
        Some(([_, err, _], _)) if err != 0 => Err(io::Error::from_raw_os_error(err)),
        Some((_, Some(fd))) => Ok(fd),
        Some((_, None)) => Err(io::Error::from_raw_os_error(libc::EPROTO)),
    }
}

// ---------------------------------------------------------------------------------
// The helper's side: only raw system calls from here on.

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no inherited clean-up.
    unsafe { libc::_exit(code) }
}

/// Sends `[step, err, value]`, with `fd` attached if given. Returns whether it went.
fn send_reply(sock: RawFd, step: i32, err: i32, value: i32, fd: Option<RawFd>) -> bool {
    let reply: Reply = [step, err, value];
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let mut iov = libc::iovec {
        iov_base: reply.as_ptr() as *mut libc::c_void,
        iov_len: REPLY_LEN,
    };
    // SAFETY: msghdr is plain data; all-zero is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE is arithmetic.
        let space = unsafe { libc::CMSG_SPACE(4) } as usize;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer is 64 bytes, aligned for cmsghdr, and holds
        // CMSG_SPACE(4) = 24 bytes; CMSG_FIRSTHDR points at its start and CMSG_DATA
        // inside it, so both writes stay within `cbuf`.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        }
    }
    loop {
        // SAFETY: msg points at `iov`, `reply` and `cbuf`, all alive for the call.
        let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return true;
        }
        if errno() != libc::EINTR {
            return false;
        }
    }
}

fn fail(sock: RawFd, step: i32) -> ! {
    let e = errno();
    send_reply(sock, step, e, 0, None);
    exit(1)
}

fn write_file(path: &CStr, data: &[u8]) -> bool {
    // SAFETY: `path` is NUL-terminated; open has no other memory effects.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `data` is valid for `data.len()` bytes.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let e = errno();
    // SAFETY: we own `fd`.
    unsafe { libc::close(fd) };
    if n != data.len() as isize {
        // Keep write's errno for the report.
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { *libc::__errno_location() = if n < 0 { e } else { libc::EIO } };
        return false;
    }
    true
}

fn open_ro(path: &CStr) -> RawFd {
    // SAFETY: `path` is NUL-terminated.
    unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

/// Sends `fd` as the reply to `step` (or the error), then closes it.
fn hand_over(sock: RawFd, step: i32, value: i32, fd: RawFd) {
    if fd < 0 {
        fail(sock, step);
    }
    let sent = send_reply(sock, step, 0, value, Some(fd));
    // SAFETY: we own `fd`; the receiver has its own copy.
    unsafe { libc::close(fd) };
    if !sent {
        exit(1);
    }
}

/// The helper process. Runs in the forked grandchild; never returns.
fn helper_main(sock: RawFd, prep: &Prepared) -> ! {
    // SAFETY (whole function): only async-signal-safe libc wrappers over system
    // calls, on memory prepared before the fork; no allocation, locks or panics.
    unsafe {
        // 1. Drop every inherited fd but ours; reset signal handlers; no terminal.
        if libc::syscall(libc::SYS_close_range, (sock + 1) as u32, u32::MAX, 0u32) != 0 {
            // Before Linux 5.9: close them one by one, up to the fd limit.
            let mut lim: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as i32
            } else {
                65536
            };
            for fd in sock + 1..max {
                libc::close(fd);
            }
        }
        for fd in 0..sock {
            libc::close(fd);
        }
        for sig in 1..65 {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::setsid();

        // 2. The namespaces and the identity maps.
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
            fail(sock, STEP_UNSHARE);
        }
        if !write_file(c"/proc/self/setgroups", b"deny\n") {
            fail(sock, STEP_SETGROUPS);
        }
        if !write_file(c"/proc/self/uid_map", &prep.uid_map) {
            fail(sock, STEP_UID_MAP);
        }
        if !write_file(c"/proc/self/gid_map", &prep.gid_map) {
            fail(sock, STEP_GID_MAP);
        }

        // 3. pidfd, namespace fds, taps.
        let pid = libc::getpid();
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0u32) as RawFd;
        hand_over(sock, STEP_PIDFD, pid, pidfd);
        hand_over(sock, STEP_USERNS, 0, open_ro(c"/proc/self/ns/user"));
        hand_over(sock, STEP_NETNS, 0, open_ro(c"/proc/self/ns/net"));
        for (i, req) in prep.ifreqs.iter().enumerate() {
            let step = STEP_TAP + i as i32;
            let fd = libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            );
            if fd < 0 {
                fail(sock, step);
            }
            let mut r = IfReq {
                name: req.name,
                flags: req.flags,
                _pad: [0; 22],
            };
            if libc::ioctl(fd, TUNSETIFF as _, &mut r as *mut IfReq) < 0 {
                fail(sock, step);
            }
            hand_over(sock, step, 0, fd);
        }

        // 4. Serve socket requests until EOF. Each request brings the socket to
        //    answer on; a requester that died meanwhile is no reason to stop.
        loop {
            let mut req = [0i32; 3];
            let Some((n, reply_fd)) = recv_request(sock, &mut req) else {
                exit(1);
            };
            if n == 0 {
                exit(0);
            }
            let Some(reply_fd) = reply_fd else {
                // A request without its reply socket: not ours to answer.
                continue;
            };
            if n != REQ_LEN {
                send_reply(reply_fd, STEP_SOCKET, libc::EINVAL, 0, None);
            } else {
                // The raw system call: an application that interposes socket()
                // (the C ABI's default stack does) must not be re-entered here.
                let fd = libc::syscall(
                    libc::SYS_socket,
                    req[0],
                    req[1] | libc::SOCK_CLOEXEC,
                    req[2],
                ) as RawFd;
                if fd < 0 {
                    send_reply(reply_fd, STEP_SOCKET, errno(), 0, None);
                } else {
                    send_reply(reply_fd, STEP_SOCKET, 0, 0, Some(fd));
                    libc::close(fd);
                }
            }
            libc::close(reply_fd);
        }
    }
}

/// Receives one request into `req` and the reply socket attached to it: `None` on a
/// hard error, `Some((0, _))` at EOF, else the request's length. Extra fds are
/// closed. Raw system calls only (this runs in the helper).
fn recv_request(sock: RawFd, req: &mut [i32; 3]) -> Option<(usize, Option<RawFd>)> {
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    loop {
        let mut cbuf = Cmsg([0; 64]);
        let mut iov = libc::iovec {
            iov_base: req.as_mut_ptr().cast(),
            iov_len: REQ_LEN,
        };
        // SAFETY: msghdr is plain data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len() as _;
        // SAFETY: msg points at `iov` (12 bytes of `req`) and the 64-byte `cbuf`.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return None;
        }
        let mut reply_fd = None;
        // SAFETY: the kernel filled `msg_controllen` bytes of `cbuf` with cmsghdrs;
        // CMSG_FIRSTHDR/CMSG_NXTHDR stay within it and CMSG_DATA points inside
        // each header's `cmsg_len` bytes, which hold (len - CMSG_LEN(0)) / 4 fds.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                    let data = libc::CMSG_DATA(c).cast::<i32>();
                    for i in 0..count {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        if reply_fd.is_none() {
                            reply_fd = Some(fd);
                        } else {
                            libc::close(fd);
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        return Some((n as usize, reply_fd));
    }
}
