//! The operating-system edge. This is the only module allowed to use `unsafe`, for
//! the few calls that `rustix` does not wrap (tun ioctls, user and group look-ups,
//! daemonising, a stack's namespace helper and its commands' `setns` and
//! capabilities, `recvmmsg`, packet sockets, libslirp's C interface in [`slirp`],
//! and [`seccomp`]: filters, the user-notification listener, a supervised program's
//! memory); every `unsafe` block carries a `// SAFETY:` comment. The rest are
//! small safe helpers over `rustix` that several plugins share.
//!
//! It is private: the rest of the crate uses it; outside, `crate::process` offers
//! `daemonize`, and the `diagnostics` feature (`crate::diagnostics`) the helper's
//! steps and the kernel's netdevice ioctls, for tests and measurements.

#[cfg(feature = "tokio")]
pub mod async_fd;
mod fdutil;
mod heap;
pub use heap::trim_heap;
mod mmsg;
mod tun;
mod user;

pub use fdutil::{
    claim_fd, poll_readable, poll_writable, send_error, set_nonblocking, would_block,
};
pub use mmsg::{recv_mmsg, Datagram};
pub use tun::{enable_tap_offload, open_tap, TAP_NAME_MAX};
pub use user::{daemonize, group_id, home_dir, user_name};

mod child;
pub use child::{on_fork_child, reap_if_ours, terminate_child};

mod cmdspawn;
mod nsexec;
mod nshelper;
pub use cmdspawn::run_in_namespaces;
pub use nsexec::{enter_namespaces_on_exec, fail_on_exec, ns_extras_on_exec};
pub use nshelper::{helper_new_net, helper_new_net_start, helper_socket, spawn_helper};
// What `crate::diagnostics` shows of the helper and the kernel's ioctls.
#[cfg(feature = "diagnostics")]
pub use nshelper::{helper_new_net_vnet, Helper, NewNet};

mod netdev_ioctl;
#[cfg(feature = "diagnostics")]
pub use netdev_ioctl::ifconf_ioctl;
pub use netdev_ioctl::{ifreq_ioctl, unread_sent_bytes};

mod packet;
pub use packet::{open_packet, packet_recv, PacketSocket};

pub mod slirp;

pub mod seccomp;

mod sockopt;
pub use sockopt::{bind_to_device, netns_cookie};
