//! Netlink client: configure a network stack (the host's, or one reached through a
//! socket the caller made) through rtnetlink, like nlinline and libnlq's client.
//!
//! | file | what |
//! |---|---|
//! | `wire.rs` | netlink constants, a pure message builder, the checked splitter of replies |
//! | `nlinline.rs` | nlinline's messages byte for byte: `build_*(seq, ...)`, the prefix magic |
//! | `client.rs` | [`NlClient`]: the client core over any [`dialog::Dialog`] |
//! | `answer.rs` | what an answer means (acks, errors, dump ends) and the retries of interrupted dumps, once for every dialog |
//! | `kind.rs` | typed link kinds ([`LinkKind`]: veth, bridge, macvlan, vxlan, vlan, dummy) and their encoding |
//! | `link.rs` | names and indexes, up/down, MTU, MAC, link add/delete, bridge ports, namespaces, list |
//! | `addr.rs` | addresses: [`AddrSpec`], add/delete/list |
//! | `route.rs` | routes: [`RouteSpec`], add/delete/list |
//! | [`dialog`] | [`dialog::Dialog`]: one request in, its replies out (the kernel, or a stack served in user space) |
//! | `kernel_dialog.rs` | [`KernelDialog`]: the dialog over a real `NETLINK_ROUTE` socket: sequence numbers, timeouts |
//! | [`emul`] | netdevice ioctls and `/proc/net/dev` emulated over a dialog, the kernel's exact results |
//! | `config.rs` | one-line configuration in the spirit of iothconf: [`config::configure`] |
//! | [`dhcp`] | the DHCPv4 client of the configuration (`dhcp`): an I/O-free state machine, its kernel-socket I/O, the lease renewer |
//! | [`server`] | the netlink server (libnlq's server side, framed like the kernel) and [`server::MemStack`], a stack in memory |
//! | `decode.rs` | typed results ([`Link`], [`Addr`], [`Route`]) decoded with `netlink-packet-route` |
//!
//! Errors are `io::Error`s carrying the kernel's errno (`EEXIST`, `ENODEV`,
//! `ENETUNREACH`, ...) with a message naming the request; bad input is `EINVAL`
//! before anything is sent; a malformed reply is `EPROTO`, never a panic. The
//! message wraps the OS error ([`crate::error::context`]), so read the errno with
//! [`crate::error::errno_of`] (`raw_os_error()` is `None` on a wrapped error);
//! `kind()` is the errno's (`AlreadyExists` for `EEXIST`, ...).
//!
//! This module uses only `crate::sys` and [`crate::error`]: it knows nothing of
//! VDE or of stacks, which hand it a socket.

mod addr;
mod answer;
mod client;
pub mod config;
pub mod decode;
pub mod dhcp;
pub mod dialog;
pub mod emul;
mod kernel_dialog;
mod kind;
mod link;
pub mod nlinline;
mod route;
pub mod server;
pub mod wire;

pub use addr::{build_addr, AddrSpec};
pub use client::NlClient;
pub use decode::{Addr, Link, LinkStats, Route};
pub use kernel_dialog::{KernelDialog, REPLY_TIMEOUT};
pub use kind::{build_link_add, LinkKind, MacvlanMode, VxlanSpec};
pub use nlinline::Op;
pub use route::{build_route, RouteSpec};
