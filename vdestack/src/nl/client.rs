//! [`NlClient`]: the one netlink client core. It speaks to any [`Dialog`]: the
//! kernel through a `NETLINK_ROUTE` socket ([`KernelDialog`]), or a stack served in
//! user space ([`crate::nl::server::Server`], in process: no socket pair, no
//! thread). What an answer means (acks, errors, dump ends) and the retries of
//! interrupted dumps live in [`answer`](super::answer), shared with the ioctl
//! emulation; sequence numbers and timeouts are the kernel dialog's (only a socket
//! can hold a stale reply or keep one waiting).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Duration;

use super::answer::{self, Answer};
use super::dialog::Dialog;
use super::kernel_dialog::KernelDialog;
use crate::error::context;

/// A netlink route client: configure a stack's links, addresses and routes.
///
/// Made over the host's kernel ([`NlClient::new`]), a `NETLINK_ROUTE` socket the
/// caller made, e.g. inside another network stack ([`NlClient::from_fd`];
/// `Stack::netlink` does this), or any [`Dialog`] ([`NlClient::from_dialog`]).
///
/// It can be shared between threads: requests take turns on the dialog, so no
/// thread reads another's answer.
pub struct NlClient {
    dialog: Mutex<Box<dyn Dialog + Send>>,
    /// DHCP done by the stack itself (a user-space stack's).
    dhcp: Option<std::sync::Arc<dyn super::dhcp::DhcpDriver>>,
}

impl std::fmt::Debug for NlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlClient").finish_non_exhaustive()
    }
}

impl NlClient {
    /// A client of the host's kernel: a `NETLINK_ROUTE` socket (close-on-exec),
    /// bound to port 0.
    pub fn new() -> io::Result<Self> {
        Ok(Self::from_dialog(KernelDialog::new()?))
    }

    /// A client over a `NETLINK_ROUTE` socket the caller made (in this or another
    /// network namespace or stack). It needs no bind: the kernel binds it on first
    /// send. Any datagram socket whose peer answers rtnetlink works too (e.g. one
    /// end of a socket pair served by [`crate::nl::server::spawn_socket`]).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self::from_dialog(KernelDialog::from_fd(fd))
    }

    /// A client over any dialog, e.g. a [`crate::nl::server::Server`] answering in
    /// this thread.
    pub fn from_dialog(dialog: impl Dialog + Send + 'static) -> Self {
        NlClient {
            dialog: Mutex::new(Box::new(dialog)),
            dhcp: None,
        }
    }

    /// The client of a stack that does DHCP itself.
    pub(crate) fn with_dhcp(mut self, d: std::sync::Arc<dyn super::dhcp::DhcpDriver>) -> Self {
        self.dhcp = Some(d);
        self
    }

    /// The stack's own DHCP, if it has one (else DHCP goes over sockets made in
    /// the stack).
    pub(crate) fn dhcp_driver(&self) -> Option<&std::sync::Arc<dyn super::dhcp::DhcpDriver>> {
        self.dhcp.as_ref()
    }

    /// Sets how long to wait for each datagram of an answer (`None`: for ever);
    /// the default is [`REPLY_TIMEOUT`](super::REPLY_TIMEOUT). A dialog that
    /// answers at once (a server in process) has nothing to wait for.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.dialog
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .set_timeout(timeout);
    }

    /// Sends one request and reads its whole answer; `what` names the request in
    /// errors. A negative error from the peer is an `io::Error` with that errno.
    pub(crate) fn exchange(&self, msg: &[u8], what: impl FnOnce() -> String) -> io::Result<Answer> {
        answer::exchange(&mut **self.turn(), msg).map_err(|e| context(e, what()))
    }

    /// Sends a request built by `build` (given a sequence number; the dialog may
    /// renumber it) that ends in an acknowledgement; returns the ack's value (0,
    /// or e.g. a new link's index from a served stack).
    pub(crate) fn ack(
        &self,
        what: impl FnOnce() -> String,
        build: impl FnOnce(u32) -> io::Result<Vec<u8>>,
    ) -> io::Result<i32> {
        let msg = build(0)?;
        Ok(self.exchange(&msg, what)?.ack.unwrap_or(0))
    }

    /// Dumps every object of request type `kind` (`RTM_GETLINK`, ...) with the
    /// fixed header `fixed`; returns the payloads of the messages of type `reply`.
    /// A dump the peer marks interrupted is retried.
    pub(crate) fn dump(
        &self,
        kind: u16,
        fixed: &[u8],
        reply: u16,
        what: &str,
    ) -> io::Result<Vec<Vec<u8>>> {
        answer::dump(&mut **self.turn(), kind, fixed, reply).map_err(|e| context(e, what))
    }

    /// One request (one whole message) and every reply message, as the dialog
    /// gives them: for a server that passes a program's requests on (`vu`).
    pub(crate) fn raw_dialog(&self, request: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.turn().dialog(request)
    }

    fn turn(&self) -> std::sync::MutexGuard<'_, Box<dyn Dialog + Send>> {
        // A poisoned lock only means another request panicked; a kernel dialog
        // skips the stale replies it may have left by sequence number.
        self.dialog.lock().unwrap_or_else(|p| p.into_inner())
    }
}
