//! `veth://NAME`: stacks of this process joined by the kernel, with no relay.
//!
//! A network NAME is a kernel bridge in a network namespace of its own (made by the
//! namespace helper, like a stack's, so our user namespace owns it). Each stack
//! interface on it is a veth pair: one end, renamed to the interface's name, in the
//! stack; the other a port of the bridge. Frames never leave the kernel, and TCP
//! segments of up to 64 KiB cross in one piece (veth and the bridge keep GSO), so
//! this runs at veth speed. It joins only stacks of this process: a VDE peer needs
//! a relayed transport (`inproc://`, `vde://`, `vxvde://`, ...).
//!
//! The network lives while an interface is on it; an interface is deleted with its
//! stack (both veth ends go).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use crate::error::context;
use crate::nl::{LinkKind, NlClient};

use super::helper::SharedHelper;

/// The scheme, with its `://`.
pub(crate) const PREFIX: &str = "veth://";

/// One network: the bridge's namespace and a netlink client inside it.
#[derive(Debug)]
struct Segment {
    /// Keeps the namespace (and so the bridge) alive.
    _netns: OwnedFd,
    nl: NlClient,
    bridge: u32,
    /// Serialises attaching (the hub-side names come from `next`).
    next: Mutex<u32>,
}

static SEGMENTS: Mutex<Option<HashMap<String, Weak<Segment>>>> = Mutex::new(None);

/// One stack interface on a network: deleting it deletes both veth ends.
#[derive(Debug)]
pub(crate) struct Port {
    seg: Arc<Segment>,
    hub_index: u32,
}

impl Port {
    /// Deletes the pair: both ends go. A pair already gone (with its stack's
    /// namespace) is no error.
    pub(crate) fn delete(mut self) -> io::Result<()> {
        let r = self.del();
        self.hub_index = 0;
        r
    }

    fn del(&self) -> io::Result<()> {
        match self.seg.nl.link_del(self.hub_index) {
            Err(e) if crate::error::errno_of(&e) == libc::ENODEV => Ok(()),
            r => r,
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.hub_index != 0 {
            let _ = self.del();
        }
    }
}

/// The network name of a `veth://NAME` URL, or `None` for another scheme.
pub(crate) fn network_name(url: &str) -> Option<io::Result<&str>> {
    let name = url.strip_prefix(PREFIX)?;
    if name.is_empty() || name.contains('/') {
        return Some(Err(context(
            io::Error::from_raw_os_error(libc::EINVAL),
            format!("bad URL {url:?}: veth://NAME takes a name without '/'"),
        )));
    }
    Some(Ok(name))
}

fn segment(helper: &SharedHelper, name: &str) -> io::Result<Arc<Segment>> {
    let mut g = SEGMENTS.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(seg) = map.get(name).and_then(Weak::upgrade) {
        return Ok(seg);
    }
    let net = crate::sys::helper_new_net(helper.ctl()?, &[])?;
    let sock = crate::sys::helper_socket(
        helper.ctl()?,
        net.netns.as_fd(),
        libc::AF_NETLINK,
        libc::SOCK_RAW,
        libc::NETLINK_ROUTE,
    )?;
    let nl = NlClient::from_fd(sock);
    let bridge = nl
        .link_add("br0", &LinkKind::Bridge)
        .map_err(|e| context(e, format!("veth://{name}: the bridge")))?;
    nl.link_set_up(bridge, true)?;
    let seg = Arc::new(Segment {
        _netns: net.netns,
        nl,
        bridge,
        next: Mutex::new(0),
    });
    map.insert(name.to_string(), Arc::downgrade(&seg));
    Ok(seg)
}

/// Puts interface `ifname` (down, as a new tap is) into the stack whose network
/// namespace is `netns`, and plugs it into network `name`. `stack_nl` is a netlink
/// client inside the stack.
pub(crate) fn attach(
    helper: &SharedHelper,
    name: &str,
    ifname: &str,
    netns: BorrowedFd<'_>,
    stack_nl: &NlClient,
) -> io::Result<Port> {
    let seg = segment(helper, name)?;
    let mut next = seg.next.lock().unwrap_or_else(|e| e.into_inner());
    *next = next.wrapping_add(1);
    let (hub, peer) = (format!("h{}", *next), format!("p{}", *next));
    let what = |e| context(e, format!("interface {ifname} on veth://{name}"));
    let hub_index = seg
        .nl
        .link_add(&hub, &LinkKind::Veth { peer: peer.clone() })
        .map_err(what)?;
    // From here on, dropping `port` deletes the pair.
    let port = Port {
        seg: seg.clone(),
        hub_index,
    };
    let peer_index = seg.nl.link_index(&peer).map_err(what)?;
    seg.nl.link_set_netns(peer_index, netns).map_err(what)?;
    seg.nl
        .link_set_master(hub_index, Some(seg.bridge))
        .map_err(what)?;
    seg.nl.link_set_up(hub_index, true).map_err(what)?;
    drop(next);
    let inside = stack_nl.link_index(&peer).map_err(what)?;
    stack_nl.link_set_name(inside, ifname).map_err(what)?;
    Ok(port)
}
