//! The messages between the application and its namespace helper, over a
//! `SOCK_SEQPACKET` pair (native-endian `i32` words; fds by `SCM_RIGHTS`).
//!
//! * Start-up, helper to application, one message per step: `[step, errno,
//!   value]`, with the step's fd attached when errno is 0: the pid (no fd; the
//!   value is the helper's pid), then the user namespace.
//! * A request: `[op, count, a, b, c]` plus, for [`OP_NET`], `count` interface
//!   names of [`NAME_LEN`] bytes each. For [`OP_NET`], `a` is 0 and `b` (bits 0-31)
//!   and `c` (bits 32-63) form a 64-bit mask, as unsigned words: tap `i` is opened
//!   with `IFF_VNET_HDR` (frames with a `virtio_net_hdr` in front) when bit `i` is
//!   set. The offloads themselves (`TUNSETOFFLOAD`; the header keeps its default
//!   length) are set by the application on the fd it receives. Attached: the
//!   socket to reply on, first; for [`OP_SOCKET`], the stack's network namespace
//!   second.
//! * A reply, on the request's own socket: `[errno, step, count]` with `count` fds
//!   attached when errno is 0 ([`OP_NET`]: the network namespace, then one tap per
//!   name; [`OP_SOCKET`]: the socket). On failure, `step` says what failed.

/// Start-up steps, in order.
pub const STEP_UNSHARE: i32 = 1;
pub const STEP_SETGROUPS: i32 = 2;
pub const STEP_UID_MAP: i32 = 3;
pub const STEP_GID_MAP: i32 = 4;
pub const STEP_PID: i32 = 5;
pub const STEP_USERNS: i32 = 6;

/// Request: a new network namespace with `count` taps.
pub const OP_NET: i32 = 1;
/// Request: `socket(a, b, c)` in the attached network namespace.
pub const OP_SOCKET: i32 = 2;

/// Failure steps of a request.
pub const FAIL_REQUEST: i32 = 0;
pub const FAIL_UNSHARE: i32 = 1;
pub const FAIL_NETNS: i32 = 2;
pub const FAIL_SETNS: i32 = 3;
pub const FAIL_SOCKET: i32 = 4;
/// Tap `i` failed: step `FAIL_TAP + i`.
pub const FAIL_TAP: i32 = 16;

/// Bytes of a request's fixed part and of one interface name (IFNAMSIZ).
pub const REQ_HEAD: usize = 20;
pub const NAME_LEN: usize = 16;
/// The most taps one request may ask for (so one reply carries every fd).
pub const MAX_TAPS: usize = 64;
/// The longest request.
pub const REQ_MAX: usize = REQ_HEAD + MAX_TAPS * NAME_LEN;
/// A start-up message or a reply: three words.
pub const REPLY_LEN: usize = 12;
