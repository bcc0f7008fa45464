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
//! | `socket.rs` | [`spawn_socket`]: a socket pair whose far end a thread serves, for [`crate::nl::NlClient::from_fd`] (in process, with no socket and no thread: [`crate::nl::NlClient::from_dialog`]) |

//! Checked against the kernel by `tests/nl_server_diff.rs` (iproute2's captured
//! requests and our client's, replayed on a fresh namespace and on [`MemStack`]).
//! Known differences from the kernel, kept on purpose or not yet modelled:
//!
//! - neighbours, rules, qdiscs, nexthop objects, ...: `EOPNOTSUPP` (the kernel
//!   serves them);
//! - no extended ACKs (`NETLINK_EXT_ACK` TLVs) and no `NETLINK_CAP_ACK`: errors
//!   always echo the whole request, as the kernel does for a socket without those
//!   options;
//! - dump filters (strict checking, `IFLA_MASTER`, kind, table) are not applied:
//!   a dump selects by address family only, as the kernel does for sockets without
//!   `NETLINK_GET_STRICT_CHK`; `IFLA_EXT_MASK`'s `SKIP_STATS` is honoured;
//! - a request whose attributes the crate cannot parse is `EINVAL` (the kernel's
//!   lenient parser ignores a malformed tail); the policies the kernel answers with
//!   `ERANGE` are checked first (`validate.rs`);
//! - on purpose, libnlq's extension: a NEWLINK whose `IFLA_NEW_IFINDEX` is
//!   nlinline's 1-byte "ask" or libnlq's u32 0 makes the link and returns its index
//!   (positive) in the ACK, which is how nlinline's `iplink_add` learns it; Linux
//!   has no such request and answers `ERANGE` (other values below 1 are `ERANGE`
//!   here too);
//! - a NEWROUTE without `NLM_F_EXCL`/`NLM_F_REPLACE` for a prefix and metric that
//!   exist is `EEXIST` even when the next hop differs (the kernel would add a
//!   second route); `NLM_F_APPEND` and multipath are not modelled.

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
