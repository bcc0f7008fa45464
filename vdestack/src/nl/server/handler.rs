//! What a served stack implements: one [`Handler`] per rtnetlink family (links,
//! addresses, routes), in the spirit of libnlq's request table (`upstream.md` §4.3:
//! search, get, new, del, set) but typed: requests and replies are
//! `netlink-packet-route` messages, errors are typed errno values ([`Errno`]).
//!
//! The handlers hold no netlink framing and no flag logic: [`super::Server`] decides,
//! like the kernel, which of them a request reaches (`NLM_F_CREATE`, `NLM_F_EXCL`,
//! `NLM_F_REPLACE`, dumps), and frames every reply.

use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;

/// Why [`Handler::find`] is called: the kernel matches a deletion differently from
/// a creation (e.g. an IPv4 address is deleted by any of its attributes, created
/// anew unless local address and prefix both match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// A NEW request: does the object exist already?
    New,
    /// A DEL request.
    Del,
    /// A SET request.
    Set,
}

/// The errno a handler fails with (`Errno::NODEV`, ...): the value the kernel
/// would put, negated, in its `NLMSG_ERROR` reply.
pub use rustix::io::Errno;

/// One family's objects (links, addresses or routes) of a served stack.
///
/// `M` is the family's message type; `Key` identifies one object between
/// [`Handler::find`] and the call that acts on it.
pub trait Handler<M> {
    /// Identifies one object (an index, a position, a copy of the key fields).
    type Key;

    /// The object a request names (by index, name, address, prefix, ...), `Ok(None)`
    /// if there is none, or an error when the request names nothing usable (e.g.
    /// `EINVAL` for a link request with neither index nor name, `ENODEV` for an
    /// address on a link that does not exist).
    fn find(&self, req: &M, intent: Intent) -> Result<Option<Self::Key>, Errno>;

    /// The reply to a non-dump GET (the object it names, or for routes the route a
    /// lookup picks), or the errno the kernel gives when there is none.
    fn get(&self, req: &M) -> Result<M, Errno>;

    /// Every object a dump request selects (at least by address family, which the
    /// request's header carries; a dump whose header was too short to parse gets a
    /// default message of the family it named).
    fn dump(&self, req: &M) -> Vec<M>;

    /// Creates the object the request describes (it does not exist yet).
    fn create(&mut self, req: &M) -> Result<(), Errno>;

    /// Changes an existing object (SET, or NEW without `NLM_F_EXCL` on links, NEW
    /// with `NLM_F_REPLACE` on addresses and routes).
    fn change(&mut self, key: Self::Key, req: &M) -> Result<(), Errno>;

    /// Deletes an existing object.
    fn delete(&mut self, key: Self::Key, req: &M) -> Result<(), Errno>;
}

/// A whole served stack: links, addresses and routes.
pub trait RtStack: Handler<LinkMessage> + Handler<AddressMessage> + Handler<RouteMessage> {}

impl<T> RtStack for T where T: Handler<LinkMessage> + Handler<AddressMessage> + Handler<RouteMessage>
{}
