//! Stacks: private network stacks as a library (libvdestack, in Rust).
//!
//! A [`Stack`] is a network stack of its own, with one interface per VDE network
//! it is plugged into. The application makes sockets in it ([`Stack::socket`] and
//! the typed helpers), configures it through netlink ([`Stack::netlink`]) and runs
//! commands in it ([`Stack::command`], [`Stack::run`]); its own threads stay in the
//! host's network.
//!
//! ```no_run
//! use vdestack::stack::Stack;
//! let stack = Stack::builder()
//!     .interface("vde0", "vxvde://239.1.2.3")
//!     .build()?;
//! let nl = stack.netlink()?;
//! let vde0 = nl.link_index("vde0")?;
//! nl.link_set_up(vde0, true)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A stack is made by a [`StackBuilder`] ([`Stack::builder`]; [`Stack::new`] and
//! [`Stack::with_interfaces`] are shorthands), which chooses its [`Backend`]:
//!
//! * [`Backend::Kernel`]: the kernel's network stack, in a network namespace of
//!   the stack's own (inside a user namespace of its own, so no root is needed),
//!   with a tap per interface relayed to its plug (see `kernel/`: the costs, and
//!   what differs from libvdestack).
//! * [`Backend::User`]: a TCP/IP stack running in the application (smoltcp),
//!   with no namespace, tap, helper or privilege; a pool of threads serves every
//!   such stack of the process (see `user/`: what it does not do, and the
//!   errors it gives then).
//!
//! A program switches backend by changing only the builder call: `Stack` is one
//! type whatever the backend, and the few methods only one backend has say so
//! (they return `None` or `EOPNOTSUPP` on the other).
//!
//! Process-wide settings (relay threads, polling, the helper's linger) are in
//! [`crate::Config`].
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Stack`]: one type over the backends; sockets, netlink, commands |
//! | `builder.rs` | [`StackBuilder`]: interfaces, options, backend |
//! | [`spec`] | `[IFNAME:]URL` interface specifications |
//! | `kernel/` | the kernel backend: namespace helper, taps, relay, `veth://` |
//! | `user/` | the user-space backend: smoltcp engine, pool threads, sockets as socket pairs |

use std::ffi::{CString, OsStr};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

use crate::error::context;
use crate::net::{
    AddressFamily, IcmpSocket, IpVersion, Protocol, SocketFlags, SocketType, TcpListener,
    TcpStream, UdpSocket,
};
use crate::nl::NlClient;
use crate::vde;

mod builder;
pub(crate) mod kernel;
pub mod spec;
pub(crate) mod user;

pub use builder::StackBuilder;
pub use kernel::helper::end_idle_helper;
pub use spec::IfSpec;

/// Which network stack implementation a [`Stack`] runs on (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The kernel's network stack, in a network namespace of the stack's own.
    #[default]
    Kernel,
    /// A TCP/IP stack running in the application (on smoltcp): no namespace,
    /// tap, helper process or privilege. Its sockets are the typed ones
    /// ([`Stack::tcp_listener`], [`Stack::tcp_connect`], [`Stack::udp_bind`],
    /// [`Stack::icmp_socket`]); it is configured through [`Stack::netlink`].
    /// Raw sockets, namespaces and commands are the kernel backend's.
    User,
}

/// Extras for [`Stack::command_with`].
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// Also grant CAP_SYS_ADMIN (in the stack's user namespace), and a mount
    /// namespace of its own.
    pub sysadmin: bool,
    /// A file to bind-mount over `/etc/resolv.conf` for the command.
    pub resolv_conf: Option<std::path::PathBuf>,
}

/// A private network stack. See the [module docs](self).
///
/// It is `Send` and `Sync`: sockets can be made from any thread. Sockets made in it
/// stay valid after it is dropped. Dropping it takes it apart at once (see
/// [`Stack::close`] for the errors).
#[derive(Debug)]
pub struct Stack {
    ifnames: Vec<String>,
    inner: Inner,
}

/// The backend behind a [`Stack`].
#[derive(Debug)]
enum Inner {
    Kernel(kernel::KernelStack),
    User(user::UserStack),
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Stack>();
    send_sync::<NlClient>();
};

impl Stack {
    /// The shared state of a user-space stack, for `vu`'s control calls
    /// (`None` on the kernel backend).
    pub(crate) fn user_shared(&self) -> Option<&std::sync::Arc<user::Shared>> {
        match &self.inner {
            Inner::User(u) => Some(u.shared()),
            Inner::Kernel(_) => None,
        }
    }

    /// A builder: interfaces, options, backend.
    pub fn builder() -> StackBuilder {
        StackBuilder::new()
    }

    /// A kernel stack with no interface: only `lo` (down).
    pub fn new() -> io::Result<Self> {
        Self::builder().build()
    }

    /// A kernel stack with one interface per spec, `[IFNAME:]URL` (see
    /// [`StackBuilder::spec_str`] and [`StackBuilder::interface`]); names default
    /// to `vde0`, `vde1`, ... by position.
    pub fn with_interfaces(specs: &[&str]) -> io::Result<Self> {
        specs
            .iter()
            .fold(Self::builder(), |b, s| b.spec_str(s))
            .build()
    }

    /// A kernel stack with these typed interfaces ([`IfSpec::new`]: each name
    /// given apart from its URL, so no part of a URL is ever read as a name).
    pub fn with_specs(specs: Vec<IfSpec>) -> io::Result<Self> {
        Self::builder().specs(specs).build()
    }

    /// The backend the stack runs on.
    pub fn backend(&self) -> Backend {
        match &self.inner {
            Inner::Kernel(_) => Backend::Kernel,
            Inner::User(_) => Backend::User,
        }
    }

    /// The interface names, in the order given.
    pub fn interfaces(&self) -> &[String] {
        &self.ifnames
    }

    /// The pid of the namespace helper process, which all kernel stacks of this
    /// process share (it lives in the stacks' user namespace, not in their
    /// network namespaces: use [`Stack::netns`] to enter one). `None` on the
    /// user backend.
    #[cfg(feature = "diagnostics")]
    pub fn helper_pid(&self) -> Option<i32> {
        match &self.inner {
            Inner::Kernel(k) => Some(k.helper_pid()),
            Inner::User(_) => None,
        }
    }

    /// The stack's network namespace (for `setns`, or moving links into it with
    /// [`NlClient::link_set_netns`]). Kernel backend only: `None` on the user
    /// backend.
    pub fn netns(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::Kernel(k) => Some(k.netns()),
            Inner::User(_) => None,
        }
    }

    /// The stack's user namespace. Kernel backend only: `None` on the user
    /// backend.
    pub fn userns(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::Kernel(k) => Some(k.userns()),
            Inner::User(_) => None,
        }
    }

    /// A socket of any kind made in the stack, close-on-exec, blocking:
    /// `socket(domain, type, protocol)` (`None`: the family's default protocol).
    /// A family the kernel lacks gives `EAFNOSUPPORT`. Kernel backend only:
    /// `EOPNOTSUPP` on the user backend, whose sockets are the typed ones.
    pub fn socket(
        &self,
        domain: AddressFamily,
        ty: SocketType,
        protocol: Option<Protocol>,
    ) -> io::Result<OwnedFd> {
        self.socket_with(domain, ty, SocketFlags::empty(), protocol)
    }

    /// [`Stack::socket`] with flags: `SocketFlags::NONBLOCK` (it is always
    /// close-on-exec).
    pub fn socket_with(
        &self,
        domain: AddressFamily,
        ty: SocketType,
        flags: SocketFlags,
        protocol: Option<Protocol>,
    ) -> io::Result<OwnedFd> {
        let raw_ty = ty.as_raw() | (flags | SocketFlags::CLOEXEC).bits();
        let raw_proto = protocol.map_or(0, |p| p.as_raw().get());
        match &self.inner {
            Inner::Kernel(k) => {
                k.socket(i32::from(domain.as_raw()), raw_ty as i32, raw_proto as i32)
            }
            Inner::User(_) => Err(context(
                io::Error::from_raw_os_error(libc::EOPNOTSUPP),
                "a raw socket of a user-space stack (its sockets are the typed ones)",
            )),
        }
    }

    fn inet_socket(&self, addr: &SocketAddr, ty: SocketType) -> io::Result<OwnedFd> {
        let domain = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        self.socket(domain, ty, None)
    }

    /// A TCP listener bound to `addr` in the stack (`SO_REUSEADDR`, as std does;
    /// a backlog of 128). Port 0: one the stack picks.
    pub fn tcp_listener(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        if let Inner::User(u) = &self.inner {
            return u.tcp_listener(addr);
        }
        let fd = self.inet_socket(&addr, SocketType::STREAM)?;
        rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
        rustix::net::bind(&fd, &addr).map_err(|e| context(e, format!("bind {addr}")))?;
        rustix::net::listen(&fd, 128)?;
        Ok(TcpListener::from_kernel(fd.into()))
    }

    /// A TCP connection from the stack to `addr`; waits as long as the stack's
    /// TCP tries (about two minutes for a silent peer). A refused connection is
    /// `ECONNREFUSED`, an unreachable network `ENETUNREACH`.
    pub fn tcp_connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        if let Inner::User(u) = &self.inner {
            return u.tcp_connect(addr, None);
        }
        let fd = self.inet_socket(&addr, SocketType::STREAM)?;
        loop {
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(context(e, format!("connect {addr}"))),
            }
        }
        Ok(TcpStream::from_kernel(fd.into()))
    }

    /// [`Stack::tcp_connect`] waiting at most `timeout` (then `ETIMEDOUT`, of kind
    /// `TimedOut`); a zero timeout is refused, as std refuses it.
    pub fn tcp_connect_timeout(
        &self,
        addr: SocketAddr,
        timeout: std::time::Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect with a 0 duration timeout",
            ));
        }
        if let Inner::User(u) = &self.inner {
            return u.tcp_connect(addr, Some(timeout));
        }
        let fd = self.inet_socket(&addr, SocketType::STREAM)?;
        crate::net::connect_timeout(&fd, &addr, timeout)
            .map_err(|e| context(e, format!("connect {addr}")))?;
        Ok(TcpStream::from_kernel(fd.into()))
    }

    /// A UDP socket bound to `addr` in the stack. Port 0: one the stack picks.
    pub fn udp_bind(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        if let Inner::User(u) = &self.inner {
            return u.udp_bind(addr);
        }
        let fd = self.inet_socket(&addr, SocketType::DGRAM)?;
        rustix::net::bind(&fd, &addr).map_err(|e| context(e, format!("bind {addr}")))?;
        Ok(UdpSocket::from_kernel(fd.into()))
    }

    /// An ICMP echo socket ("ping socket", what `ping` uses without privilege)
    /// of the stack, for IPv4 or IPv6.
    pub fn icmp_socket(&self, version: IpVersion) -> io::Result<IcmpSocket> {
        if let Inner::User(u) = &self.inner {
            return u.icmp_socket(version);
        }
        let (domain, proto) = match version {
            IpVersion::V4 => (AddressFamily::INET, rustix::net::ipproto::ICMP),
            IpVersion::V6 => (AddressFamily::INET6, rustix::net::ipproto::ICMPV6),
        };
        let fd = self
            .socket(domain, SocketType::DGRAM, Some(proto))
            .map_err(|e| context(e, format!("an ICMP echo socket ({version:?})")))?;
        Ok(IcmpSocket::from_kernel(fd, version))
    }

    /// A netlink route client of the stack: configure its links, addresses and
    /// routes.
    pub fn netlink(&self) -> io::Result<NlClient> {
        match &self.inner {
            Inner::Kernel(k) => k.netlink(),
            Inner::User(u) => Ok(u.netlink()),
        }
    }

    /// A command that runs in the stack: between fork and exec it joins the stack's
    /// user and network namespaces and raises CAP_NET_ADMIN, NET_RAW,
    /// NET_BIND_SERVICE and NET_BROADCAST (ambient, so they survive exec). `program`
    /// is looked up like [`Command::new`] does (in `PATH` if it has no `/`).
    /// Kernel backend only: on the user backend the command fails to start with
    /// `EOPNOTSUPP` (it would run in the host's network).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match &self.inner {
            Inner::Kernel(k) => k.command(program),
            Inner::User(_) => {
                let mut c = Command::new(program);
                crate::sys::fail_on_exec(&mut c, libc::EOPNOTSUPP);
                c
            }
        }
    }

    /// Like [`Stack::command`], with what an interactive namespace (`vdestack ns`,
    /// vdens) adds: a resolv.conf bind-mounted over `/etc/resolv.conf` in a mount
    /// namespace of the command's own, and CAP_SYS_ADMIN (`sysadmin`).
    pub fn command_with(
        &self,
        program: impl AsRef<OsStr>,
        options: &CommandOptions,
    ) -> io::Result<Command> {
        match &self.inner {
            Inner::Kernel(k) => k.command_with(program, options),
            Inner::User(_) => Err(context(
                io::Error::from_raw_os_error(libc::EOPNOTSUPP),
                "a command in a user-space stack",
            )),
        }
    }

    /// Runs `;`-separated commands in the stack, one after the other, like
    /// `vde_stackcmd`: words split on blanks with quotes and backslashes, no shell,
    /// **no `PATH` search** (a name without `/` is taken relative to the current
    /// directory, as `execv` does; see [`Stack::run_argv`]). Stops at the first
    /// command that does not succeed and returns its status; the last one's
    /// (success) if all do. A command that cannot be executed exits with status 2
    /// (upstream's `_exit(2)`); one killed by a signal says which
    /// ([`ExitStatusExt::signal`]; upstream reports 0 there, `vde_stackcmd` here
    /// 128+N). Stdio and the environment are inherited. As upstream, a command is
    /// killed (SIGKILL) if the application dies while waiting for it, and an
    /// application's own `wait()` cannot reap it: it is the child of a keeper
    /// cloned with no exit signal (see `sys::cmdspawn`). An empty list succeeds,
    /// as with `vde_stackcmd`.
    pub fn run(&self, cmds: &str) -> io::Result<ExitStatus> {
        let list = vde::url::split_commands(cmds).map_err(io::Error::from)?;
        let mut last = None;
        for argv in list {
            let status = self.run_argv(&argv)?;
            if !status.success() {
                return Ok(status);
            }
            last = Some(status);
        }
        Ok(last.unwrap_or(ExitStatus::from_raw(0)))
    }

    /// Runs one command, `argv[0]` being its path (no `PATH` search, no shell), in
    /// the stack as [`Stack::run`] does, and returns its status. An empty `argv`
    /// or one with a NUL byte is `EINVAL`.
    pub fn run_argv<S: AsRef<OsStr>>(&self, argv: &[S]) -> io::Result<ExitStatus> {
        let cargv = c_argv(argv)?;
        let raw = match &self.inner {
            Inner::Kernel(k) => k.run_argv(&cargv)?,
            Inner::User(_) => {
                return Err(context(
                    io::Error::from_raw_os_error(libc::EOPNOTSUPP),
                    "a command in a user-space stack",
                ))
            }
        };
        Ok(ExitStatus::from_raw(raw))
    }

    /// Takes the stack apart now and says what went wrong, where dropping it would
    /// say nothing: its interfaces close (their plugs too), its `veth://` links
    /// are deleted, the namespace helper is let go of (it lingers after the
    /// process's last stack, [`crate::Config::helper_linger`]). Every step is
    /// taken even after an error; the first error is returned. Like a drop, it
    /// does not wait long: a coprocess (`=COMMAND`, `cmd://`) gets a second to
    /// exit before it is killed.
    pub fn close(self) -> io::Result<()> {
        let Stack { inner, .. } = self;
        match inner {
            Inner::Kernel(mut k) => k.close(),
            Inner::User(mut u) => u.close(),
        }
    }
}

impl Stack {
    /// On a user-space stack, starts a TCP connection to `addr` without
    /// waiting: the stream's fd becomes writable once the connection is made
    /// or failed (then `take_error` says which). `None` on a kernel stack.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn user_connect_start(&self, addr: SocketAddr) -> Option<io::Result<TcpStream>> {
        match &self.inner {
            Inner::User(u) => Some(u.tcp_connect_start(addr)),
            Inner::Kernel(_) => None,
        }
    }

    /// The user-space stack inside, for `vdestack vu` (its control calls,
    /// `user::socket_api`, take [`user::UserStack::shared`]).
    #[allow(dead_code)]
    pub(crate) fn user_stack(&self) -> Option<&user::UserStack> {
        match &self.inner {
            Inner::User(u) => Some(u),
            Inner::Kernel(_) => None,
        }
    }
}

/// `argv` as C strings: `EINVAL` if it is empty or has a NUL byte.
fn c_argv<S: AsRef<OsStr>>(argv: &[S]) -> io::Result<Vec<CString>> {
    use std::os::unix::ffi::OsStrExt;
    if argv.is_empty() {
        return Err(context(
            io::Error::from_raw_os_error(libc::EINVAL),
            "an empty command",
        ));
    }
    argv.iter()
        .map(|a| {
            CString::new(a.as_ref().as_bytes()).map_err(|_| {
                context(
                    io::Error::from_raw_os_error(libc::EINVAL),
                    "a NUL byte in a command",
                )
            })
        })
        .collect()
}
