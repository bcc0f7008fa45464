//! The namespace helper: one process per application (shared by all its stacks)
//! living in a user namespace of its own, which makes the stacks' network
//! namespaces, their taps and, on request, sockets in them, and hands them back over
//! a `SOCK_SEQPACKET` socket pair with `SCM_RIGHTS` (messages: [`wire`]).
//!
//! ## How it is made, and why this way
//!
//! A socket, a tap or a network namespace owned by a new user namespace can only
//! be made by a process inside that user namespace, and `unshare(CLONE_NEWUSER)`
//! refuses a multithreaded process (a library cannot assume otherwise; `cargo test`
//! always is). So the helper is a forked process. Between the fork and its end it
//! makes only raw system calls through libc's thin wrappers on memory prepared
//! before the fork: no allocation, no lock, no panic path. libvdestack instead
//! `clone`s one helper per stack with `CLONE_VM|CLONE_FILES`, sharing memory and TLS
//! with the application, and so pollutes its fd table; we share neither.
//!
//! It is a *double* fork: the intermediate process exits at once and we reap it by
//! its pid, so the helper is re-parented to init (or the nearest subreaper) and an
//! application's own `waitpid(-1)` or SIGCHLD handler never sees it. We see it
//! exit through a pipe whose only write end it holds (EOF when it is gone; this
//! works where `pidfd_open` does not, e.g. under valgrind or before Linux 5.3),
//! and signal it through a pidfd where there is one.
//!
//! When the application itself is PID 1 of its pid namespace (a container's init)
//! or a child subreaper (`PR_SET_CHILD_SUBREAPER`), the helper is re-parented to
//! *it*, and becomes an ordinary child (SIGCHLD, visible to `waitpid(-1)`): an
//! application that does not know about it would keep it as a zombie. So whoever
//! ends the helper reaps it if it is our child (`sys::reap_if_ours`:
//! `waitid(P_PIDFD)`, which answers `ECHILD` for another's child; by pid, only when
//! we are a reaper, where there is no pidfd). In that case only, an application's
//! `waitpid(-1)` may take its status first, which is harmless.
//!
//! The helper:
//! 1. closes every inherited fd but its end of the pair, resets signal handlers,
//!    starts a new session (no terminal signals);
//! 2. `unshare(CLONE_NEWUSER|CLONE_NEWNET)` and writes its own identity maps
//!    (`setgroups` deny, `uid_map` "euid euid 1", `gid_map` "egid egid 1"), as
//!    `unshare -U` does. That network namespace is its *home*: it owns it, so it can
//!    always come back to it;
//! 3. sends its pid and its user namespace;
//! 4. serves requests until its end of the pair reads EOF (the last stack was
//!    dropped and the linger after it is over, see `stack::helper`; or the
//!    application died: no polling of the parent as upstream):
//!    * a new network namespace: `unshare(CLONE_NEWNET)`, open it, create its taps
//!      (a tap belongs to the namespace it is created in), send them all, go home;
//!    * a socket: `setns` into the given stack's namespace, `socket()`, go home.
//!
//! Each request carries its own reply socket, so concurrent requesters (threads,
//! or forked children sharing the pair) need no lock and get their own answers.
//! Since all stacks share one user namespace, making a stack costs one round trip
//! and the kernel's `unshare(CLONE_NEWNET)`: no fork, no maps, no process per stack.
//!
//! Cost: a forked process keeps copy-on-write references to the memory the
//! application had when the helper started; pages the application later writes are
//! copied.

#![allow(unsafe_code)]

mod daemon;
pub mod wire;

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::error::context;
use wire::*;

/// A running helper and what it sent at start.
#[derive(Debug)]
pub struct Helper {
    /// Our end of the socket pair (close it and the helper exits).
    pub ctl: OwnedFd,
    /// The read end of a pipe whose write end only the helper holds: readable
    /// (EOF) once it has exited.
    pub life: OwnedFd,
    /// A pidfd of the helper, to signal it without a pid-reuse race (`None` where
    /// `pidfd_open` is missing).
    pub pidfd: Option<OwnedFd>,
    /// The helper's pid (in our pid namespace), for diagnostics.
    pub pid: i32,
    /// Its user namespace (`/proc/PID/ns/user`), which owns every stack's.
    pub userns: OwnedFd,
}

/// A new network namespace and its taps.
#[derive(Debug)]
pub struct NewNet {
    /// The network namespace (`/proc/self/ns/net` of the helper when it made it).
    pub netns: OwnedFd,
    /// One tap per requested name, in order: non-blocking, close-on-exec.
    pub taps: Vec<OwnedFd>,
}

/// What the helper needs, prepared before the fork.
pub(super) struct Prepared {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
    /// Each stack's `net.ipv4.ping_group_range`: our group only.
    pub ping_range: Vec<u8>,
}

fn start_step_name(step: i32) -> &'static str {
    match step {
        STEP_UNSHARE => "unshare(CLONE_NEWUSER|CLONE_NEWNET)",
        STEP_SETGROUPS => "writing /proc/self/setgroups",
        STEP_UID_MAP => "writing /proc/self/uid_map",
        STEP_GID_MAP => "writing /proc/self/gid_map",
        STEP_PID => "sending its pid",
        STEP_USERNS => "opening /proc/self/ns/user",
        _ => "starting",
    }
}

/// Starts the helper in a new user namespace (and a home network namespace).
pub fn spawn_helper() -> io::Result<Helper> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let prep = Prepared {
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        ping_range: format!("{gid} {gid}\n").into_bytes(),
    };
    let (ctl, theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| context(e, "socketpair for the stack helper"))?;
    let (life, life_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| context(e, "pipe for the stack helper"))?;

    // SAFETY: fork() is allowed in a multithreaded process; the child (the
    // intermediate) runs only async-signal-safe calls: fork, _exit, and in the
    // grandchild `daemon::main`, which makes raw system calls on memory prepared
    // above (no allocation, no locks, no unwinding).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(context(io::Error::last_os_error(), "fork (stack helper)"));
    }
    if pid == 0 {
        // SAFETY: as above: the intermediate forks once more and exits.
        let p2 = unsafe { libc::fork() };
        if p2 == 0 {
            daemon::main(theirs.as_raw_fd(), life_w.as_raw_fd(), &prep);
        }
        // SAFETY: _exit ends the intermediate without running any Rust or libc
        // clean-up (atexit handlers, destructors) inherited from the parent.
        unsafe { libc::_exit(if p2 < 0 { 1 } else { 0 }) };
    }
    drop(theirs);
    drop(life_w);
    reap(pid);
    drop(prep);
    receive_start(ctl, life)
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

fn receive_start(ctl: OwnedFd, life: OwnedFd) -> io::Result<Helper> {
    let next = |want: i32| -> io::Result<(i32, Option<OwnedFd>)> {
        let (words, mut fds) = recv_message(ctl.as_fd())?.ok_or_else(|| {
            context(
                io::Error::from_raw_os_error(libc::ECONNRESET),
                "the stack helper ended while starting",
            )
        })?;
        let [step, err, value] = words;
        if err != 0 {
            return Err(context(
                io::Error::from_raw_os_error(err),
                format!("stack helper: {}", start_step_name(step)),
            ));
        }
        match (step == want, fds.pop()) {
            (true, fd) if fd.is_some() == (want != STEP_PID) => Ok((value, fd)),
            _ => Err(context(
                io::Error::from_raw_os_error(libc::EPROTO),
                format!("stack helper: {}: unexpected reply", start_step_name(want)),
            )),
        }
    };
    let (pid, _) = next(STEP_PID)?;
    let (_, userns) = next(STEP_USERNS)?;
    let userns = userns.expect("checked by next");
    // The helper waits for our requests, so it is alive and `pid` is its own.
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    Ok(Helper {
        ctl,
        life,
        pidfd,
        pid,
        userns,
    })
}

/// Receives one message of three words and the fds attached (at most
/// `1 + MAX_TAPS`); `None` at EOF.
fn recv_message(sock: BorrowedFd<'_>) -> io::Result<Option<([i32; 3], Vec<OwnedFd>)>> {
    let mut bytes = [0u8; REPLY_LEN];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1 + MAX_TAPS))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(context(e, "talking to the stack helper")),
        }
    };
    let mut fds = Vec::new();
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
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
    Ok(Some(([word(0), word(1), word(2)], fds)))
}

/// Sends one request (`head` words, then `names`) with its fresh reply socket
/// and `extra` attached, and returns the reply's words and fds.
fn request(
    ctl: BorrowedFd<'_>,
    head: [i32; 5],
    names: &[u8],
    extra: Option<BorrowedFd<'_>>,
) -> io::Result<([i32; 3], Vec<OwnedFd>)> {
    recv_reply(send_request(ctl, head, names, extra)?)
}

/// Sends one request as [`request`] does; returns our end of its reply socket, on
/// which [`recv_reply`] waits for the answer.
fn send_request(
    ctl: BorrowedFd<'_>,
    head: [i32; 5],
    names: &[u8],
    extra: Option<BorrowedFd<'_>>,
) -> io::Result<OwnedFd> {
    let (mine, theirs) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| context(e, "socketpair for a stack helper request"))?;
    let mut msg = Vec::with_capacity(REQ_HEAD + names.len());
    for w in head {
        msg.extend_from_slice(&w.to_ne_bytes());
    }
    msg.extend_from_slice(names);
    let mut fds = vec![theirs.as_fd()];
    fds.extend(extra);
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    loop {
        match sendmsg(ctl, &[IoSlice::new(&msg)], &mut anc, SendFlags::NOSIGNAL) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(context(e, "the stack helper is gone")),
        }
    }
    // Only the helper holds the other end now: EOF means it is gone.
    Ok(mine)
}

/// The answer to a request sent by [`send_request`] on `mine`.
fn recv_reply(mine: OwnedFd) -> io::Result<([i32; 3], Vec<OwnedFd>)> {
    // The caller waits for it anyway: look for it a little while before sleeping
    // (a socket's answer comes in ~10 µs; waking a sleeping thread costs more).
    let start = std::time::Instant::now();
    let mut p = [rustix::event::PollFd::new(
        &mine,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    while matches!(rustix::event::poll(&mut p, Some(&zero)), Ok(0)) && start.elapsed() < REPLY_POLL
    {
        std::thread::yield_now();
    }
    recv_message(mine.as_fd())?.ok_or_else(|| {
        context(
            io::Error::from_raw_os_error(libc::ECONNRESET),
            "the stack helper is gone",
        )
    })
}

/// How long [`recv_reply`] looks for an answer before it sleeps.
const REPLY_POLL: std::time::Duration = std::time::Duration::from_micros(100);

/// Asks the helper for a new network namespace with one tap named after each of
/// `taps` (each already checked: 1 to 15 bytes, at most `MAX_TAPS` = 64).
pub fn helper_new_net(ctl: BorrowedFd<'_>, taps: &[&str]) -> io::Result<NewNet> {
    helper_new_net_vnet(ctl, taps, 0)
}

/// `helper_new_net`, where tap `i` is opened with `IFF_VNET_HDR` when bit `i` of
/// `vnet` is set (then see [`super::enable_tap_offload`]).
pub fn helper_new_net_vnet(ctl: BorrowedFd<'_>, taps: &[&str], vnet: u64) -> io::Result<NewNet> {
    helper_new_net_start(ctl, taps, vnet)?.finish()
}

/// A request for a new network namespace, sent: the helper makes it while the
/// application goes on; [`PendingNet::finish`] waits for it. Dropped unfinished,
/// the helper's answer goes nowhere and what it made is closed.
#[derive(Debug)]
pub struct PendingNet {
    reply: OwnedFd,
    taps: Vec<String>,
}

/// Sends the request of [`helper_new_net_vnet`] and returns at once.
pub fn helper_new_net_start(
    ctl: BorrowedFd<'_>,
    taps: &[&str],
    vnet: u64,
) -> io::Result<PendingNet> {
    if taps.len() > MAX_TAPS {
        return Err(context(
            io::Error::from_raw_os_error(libc::EINVAL),
            format!("{} interfaces: at most {MAX_TAPS} per stack", taps.len()),
        ));
    }
    let mut names = vec![0u8; taps.len() * NAME_LEN];
    for (i, name) in taps.iter().enumerate() {
        if name.is_empty() || name.len() > super::TAP_NAME_MAX || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        names[i * NAME_LEN..i * NAME_LEN + name.len()].copy_from_slice(name.as_bytes());
    }
    let head = [
        OP_NET,
        taps.len() as i32,
        0,
        vnet as u32 as i32,
        (vnet >> 32) as u32 as i32,
    ];
    Ok(PendingNet {
        reply: send_request(ctl, head, &names, None)?,
        taps: taps.iter().map(|t| t.to_string()).collect(),
    })
}

impl PendingNet {
    /// Waits for the helper's answer: the namespace and its taps, or what failed.
    pub fn finish(self) -> io::Result<NewNet> {
        let taps = self.taps;
        let ([err, step, count], mut fds) = recv_reply(self.reply)?;
        if err != 0 {
            let what = match step {
                FAIL_UNSHARE => "unshare(CLONE_NEWNET)".to_string(),
                FAIL_NETNS => "opening the new network namespace".to_string(),
                FAIL_SETNS => "returning to its home namespace".to_string(),
                s if s >= FAIL_TAP => {
                    let name = taps
                        .get((s - FAIL_TAP) as usize)
                        .map_or("?", String::as_str);
                    format!("creating tap `{name}`")
                }
                _ => "a new network namespace".to_string(),
            };
            return Err(context(
                io::Error::from_raw_os_error(err),
                format!("stack helper: {what}"),
            ));
        }
        if count as usize != taps.len() + 1 || fds.len() != taps.len() + 1 {
            return Err(context(
                io::Error::from_raw_os_error(libc::EPROTO),
                "stack helper: a new namespace came back incomplete",
            ));
        }
        let netns = fds.remove(0);
        Ok(NewNet { netns, taps: fds })
    }
}

/// Asks the helper for `socket(domain, type, protocol)` made in the network
/// namespace `netns`; the fd comes back close-on-exec.
pub fn helper_socket(
    ctl: BorrowedFd<'_>,
    netns: BorrowedFd<'_>,
    domain: i32,
    ty: i32,
    protocol: i32,
) -> io::Result<OwnedFd> {
    let head = [OP_SOCKET, 0, domain, ty, protocol];
    let ([err, step, _], mut fds) = request(ctl, head, &[], Some(netns))?;
    if err != 0 {
        return Err(match step {
            FAIL_SOCKET => io::Error::from_raw_os_error(err),
            FAIL_SETNS => context(
                io::Error::from_raw_os_error(err),
                "stack helper: entering the stack's namespace",
            ),
            _ => context(io::Error::from_raw_os_error(err), "stack helper: socket"),
        });
    }
    match (fds.pop(), fds.is_empty()) {
        (Some(fd), true) => Ok(fd),
        _ => Err(io::Error::from_raw_os_error(libc::EPROTO)),
    }
}
