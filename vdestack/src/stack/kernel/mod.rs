//! The kernel backend ([`Backend::Kernel`](super::Backend::Kernel)): a stack is a
//! network namespace of its own (inside a user namespace of its own, so no root is
//! needed), with one tap interface per VDE network it is plugged into, relayed to
//! its plug by a few shared threads (libvdestack, in Rust).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`KernelStack`]: creation, sockets, commands, teardown |
//! | `relay.rs` | a small pool of shared threads relaying frames between taps and plugs |
//! | `relay_backlog.rs` | back-pressure: a tap waits while its plug's peer is full |
//! | `veth.rs` | `veth://NAME`: stacks of this process joined by a kernel bridge and veth pairs, no relay |
//! | `helper/` | the process's one namespace helper, shared by its stacks, and its linger |
//! | `sys::nshelper` | the namespace helper process (fork, unshare, taps, sockets, `SCM_RIGHTS`) |
//! | `sys::nsexec` | commands: join the namespaces, raise the network capabilities |
//!
//! ## Compared with libvdestack
//!
//! * Plugs are opened in the caller's namespaces before the stack's namespace is
//!   made, as upstream does (so `vxvde://`, `udp://` use the host's network).
//! * One helper process serves all the application's stacks (upstream: one per
//!   stack). It lives in a user namespace of its own, which owns every stack's
//!   network namespace; making a stack is one request to it (`unshare(CLONE_NEWNET)`
//!   and the taps), not a fork.
//! * The helper shares neither memory nor the fd table with the application:
//!   namespaces, taps and sockets come back by `SCM_RIGHTS`; the application's fd
//!   table holds only what the stacks use (per stack: the network namespace, one tap
//!   per interface, the plugs' fds; shared: the helper's pair end, its pidfd and
//!   user namespace), all close-on-exec.
//! * The helper is not the application's child (double fork): `waitpid(-1)` cannot
//!   reap it; it exits when its socket pair reaches EOF: a short while after the
//!   last stack is dropped, or when the application dies (no polling of the
//!   parent). An application that is PID 1 or a subreaper gets it re-parented:
//!   the library reaps it (its pidfd), so no zombie is left.
//! * After the last stack the helper *lingers* ([`DEFAULT_LINGER`], 250 ms), so a
//!   process that makes one stack after another (one per test) does not start a
//!   process per stack: such a cycle costs what it costs while another stack lives.
//!   Meanwhile the process holds the helper's 4 fds and a thread that ends it; then
//!   nothing is left. [`end_idle_helper`] ends it at once (and returns when it has
//!   exited); [`Config::helper_linger`](crate::Config::helper_linger) changes the
//!   linger (0: it ends with the last stack's drop). A child `fork()`ed during the
//!   linger does not keep it alive.
//! * Commands of [`Stack::run`] are children of a keeper process that is cloned
//!   with no exit signal: the application's `wait()` cannot reap them either.
//! * Socket requests carry their own reply channel: threads need no lock, and a
//!   forked child (no exec) makes sockets in the stack like its parent (upstream
//!   returns fd numbers valid only in the parent). Dropping the stack in such a
//!   child only closes the child's copies; the parent's stack goes on.
//! * Frames are relayed in the application by a few shared threads (one per CPU,
//!   at most 4, each stack on one of them) for all stacks
//!   (none at all while no stack has an interface), not in the helper. A relay
//!   thread that just moved frames looks for more for up to 200 µs before it
//!   sleeps, yielding its CPU, except during bulk (`vde::poll_window`;
//!   `VDESTACK_RELAY_POLL_US=0` turns it off): a request/response exchange then
//!   wakes no sleeping thread per hop.
//! * Several interfaces per stack (libioth's `[IFNAME:]URL` syntax).
//! * Large segments between stacks on `inproc://`: such a stack's tap is opened with
//!   `IFF_VNET_HDR` and `TUNSETOFFLOAD` (checksum, TSO for IPv4 and IPv6), so the
//!   kernel hands the relay TCP segments of up to 64 KiB, and the in-process switch
//!   passes them whole to other such stacks, writing each straight into the other
//!   stack's tap from the relay thread that read it: one read and one write where
//!   an ordinary link takes 40 of each. Every other port of the segment (a plain plug,
//!   a cable to a C switch) gets them cut to MTU-sized frames with complete
//!   checksums (`vde::gso`). The interface's MTU stays 1500. `VDESTACK_OFFLOAD=0`
//!   in the environment when a stack is made turns it off for that stack (plain
//!   taps, as before).
//! * Large segments on datagram transports too (`vxvde://`, `vxlan://`, `udp://`,
//!   `vde://`), whose wire carries only ordinary frames: the tap is opened the
//!   same way; the plug cuts each segment once and sends all its frames with one
//!   `sendmmsg` (`vde::batch`), and the relay joins consecutive TCP frames of a
//!   flow that it receives into one large segment for the tap (`vde::gro`, what a
//!   NIC's GRO does), so each side's kernel runs TCP once per 64 KiB, not per
//!   frame. Peers (C ones included) see the same frames and ACK pattern as from
//!   a kernel with GRO.
//! * Back-pressure on those transports: a segment's frames that the peer cannot
//!   take yet (a `vde_switch` queues 10 datagrams; a segment is up to 45) wait in
//!   the plug, and the relay stops reading that tap until the peer has room
//!   (`EPOLLOUT`), so the stack's TCP slows down instead of losing segments. A peer
//!   that takes nothing for [`RELAY_PATIENCE`] gets the rest dropped. Upstream
//!   drops what does not fit.
//! * Dropping a stack closes its taps and plugs too (upstream leaks them).
//! * [`Stack::run`]: a command killed by a signal reports 128+signal (upstream: 0).
//!
//! ## Costs (measured on this project's test machine, see `tests/stack_core.rs`)
//!
//! * Creating a stack: about 0.3 ms while another stack lives (one request: the
//!   kernel's `unshare(CLONE_NEWNET)`, about 0.25 ms, is most of it; a tap adds
//!   about 40 µs in the helper and 10 µs of offload set-up; a relay thread that
//!   has to start starts while the helper works), and the same for a stack made
//!   while the helper lingers; about 1 ms for a stack that starts the helper (a
//!   fork of the application, a user namespace).
//! * Per stack: in the application 1 fd plus one per interface plus the plugs' own;
//!   no process, no thread. Shared: one helper process (a few hundred kB: it shares
//!   the application's pages copy-on-write, so an application that rewrites much
//!   memory pays for copies), 4 fds for it (and, once the process has been left
//!   with no stack, the linger thread until the helper ends), 3 per relay thread
//!   (epoll, eventfd, timerfd).
//! * Threads: relay threads for all stacks with interfaces: one per CPU at most
//!   4, fewer while fewer stacks have interfaces.
//! * Dropping: well under a millisecond, taps included (with no linger, the last
//!   stack also waits for the helper to exit). Taps are made persistent (`TUNSETPERSIST`), so closing
//!   one does not unregister it at once (20-30 ms of kernel grace periods per tap,
//!   as `ip link del`): it goes with its network namespace, which the kernel tears
//!   down in batches, in its own time, once the stack and every socket made in it
//!   are closed. (libvdestack never closes its taps: they live until the
//!   application exits.)

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;

use super::spec::IfSpec;
use super::CommandOptions;
use crate::error::context;
use crate::nl::NlClient;
use crate::vde::{self, Plug};

pub(crate) mod helper;
mod relay;
pub(crate) mod relay_backlog;
mod veth;

#[cfg(feature = "diagnostics")]
pub(crate) use relay::relay_running;
#[cfg(feature = "diagnostics")]
pub(crate) use relay::threads_max as relay_threads_max;

/// A stack of the kernel backend. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct KernelStack {
    /// The process's namespace helper, shared with its other stacks.
    helper: helper::Lease,
    /// The process that made the stack: a forked child only lets go of its copies.
    owner: rustix::process::Pid,
    userns: Arc<OwnedFd>,
    netns: Arc<OwnedFd>,
    relay: Option<u64>,
    /// `veth://` interfaces (deleted with the stack).
    kernel_ports: Vec<veth::Port>,
}

impl KernelStack {
    /// A stack with one interface per spec (names already checked unique): a VNL
    /// or `=COMMAND ARGS` relayed to a tap, or `veth://NAME`, a kernel link to the
    /// other stacks of this process on NAME. `offload`: large segments between
    /// taps and plugs that carry or cut them.
    pub(crate) fn new(specs: &[IfSpec], offload: bool) -> io::Result<Self> {
        // Relayed interfaces get a plug and a tap; `veth://` ones a kernel link.
        let mut plugs: Vec<Box<dyn Plug>> = Vec::with_capacity(specs.len());
        let mut tap_names: Vec<&str> = Vec::with_capacity(specs.len());
        // Taps whose plug carries large segments (bit i: tap i) get IFF_VNET_HDR.
        let mut vnet: u64 = 0;
        // ... and of those, the ones whose plug passes them whole (bit i: tap i).
        let mut whole: u64 = 0;
        let mut kernel: Vec<(&str, &str)> = Vec::new();
        // "vde0 (vde:///tmp/sw)": how the relay names a relayed interface.
        let mut labels: Vec<String> = Vec::with_capacity(specs.len());
        for s in specs {
            if let Some(network) = veth::network_name(&s.url) {
                kernel.push((s.name.as_str(), network?));
                continue;
            }
            let mut plug = open_plug(&s.url)
                .map_err(|e| context(e, format!("interface {}: opening {}", s.name, s.url)))?;
            // A plug that cuts segments in batches gets them too: one tap read
            // and one sendmmsg per 64 KiB (its peers see ordinary frames).
            if offload && plug.segment_batching().is_some() {
                vnet |= 1 << tap_names.len(); // at most 64 taps: the helper checks
            } else if let Some(o) = plug.offload().filter(|_| offload) {
                o.enable();
                vnet |= 1 << tap_names.len();
                whole |= 1 << tap_names.len();
            }
            plugs.push(plug);
            tap_names.push(s.name.as_str());
            labels.push(format!("{} ({})", s.name, s.url));
        }
        let helper = helper::get()?;
        // The helper makes the namespace and its taps (the kernel's part, most of
        // the time) while we take the relay's place, which may start a thread.
        let pending = crate::sys::helper_new_net_start(helper.ctl()?, &tap_names, vnet)?;
        let slot = match tap_names.is_empty() {
            true => None,
            false => Some(relay::reserve()?),
        };
        let net = pending.finish()?;
        let pairs: Vec<relay::Pair> = net
            .taps
            .into_iter()
            .zip(plugs)
            .zip(labels)
            .enumerate()
            .map(|(i, ((tap, mut plug), name))| {
                let vnet = vnet >> i & 1 == 1;
                if vnet {
                    // Without the offloads the tap still works: plain frames, each
                    // with an empty header.
                    if let Err(e) = crate::sys::enable_tap_offload(tap.as_fd()) {
                        log::warn!("vdestack: no large segments on {}: {e}", tap_names[i]);
                    }
                }
                // Not attached, its frames still come through the relay.
                let attached = plug.tap_delivery().map(|d| d.attach_tap(tap.as_fd(), vnet));
                if let Some(Err(e)) = attached {
                    log::warn!(
                        "vdestack: {}: frames go through the relay: {e}",
                        tap_names[i]
                    );
                }
                relay::Pair {
                    tap,
                    plug,
                    vnet,
                    whole: whole >> i & 1 == 1,
                    name,
                }
            })
            .collect();
        let mut stack = KernelStack {
            userns: helper.userns.clone(),
            helper,
            owner: rustix::process::getpid(),
            netns: Arc::new(net.netns),
            relay: None,
            kernel_ports: Vec::new(),
        };
        if !kernel.is_empty() {
            // On failure `stack` is dropped with the ports made so far.
            let nl = stack.netlink()?;
            for (ifname, network) in &kernel {
                let port = veth::attach(&stack.helper, network, ifname, stack.netns(), &nl)?;
                stack.kernel_ports.push(port);
            }
        }
        if let Some(slot) = slot {
            // On failure `stack` is dropped: its lease on the helper goes; `pairs` were dropped.
            stack.relay = Some(slot.fill(pairs)?);
        }
        Ok(stack)
    }

    /// The pid of the namespace helper process, which all stacks of this process
    /// share.
    #[cfg(feature = "diagnostics")]
    pub(crate) fn helper_pid(&self) -> i32 {
        self.helper.pid
    }

    /// The stack's network namespace.
    pub(crate) fn netns(&self) -> BorrowedFd<'_> {
        self.netns.as_fd()
    }

    /// The stack's user namespace.
    pub(crate) fn userns(&self) -> BorrowedFd<'_> {
        self.userns.as_fd()
    }

    /// `socket(domain, type, protocol)` made in the stack (close-on-exec; `type`
    /// may carry `SOCK_NONBLOCK`). A family the kernel lacks gives `EAFNOSUPPORT`.
    pub(crate) fn socket(&self, domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
        crate::sys::helper_socket(self.helper.ctl()?, self.netns(), domain, ty, protocol)
    }

    /// A netlink route client over a socket made in the stack.
    pub(crate) fn netlink(&self) -> io::Result<NlClient> {
        let fd = self.socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
        Ok(NlClient::from_fd(fd))
    }

    /// A command that joins the stack's namespaces between fork and exec (see
    /// `Stack::command`).
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        crate::sys::enter_namespaces_on_exec(&mut cmd, self.userns.clone(), self.netns.clone());
        cmd
    }

    /// [`KernelStack::command`] with an interactive namespace's extras.
    pub(crate) fn command_with(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        options: &CommandOptions,
    ) -> io::Result<Command> {
        let mut cmd = self.command(program);
        let resolv = match &options.resolv_conf {
            Some(p) => Some(
                CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).map_err(
                    |_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"),
                )?,
            ),
            None => None,
        };
        crate::sys::ns_extras_on_exec(&mut cmd, options.sysadmin, resolv);
        Ok(cmd)
    }

    /// Runs one command (its path first, no `PATH` search) in the stack and
    /// returns its raw wait status.
    pub(crate) fn run_argv(&self, argv: &[CString]) -> io::Result<i32> {
        crate::sys::run_in_namespaces(argv, self.userns(), self.netns())
    }

    /// Takes the stack apart: its interfaces leave the relay and close, its
    /// `veth://` links are deleted, its lease on the helper goes. Returns the
    /// first error met (every step is taken anyway). Quick: what could wait (a
    /// coprocess's grace period, a helper to end) waits at most a few seconds.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        if rustix::process::getpid() != self.owner {
            // A forked child's copy: the relay thread belongs to the parent, which
            // still uses the stack. The child's copies of the namespace fds close
            // with the fields; the inherited taps and plugs stay with the parent's
            // relay (close-on-exec, so an exec drops them); the parent's kernel links
            // are the parent's to delete.
            std::mem::forget(std::mem::take(&mut self.kernel_ports));
            return Ok(());
        }
        let mut first: io::Result<()> = Ok(());
        // The relay lets go of the taps and plugs; they close here (then a relay
        // thread left with no stack, which ended meanwhile, is joined). The namespace
        // fd closes with the field (sockets made in the stack keep the namespace);
        // the helper lingers after the process's last stack, then ends.
        if let Some(id) = self.relay.take() {
            let removed = relay::remove(id);
            if !removed.found {
                first = Err(context(
                    io::Error::from_raw_os_error(libc::ESRCH),
                    "the relay had no record of the stack's interfaces",
                ));
            }
            drop(removed);
        }
        for port in self.kernel_ports.drain(..) {
            if let Err(e) = port.delete() {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

/// Opens the plug for one interface: a VNL, or `=COMMAND` (a stream coprocess).
pub(crate) fn open_plug(url: &str) -> io::Result<Box<dyn Plug>> {
    if let Some(cmdline) = url.strip_prefix('=') {
        let words = vde::url::split_command(cmdline)?;
        let Some((prog, args)) = words.split_first() else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let mut c = Command::new(prog);
        c.args(args);
        return Ok(Box::new(vde::cmd::Cmd::spawn(c)?));
    }
    vde::open(url)
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        // Errors are for `Stack::close`; a drop has no one to tell.
        let _ = self.close();
    }
}
