//! # vdestack: Internet of Threads in Rust
//!
//! Any program, thread or test gets private network stacks of its own, plugged into
//! virtual Ethernet networks (VDE), without root. This crate re-creates, and
//! interoperates with, the C libraries of the VirtualSquare project.
//!
//! ## Layers
//!
//! The crate is one library with layered modules. A module only uses the modules
//! below it:
//!
//! | layer | module | what it does |
//! |---|---|---|
//! | 0 | [`sys`], [`error`] | the only place with `unsafe`: what `rustix` lacks (tun and netdevice ioctls, user/group look-ups, the namespace helper's fork and its raw system calls, commands' clone, `setns` and capabilities before exec, `recvmmsg`, libslirp loaded at run time), each with a `// SAFETY:` comment; error context that keeps the errno |
//! | 1 | [`vde`] | VDE plugs: Ethernet frames over a transport chosen by a URL (a "VNL"), wire-compatible with libvdeplug4 (`vde://`, `hub://`, `switch://`, `multi://`, `bonding://`, `slirp://`, `vxvde://`, `vxlan://`, `udp://`, `ptp://`, `tap://`, `cmd://`, `seqpacket://`, `null://`, and `inproc://`, a switch inside the process); large segments cut (`gso`) and joined (`gro`) in software, batched sends |
//! | 1 | [`nl`] | netlink client over any rtnetlink socket: links, addresses, routes; nlinline's messages byte for byte; one-line configuration; a netlink server for stacks that are not the kernel (`nl::server`, libnlq's role) and the netdevice ioctl and `/proc/net/dev` emulation over either (`nl::emul`) |
//! | 2 | [`vu`] | unmodified programs whose network system calls a served stack answers (seccomp user notification; `--stack mem`, libnlq's VUOS demonstration) |
//! | 2 | [`stack`] | private network stacks (uses `sys`, `vde`, `nl`): one namespace helper process for all of them, taps relayed to plugs by a small pool of threads (or `veth://` kernel links), sockets and commands in the stack |
//!
//! Protocol logic is kept free of I/O where it can be (URL parsing, stream framing,
//! the hub/switch forwarding core, the vde_switch handshake encoding, segmentation and
//! coalescing, the netlink server), so it is unit-tested without sockets.
//!
//! ## Errors
//!
//! Everything that touches the OS returns [`std::io::Result`]. Bad input (a malformed
//! URL, an unknown option) is an [`std::io::Error`] of kind `InvalidInput` wrapping a
//! [`vde::UrlError`] that says what was wrong; nothing that comes from outside panics.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod nl;
pub mod stack;
pub mod sys;
pub mod vde;
pub mod vu;
