//! A netlink "dialog": one request in, its replies out. It is either the kernel
//! (a NETLINK_ROUTE socket) or a stack served in user space (the
//! netlink server of `nl::server`), so that what is written on top of it (the
//! netdevice ioctl and `/proc/net/dev` emulation) is written once for both, as
//! libnlq's `nlq_general_rtdialog` does. [`crate::nl::NlClient`] works over any
//! dialog too.

use std::io;
use std::time::Duration;

/// One request, its replies.
pub trait Dialog {
    /// Sends `request`, one complete netlink message (the dialog may rewrite its
    /// `nlmsg_seq` and `nlmsg_pid`), and returns every reply message, each one whole
    /// (header included), up to and including the one that ends the exchange: an
    /// `NLMSG_DONE` for a dump (`NLM_F_DUMP`), an `NLMSG_ERROR` (an error, or the
    /// ACK that `NLM_F_ACK` asks for) otherwise. Callers that want an end to wait
    /// for set `NLM_F_ACK` on every request that is not a dump.
    fn dialog(&mut self, request: &[u8]) -> io::Result<Vec<Vec<u8>>>;

    /// Sets how long to wait for each part of an answer (`None`: for ever). A
    /// dialog that answers at once (a server in this process) ignores it, as the
    /// default does.
    fn set_timeout(&mut self, timeout: Option<Duration>) {
        let _ = timeout;
    }
}
