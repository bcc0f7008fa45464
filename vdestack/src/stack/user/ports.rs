//! Local ports of one stack, per protocol: who holds which, and ephemeral picks
//! (Linux's default range, 32768-60999). No I/O.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use rustix::io::Errno;

/// The protocols with ports of their own (ICMP echo's "port" is its identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// The first and last ephemeral port (`ip_local_port_range`).
pub(super) const EPHEMERAL: (u16, u16) = (32768, 60999);

/// Whether two local addresses of one port take the same packets: the same
/// address, or a wildcard of the family; `[::]` is dual-stack (as Linux's
/// default `IPV6_V6ONLY` 0), so it takes IPv4's too.
fn overlap(a: IpAddr, b: IpAddr) -> bool {
    let dual = |x: IpAddr, y: IpAddr| x.is_ipv6() && x.is_unspecified() && y.is_ipv4();
    if a.is_ipv4() != b.is_ipv4() {
        return dual(a, b) || dual(b, a);
    }
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// The ports in use: for each (protocol, port), the local addresses bound.
#[derive(Debug, Default)]
pub(super) struct Ports {
    used: HashMap<(Proto, u16), Vec<IpAddr>>,
    next: u16,
}

impl Ports {
    /// A table whose ephemeral picks start at a place drawn from `seed`.
    pub(super) fn new(seed: u32) -> Self {
        let span = u32::from(EPHEMERAL.1 - EPHEMERAL.0) + 1;
        Ports {
            used: HashMap::new(),
            next: EPHEMERAL.0 + (seed % span) as u16,
        }
    }

    fn conflicts(&self, proto: Proto, addr: IpAddr, port: u16) -> bool {
        self.used
            .get(&(proto, port))
            .is_some_and(|v| v.iter().any(|a| overlap(*a, addr)))
    }

    /// Takes `addr` (port 0: an ephemeral port of the range): the address
    /// taken, or `EADDRINUSE` (the port is held on that address or a wildcard),
    /// `EADDRNOTAVAIL` (no ephemeral port is left).
    pub(super) fn take(&mut self, proto: Proto, addr: SocketAddr) -> Result<SocketAddr, Errno> {
        let port = match addr.port() {
            0 => self.pick(proto, addr.ip())?,
            p if self.conflicts(proto, addr.ip(), p) => return Err(Errno::ADDRINUSE),
            p => p,
        };
        self.used.entry((proto, port)).or_default().push(addr.ip());
        Ok(SocketAddr::new(addr.ip(), port))
    }

    fn pick(&mut self, proto: Proto, ip: IpAddr) -> Result<u16, Errno> {
        let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
        for _ in 0..span {
            let p = self.next;
            self.next = if p >= EPHEMERAL.1 { EPHEMERAL.0 } else { p + 1 };
            if !self.conflicts(proto, ip, p) {
                return Ok(p);
            }
        }
        Err(Errno::ADDRNOTAVAIL)
    }

    /// Gives back what [`Ports::take`] took.
    pub(super) fn give_back(&mut self, proto: Proto, addr: SocketAddr) {
        if let Some(v) = self.used.get_mut(&(proto, addr.port())) {
            if let Some(i) = v.iter().position(|a| *a == addr.ip()) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                self.used.remove(&(proto, addr.port()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_port_is_held_once_per_address() {
        let mut p = Ports::new(0);
        p.take(Proto::Tcp, sa("10.0.0.1:80")).unwrap();
        assert_eq!(p.take(Proto::Tcp, sa("10.0.0.1:80")), Err(Errno::ADDRINUSE));
        assert_eq!(p.take(Proto::Tcp, sa("0.0.0.0:80")), Err(Errno::ADDRINUSE));
        // Another address, another protocol, another family: free.
        p.take(Proto::Tcp, sa("10.0.0.2:80")).unwrap();
        p.take(Proto::Udp, sa("10.0.0.1:80")).unwrap();
        p.take(Proto::Tcp, sa("[fc00::1]:80")).unwrap();
        // [::] is dual-stack: it takes IPv4's port too.
        assert_eq!(p.take(Proto::Tcp, sa("[::]:80")), Err(Errno::ADDRINUSE));
        p.take(Proto::Tcp, sa("[::]:81")).unwrap();
        assert_eq!(p.take(Proto::Tcp, sa("0.0.0.0:81")), Err(Errno::ADDRINUSE));
        assert_eq!(p.take(Proto::Tcp, sa("10.0.0.1:81")), Err(Errno::ADDRINUSE));
        p.give_back(Proto::Tcp, sa("10.0.0.1:80"));
        p.take(Proto::Tcp, sa("10.0.0.1:80")).unwrap();
    }

    #[test]
    fn ephemeral_ports_are_in_range_and_distinct() {
        let mut p = Ports::new(u32::MAX);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let a = p.take(Proto::Udp, sa("0.0.0.0:0")).unwrap();
            assert!((EPHEMERAL.0..=EPHEMERAL.1).contains(&a.port()));
            assert!(seen.insert(a.port()));
        }
    }

    #[test]
    fn the_range_runs_out() {
        let mut p = Ports::new(7);
        let n = usize::from(EPHEMERAL.1 - EPHEMERAL.0) + 1;
        for _ in 0..n {
            p.take(Proto::Icmp, sa("0.0.0.0:0")).unwrap();
        }
        assert_eq!(
            p.take(Proto::Icmp, sa("0.0.0.0:0")),
            Err(Errno::ADDRNOTAVAIL)
        );
    }
}
