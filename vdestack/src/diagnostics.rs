//! What tests, benchmarks and diagnostic tools look at inside the library, behind
//! the `diagnostics` cargo feature: not part of the API a program relies on, and
//! free to change. (`Stack::helper_pid` is here too, as a method.)
//!
//! Besides counters, it lets a test or a measurement reach two things below the
//! API: the kernel's own netdevice ioctls ([`ifreq_ioctl`], [`ifconf_ioctl`]:
//! what `nl::emul` is compared with), and the namespace helper's steps one by
//! one ([`spawn_helper`], [`helper_new_net_vnet`], [`enable_tap_offload`]: what
//! `examples/stack_steps.rs` times).

/// libslirp as `slirp://` loads it: its version (an error if it cannot be
/// loaded), the soname, and the C structs' layout as our binding has it (checked
/// against Debian's header by a test).
pub use crate::sys::slirp::{
    ffi_layout as slirp_ffi_layout, version as slirp_version, SONAME as SLIRP_SONAME,
};
pub use crate::sys::{
    enable_tap_offload, helper_new_net_vnet, ifconf_ioctl, ifreq_ioctl, spawn_helper, Helper,
    NewNet,
};

/// Whether a relay thread is running in this process (none while no kernel
/// stack has a relayed interface).
pub fn relay_running() -> bool {
    crate::stack::kernel::relay_running()
}

/// The most relay threads this process runs ([`crate::Config::relay_threads`],
/// or its default).
pub fn relay_threads_max() -> usize {
    crate::stack::kernel::relay_threads_max()
}

/// What the relay's back-pressure did in this process (see
/// [`relay_backlog_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogCounts {
    /// Bursts a full peer could not take at once: the rest waited for it.
    pub waited: u64,
    /// Frames dropped after all: the peer took nothing for 100 ms, or failed.
    pub dropped: u64,
}

/// The counts of the relay's back-pressure so far, for every stack of this
/// process.
pub fn relay_backlog_counts() -> BacklogCounts {
    let (waited, dropped) = crate::stack::kernel::relay_backlog::backlog_counts();
    BacklogCounts { waited, dropped }
}

/// Installs, between fork and exec of `cmd`, a Docker-like seccomp filter that
/// refuses new namespaces (`unshare`, `setns`, `clone` with namespace flags) with
/// `EPERM`: for tests of what runs where namespaces are refused.
pub fn deny_namespaces_on_exec(cmd: &mut std::process::Command) -> std::io::Result<()> {
    crate::sys::seccomp::deny_namespaces_on_exec(cmd)
}

/// Installs, between fork and exec of `cmd`, a seccomp filter that allows every
/// system call of the native architecture (and refuses foreign ones with
/// `ENOSYS`): what a filter costs a program by itself, for the `vu` benchmark.
pub fn allow_all_filter_on_exec(cmd: &mut std::process::Command) -> std::io::Result<()> {
    use crate::sys::seccomp;
    let prog = seccomp::program(&[], seccomp::Verdict::Errno(libc::ENOSYS as u16))?;
    seccomp::filter_on_exec(cmd, prog);
    Ok(())
}

/// The number of threads of the user-space stacks' pool running now: 0 once
/// every user-space stack of the process is gone and the pool's linger (300 ms)
/// has passed.
pub fn user_pool_threads() -> usize {
    crate::stack::user::pool::threads()
}
