//! # `vu`: unmodified programs on a network stack served from user space
//!
//! VUOS's idea for networking (libnlq's demonstration), without ptrace: a
//! program and everything it starts run with their network *system calls*
//! answered by a stack inside this process instead of the kernel. Stock `ip`,
//! `ifconfig`, `route`, `netstat` and static binaries configure and see that
//! stack. No namespace, no privilege, no `/dev/net/tun` is needed: only a
//! seccomp filter, which any process may install on its children.
//!
//! ```no_run
//! use std::process::Command;
//! use vdestack::vu::{MemNet, Vu};
//!
//! let mut vu = Vu::new(MemNet::netlinktest());
//! let mut add = Command::new("ip");
//! add.args(["addr", "add", "10.0.0.1/24", "dev", "vde0"]);
//! assert!(vu.run(add)?.success());
//! // The state lasts for the next command (and the caller sees it too).
//! vu.run(Command::new("ip"))?;
//! assert_eq!(vu.net().stack().addrs().len(), 1);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## How
//!
//! The command is started under a seccomp filter that traps a few calls
//! (`filter.rs`: `socket` for `AF_INET`/`AF_INET6`/`AF_NETLINK`, the `SIOC*`
//! ioctl range, the socket-naming, option, `listen`, `accept` and `shutdown`
//! calls, addressed sends and receives, read-only opens) and sends
//! them to a listener fd in the supervisor (`sys::seccomp`), which
//! answers them (`supervisor/`):
//!
//! - a `NETLINK_ROUTE` socket is one end of a `SOCK_SEQPACKET` socket pair; its
//!   requests reach [`ServedNet::rtnetlink`] (the netlink server,
//!   [`crate::nl::server`]); `bind`, `getsockname` (family 16, a port id),
//!   `SOL_NETLINK` options are answered as the kernel does (`netlink.rs`);
//!   other netlink protocols fail with `EPROTONOSUPPORT`, as on a kernel
//!   without them;
//! - netdevice ioctls (on any socket: glibc's `if_nametoindex` uses an
//!   `AF_UNIX` one) are answered by [`crate::nl::emul`] over the same netlink
//!   server (`ioctl.rs`);
//! - `/proc/net/{dev,if_inet6,route,ipv6_route}` (also through `/proc/self`,
//!   `/proc/thread-self`, `/proc/PID` of a supervised process) open as a
//!   sealed memfd holding the stack's file, in the kernel's format
//!   (`procnet.rs`);
//! - `AF_INET`/`AF_INET6` sockets are socket-pair ends, never kernel IP
//!   sockets ([`ServedNet::inet_open`]); their calls go to
//!   [`ServedNet::inet_call`] (`inet.rs`: under `--stack mem`, every
//!   destination is unreachable; [`UserNet`]: a user-space TCP/IP stack whose
//!   sockets they are). Reads, writes and readiness (`poll`, `select`, `epoll`)
//!   stay native on the pair. A listener's connections come as messages on its
//!   pair, taken by the trapped `accept` ([`ServedNet::inet_accept`]) and
//!   injected; a datagram's source travels beside it, given by the trapped
//!   `recvfrom`/`recvmsg` ([`ServedNet::inet_recv`]). A call that must wait
//!   (a blocking `connect`, `accept`, `recvfrom`) waits in the supervisor, on a
//!   copy of the program's end (`pidfd_getfd`), while it serves the others; a
//!   stack may also answer later itself ([`InetReply::Later`],
//!   [`ServedNet::completions`]);
//! - `/etc/resolv.conf` is served when the run has one ([`Vu::resolv_conf`],
//!   `vdestack vu -R`);
//! - every other family (`AF_UNIX`, ...) and every other call go to the kernel
//!   untouched; `io_uring_setup` fails with `ENOSYS` (io_uring could make and
//!   use sockets without a system call the filter sees).
//!
//! fork, vfork, exec and threads inherit the filter; a program that closes
//! every fd cannot close the listener (it is ours). The supervisor returns when
//! the last supervised process is gone (the listener hangs up), with the
//! command's exit status. If the supervisor dies, trapped calls fail with
//! `ENOSYS` and served netlink sockets see end of file: the program gets
//! errors, never a hang.
//!
//! ## Limits
//!
//! - The filter sets `no_new_privs`: setuid and file-capability programs
//!   (`ping` on some systems, `sudo`, `su`) run without their privileges.
//! - One user-notification filter per process: `vdestack vu` cannot run inside
//!   another `vdestack vu` (nor under a container runtime that supervises with
//!   one): it says so (`EBUSY`).
//! - Reading a program's memory needs ptrace permission: a program that makes
//!   itself non-dumpable cannot be served; under Yama's `ptrace_scope` 1, an
//!   orphan re-parented to init cannot either (it is no longer a descendant).
//! - x86_64 (and little-endian aarch64/riscv64) programs only: 32-bit (i386)
//!   and x32 system calls fail with `ENOSYS`.
//! - `sendmmsg` and `recvmmsg` are not trapped: on a served datagram socket
//!   they carry payloads without addresses (a connected socket's: what glibc's
//!   resolver does). `sendmsg` with an address on a stream socket fails with
//!   `EISCONN` (TCP would ignore the address); `recvmsg` on a datagram socket
//!   gives no control messages but the hop limit (`IP_TTL` after `IP_RECVTTL`,
//!   `IPV6_HOPLIMIT` after `IPV6_RECVHOPLIMIT`), where the stack knows it (a
//!   user-space stack; not `--stack mem`): no timestamps, no packet info.
//! - Every `sendmsg` and `recvmsg` of the program is trapped (their addresses
//!   are in memory, out of the filter's reach), and `CONTINUE`d unless the fd is
//!   a served datagram socket: about one trapped call's time each (netlink
//!   requests, `AF_UNIX` messages).
//! - A `listen` puts the listener's end at the fd number it was called on, in
//!   the calling process only: copies made before (`dup`, or a child forked
//!   between `socket` and `listen`) keep the socket's first end.
//! - The files of `/proc/net` other than the four above, and `/sys/class/net`,
//!   are the machine's.
//! - `ip monitor` and other multicast listeners wait forever: the served stack
//!   sends no notifications.
//!
//! ## Isolation (for a stack with a data path)
//!
//! A supervised program never gets a kernel IP socket from `socket()`. The
//! other ways to one, and how they stand: io_uring (`IORING_OP_SOCKET`,
//! `_CONNECT`, ...) is refused at `io_uring_setup`; 32-bit `socketcall` fails
//! with every other foreign-ABI call; fds that come from outside (inherited at
//! start, or passed over an `AF_UNIX` socket by an unsupervised process) are
//! the kernel's and stay so; `AF_PACKET` sockets go to the kernel (they need
//! `CAP_NET_RAW`, which only a root program has). On a [`UserNet`], what a
//! kernel stack with no route answers, the program gets (`ENETUNREACH`,
//! `ECONNREFUSED` from the stack's own `lo`): `tests/vu_user.rs` checks that a
//! TCP listener and a UDP socket on the test namespace's loopback get nothing
//! from a program that `nc` reaches them with unsupervised.
//!
//! | file | what |
//! |---|---|
//! | `served.rs` | [`ServedNet`] (what a served stack implements), [`MemNet`] (`--stack mem`), [`NetDialog`] |
//! | `filter.rs` | the trapped calls |
//! | `netlink.rs` | served netlink sockets: ports, bind, names, options, datagrams |
//! | `inet.rs` | served IP sockets: [`InetSocket`], [`InetCall`], the no-route answers |
//! | `user.rs` | [`UserNet`]: a user-space TCP/IP stack served |
//! | `msghdr.rs` | `struct msghdr` and `struct iovec` as bytes |
//! | `ioctl.rs` | which `SIOC*` requests are served, with which semantics |
//! | `procnet.rs` | which paths are the served `/proc/net` files |
//! | `sockaddr.rs` | socket addresses, checked as the kernel checks them |
//! | `supervisor/` | the loop and the handlers |
//! | `fuzz.rs` | every parser of program input behind one entry point, for `fuzz/` (hidden) |

mod filter;
#[doc(hidden)]
pub mod fuzz;
mod inet;
mod ioctl;
mod msghdr;
mod netlink;
mod procnet;
mod served;
mod sockaddr;
mod supervisor;
mod user;

use std::io;
use std::process::{Command, ExitStatus};

/// A positive errno (`libc::EINVAL`, ...) that a trapped call is answered with:
/// the seccomp response carries it negated, as a system call returns it. (The
/// netlink server's handlers use the typed [`crate::nl::server::Errno`]; a
/// served stack's answers are converted where they reach a trapped call.)
pub type Errno = i32;

pub use inet::{
    check_socket, keep_option, kept_option, no_route, Accepted, CallId, InetCall, InetReply,
    InetSocket, Received,
};
pub use served::{MemNet, NetDialog, ServedNet, MEM_VDE0_MAC};
pub use user::UserNet;

/// Runs commands with their network system calls served by a stack of ours.
///
/// The stack lives as long as the `Vu`: every command run sees what the
/// previous ones configured.
#[derive(Debug)]
pub struct Vu<N> {
    net: N,
    options: supervisor::RunOptions,
}

impl<N: ServedNet> Vu<N> {
    /// Serves `net`.
    pub fn new(net: N) -> Self {
        Vu {
            net,
            options: supervisor::RunOptions::default(),
        }
    }

    /// Serves `/etc/resolv.conf` to the commands with this content (what
    /// `vdestack vu -R` gives): their resolver then asks the name servers it
    /// names, through the served stack. The file itself is not touched.
    pub fn resolv_conf(&mut self, content: impl Into<Vec<u8>>) -> &mut Self {
        self.options.resolv_conf = Some(content.into());
        self
    }

    /// Runs `cmd` (and everything it starts) on the stack, on this thread, until
    /// the command and all its descendants are gone; returns the command's exit
    /// status. Errors: the command could not be run (its own error kind:
    /// `NotFound`, `PermissionDenied`), or this kernel cannot supervise (the
    /// message names the requirement).
    pub fn run(&mut self, cmd: Command) -> io::Result<ExitStatus> {
        supervisor::supervise(&mut self.net, cmd, &self.options)
    }

    /// The stack.
    pub fn net(&self) -> &N {
        &self.net
    }

    /// The stack, to change it between commands.
    pub fn net_mut(&mut self) -> &mut N {
        &mut self.net
    }

    /// The stack, when done.
    pub fn into_net(self) -> N {
        self.net
    }
}

/// Checks that this kernel can run `vdestack vu`; the error names what is
/// missing.
pub fn check_support() -> io::Result<()> {
    crate::sys::seccomp::check_support()
}
