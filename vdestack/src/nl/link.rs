//! Links: names and indexes, up/down, MTU, MAC, add/delete, bridge ports,
//! namespaces, listing.
//!
//! The nlinline calls use the byte-exact builders of [`super::nlinline`]; typed link
//! kinds are encoded in [`super::kind`]; replies are decoded in [`super::decode`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::client::NlClient;
use super::decode::{self, Link};
use super::kind::{build_link_add, LinkKind};
use super::nlinline;
use super::wire::{
    self, Builder, IFLA_IFNAME, IFLA_MASTER, IFLA_NET_NS_FD, NLM_F_ACK, NLM_F_REQUEST, RTM_GETLINK,
    RTM_NEWLINK,
};
use crate::error::context;

impl NlClient {
    /// The index of link `name` (the request of nlinline's `if_nametoindex`);
    /// `ENODEV` if there is none.
    pub fn link_index(&self, name: &str) -> io::Result<u32> {
        let msg = nlinline::build_if_nametoindex(0, name)?;
        let ans = self.exchange(&msg, || format!("index of link {name}"))?;
        ans.msgs
            .iter()
            .find(|(k, _)| *k == RTM_NEWLINK)
            .map(|(_, p)| decode::link_index(p))
            .unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ENODEV)))
    }

    /// The name of link `index`; `ENODEV` if there is none.
    pub fn link_name(&self, index: u32) -> io::Result<String> {
        Ok(self.link(index)?.name)
    }

    /// Every link as (index, name), like `if_nameindex(3)`.
    pub fn link_names(&self) -> io::Result<Vec<(u32, String)>> {
        Ok(self
            .links()?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect())
    }

    /// One link by index.
    pub fn link(&self, index: u32) -> io::Result<Link> {
        let msg = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 0)
            .ifinfomsg(0, index, 0, 0)
            .finish();
        let ans = self.exchange(&msg, || format!("get link {index}"))?;
        match ans.msgs.iter().find(|(k, _)| *k == RTM_NEWLINK) {
            Some((_, p)) => decode::link(p),
            None => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        }
    }

    /// Every link (a dump).
    pub fn links(&self) -> io::Result<Vec<Link>> {
        self.dump(RTM_GETLINK, &[0; 16], RTM_NEWLINK, "dump links")?
            .iter()
            .map(|p| decode::link(p))
            .collect()
    }

    /// Sets link `index` up or down (nlinline's `linksetupdown`).
    pub fn link_set_up(&self, index: u32, up: bool) -> io::Result<()> {
        let what = || format!("set link {index} {}", if up { "up" } else { "down" });
        self.ack(what, |s| Ok(nlinline::build_linksetupdown(s, index, up)))?;
        Ok(())
    }

    /// Sets the MTU of link `index` (nlinline's `linksetmtu`).
    pub fn link_set_mtu(&self, index: u32, mtu: u32) -> io::Result<()> {
        let what = || format!("set mtu {mtu} on link {index}");
        self.ack(what, |s| Ok(nlinline::build_linksetmtu(s, index, mtu)))?;
        Ok(())
    }

    /// Sets the MAC address of link `index` (nlinline's `linksetaddr`).
    pub fn link_set_mac(&self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        let what = || format!("set mac on link {index}");
        self.ack(what, |s| Ok(nlinline::build_linksetaddr(s, index, mac)))?;
        Ok(())
    }

    /// The MAC address of link `index` (nlinline's `linkgetaddr`); `ENOENT` if the
    /// link has none of 6 bytes.
    pub fn link_mac(&self, index: u32) -> io::Result<[u8; 6]> {
        let msg = nlinline::build_linkgetaddr(0, index);
        let ans = self.exchange(&msg, || format!("get mac of link {index}"))?;
        let l = match ans.msgs.first() {
            Some((RTM_NEWLINK, p)) => decode::link(p)?,
            _ => return Err(io::Error::from_raw_os_error(libc::ENODEV)),
        };
        match l.mac.as_deref() {
            Some(m) if m.len() >= 6 => Ok([m[0], m[1], m[2], m[3], m[4], m[5]]),
            _ => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }

    /// Creates link `name` of `kind`; returns its index.
    pub fn link_add(&self, name: &str, kind: &LinkKind) -> io::Result<u32> {
        self.ack(
            || format!("add link {name} ({kind:?})"),
            |s| build_link_add(s, name, kind),
        )?;
        self.link_index(name)
    }

    /// Makes link `index` a port of bridge `master`, or frees it with `None`
    /// (`ENODEV`, and no change, if `master` does not exist).
    pub fn link_set_master(&self, index: u32, master: Option<u32>) -> io::Result<()> {
        let what = || match master {
            Some(m) => format!("set master {m} on link {index}"),
            None => format!("free link {index} from its master"),
        };
        // Linux frees the port from its old master before it looks the new one up,
        // and answers EINVAL when that is missing: check first, so a bad index is
        // ENODEV and changes nothing.
        if let Some(m) = master {
            self.link(m).map_err(|e| context(e, what()))?;
        }
        self.ack(what, |s| {
            Ok(build_link_u32(s, index, IFLA_MASTER, master.unwrap_or(0)))
        })?;
        Ok(())
    }

    /// Renames link `index` to `name` (the kernel refuses a link that is up with
    /// `EBUSY`, a taken name with `EEXIST`).
    pub fn link_set_name(&self, index: u32, name: &str) -> io::Result<()> {
        nlinline::check_ifname(name)?;
        self.ack(
            || format!("rename link {index} to {name}"),
            |s| {
                Ok(Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, s)
                    .ifinfomsg(0, index, 0, 0)
                    .attr_str(IFLA_IFNAME, name)
                    .finish())
            },
        )?;
        Ok(())
    }

    /// Moves link `index` into the network namespace `netns` (an open
    /// `/proc/PID/ns/net` or `/run/netns/NAME`, or `Stack::netns`), e.g. one end
    /// of a veth pair into another stack. The link then leaves this client's
    /// namespace.
    pub fn link_set_netns(&self, index: u32, netns: BorrowedFd<'_>) -> io::Result<()> {
        let fd = netns.as_raw_fd() as u32;
        let what = || format!("move link {index} to another network namespace");
        self.ack(what, |s| Ok(build_link_u32(s, index, IFLA_NET_NS_FD, fd)))?;
        Ok(())
    }

    /// Sends a prebuilt request (one whole message, `nlmsg_len` its length; it
    /// should ask for an ack, else its one reply ends it) and returns what
    /// nlinline's `nldialog` returns: the ack's value (0, or e.g. a new index from
    /// a served stack), or the index of an `RTM_NEWLINK` reply.
    pub fn request(&self, msg: &[u8]) -> io::Result<i32> {
        let parts =
            wire::split(msg).map_err(|_| nlinline::einval("request: not one netlink message"))?;
        if parts.len() != 1 {
            return Err(nlinline::einval("request: not one netlink message"));
        }
        let ans = self.exchange(msg, || "netlink request".to_string())?;
        match ans.msgs.iter().find(|(k, _)| *k == RTM_NEWLINK) {
            Some((_, p)) => Ok(decode::link_index(p)? as i32),
            None => Ok(ans.ack.unwrap_or(0)),
        }
    }

    /// Deletes link `index`.
    pub fn link_del(&self, index: u32) -> io::Result<()> {
        self.link_del_named(None, index)
    }

    /// Deletes link `name`.
    pub fn link_del_by_name(&self, name: &str) -> io::Result<()> {
        self.link_del_named(Some(name), 0)
    }

    /// Deletes a link by name, by index, or both (nlinline's `iplink_del`).
    pub(crate) fn link_del_named(&self, name: Option<&str>, ifindex: u32) -> io::Result<()> {
        let what = || {
            format!(
                "delete link {}",
                name.map(str::to_string).unwrap_or(ifindex.to_string())
            )
        };
        self.ack(what, |s| nlinline::build_iplink_del(s, name, ifindex))?;
        Ok(())
    }
}

/// RTM_NEWLINK for link `index` with one u32 attribute (pure).
pub fn build_link_u32(seq: u32, index: u32, attr: u16, value: u32) -> Vec<u8> {
    Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .ifinfomsg(0, index, 0, 0)
        .attr_u32(attr, value)
        .finish()
}
