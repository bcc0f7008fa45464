//! The DHCP client's I/O on a kernel stack: a UDP socket made in the stack, on
//! port 68, bound to the interface (`SO_BINDTODEVICE`) and allowed to broadcast;
//! the lease put on the interface through netlink; and the [`Renewer`], a thread
//! that keeps the lease alive.
//!
//! The socket comes from the caller (a socket maker), so the same code serves the
//! host's namespace, a `vdestack ns` shell and a [`crate::stack::Stack`]. Making a
//! socket in a stack's namespace from the application works because the
//! application owns the stack's user namespace (binding port 68 and
//! `SO_BINDTODEVICE` need that namespace's capabilities).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{AddressFamily, Protocol, SocketType};

use super::client::{Client, Event, Lease, Outgoing, PORTS};
use crate::error::context;
use crate::nl::{AddrSpec, NlClient, RouteSpec};

/// Makes a socket in the stack being configured, close-on-exec: the signature of
/// `Stack::socket` (`&|d, t, p| stack.socket(d, t, p)`); [`host_socket`] for the
/// caller's own namespace.
pub type MakeSocket<'a> =
    &'a (dyn Fn(AddressFamily, SocketType, Option<Protocol>) -> io::Result<OwnedFd> + Sync);

/// A socket of the caller's own namespace (close-on-exec).
pub fn host_socket(
    domain: AddressFamily,
    ty: SocketType,
    protocol: Option<Protocol>,
) -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        domain,
        ty,
        rustix::net::SocketFlags::CLOEXEC,
        protocol,
    )?)
}

/// The client's UDP port 68 on one interface.
#[derive(Debug)]
pub struct Port {
    fd: OwnedFd,
    ifname: String,
}

impl Port {
    /// Prepares a UDP socket (made in the stack) for DHCP on `ifname`.
    pub fn open(fd: OwnedFd, ifname: &str) -> io::Result<Self> {
        let what = |e: io::Error| context(e, format!("dhcp on {ifname}: the UDP socket"));
        crate::sys::bind_to_device(fd.as_fd(), ifname).map_err(what)?;
        rustix::net::sockopt::set_socket_broadcast(&fd, true).map_err(|e| what(e.into()))?;
        rustix::net::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| what(e.into()))?;
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORTS.0));
        rustix::net::bind(&fd, &any).map_err(|e| what(e.into()))?;
        crate::sys::set_nonblocking(fd.as_fd())?;
        Ok(Port {
            fd,
            ifname: ifname.to_string(),
        })
    }

    /// The socket (to poll).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends a datagram to the server port.
    pub fn send(&self, out: &Outgoing) -> io::Result<()> {
        let to = SocketAddr::V4(SocketAddrV4::new(out.to, PORTS.1));
        rustix::net::sendto(&self.fd, &out.bytes, rustix::net::SendFlags::empty(), &to)
            .map(|_| ())
            .map_err(|e| context(e, format!("dhcp on {}: sending to {}", self.ifname, out.to)))
    }

    /// Receives a datagram, if one waits.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::net::recv(&self.fd, &mut *buf, rustix::net::RecvFlags::empty()) {
            Ok((n, _)) => Ok(Some(n)),
            Err(Errno::AGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Waits until `fds` has something or `until` (`None`: for ever); returns the
/// readable ones.
fn wait(fds: &[BorrowedFd<'_>], until: Option<Instant>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|f| PollFd::new(f, PollFlags::IN)).collect();
    let timeout = until.map(|u| {
        let d = u.saturating_duration_since(Instant::now());
        Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        }
    });
    match poll(&mut pfds, timeout.as_ref()) {
        Ok(_) | Err(Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect())
}

/// Runs `client` until it holds a lease, or `timeout` passes.
pub fn acquire(
    client: &mut Client,
    port: &Port,
    epoch: Instant,
    timeout: Duration,
) -> io::Result<Lease> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 1500];
    loop {
        let now = epoch.elapsed();
        let (out, _) = client.poll(now);
        if let Some(o) = out {
            port.send(&o)?;
        }
        while let Some(n) = port.recv(&mut buf)? {
            if let Some(Event::Bound(lease)) = client.handle(&buf[..n], epoch.elapsed()) {
                return Ok(lease);
            }
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "dhcp on {}: no lease from a DHCP server in {} s",
                    port.ifname,
                    timeout.as_secs()
                ),
            ));
        }
        let wake = client.next_wake().map(|w| epoch + w).unwrap_or(deadline);
        wait(&[port.fd()], Some(wake.min(deadline)))?;
    }
}

fn addr_of(index: u32, lease: &Lease) -> AddrSpec {
    AddrSpec::new(index, lease.addr.into(), lease.prefix)
}

fn route_of(index: u32, router: Ipv4Addr) -> RouteSpec {
    RouteSpec::default_v4().via(router.into()).dev(index)
}

fn harmless(e: &io::Error, codes: &[i32]) -> bool {
    codes.contains(&crate::error::errno_of(e))
}

/// Puts a lease on interface `index`: its address, and a default route via its
/// router. What is already there is no error.
pub fn install(nl: &NlClient, index: u32, lease: &Lease) -> io::Result<()> {
    match nl.addr_add(&addr_of(index, lease)) {
        Err(e) if !harmless(&e, &[libc::EEXIST]) => {
            return Err(context(
                e,
                format!("dhcp: adding {}/{}", lease.addr, lease.prefix),
            ))
        }
        _ => {}
    }
    if let Some(r) = lease.router {
        match nl.route_add(&route_of(index, r)) {
            Err(e) if !harmless(&e, &[libc::EEXIST]) => {
                return Err(context(
                    e,
                    format!("dhcp: adding the default route via {r}"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Takes a lease off interface `index` (what is not there is no error).
pub fn uninstall(nl: &NlClient, index: u32, lease: &Lease) -> io::Result<()> {
    if let Some(r) = lease.router {
        match nl.route_del(&route_of(index, r)) {
            Err(e) if !harmless(&e, &[libc::ESRCH, libc::ENOENT, libc::ENODEV]) => return Err(e),
            _ => {}
        }
    }
    match nl.addr_del(&addr_of(index, lease)) {
        Err(e) if !harmless(&e, &[libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV]) => Err(e),
        _ => Ok(()),
    }
}

/// Moves a renewed lease's changes onto the interface (a new router).
fn update(nl: &NlClient, index: u32, old: &Lease, new: &Lease) -> io::Result<()> {
    if old.router != new.router {
        if let Some(r) = old.router {
            let _ = nl.route_del(&route_of(index, r));
        }
    }
    install(nl, index, new)
}

/// How a [`Renewer`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Asked to release the lease: given back, and taken off the interface.
    Released,
    /// The interface is gone (its stack was dropped).
    InterfaceGone,
}

/// Subscribes a netlink socket (made in the stack) to link changes: it turns
/// readable when an interface goes, so a renewer ends with its interface's stack.
pub fn link_watch(fd: OwnedFd) -> io::Result<OwnedFd> {
    const RTMGRP_LINK: u32 = 1;
    rustix::net::bind(
        &fd,
        &rustix::net::netlink::SocketAddrNetlink::new(0, RTMGRP_LINK),
    )?;
    crate::sys::set_nonblocking(fd.as_fd())?;
    Ok(fd)
}

/// What a renewer needs: the client holding a lease, its port, a netlink client
/// of the same stack, the interface.
#[derive(Debug)]
pub struct Renewal {
    /// The client, bound.
    pub client: Client,
    /// Its socket.
    pub port: Port,
    /// Netlink in the same stack.
    pub nl: NlClient,
    /// A [`link_watch`] socket of the same stack.
    pub watch: OwnedFd,
    /// The interface's index.
    pub index: u32,
    /// The instant the client's times count from.
    pub epoch: Instant,
}

/// Keeps a lease alive until `stop` is readable (then releases it), or the
/// interface goes. Renewals and rebinds update the interface; a lease that runs
/// out (or is refused) is taken off it and the client starts over, putting the
/// next lease on. `lease` always holds the current lease.
pub fn renew(r: Renewal, stop: BorrowedFd<'_>, lease: &Mutex<Option<Lease>>) -> Ended {
    let Renewal {
        mut client,
        port,
        nl,
        watch,
        index,
        epoch,
    } = r;
    let mut buf = vec![0u8; 1500];
    let set = |l: Option<Lease>| *lease.lock().unwrap_or_else(|e| e.into_inner()) = l;
    loop {
        let wake = client.next_wake().map(|w| {
            epoch
                .checked_add(w)
                .unwrap_or(epoch + Duration::from_secs(1 << 30))
        });
        let ready = match wait(&[port.fd(), stop, watch.as_fd()], wake) {
            Ok(r) => r,
            Err(_) => vec![false, true, false],
        };
        if ready[2] {
            let mut b = [0u8; 8192];
            while rustix::io::read(&watch, &mut b).is_ok_and(|n| n > 0) {}
        }
        // A stack's tap stays (persistent) while sockets hold its namespace, but
        // loses its carrier when the stack lets go of it: that ends the renewer too.
        match nl.link(index) {
            Ok(l) if l.flags & libc::IFF_LOWER_UP as u32 != 0 => {}
            _ => return Ended::InterfaceGone,
        }
        if ready[1] {
            if let Some(out) = client.release() {
                if let Err(e) = port.send(&out) {
                    log::warn!("{e}");
                }
            }
            if let Some(l) = lease.lock().unwrap_or_else(|e| e.into_inner()).take() {
                if let Err(e) = uninstall(&nl, index, &l) {
                    log::warn!("dhcp: taking {} off the interface: {e}", l.addr);
                }
            }
            return Ended::Released;
        }
        let mut events = Vec::new();
        while let Ok(Some(n)) = port.recv(&mut buf) {
            events.extend(client.handle(&buf[..n], epoch.elapsed()));
        }
        let (out, ev) = client.poll(epoch.elapsed());
        events.extend(ev);
        if let Some(o) = out {
            if let Err(e) = port.send(&o) {
                if matches!(crate::error::errno_of(&e), libc::ENODEV | libc::ENXIO) {
                    return Ended::InterfaceGone;
                }
                log::debug!("{e}");
            }
        }
        for e in events {
            let current = lease.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let r = match (&e, current) {
                (Event::Bound(new), _) => install(&nl, index, new).map(|_| set(Some(new.clone()))),
                (Event::Renewed(new), Some(old)) => {
                    update(&nl, index, &old, new).map(|_| set(Some(new.clone())))
                }
                (Event::Renewed(new), None) => {
                    install(&nl, index, new).map(|_| set(Some(new.clone())))
                }
                (Event::Expired(old) | Event::Nak(Some(old)), _) => {
                    set(None);
                    uninstall(&nl, index, old)
                }
                (Event::Nak(None), _) => Ok(()),
            };
            log::info!("dhcp: {e:?}");
            if let Err(err) = r {
                log::warn!("dhcp: {err}");
            }
        }
    }
}

/// A thread keeping a lease alive ([`renew`]), owned by whoever asked for the
/// lease. It ends when [`Renewer::release`] gives the lease back (or the handle
/// is dropped, which does the same), or when the interface goes away.
#[derive(Debug)]
pub struct Renewer {
    stop: OwnedFd,
    lease: Arc<Mutex<Option<Lease>>>,
    thread: Option<std::thread::JoinHandle<Ended>>,
}

impl Renewer {
    /// Starts the thread for a bound client.
    pub fn start(r: Renewal) -> io::Result<Self> {
        let stop = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        let lease = Arc::new(Mutex::new(r.client.lease().cloned()));
        let (their_stop, their_lease) = (stop.try_clone()?, lease.clone());
        let thread = std::thread::Builder::new()
            .name("vdestack-dhcp".into())
            .spawn(move || renew(r, their_stop.as_fd(), &their_lease))?;
        Ok(Renewer {
            stop,
            lease,
            thread: Some(thread),
        })
    }

    /// The lease held now (`None` between a lost lease and the next).
    pub fn lease(&self) -> Option<Lease> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the thread still runs (it ends when the interface goes).
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Gives the lease back (DHCPRELEASE), takes it off the interface, and ends
    /// the thread.
    pub fn release(mut self) -> Ended {
        self.finish()
    }

    fn finish(&mut self) -> Ended {
        let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(e)) => e,
            _ => Ended::InterfaceGone,
        }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}
