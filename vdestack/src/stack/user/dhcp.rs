//! DHCPv4 on a user-space stack (`dhcp` in a configuration string): the crate's
//! I/O-free client ([`crate::nl::dhcp::Client`], the kernel backend's too) over
//! a smoltcp UDP socket on port 68 of the interface, run by the engine's poll
//! (no thread). Each lease goes into the stack's netlink state as the kernel
//! backend's renewer puts it on a kernel interface (address, default route),
//! and is renewed, rebound or taken off as the client says; `-dhcp` releases it.
//!
//! [`UserDhcp`] is what `nl::config` calls for a client of a user-space stack
//! (see [`crate::nl::dhcp::DhcpDriver`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant as StdInstant};

use smoltcp::socket::udp;
use smoltcp::wire::IpEndpoint;

use super::engine::{At, Engine};
use super::pool::Shared;
use super::ports::Proto;
use crate::nl::dhcp::{client::PORTS, Client, DhcpDriver, Event, Lease};
use crate::nl::dialog::Dialog;
use crate::nl::server::{MemStack, Server};
use crate::nl::NlClient;

/// One interface's DHCP client.
#[derive(Debug)]
pub(super) struct Dhcp {
    /// The link's netlink index.
    pub(super) link: u32,
    client: Client,
    at: At,
    epoch: StdInstant,
    /// The lease on the interface now.
    pub(super) lease: Option<Lease>,
}

impl Dhcp {
    /// When the client wants to run again.
    pub(super) fn deadline(&self) -> Option<StdInstant> {
        self.client.next_wake().map(|w| {
            self.epoch
                .checked_add(w)
                .unwrap_or(self.epoch + Duration::from_secs(1 << 30))
        })
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    u32::from_ne_bytes(b)
}

/// Starts a client on link `link` (up, with smoltcp state); `EBUSY` if one
/// runs there, `ENETDOWN` if the link is down.
fn start(engine: &mut Engine, link: u32, hostname: Option<&str>) -> Result<(), rustix::io::Errno> {
    use rustix::io::Errno;
    if engine.dhcp.iter().any(|d| d.link == link) {
        return Err(Errno::BUSY);
    }
    let pos = engine.iface_of(link).ok_or(Errno::NODEV)?;
    let mac = engine.ifaces[pos].mac;
    if !engine.ifaces[pos].up {
        return Err(Errno::NETDOWN);
    }
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORTS.0);
    engine.ports.take(Proto::Udp, any)?;
    let set = engine.sockets(pos).ok_or(Errno::NETDOWN)?;
    let mut s = udp::Socket::new(buffer(), buffer());
    if s.bind(PORTS.0).is_err() {
        return Err(Errno::ADDRINUSE);
    }
    let handle = set.add(s);
    engine.dhcp.push(Dhcp {
        link,
        client: Client::new(
            mac,
            random_u32(),
            hostname.map(str::to_string),
            Duration::ZERO,
        ),
        at: At { iface: pos, handle },
        epoch: StdInstant::now(),
        lease: None,
    });
    Ok(())
}

fn buffer() -> udp::PacketBuffer<'static> {
    udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0u8; 8 * 1500])
}

/// Runs every client of the stack: datagrams in, the client's timers, its
/// messages out, its leases onto the netlink state. Returns whether the
/// configuration changed.
pub(super) fn service(engine: &mut Engine) -> bool {
    let mut changed = false;
    let mut all = std::mem::take(&mut engine.dhcp);
    for d in &mut all {
        let Some(set) = engine.sockets(d.at.iface) else {
            continue;
        };
        let s = set.get_mut::<udp::Socket>(d.at.handle);
        let mut events = Vec::new();
        while let Ok((payload, _)) = s.recv() {
            events.extend(d.client.handle(payload, d.epoch.elapsed()));
        }
        let (out, ev) = d.client.poll(d.epoch.elapsed());
        events.extend(ev);
        if let Some(o) = out {
            send(s, d.lease.as_ref(), o.to, &o.bytes);
        }
        for e in events {
            log::info!("dhcp (user stack): {e:?}");
            let (old, new) = match e {
                Event::Bound(l) | Event::Renewed(l) => (d.lease.take(), Some(l)),
                Event::Expired(_) | Event::Nak(_) => (d.lease.take(), None),
            };
            if old != new {
                with_nl(engine, |nl| {
                    if let Some(o) = &old {
                        let _ = crate::nl::dhcp::kernel::uninstall(nl, d.link, o);
                    }
                    if let Some(n) = &new {
                        if let Err(e) = crate::nl::dhcp::kernel::install(nl, d.link, n) {
                            log::warn!("dhcp: {e}");
                        }
                    }
                });
                changed = true;
            }
            d.lease = new;
        }
    }
    all.append(&mut engine.dhcp);
    engine.dhcp = all;
    if changed {
        engine.apply_config();
    }
    changed
}

/// Sends a DHCP message to `to`'s server port: from the lease's address, or
/// from 0.0.0.0 before there is one.
fn send(s: &mut udp::Socket<'static>, lease: Option<&Lease>, to: Ipv4Addr, bytes: &[u8]) {
    let from = lease.map_or(Ipv4Addr::UNSPECIFIED, |l| l.addr);
    let meta = udp::UdpMetadata {
        endpoint: IpEndpoint::from(SocketAddr::new(IpAddr::V4(to), PORTS.1)),
        local_address: Some(IpAddr::V4(from).into()),
        meta: Default::default(),
    };
    if let Err(e) = s.send_slice(bytes, meta) {
        log::debug!("dhcp (user stack): a message not sent: {e}");
    }
}

/// Gives the lease of link `link` back (a DHCPRELEASE, its address and route
/// off); `false` if no client ran there.
fn stop(engine: &mut Engine, link: u32) -> bool {
    let Some(i) = engine.dhcp.iter().position(|d| d.link == link) else {
        return false;
    };
    let mut d = engine.dhcp.swap_remove(i);
    if let Some(set) = engine.sockets(d.at.iface) {
        if let Some(o) = d.client.release() {
            send(
                set.get_mut::<udp::Socket>(d.at.handle),
                d.lease.as_ref(),
                o.to,
                &o.bytes,
            );
        }
    }
    // The lease stays on the link until the release is out (it may wait for
    // the server's MAC address), at most [`RELEASE_WAIT`].
    engine.dhcp_done.push(Stopping {
        at: d.at,
        link,
        lease: d.lease.take(),
        until: StdInstant::now() + RELEASE_WAIT,
    });
    true
}

/// How long a released lease stays while its DHCPRELEASE waits to go out.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// A client stopped: its socket and lease go once its release is out.
#[derive(Debug)]
pub(super) struct Stopping {
    at: At,
    link: u32,
    lease: Option<Lease>,
    pub(super) until: StdInstant,
}

/// Finishes the clients stopped whose release is out (or waited long enough):
/// their socket, port and lease go. Returns whether the configuration changed.
pub(super) fn finish_stopped(engine: &mut Engine) -> bool {
    let mut changed = false;
    for st in std::mem::take(&mut engine.dhcp_done) {
        let sent = engine
            .sockets(st.at.iface)
            .is_none_or(|set| set.get::<udp::Socket>(st.at.handle).send_queue() == 0);
        if !sent && StdInstant::now() < st.until {
            engine.dhcp_done.push(st);
            continue;
        }
        if let Some(set) = engine.sockets(st.at.iface) {
            set.remove(st.at.handle);
        }
        engine.ports.give_back(
            Proto::Udp,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORTS.0),
        );
        if let Some(l) = st.lease {
            with_nl(engine, |nl| {
                let _ = crate::nl::dhcp::kernel::uninstall(nl, st.link, &l);
            });
            changed = true;
        }
    }
    if changed {
        engine.apply_config();
    }
    changed
}

/// Runs `f` with a netlink client of the engine's own netlink state (lent to
/// it for the while).
fn with_nl(engine: &mut Engine, f: impl FnOnce(&NlClient)) {
    struct Lent(Arc<Mutex<Option<Server<MemStack>>>>);
    impl Dialog for Lent {
        fn dialog(&mut self, request: &[u8]) -> io::Result<Vec<Vec<u8>>> {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_mut() {
                Some(s) => s.dialog(request),
                None => Err(io::Error::from_raw_os_error(libc::ENODEV)),
            }
        }
    }
    let server = std::mem::replace(&mut engine.nl, Server::new(MemStack::new(), 0));
    let cell = Arc::new(Mutex::new(Some(server)));
    {
        let nl = NlClient::from_dialog(Lent(cell.clone()));
        f(&nl);
    }
    let back = cell.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(s) = back {
        engine.nl = s;
    }
}

/// DHCP for the configuration strings of a user-space stack.
#[derive(Debug)]
pub(super) struct UserDhcp {
    pub(super) shared: Weak<Shared>,
}

impl DhcpDriver for UserDhcp {
    fn acquire(&self, index: u32, hostname: Option<&str>, timeout: Duration) -> io::Result<Lease> {
        let sh = self
            .shared
            .upgrade()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
        {
            let mut engine = sh.lock();
            // Asking again for a lease held is no error: the lease is the answer.
            if let Some(l) = engine
                .dhcp
                .iter()
                .find(|d| d.link == index)
                .and_then(|d| d.lease.clone())
            {
                return Ok(l);
            }
            match start(&mut engine, index, hostname) {
                Ok(()) | Err(rustix::io::Errno::BUSY) => {}
                Err(e) => {
                    return Err(crate::error::context(
                        io::Error::from(e),
                        "dhcp on a user stack",
                    ))
                }
            }
        }
        sh.kick();
        let deadline = StdInstant::now() + timeout;
        loop {
            {
                let engine = sh.lock();
                match engine.dhcp.iter().find(|d| d.link == index) {
                    Some(d) => {
                        if let Some(l) = &d.lease {
                            return Ok(l.clone());
                        }
                    }
                    None => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
                }
            }
            if StdInstant::now() >= deadline {
                stop(&mut sh.lock(), index);
                sh.kick();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "dhcp: no lease from a DHCP server in {} s",
                        timeout.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn release(&self, index: u32) -> io::Result<bool> {
        let sh = self
            .shared
            .upgrade()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
        let had = stop(&mut sh.lock(), index);
        sh.kick();
        // Done when the lease is off the link (its release out).
        let deadline = StdInstant::now() + RELEASE_WAIT * 2;
        while sh.lock().dhcp_done.iter().any(|s| s.link == index) && StdInstant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(had)
    }

    fn lease(&self, index: u32) -> Option<Lease> {
        let sh = self.shared.upgrade()?;
        let engine = sh.lock();
        engine
            .dhcp
            .iter()
            .find(|d| d.link == index)
            .and_then(|d| d.lease.clone())
    }
}
