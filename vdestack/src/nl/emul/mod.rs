//! Emulation of what programs learn about network devices without netlink, the
//! netdevice ioctls and the `/proc/net` files (`dev`, `if_inet6`, `route`,
//! `ipv6_route`), written once over a [`Dialog`] so it
//! serves the kernel ([`super::KernelDialog`]) and a stack's user-space netlink
//! server alike (libnlq's `nlq_ioctl` and `nlq_proc_net_dev`). I/O-free: every
//! question goes through the dialog.
//!
//! Where libnlq and the kernel differ, this follows the kernel (Linux 6.x): the
//! `/proc/net/dev` spacing, the bytes an ioctl writes, alias labels, address
//! matching, `SIOCSIFADDR`'s classful defaults, the errno and the order of the
//! checks; see [`ioctl()`] and [`procnetdev`].
//!
//! | file | what |
//! |---|---|
//! | `ifreq.rs` | the `SIOC*` numbers and [`IfReq`], the 40-byte `struct ifreq` image |
//! | `rt.rs` | the rtnetlink questions asked (one link, all links, IPv4 addresses, changes) |
//! | `inet6.rs` | [`ioctl6`]: `SIOCSIFADDR`/`SIOCDIFADDR` of an `AF_INET6` socket (`struct in6_ifreq`) |
//! | `ioctl.rs` | [`ioctl()`]: the raw entry point on an `ifreq` image, the kernel's semantics |
//! | `typed.rs` | one function per request: [`get_mtu`], [`set_addr`], ... |
//! | `ifconf.rs` | `SIOCGIFCONF`: [`ifconf()`] on the caller's buffer, [`get_conf`] |
//! | [`procnetdev`] | `/proc/net/dev` in the kernel's exact format: [`proc_net_dev`] |
//! | `rtentry.rs` | [`route_ioctl`]: `SIOCADDRT`/`SIOCDELRT` on a `struct rtentry` (net-tools' `route add`) |
//! | `rtinfo.rs` | IPv6 addresses and routes of either family, from dumps |
//! | [`procnet`] | `/proc/net/if_inet6`, `/proc/net/route`, `/proc/net/ipv6_route`, the kernel's formats |
//! | `tests.rs` | unit tests over a fake dialog with canned replies |
//!
//! Errors carry the errno an ioctl would set; read it with
//! [`crate::error::errno_of`] (a few carry a message around it).
//!
//! [`Dialog`]: super::dialog::Dialog

mod ifconf;
mod ifreq;
mod inet6;
mod ioctl;
pub mod procnet;
pub mod procnetdev;
mod rt;
mod rtentry;
mod rtinfo;
mod typed;

pub use ifconf::{get_conf, ifconf};
pub use ifreq::*;
pub use inet6::{add_addr6, del_addr6, ioctl6, IN6_IFREQ_SIZE, SIOCDIFADDR6, SIOCSIFADDR6};
pub use ioctl::ioctl;
pub use procnet::{proc_net_if_inet6, proc_net_ipv6_route, proc_net_route};
pub use procnetdev::{proc_net_dev, proc_net_dev_bytes, PROC_NET_DEV_HEADER};
pub use rtentry::{route_ioctl, RTENTRY_DEV, RTENTRY_SIZE, SIOCADDRT, SIOCDELRT};
pub use rtinfo::is_local;
pub use typed::*;

#[cfg(test)]
mod procnet_tests;
#[cfg(test)]
mod tests;
