//! The DHCPv4 client's state machine (RFC 2131), free of I/O: it is given the
//! time and the datagrams that arrive, and says what to send, when to wake, and
//! what happened. The kernel stack's I/O ([`super::kernel`]) drives it over a UDP
//! socket; a user-space stack can drive the same machine over its own sockets.
//!
//! INIT → SELECTING (DISCOVER, broadcast) → REQUESTING (REQUEST for the first
//! OFFER) → BOUND (ACK) → at T1 RENEWING (REQUEST unicast to the server) → at T2
//! REBINDING (REQUEST broadcast) → at the lease's end, INIT again. A NAK sends it
//! back to INIT. Retransmissions back off from 1 s, doubling up to 16 s (RFC 2131
//! says 4 s to 64 s; a virtual network answers in milliseconds or not at all);
//! while renewing or rebinding, half the time left, at least 1 s. Requests ask
//! the server to broadcast its replies (the interface has no address yet).

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{
    DhcpOption, Flags, Message, MessageType, Opcode, OptionCode, CLIENT_PORT, SERVER_PORT,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

/// What a server granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length (from the subnet mask; without one, the address class's:
    /// 8, 16 or 24).
    pub prefix: u8,
    /// The default router (the first of the router option).
    pub router: Option<Ipv4Addr>,
    /// The DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// The domain name.
    pub domain: Option<String>,
    /// The server that granted it.
    pub server: Ipv4Addr,
    /// How long it lasts, seconds (`u32::MAX`: for ever).
    pub lease_secs: u32,
    /// When to renew (T1), seconds after it was granted.
    pub t1: u32,
    /// When to rebind (T2), seconds after it was granted.
    pub t2: u32,
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Looking for servers (DISCOVER sent).
    Selecting,
    /// Asking the server that offered (REQUEST sent).
    Requesting,
    /// Holding a lease.
    Bound,
    /// Asking its server to extend the lease (after T1).
    Renewing,
    /// Asking any server to extend it (after T2).
    Rebinding,
    /// The lease was given back.
    Released,
}

/// A datagram to send, from port 68 to port 67.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where: `255.255.255.255`, or the server when renewing or releasing.
    pub to: Ipv4Addr,
    /// The DHCP message.
    pub bytes: Vec<u8>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lease was granted (after INIT).
    Bound(Lease),
    /// The lease was extended (the same address; other fields may change).
    Renewed(Lease),
    /// The lease ran out unrenewed: the address must go; the client starts over.
    Expired(Lease),
    /// The server refused the address: it must go; the client starts over.
    Nak(Option<Lease>),
}

/// The UDP ports: the client's and the server's.
pub const PORTS: (u16, u16) = (CLIENT_PORT, SERVER_PORT);

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(16);
/// REQUESTs sent for one OFFER before starting over.
const REQUEST_TRIES: u32 = 4;

/// A DHCPv4 client for one interface.
#[derive(Debug)]
pub struct Client {
    mac: [u8; 6],
    xid: u32,
    hostname: Option<String>,
    state: State,
    /// The offer being requested: (address, server).
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
    lease: Option<Lease>,
    /// When the lease was granted.
    bound_at: Duration,
    /// When to send again (or move on, in BOUND).
    wake: Duration,
    /// Retransmission interval and count.
    retry: Duration,
    tries: u32,
    /// When this exchange started (for the `secs` field).
    started: Duration,
}

impl Client {
    /// A client for the interface with this MAC, starting at `now` (its first
    /// [`Client::poll`] sends a DISCOVER). `xid` should be random.
    pub fn new(mac: [u8; 6], xid: u32, hostname: Option<String>, now: Duration) -> Self {
        Client {
            mac,
            xid,
            hostname,
            state: State::Selecting,
            offer: None,
            lease: None,
            bound_at: now,
            wake: now,
            retry: FIRST_RETRY,
            tries: 0,
            started: now,
        }
    }

    /// A client that already holds `lease`, granted at `bound_at` (to renew a
    /// lease another process obtained).
    pub fn with_lease(mac: [u8; 6], xid: u32, lease: Lease, bound_at: Duration) -> Self {
        let mut c = Client::new(mac, xid, None, bound_at);
        c.wake = bound_at + secs(lease.t1);
        c.state = State::Bound;
        c.lease = Some(lease);
        c
    }

    /// Where it is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The transaction id.
    pub fn xid(&self) -> u32 {
        self.xid
    }

    /// When [`Client::poll`] has something to do (`None`: released).
    pub fn next_wake(&self) -> Option<Duration> {
        (self.state != State::Released).then_some(self.wake)
    }

    fn restart(&mut self, now: Duration) {
        self.state = State::Selecting;
        self.offer = None;
        self.lease = None;
        self.wake = now;
        self.retry = FIRST_RETRY;
        self.tries = 0;
        self.started = now;
        self.xid = self.xid.wrapping_add(0x9e37_79b9);
    }

    fn backoff(&mut self, now: Duration) {
        self.wake = now + self.retry;
        self.retry = (self.retry * 2).min(LAST_RETRY);
        self.tries += 1;
    }

    /// Half the time until `until`, at least 1 s, never past it.
    fn half_to(&mut self, now: Duration, until: Duration) {
        let left = until.saturating_sub(now);
        self.wake = now
            + (left / 2)
                .max(Duration::from_secs(1))
                .min(left.max(Duration::from_millis(1)));
    }

    /// Does what is due at `now`: returns what to send, and what happened.
    pub fn poll(&mut self, now: Duration) -> (Option<Outgoing>, Option<Event>) {
        if self.state == State::Released || now < self.wake {
            return (None, None);
        }
        match self.state {
            State::Selecting => {
                self.backoff(now);
                (Some(self.discover(now)), None)
            }
            State::Requesting => {
                if self.tries >= REQUEST_TRIES {
                    self.restart(now);
                    return self.poll(now);
                }
                self.backoff(now);
                (Some(self.request(now)), None)
            }
            State::Bound | State::Renewing | State::Rebinding => {
                let lease = self.lease.clone().expect("a lease while bound");
                let (t2, end) = (
                    self.bound_at + secs(lease.t2),
                    self.bound_at + secs(lease.lease_secs),
                );
                if lease.lease_secs != u32::MAX && now >= end {
                    self.restart(now);
                    return (None, Some(Event::Expired(lease)));
                }
                if now >= t2 {
                    self.state = State::Rebinding;
                    self.half_to(now, end);
                    (Some(self.request(now)), None)
                } else {
                    if self.state == State::Bound {
                        self.started = now;
                    }
                    self.state = State::Renewing;
                    self.half_to(now, t2);
                    (Some(self.request(now)), None)
                }
            }
            State::Released => (None, None),
        }
    }

    /// Gives the lease back: the DHCPRELEASE to send (unicast to its server), if a
    /// lease is held. The client is then done.
    pub fn release(&mut self) -> Option<Outgoing> {
        let lease = self.lease.take();
        self.state = State::Released;
        let lease = lease?;
        let mut m = self.message(MessageType::Release, lease.addr);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(lease.server));
        Some(Outgoing {
            to: lease.server,
            bytes: encode(&m),
        })
    }

    /// Takes a datagram that arrived on port 68; returns what happened, if
    /// anything (other clients' replies and garbage are ignored).
    pub fn handle(&mut self, bytes: &[u8], now: Duration) -> Option<Event> {
        let m = Message::decode(&mut Decoder::new(bytes)).ok()?;
        if m.opcode() != Opcode::BootReply
            || m.xid() != self.xid
            || m.chaddr().get(..6) != Some(&self.mac[..])
        {
            return None;
        }
        let kind = m.opts().msg_type()?;
        match (self.state, kind) {
            (State::Selecting, MessageType::Offer) => {
                let server = server_id(&m)?;
                if m.yiaddr().is_unspecified() {
                    return None;
                }
                self.offer = Some((m.yiaddr(), server));
                self.state = State::Requesting;
                self.tries = 0;
                self.retry = FIRST_RETRY;
                self.wake = now;
                None
            }
            (State::Requesting, MessageType::Ack) => {
                let lease = lease_of(&m)?;
                if Some(lease.addr) != self.offer.map(|o| o.0) {
                    return None;
                }
                self.bind(lease.clone(), now);
                Some(Event::Bound(lease))
            }
            (State::Renewing | State::Rebinding, MessageType::Ack) => {
                let lease = lease_of(&m)?;
                if Some(lease.addr) != self.lease.as_ref().map(|l| l.addr) {
                    return None;
                }
                self.bind(lease.clone(), now);
                Some(Event::Renewed(lease))
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Nak) => {
                let old = self.lease.clone();
                self.restart(now);
                Some(Event::Nak(old))
            }
            _ => None,
        }
    }

    fn bind(&mut self, lease: Lease, now: Duration) {
        self.bound_at = now;
        self.wake = if lease.lease_secs == u32::MAX {
            Duration::MAX
        } else {
            now + secs(lease.t1)
        };
        self.state = State::Bound;
        self.lease = Some(lease);
        self.retry = FIRST_RETRY;
        self.tries = 0;
    }

    /// A message of `kind` with our fields and the options every request carries.
    fn message(&self, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let z = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(self.xid, ciaddr, z, z, z, &self.mac);
        let opts = m.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut id = vec![1u8];
        id.extend_from_slice(&self.mac);
        opts.insert(DhcpOption::ClientIdentifier(id));
        m
    }

    fn with_params(&self, m: &mut Message, now: Duration) {
        let secs = now
            .saturating_sub(self.started)
            .as_secs()
            .min(u64::from(u16::MAX));
        m.set_secs(secs as u16);
        let opts = m.opts_mut();
        opts.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::DomainName,
            OptionCode::AddressLeaseTime,
            OptionCode::Renewal,
            OptionCode::Rebinding,
        ]));
        if let Some(h) = &self.hostname {
            opts.insert(DhcpOption::Hostname(h.clone()));
        }
    }

    fn discover(&self, now: Duration) -> Outgoing {
        let mut m = self.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        m.set_flags(Flags::default().set_broadcast());
        self.with_params(&mut m, now);
        broadcast(&m)
    }

    fn request(&self, now: Duration) -> Outgoing {
        match (self.state, &self.lease) {
            (State::Renewing, Some(l)) => {
                let mut m = self.message(MessageType::Request, l.addr);
                self.with_params(&mut m, now);
                Outgoing {
                    to: l.server,
                    bytes: encode(&m),
                }
            }
            (State::Rebinding, Some(l)) => {
                let mut m = self.message(MessageType::Request, l.addr);
                m.set_flags(Flags::default().set_broadcast());
                self.with_params(&mut m, now);
                broadcast(&m)
            }
            _ => {
                let (addr, server) = self.offer.expect("an offer while requesting");
                let mut m = self.message(MessageType::Request, Ipv4Addr::UNSPECIFIED);
                m.set_flags(Flags::default().set_broadcast());
                m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
                m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
                self.with_params(&mut m, now);
                broadcast(&m)
            }
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = Vec::with_capacity(300);
    // Encoding a message we built cannot fail (every option fits).
    let _ = m.encode(&mut Encoder::new(&mut buf));
    buf
}

fn broadcast(m: &Message) -> Outgoing {
    Outgoing {
        to: Ipv4Addr::BROADCAST,
        bytes: encode(m),
    }
}

fn server_id(m: &Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    }
}

/// The lease an ACK grants; `None` if it lacks what a lease needs.
fn lease_of(m: &Message) -> Option<Lease> {
    let opts = m.opts();
    let addr = m.yiaddr();
    if addr.is_unspecified() {
        return None;
    }
    let prefix = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => {
            let bits = u32::from(*mask);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return None;
            }
            bits.leading_ones() as u8
        }
        _ => match addr.octets()[0] {
            0..=127 => 8,
            128..=191 => 16,
            _ => 24,
        },
    };
    let router = match opts.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let dns = match opts.get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let domain = match opts.get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(d)) => Some(d.clone()),
        _ => None,
    };
    let lease_secs = match opts.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => *t,
        _ => return None,
    };
    let t1 = match opts.get(OptionCode::Renewal) {
        Some(DhcpOption::Renewal(t)) if *t <= lease_secs => *t,
        _ => lease_secs / 2,
    };
    let t2 = match opts.get(OptionCode::Rebinding) {
        Some(DhcpOption::Rebinding(t)) if *t >= t1 && *t <= lease_secs => *t,
        _ => (u64::from(lease_secs) * 7 / 8) as u32,
    };
    Some(Lease {
        addr,
        prefix,
        router,
        dns,
        domain,
        server: server_id(m).unwrap_or(m.siaddr()),
        lease_secs,
        t1,
        t2: t2.max(t1),
    })
}
