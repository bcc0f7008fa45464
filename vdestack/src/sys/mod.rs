//! The operating-system edge. This is the only module allowed to use `unsafe`, for
//! the few calls that `rustix` does not wrap (tun ioctls, user and group look-ups,
//! daemonising, a stack's namespace helper and its commands' `setns` and
//! capabilities, `recvmmsg`, packet sockets, libslirp's C interface in [`slirp`],
//! and [`seccomp`]: filters, the user-notification listener, a supervised program's
//! memory); every `unsafe` block carries a `// SAFETY:` comment. The rest are
//! small safe helpers over `rustix` that several plugins share.

mod fdutil;
mod mmsg;
mod tun;
mod user;

pub use fdutil::{
    claim_fd, poll_readable, poll_writable, send_error, set_nonblocking, would_block,
};
pub use mmsg::{recv_mmsg, Datagram, RECV_MMSG_MAX};
pub use tun::{enable_tap_offload, open_tap, TAP_NAME_MAX};
pub use user::{daemonize, group_id, home_dir, user_name};

mod child;
pub use child::{is_reaper, on_fork_child, reap_if_ours, terminate_child};

mod cmdspawn;
mod nsexec;
mod nshelper;
pub use cmdspawn::run_in_namespaces;
pub use nsexec::{enter_namespaces_on_exec, ns_extras_on_exec};
pub use nshelper::{
    helper_new_net, helper_new_net_start, helper_new_net_vnet, helper_socket, spawn_helper, Helper,
    NewNet, PendingNet,
};

mod netdev_ioctl;
pub use netdev_ioctl::{ifconf_ioctl, ifreq_ioctl, unread_sent_bytes};

mod packet;
pub use packet::{open_packet, packet_recv, PacketRecv, PacketSocket};

pub mod slirp;

pub mod seccomp;
