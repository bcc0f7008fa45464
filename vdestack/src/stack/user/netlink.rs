//! `Stack::netlink` on a user-space stack: an [`NlClient`] over a [`Dialog`] that
//! locks the stack, has its netlink server ([`Server`](crate::nl::server::Server) over the stack's
//! [`MemStack`](crate::nl::server::MemStack)) answer, and applies the new state to the engine (addresses,
//! routes, links up or down, MTU). So nlinline's calls, configuration strings and
//! `vdestack ip` work on it unchanged.

use std::io;
use std::sync::{Arc, Weak};

use super::pool::Shared;
use crate::nl::dialog::Dialog;
use crate::nl::NlClient;

/// The dialog of one user-space stack.
struct UserDialog {
    shared: Weak<Shared>,
}

impl Dialog for UserDialog {
    fn dialog(&mut self, request: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(crate::error::context(
                io::Error::from_raw_os_error(libc::ENODEV),
                "the user-space stack is gone",
            ));
        };
        let replies = {
            let mut engine = shared.lock();
            let replies = engine.nl.dialog(request)?;
            engine.apply_config();
            replies
        };
        shared.kick();
        Ok(replies)
    }
}

/// A netlink client of the stack.
pub(super) fn client(shared: &Arc<Shared>) -> NlClient {
    NlClient::from_dialog(UserDialog {
        shared: Arc::downgrade(shared),
    })
    .with_dhcp(Arc::new(super::dhcp::UserDhcp {
        shared: Arc::downgrade(shared),
    }))
}

/// For unit tests: a client over a bare netlink server of a [`MemStack`], and the
/// server, to look at (no engine).
#[cfg(test)]
pub(super) fn test_client() -> (
    NlClient,
    Arc<std::sync::Mutex<crate::nl::server::Server<crate::nl::server::MemStack>>>,
) {
    use crate::nl::server::{MemStack, Server};
    use std::sync::Mutex;
    struct Bare(Arc<Mutex<Server<MemStack>>>);
    impl Dialog for Bare {
        fn dialog(&mut self, request: &[u8]) -> io::Result<Vec<Vec<u8>>> {
            self.0.lock().unwrap().dialog(request)
        }
    }
    let server = Arc::new(Mutex::new(Server::new(MemStack::new(), 1)));
    (NlClient::from_dialog(Bare(server.clone())), server)
}
