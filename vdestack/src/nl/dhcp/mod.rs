//! A DHCPv4 client for the configuration string (`dhcp`, as in iothconf).
//!
//! * [`client`]: the state machine, free of I/O (messages in and out are
//!   encoded and decoded with the `dhcproto` crate);
//! * [`kernel`]: its I/O on a kernel stack (a UDP socket made in the stack), the
//!   lease put on the interface, and the [`kernel::Renewer`] thread.
//!
//! ## Who renews, and for how long
//!
//! [`acquire`] gets a lease, puts its address and default route on the
//! interface, and starts a renewer thread in the calling process, kept in a table
//! of the process keyed by the interface (its network namespace and index). The
//! renewer lives until `-dhcp` asks for the lease back ([`release`]: a
//! DHCPRELEASE, and the address and route removed), until the interface goes
//! away (its stack dropped), or until the process ends (the lease then simply
//! runs out at the server). `vdestack ip config ...,dhcp`, a process that exits at
//! once, hands the lease to a renewer process of its own instead (see the
//! command's documentation); `-dhcp` finds either.

use std::io;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketType};

pub mod client;
#[cfg(test)]
mod client_tests;
pub mod kernel;

pub use client::{Client, Event, Lease, State};
pub use kernel::{MakeSocket, Renewer};

use super::NlClient;

/// DHCP done by a stack itself rather than over sockets made in it (a
/// user-space stack runs the client in its engine): what the configuration
/// strings call when the stack's netlink client has one.
pub(crate) trait DhcpDriver: Send + Sync + std::fmt::Debug {
    /// Gets a lease for link `index` (or the one held), puts it on the link and
    /// keeps it renewed; waits at most `timeout`.
    fn acquire(&self, index: u32, hostname: Option<&str>, timeout: Duration) -> io::Result<Lease>;

    /// Gives back the lease of link `index`; whether there was one.
    fn release(&self, index: u32) -> io::Result<bool>;

    /// The lease held for link `index`.
    #[allow(dead_code)] // for `vdestack vu` and diagnostics
    fn lease(&self, index: u32) -> Option<Lease>;
}

/// How long [`acquire`] waits for a server.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The renewers of this process: (network namespace cookie, interface index).
static RENEWERS: Mutex<Vec<(u64, u32, Renewer)>> = Mutex::new(Vec::new());

/// A new UDP socket in the stack, and the cookie of the stack's namespace.
fn udp(make: MakeSocket<'_>) -> io::Result<(std::os::fd::OwnedFd, u64)> {
    let fd = make(AddressFamily::INET, SocketType::DGRAM, None)?;
    let cookie = crate::sys::netns_cookie(fd.as_fd())?;
    Ok((fd, cookie))
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    u32::from_ne_bytes(b) ^ std::process::id()
}

/// Gets a lease for interface `index` of the stack that `nl` and `make` reach,
/// puts it on the interface, and keeps it renewed (see the module docs).
/// `hostname` is sent to the server. Returns the lease.
pub fn acquire(
    nl: &NlClient,
    make: MakeSocket<'_>,
    index: u32,
    hostname: Option<&str>,
) -> io::Result<Lease> {
    // Asking again for an interface whose lease is kept is no error, and changes
    // nothing (as adding an address that is there): the lease held is the answer.
    let (_, cookie) = udp(make)?;
    {
        let mut table = RENEWERS.lock().unwrap_or_else(|e| e.into_inner());
        table.retain(|(_, _, r)| r.running());
        let held = table
            .iter()
            .find(|(c, i, _)| *c == cookie && *i == index)
            .and_then(|(_, _, r)| r.lease());
        if let Some(lease) = held {
            kernel::install(nl, index, &lease)?;
            return Ok(lease);
        }
    }
    let (cookie, renewer) = start(nl, make, index, hostname)?;
    let lease = renewer.lease().expect("a new renewer holds its lease");
    let mut table = RENEWERS.lock().unwrap_or_else(|e| e.into_inner());
    table.push((cookie, index, renewer));
    Ok(lease)
}

/// [`acquire`] without the table: the caller owns the renewer (dropping it
/// releases the lease). Returns the namespace cookie too.
pub fn start(
    nl: &NlClient,
    make: MakeSocket<'_>,
    index: u32,
    hostname: Option<&str>,
) -> io::Result<(u64, Renewer)> {
    let ifname = nl.link_name(index)?;
    let mac = nl.link_mac(index)?;
    let (fd, cookie) = udp(make)?;
    let port = kernel::Port::open(fd, &ifname)?;
    let epoch = Instant::now();
    let mut client = Client::new(
        mac,
        random_u32(),
        hostname.map(str::to_string),
        Duration::ZERO,
    );
    let lease = kernel::acquire(&mut client, &port, epoch, TIMEOUT)?;
    let done = kernel::install(nl, index, &lease);
    let netlink = || {
        // NETLINK_ROUTE is protocol 0: the family's default.
        make(AddressFamily::NETLINK, SocketType::RAW, None)
    };
    let renewer = done
        .and_then(|_| {
            Ok((
                NlClient::from_fd(netlink()?),
                kernel::link_watch(netlink()?)?,
            ))
        })
        .and_then(|(own_nl, watch)| {
            Renewer::start(kernel::Renewal {
                client,
                port,
                nl: own_nl,
                watch,
                index,
                epoch,
            })
        });
    match renewer {
        Ok(r) => Ok((cookie, r)),
        Err(e) => {
            let _ = kernel::uninstall(nl, index, &lease);
            Err(e)
        }
    }
}

/// Gives back the lease of interface `index` that a renewer of this process holds
/// (or, failing that, a renewer process started by `vdestack ip config`): a
/// DHCPRELEASE, and its address and route taken off the interface. Returns
/// whether there was one.
pub fn release(make: MakeSocket<'_>, index: u32) -> io::Result<bool> {
    let (_, cookie) = udp(make)?;
    let mine = {
        let mut table = RENEWERS.lock().unwrap_or_else(|e| e.into_inner());
        let at = table
            .iter()
            .position(|(c, i, _)| *c == cookie && *i == index);
        at.map(|at| table.swap_remove(at).2)
    };
    if let Some(r) = mine {
        r.release();
        return Ok(true);
    }
    renewer_process::stop(cookie, index)
}

/// The cookie of the network namespace `make` makes sockets in.
pub fn netns_cookie(make: MakeSocket<'_>) -> io::Result<u64> {
    Ok(udp(make)?.1)
}

/// Whether a renewer of this process still keeps the lease of interface `index`
/// (it stops when the interface goes away).
pub fn running(make: MakeSocket<'_>, index: u32) -> io::Result<bool> {
    let (_, cookie) = udp(make)?;
    let table = RENEWERS.lock().unwrap_or_else(|e| e.into_inner());
    Ok(table
        .iter()
        .any(|(c, i, r)| *c == cookie && *i == index && r.running()))
}

/// The lease a renewer of this process holds for interface `index`.
pub fn lease(make: MakeSocket<'_>, index: u32) -> io::Result<Option<Lease>> {
    let (_, cookie) = udp(make)?;
    let table = RENEWERS.lock().unwrap_or_else(|e| e.into_inner());
    Ok(table
        .iter()
        .find(|(c, i, _)| *c == cookie && *i == index)
        .and_then(|(_, _, r)| r.lease()))
}

pub mod renewer_process;
