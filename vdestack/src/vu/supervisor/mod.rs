//! The supervisor: one thread waiting on the listener fd and on an epoll set of
//! our ends of the served sockets, answering trapped calls one at a time.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`supervise`]: start the command under the filter, the loop, the table of served sockets |
//! | `target.rs` | the calling thread: memory, fds (by `/proc/PID/fd` inode), paths, who is supervised |
//! | `sockets.rs` | `socket()`, and `bind`/`connect`/names/options/`sendto`/`shutdown` on served sockets |
//! | `nlio.rs` | serving netlink requests: datagrams in, replies out (queued when the program's socket is full) |
//! | `ioctl.rs` | the netdevice ioctls over [`crate::nl::emul`] |
//! | `open.rs` | `open`/`openat`/`openat2` of the served `/proc/net` files and `/etc/resolv.conf` |
//! | `data.rs` | `listen`, `accept`, addressed datagrams (`recvfrom`, `recvmsg`, `sendmsg`) on served IP sockets |
//! | `waits.rs` | calls that wait in the supervisor for a program's socket end (timeouts, callers gone) |
//! | `fds.rs` | copies of a program's fds (`pidfd_getfd`) |
//!
//! Why one thread: the served stack's state is shared by every supervised
//! process, and each answer is short (no call blocks the loop: netlink replies
//! that do not fit the program's socket wait in a queue). A call that must wait
//! (a blocking `connect` or `accept` of a user-space stack) is not answered at
//! once: the stack returns `InetReply::Later`, the notification is kept (its
//! caller waits in the kernel, its id stays valid), the loop serves everyone
//! else, and answers it when the stack's wake fd says its answer is ready
//! (`tests/vu_deferred.rs`). `--stack mem` answers everything at once.
//!
//! A limit: a thread that a non-fatal signal interrupts after we received its
//! call makes the call again (the kernel restarts it) while we may already
//! have applied its effect once (a netlink `bind` restarted that way fails with
//! `EINVAL`, as a second bind does). `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
//! (Linux 5.19) would close that window, but it would also keep signals from
//! interrupting the calls a stack answers later, so it is not set.
//!
//! Safety rules (the seccomp_unotify(2) and bypass4netns practice): a call
//! whose answer depends on the caller's memory is emulated completely (never
//! `CONTINUE`d after reading a pointer, except `open` of a path that is not
//! ours, see `open.rs`); what was read counts only if the notification is still
//! valid afterwards; fds are injected and answered in one step
//! (`SECCOMP_ADDFD_FLAG_SEND`).

mod data;
mod fds;
mod ioctl;
mod nlio;
mod open;
mod sockets;
pub(crate) mod target;
mod waits;

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus};
use std::time::Instant;

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::filter;
use super::inet::{InetReply, InetSocket};
use super::netlink::{NlSock, Ports};
use super::served::ServedNet;
use crate::error::context;
use crate::sys::seccomp::{self, Listener, Notification, Response, SpawnError};
use target::Target;

/// A socket we serve, by the inode of the program's end.
#[derive(Debug)]
pub(crate) enum Served {
    /// A `NETLINK_ROUTE` socket.
    Netlink(NlSock),
    /// An `AF_INET`/`AF_INET6` socket.
    Inet(InetSocket),
}

/// How a trapped call was dealt with.
pub(crate) enum Answer {
    /// Answer it so.
    Reply(Response),
    /// Answered already (an fd injected with its answer), or no longer waiting.
    Done,
}

impl Answer {
    fn errno(e: i32) -> Self {
        Answer::Reply(Response::Errno(e))
    }

    fn value(v: i64) -> Self {
        Answer::Reply(Response::Value(v))
    }

    const CONTINUE: Answer = Answer::Reply(Response::Continue);
}

/// What the handlers share: the stack, the served sockets, our epoll.
pub(crate) struct State<'n, N: ServedNet + ?Sized> {
    net: &'n mut N,
    epoll: OwnedFd,
    socks: HashMap<u64, Served>,
    /// Netlink sockets waiting for room in the program's socket.
    blocked: HashSet<u64>,
    ports: Ports,
    /// The next abstract-name serial to try.
    serial: u32,
    /// The command's pid: the root of the supervised tree.
    root: i32,
    /// The netlink request buffer.
    buf: Vec<u8>,
    /// Calls whose answer the stack deferred (`InetReply::Later`), by id: the
    /// notification, and whether it is a getsockopt (its value is written back).
    pending: HashMap<u64, (Notification, bool)>,
    /// Calls waiting in the supervisor for a program's socket end, by number.
    waits: HashMap<u64, Wait>,
    next_wait: u64,
    /// When the waits were last checked for callers gone.
    swept: Instant,
    /// Served IP sockets beyond which the table is next checked for closed ones.
    sweep_at: usize,
    /// pidfds of supervised processes, by process id; process ids by thread id.
    pidfds: HashMap<i32, OwnedFd>,
    tgids: HashMap<i32, i32>,
    /// What the served `/etc/resolv.conf` holds, if one is served.
    resolv_conf: Option<Vec<u8>>,
}

pub(crate) use waits::Then;
use waits::{Wait, SWEEP_EVERY, WAIT_TOKEN};

/// Options of a supervised run beside the stack.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOptions {
    /// Serve `/etc/resolv.conf` with this content.
    pub resolv_conf: Option<Vec<u8>>,
}

/// Runs `cmd` with its network calls served by `net`; returns its exit status
/// when it and every process it started are gone.
pub(crate) fn supervise<N: ServedNet + ?Sized>(
    net: &mut N,
    cmd: Command,
    options: &RunOptions,
) -> io::Result<ExitStatus> {
    seccomp::check_support()?;
    let prog = filter::filter()?;
    let (mut child, listener) = seccomp::spawn_with_filter(cmd, prog).map_err(|e| match e {
        SpawnError::Command(e) => e,
        SpawnError::Filter(e) => filter_error(e),
    })?;
    // Lower latency where the kernel has it (6.6); nothing is lost without.
    listener.set_sync_wakeup();
    let root = child.id() as i32;
    let result = State::new(net, root).and_then(|mut st| {
        st.resolv_conf = options.resolv_conf.clone();
        st.run(&listener)
    });
    // On an error the listener closes here: the program's trapped calls fail
    // with ENOSYS from now on, and its netlink sockets see end of file.
    drop(listener);
    let status = child
        .wait()
        .map_err(|e| context(e, "waiting for the supervised command"))?;
    result.map(|()| status)
}

/// A clear message for a filter the kernel refused.
fn filter_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::EBUSY) => {
            "the command already runs under a seccomp user-notification filter (the kernel \
             allows one per process: another vdestack vu, or a container runtime's supervisor)"
        }
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            "the kernel refused SECCOMP_FILTER_FLAG_NEW_LISTENER (it needs Linux 5.0 or later)"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "the kernel refused the filter (no_new_privs could not be set, or a seccomp policy \
             forbids installing filters)"
        }
        _ => "the kernel refused the seccomp filter",
    };
    context(e, format!("cannot supervise the command: {why}"))
}

impl<'n, N: ServedNet + ?Sized> State<'n, N> {
    fn new(net: &'n mut N, root: i32) -> io::Result<Self> {
        let epoll = epoll::create(CreateFlags::CLOEXEC).map_err(|e| context(e, "epoll"))?;
        Ok(State {
            net,
            epoll,
            socks: HashMap::new(),
            blocked: HashSet::new(),
            ports: Ports::default(),
            serial: std::process::id().wrapping_mul(65536),
            root,
            buf: vec![0u8; 1 << 20],
            pending: HashMap::new(),
            waits: HashMap::new(),
            next_wait: 0,
            swept: Instant::now(),
            sweep_at: 256,
            pidfds: HashMap::new(),
            tgids: HashMap::new(),
            resolv_conf: None,
        })
    }

    /// Serves until no supervised task is left (the listener hangs up).
    ///
    /// The wait is a `poll` on two fds, the listener and the epoll set of the
    /// served sockets, rather than one epoll set for all: a trapped call wakes a
    /// `poll`er with the flags the kernel passes (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`
    /// asks for the trapped task's CPU), which an epoll set does not pass on, and
    /// a trapped call's round trip takes a fraction of the time (BENCHMARKS.md).
    fn run(&mut self, listener: &Listener) -> io::Result<()> {
        let mut events = [Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        }; 64];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            let (notified, hung_up, sockets, woken) = {
                let wake = self.net.wake_fd();
                let mut fds = [
                    PollFd::new(listener, PollFlags::IN),
                    PollFd::new(&self.epoll, PollFlags::IN),
                    PollFd::new(&self.epoll, PollFlags::empty()),
                ];
                let n = match wake {
                    Some(w) => {
                        fds[2] = PollFd::from_borrowed_fd(w, PollFlags::IN);
                        3
                    }
                    None => 2,
                };
                let second = Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                let soonest = self.waits.values().filter_map(|w| w.deadline).min();
                let until = soonest.map(|d| {
                    let left = d.saturating_duration_since(Instant::now()).min(SWEEP_EVERY);
                    Timespec {
                        tv_sec: left.as_secs() as i64,
                        tv_nsec: left.subsec_nanos() as i64,
                    }
                });
                let timeout = match &until {
                    Some(t) => Some(t),
                    None => (!self.waits.is_empty()).then_some(&second),
                };
                match poll(&mut fds[..n], timeout) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(context(e, "poll")),
                }
                let l = fds[0].revents();
                (
                    l.contains(PollFlags::IN),
                    l.intersects(PollFlags::HUP | PollFlags::ERR),
                    fds[1].revents().contains(PollFlags::IN),
                    n == 3 && !fds[2].revents().is_empty(),
                )
            };
            if notified {
                self.notification(listener);
            } else if hung_up {
                return Ok(());
            }
            if woken {
                self.completions(listener);
            }
            if sockets {
                let n = match epoll::wait(&self.epoll, &mut events[..], Some(&zero)) {
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR) => 0,
                    Err(e) => return Err(context(e, "epoll_wait")),
                };
                for ev in &events[..n] {
                    let (token, flags) = (ev.data.u64(), ev.flags);
                    if token & WAIT_TOKEN != 0 {
                        self.wait_ready(listener, token & !WAIT_TOKEN);
                    } else {
                        self.socket_event(token, flags);
                    }
                }
            }
            if !self.waits.is_empty() {
                self.expire_waits(listener);
                if self.swept.elapsed() >= SWEEP_EVERY {
                    self.sweep_waits(listener);
                }
            }
        }
    }

    /// Forgets the served IP sockets the stack no longer has (those it holds
    /// the other end of: it learns of their close, we do not), when the table
    /// has grown enough since the last look.
    fn sweep_closed(&mut self) {
        if self.socks.len() < self.sweep_at {
            return;
        }
        let net = &mut *self.net;
        self.socks.retain(|_, s| match s {
            Served::Inet(i) if i.ours.is_none() => net.inet_alive(i),
            _ => true,
        });
        self.sweep_at = (self.socks.len() * 2).max(256);
    }

    /// Answers the calls whose deferred answers the stack has ready.
    fn completions(&mut self, listener: &Listener) {
        for (id, r) in self.net.completions() {
            let Some((n, getsockopt)) = self.pending.remove(&id.0) else {
                continue;
            };
            let t = Target::new(&n, listener);
            // Gone, or interrupted (it will call again, under a new id).
            if !t.valid() {
                continue;
            }
            let answer = match r {
                Ok(InetReply::Later) => {
                    self.pending.insert(n.id, (n, getsockopt));
                    continue;
                }
                Ok(reply) => sockets::finish(&t, reply, getsockopt).unwrap_or_else(Answer::errno),
                Err(e) => Answer::errno(e),
            };
            if let Answer::Reply(r) = answer {
                let _ = listener.respond(n.id, r);
            }
        }
    }

    /// Receives and answers one trapped call.
    fn notification(&mut self, listener: &Listener) {
        let n = match listener.recv() {
            Ok(n) => n,
            // The caller went away (or was interrupted) before we got to it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => return,
            Err(e) => {
                log::warn!("vdestack vu: receiving a trapped call: {e}");
                return;
            }
        };
        let t = Target::new(&n, listener);
        if let Answer::Reply(r) = self.handle(&t) {
            // ENOENT: the caller is gone or was interrupted; nothing to do.
            let _ = listener.respond(n.id, r);
        }
    }

    fn handle(&mut self, t: &Target<'_>) -> Answer {
        let nr = t.n.nr as i64;
        match nr {
            libc::SYS_socket => self.socket(t),
            libc::SYS_ioctl => self.ioctl(t),
            libc::SYS_bind
            | libc::SYS_connect
            | libc::SYS_getsockname
            | libc::SYS_getpeername
            | libc::SYS_getsockopt
            | libc::SYS_setsockopt
            | libc::SYS_shutdown
            | libc::SYS_listen
            | libc::SYS_sendto => self.sockcall(t),
            libc::SYS_accept | libc::SYS_accept4 => self.accept(t),
            libc::SYS_recvfrom => self.recvfrom(t),
            libc::SYS_recvmsg => self.recvmsg(t),
            libc::SYS_sendmsg => self.sendmsg(t),
            libc::SYS_openat | libc::SYS_openat2 => self.open(t),
            #[cfg(target_arch = "x86_64")]
            libc::SYS_open => self.open(t),
            _ => Answer::CONTINUE,
        }
    }

    /// Registers our end of a served socket.
    fn watch(&mut self, ino: u64, fd: &OwnedFd, flags: EventFlags) -> io::Result<()> {
        epoll::add(&self.epoll, fd, EventData::new_u64(ino), flags)?;
        Ok(())
    }

    /// Forgets a served socket whose program end is closed.
    fn forget(&mut self, ino: u64) {
        self.blocked.remove(&ino);
        if let Some(Served::Netlink(s)) = self.socks.remove(&ino) {
            if s.port != 0 {
                self.ports.release(s.port);
            }
        }
        // Closing our end took it out of the epoll set.
    }
}
