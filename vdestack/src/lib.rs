//! # vdestack: Internet of Threads in Rust
//!
//! Any program, thread or test gets private network stacks of its own, plugged into
//! virtual Ethernet networks (VDE), without root. This crate re-creates, and
//! interoperates with, the C libraries of the VirtualSquare project.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use vdestack::stack::Stack;
//!
//! // A stack of its own on a VDE network (here a distributed switch over multicast).
//! let stack = Stack::builder().interface("vde0", "vxvde://239.1.2.3").build()?;
//! vdestack::nl::config::configure(&stack.netlink()?, "iface=vde0 ip=10.0.0.1/24")?;
//! // Sockets with std's manners, made in the stack.
//! let listener = stack.tcp_listener("10.0.0.1:5000".parse().unwrap())?;
//! let (mut conn, _) = listener.accept()?;
//! let mut buf = [0u8; 1024];
//! let n = conn.read(&mut buf)?;
//! conn.write_all(&buf[..n])?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Layers
//!
//! The crate is one library with layered modules. A module only uses the modules
//! below it:
//!
//! | layer | module | what it does |
//! |---|---|---|
//! | 0 | `sys` (private), [`error`], [`config`] | `sys`: the only place with `unsafe`: what `rustix` lacks (tun and netdevice ioctls, user/group look-ups, the namespace helper's fork and its raw system calls, commands' clone, `setns` and capabilities before exec, `recvmmsg`, packet sockets, libslirp loaded at run time, seccomp user notification, tokio's fd registration), each with a `// SAFETY:` comment; error context that keeps the errno; [`Config`], the process-wide settings |
//! | 1 | [`vde`] | VDE plugs: Ethernet frames over a transport chosen by a URL (a "VNL"), wire-compatible with libvdeplug4 (`vde://`, `hub://`, `switch://`, `multi://`, `bonding://`, `slirp://`, `vxvde://`, `vxlan://`, `udp://`, `ptp://`, `tap://`, `cmd://`, `seqpacket://`, `null://`, the wrappers `vlan://` and `agno://`, `vdesl://`, `pcap://`, and `inproc://`, a switch inside the process); a small [`vde::Plug`] trait with optional capabilities; large segments cut (`gso`) and joined (`gro`) in software, batched sends |
//! | 1 | [`nl`] | netlink client over any dialog (a kernel socket, or a served stack in process): links, addresses, routes; nlinline's messages byte for byte (`nl::nlinline`); one-line configuration; a netlink server for stacks that are not the kernel (`nl::server`, libnlq's role) and the netdevice ioctl and `/proc/net/dev` emulation over either (`nl::emul`) |
//! | 2 | [`stack`], [`net`] | private network stacks (uses `sys`, `vde`, `nl`): a [`stack::StackBuilder`] choosing the backend, one namespace helper process for all kernel stacks, taps relayed to plugs by a small pool of threads (or `veth://` kernel links), typed sockets ([`net`]) and commands in the stack |
//! | 2 | [`vu`] | unmodified programs whose network system calls a served stack answers (seccomp user notification; `--stack mem`, libnlq's VUOS demonstration) |
//! | 3 | `tokio` (feature), [`process`], `diagnostics` (feature) | async sockets and plugs; `daemonize`; what tests and measurements look at inside |
//!
//! Protocol logic is kept free of I/O where it can be (URL parsing, stream framing,
//! the hub/switch forwarding core, the vde_switch handshake encoding, segmentation and
//! coalescing, the netlink server), so it is unit-tested without sockets.
//!
//! ## Cargo features
//!
//! | feature | what |
//! |---|---|
//! | `tokio` | `vdestack::tokio`: async `TcpListener`, `TcpStream`, `UdpSocket` made in a stack, and `AsyncPlug` |
//! | `serde` | `Serialize`/`Deserialize` on [`nl::Link`], [`nl::LinkStats`], [`nl::Addr`], [`nl::Route`] |
//! | `diagnostics` | `vdestack::diagnostics` and `Stack::helper_pid`: counters and internals for tests and measurements, not a stable API |
//!
//! ## Errors
//!
//! Everything that touches the OS returns [`std::io::Result`]. Bad input (a malformed
//! URL, an unknown option) is an [`std::io::Error`] of kind `InvalidInput` wrapping a
//! [`vde::UrlError`] that says what was wrong; nothing that comes from outside panics.
//! Read the errno of an error with [`error::errno_of`] (messages wrap the OS error).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
#[cfg(feature = "diagnostics")]
pub mod diagnostics;
pub mod error;
pub mod net;
pub mod nl;
pub mod process;
pub mod stack;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod vde;
pub mod vu;

pub use config::Config;

/// The README's Rust samples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
