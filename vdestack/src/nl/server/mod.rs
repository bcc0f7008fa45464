//! Netlink server: answers rtnetlink requests for a stack that is not the kernel,
//! like libnlq's server side (`upstream.md` §4.3), but framed like the Linux kernel
//! where the two differ (ACK only on `NLM_F_ACK`, an ACK after a GET's reply, the
//! whole request echoed in errors, the requester's port id in replies).
//!
//! | file | what |
//! |---|---|
//! | `handler.rs` | [`Handler`]: what a stack implements, one impl per family (links, addresses, routes) |
//! | `dispatch.rs` | [`Server`]: splits requests, dispatches by family and `NLM_F_*` flags, no I/O; `impl Dialog` |
//! | `family.rs` | the per-family rules of the kernel (fixed header sizes, errnos, CREATE/EXCL/REPLACE) |
//! | `frame.rs` | reply framing: data, `NLMSG_DONE`, ACK and error messages |
//! | `validate.rs` | the kernel's attribute policies that the crate's parser cannot express (`ERANGE`) |
//! | `memstack/` | [`MemStack`]: a reference in-memory stack implementing the handlers |
//! | `socket.rs` | [`spawn_socket`]: a socket pair whose far end a thread serves, for [`crate::nl::NlClient`] |

mod dispatch;
mod family;
pub mod frame;
mod handler;
pub mod memstack;
mod socket;
mod validate;

pub use dispatch::Server;
pub use handler::{Errno, Handler, Intent, RtStack};
pub use memstack::MemStack;
pub use socket::spawn_socket;

#[cfg(test)]
mod tests;
