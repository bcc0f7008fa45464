//! One-line configuration in the spirit of iothconf:
//! `"iface=vde0,eth,ip=10.0.0.1/24,ip=fc00::1/64,gw=10.0.0.254,mac=02:00:00:00:00:01"`.
//!
//! [`parse`] turns the text into a [`Plan`] (pure, unit-tested); [`apply`] carries the
//! plan out through an [`NlClient`], in a fixed order (MAC, link up, addresses, routes)
//! so that a gateway is reachable when its route is added.
//!
//! | tag | meaning |
//! |---|---|
//! | `iface=NAME` (default `vde0`), `ifindex=N` | the interface |
//! | `mac=MAC`, `macaddr=MAC` | set its MAC (with `eth`) |
//! | `eth` | bring the link up (and set the MAC if given) |
//! | `ip=ADDR/PREFIX` | a static IPv4 or IPv6 address (IPv6 without DAD) |
//! | `gw=ADDR` | a static default route via ADDR |
//! | `dns=ADDR`, `domain=NAME` | name service data, returned by [`Plan::resolv_conf`] |
//! | `dhcp`, `dhcp4`, `dhcpv4` | DHCPv4 ([`super::dhcp`]): the address, the default route, renewal; the lease (DNS servers included) is in [`Configured`] |
//! | `auto4`, `autov4` | `eth` and `dhcp` |
//! | `fqdn=NAME` | the host name DHCP sends |
//! | `-eth`, `-ip[=ADDR/PREFIX]`, `-gw[=ADDR]`, `-mac`, `-static`, `-all` | undo: link down, remove that (or every global) address, that (or every) default route of the interface |
//! | `-dhcp` (`-dhcp4`, `-dhcpv4`; `-all` too) | give the DHCP lease back: DHCPRELEASE, its address and route removed |
//!
//! DHCPv6 and router discovery (`dhcp6`, `rd`, `slaac`, `auto`, `auto6`) are
//! recognised and refused with an error saying they are not supported yet. Any other
//! tag, or a bad value, is an error naming it; nothing is applied then.
//!
//! On a user-space stack, DHCP runs in the stack itself (its netlink client says
//! so) and `make` is not used. Elsewhere, DHCP needs a UDP socket in the stack: [`configure`] makes it in the caller's own
//! namespace (right for the host, or a process inside the stack, like `vdestack
//! ip` in `vdestack ns`); [`configure_with`] takes a socket maker (a stack's
//! `Stack::socket`).

use std::fmt;
use std::io;
use std::net::IpAddr;

use super::dhcp::{self, kernel::host_socket, Lease, MakeSocket};
use super::{AddrSpec, NlClient, RouteSpec};
use crate::error::{context, errno_of};

/// What [`apply`] did, as iothconf's bit mask: [`Done::STATIC`] = 1, [`Done::ETH`] = 2.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Done(pub u32);

impl Done {
    /// Static addresses, routes or name service data were configured.
    pub const STATIC: u32 = 1;
    /// The link was brought up (and its MAC set).
    pub const ETH: u32 = 2;
    /// A DHCP lease was obtained (or given back).
    pub const DHCP: u32 = 4;
}

/// What [`configure_with`] did: iothconf's bit mask, and the DHCP leases obtained
/// (their DNS servers and domain are the caller's to use).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Configured {
    /// What was done.
    pub done: Done,
    /// The leases obtained by `dhcp`.
    pub leases: Vec<Lease>,
    /// The static `dns=`/`domain=` data, and the leases' (as resolv.conf text).
    pub resolv_conf: Option<String>,
}

/// Which interface a configuration is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iface {
    /// By name.
    Name(String),
    /// By index.
    Index(u32),
}

/// An address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` has no /PREFIX"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("prefix `{p}` is not a number 0..={max}"))?;
        Ok(Cidr { addr, prefix })
    }
}

/// One thing to do (or undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Set the MAC address.
    SetMac([u8; 6]),
    /// Bring the link up (`true`) or down.
    Link(bool),
    /// Add an address.
    AddAddr(Cidr),
    /// Remove an address; `None`: every global address of the interface.
    DelAddr(Option<Cidr>),
    /// Add a default route via a gateway.
    AddGw(IpAddr),
    /// Remove a default route via a gateway; `None`: every default route of the
    /// interface.
    DelGw(Option<IpAddr>),
    /// Get a DHCPv4 lease (sending this host name) and keep it renewed.
    Dhcp(Option<String>),
    /// Give the DHCPv4 lease back.
    ReleaseDhcp,
}

/// A parsed configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The interface.
    pub iface: Iface,
    /// What to do, in the order [`apply`] does it.
    pub steps: Vec<Step>,
    /// `dns=` servers.
    pub dns: Vec<IpAddr>,
    /// `domain=` search domains.
    pub domains: Vec<String>,
}

/// What was wrong with a configuration line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A tag nobody knows.
    #[error("configuration: unknown tag `{0}`")]
    UnknownTag(String),
    /// A tag we know of but do not implement yet.
    #[error("configuration: `{0}` is not supported yet (static configuration only)")]
    Unsupported(String),
    /// A value that does not fit its tag.
    #[error("configuration: bad value for `{tag}`: {why}")]
    BadValue {
        /// The tag.
        tag: String,
        /// What is wrong.
        why: String,
    },
}

impl From<ConfigError> for io::Error {
    fn from(e: ConfigError) -> io::Error {
        let kind = match e {
            ConfigError::Unsupported(_) => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

fn bad(tag: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::BadValue {
        tag: tag.to_string(),
        why: why.into(),
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

const UNSUPPORTED: &[&str] = &[
    "dhcp6", "dhcpv6", "rd", "rd6", "slaac", "auto", "auto6", "autov6",
];

/// The value of a tag that must have one.
fn need<'a>(tag: &str, value: Option<&'a str>) -> Result<&'a str, ConfigError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad(tag, "needs a value"))
}

/// Parses a configuration line. Nothing is applied.
pub fn parse(line: &str) -> Result<Plan, ConfigError> {
    let mut iface = Iface::Name("vde0".to_string());
    let mut mac = None;
    let (mut eth, mut undo_eth) = (false, false);
    let (mut addrs, mut gws, mut undo) = (Vec::new(), Vec::new(), Vec::new());
    let (mut dns, mut domains) = (Vec::new(), Vec::new());
    let (mut dhcp, mut undo_dhcp, mut fqdn) = (false, false, None);
    for item in line.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (tag, value) = match item.split_once('=') {
            Some((t, v)) => (t.trim(), Some(v.trim())),
            None => (item, None),
        };
        match tag {
            "iface" => iface = Iface::Name(need(tag, value)?.to_string()),
            "ifindex" => {
                let v = need(tag, value)?;
                let n = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(tag, format!("`{v}` is not an interface index")))?;
                iface = Iface::Index(n);
            }
            "mac" | "macaddr" => {
                let v = need(tag, value)?;
                mac = Some(
                    parse_mac(v).ok_or_else(|| bad(tag, format!("`{v}` is not a MAC address")))?,
                );
            }
            "eth" => eth = true,
            "dhcp" | "dhcp4" | "dhcpv4" => dhcp = true,
            "auto4" | "autov4" => {
                eth = true;
                dhcp = true;
            }
            "-dhcp" | "-dhcp4" | "-dhcpv4" | "-auto4" | "-autov4" => undo_dhcp = true,
            "fqdn" => fqdn = Some(need(tag, value)?.to_string()),
            "ip" => addrs.push(need(tag, value)?.parse::<Cidr>().map_err(|w| bad(tag, w))?),
            "gw" => {
                let v = need(tag, value)?;
                gws.push(
                    v.parse::<IpAddr>()
                        .map_err(|_| bad(tag, format!("`{v}` is not an IP address")))?,
                );
            }
            "dns" => {
                let v = need(tag, value)?;
                dns.push(
                    v.parse::<IpAddr>()
                        .map_err(|_| bad(tag, format!("`{v}` is not an IP address")))?,
                );
            }
            "domain" => domains.push(need(tag, value)?.to_string()),
            "debug" => {}
            "-eth" => undo_eth = true,
            "-ip" => undo.push(Step::DelAddr(
                value
                    .map(|v| v.parse::<Cidr>().map_err(|w| bad(tag, w)))
                    .transpose()?,
            )),
            "-gw" => undo.push(Step::DelGw(
                value
                    .map(|v| {
                        v.parse::<IpAddr>()
                            .map_err(|_| bad(tag, format!("`{v}` is not an IP address")))
                    })
                    .transpose()?,
            )),
            "-mac" | "-dns" | "-domain" => {}
            "-static" => {
                undo.push(Step::DelGw(None));
                undo.push(Step::DelAddr(None));
            }
            "-all" => {
                undo.push(Step::DelGw(None));
                undo.push(Step::DelAddr(None));
                undo_eth = true;
                undo_dhcp = true;
            }
            t if UNSUPPORTED.contains(&t) || UNSUPPORTED.contains(&t.trim_start_matches('-')) => {
                return Err(ConfigError::Unsupported(t.to_string()))
            }
            t => return Err(ConfigError::UnknownTag(t.to_string())),
        }
    }
    if mac.is_some() && !eth {
        // iothconf sets the MAC as part of `eth`; a lone mac= is taken to mean it too.
        eth = true;
    }
    let mut steps = Vec::new();
    // A lease is given back while its address and the link are still there.
    if undo_dhcp {
        steps.push(Step::ReleaseDhcp);
    }
    // Undo first (routes before the addresses they depend on, the link last), then do.
    let (gw_undo, rest): (Vec<_>, Vec<_>) =
        undo.into_iter().partition(|s| matches!(s, Step::DelGw(_)));
    steps.extend(gw_undo);
    steps.extend(rest);
    if undo_eth {
        steps.push(Step::Link(false));
    }
    if let Some(m) = mac {
        steps.push(Step::SetMac(m));
    }
    if eth {
        steps.push(Step::Link(true));
    }
    steps.extend(addrs.into_iter().map(Step::AddAddr));
    steps.extend(gws.into_iter().map(Step::AddGw));
    if dhcp {
        steps.push(Step::Dhcp(fqdn));
    }
    Ok(Plan {
        iface,
        steps,
        dns,
        domains,
    })
}

impl Plan {
    /// The `resolv.conf` text for the `dns=` and `domain=` tags (`None` if neither).
    pub fn resolv_conf(&self) -> Option<String> {
        resolv_text(self.dns.iter().copied(), self.domains.iter().cloned())
    }
}

/// Parses a configuration line and applies it to a stack through `nl` (DHCP's
/// socket is made in the caller's own namespace).
pub fn configure(nl: &NlClient, line: &str) -> io::Result<Done> {
    Ok(configure_with(nl, line, &host_socket)?.done)
}

/// Parses a configuration line and applies it to a stack through `nl`, making
/// the sockets DHCP needs with `make` (in the same stack as `nl`).
pub fn configure_with(nl: &NlClient, line: &str, make: MakeSocket<'_>) -> io::Result<Configured> {
    apply_with(nl, &parse(line)?, make)
}

/// An action that puts back what a step changed.
enum Undo {
    Mac([u8; 6]),
    Link(bool),
    DelAddr(AddrSpec),
    AddAddr(AddrSpec),
    DelRoute(RouteSpec),
    AddRoute(RouteSpec),
    ReleaseDhcp,
}

/// Carries out a plan. On a failure, what was already changed is put back (best
/// effort), so a failed configuration leaves nothing half-applied, and the error
/// names the step. Adding what is already there, or removing what is not, is no
/// error: a configuration can be applied twice.
pub fn apply(nl: &NlClient, plan: &Plan) -> io::Result<Done> {
    Ok(apply_with(nl, plan, &host_socket)?.done)
}

/// [`apply`], making DHCP's sockets with `make`; returns the leases too.
pub fn apply_with(nl: &NlClient, plan: &Plan, make: MakeSocket<'_>) -> io::Result<Configured> {
    let index = match &plan.iface {
        Iface::Name(n) => nl.link_index(n)?,
        Iface::Index(i) => {
            nl.link_name(*i)?;
            *i
        }
    };
    let mut undo = Vec::new();
    let mut done = Done::default();
    if !plan.dns.is_empty() || !plan.domains.is_empty() {
        done.0 |= Done::STATIC;
    }
    let mut leases = Vec::new();
    for step in &plan.steps {
        let r = match step {
            Step::Dhcp(host) => match nl.dhcp_driver() {
                Some(d) => d.acquire(index, host.as_deref(), dhcp::TIMEOUT),
                None => dhcp::acquire(nl, make, index, host.as_deref()),
            }
            .map(|l| {
                leases.push(l);
                undo.push(Undo::ReleaseDhcp);
                done.0 |= Done::DHCP;
            }),
            Step::ReleaseDhcp => match nl.dhcp_driver() {
                Some(d) => d.release(index),
                None => dhcp::release(make, index),
            }
            .map(|had| {
                if had {
                    done.0 |= Done::DHCP;
                }
            }),
            _ => apply_step(nl, index, step, &mut undo, &mut done),
        };
        if let Err(e) = r {
            for u in undo.into_iter().rev() {
                let _ = match u {
                    Undo::ReleaseDhcp => match nl.dhcp_driver() {
                        Some(d) => d.release(index).map(|_| ()),
                        None => dhcp::release(make, index).map(|_| ()),
                    },
                    u => put_back(nl, index, u),
                };
            }
            return Err(context(e, format!("configuration step {step:?}")));
        }
    }
    let resolv_conf = resolv_text(
        plan.dns.iter().copied().chain(
            leases
                .iter()
                .flat_map(|l| l.dns.iter().map(|&d| IpAddr::V4(d))),
        ),
        plan.domains
            .iter()
            .cloned()
            .chain(leases.iter().filter_map(|l| l.domain.clone())),
    );
    Ok(Configured {
        done,
        leases,
        resolv_conf,
    })
}

/// resolv.conf text for these servers and search domains (`None` if neither).
fn resolv_text(
    dns: impl Iterator<Item = IpAddr>,
    domains: impl Iterator<Item = String>,
) -> Option<String> {
    let dns: Vec<IpAddr> = dns.collect();
    let domains: Vec<String> = domains.collect();
    if dns.is_empty() && domains.is_empty() {
        return None;
    }
    let mut s = String::new();
    if !domains.is_empty() {
        s.push_str(&format!("search {}\n", domains.join(" ")));
    }
    for d in &dns {
        s.push_str(&format!("nameserver {d}\n"));
    }
    Some(s)
}

fn addr_spec(index: u32, c: &Cidr) -> AddrSpec {
    let spec = AddrSpec::new(index, c.addr, c.prefix);
    // A static address is meant to be usable at once: no duplicate detection delay.
    if c.addr.is_ipv6() {
        spec.no_dad()
    } else {
        spec
    }
}

fn default_via(index: u32, gw: IpAddr) -> RouteSpec {
    let r = if gw.is_ipv4() {
        RouteSpec::default_v4()
    } else {
        RouteSpec::default_v6()
    };
    r.via(gw).dev(index)
}

/// Whether an error only says the thing was already (or never) there.
fn harmless(e: &io::Error, codes: &[i32]) -> bool {
    codes.contains(&errno_of(e))
}

fn apply_step(
    nl: &NlClient,
    index: u32,
    step: &Step,
    undo: &mut Vec<Undo>,
    done: &mut Done,
) -> io::Result<()> {
    match step {
        Step::SetMac(mac) => {
            let old = nl.link_mac(index)?;
            nl.link_set_mac(index, *mac)?;
            undo.push(Undo::Mac(old));
            done.0 |= Done::ETH;
        }
        Step::Link(up) => {
            let was_up = nl.link(index)?.flags & libc::IFF_UP as u32 != 0;
            nl.link_set_up(index, *up)?;
            undo.push(Undo::Link(was_up));
            if *up {
                done.0 |= Done::ETH;
            }
        }
        Step::AddAddr(c) => {
            let spec = addr_spec(index, c);
            match nl.addr_add(&spec) {
                Ok(()) => undo.push(Undo::DelAddr(spec)),
                Err(e) if harmless(&e, &[libc::EEXIST]) => {}
                Err(e) => return Err(e),
            }
            done.0 |= Done::STATIC;
        }
        Step::DelAddr(which) => {
            let targets: Vec<AddrSpec> = match which {
                Some(c) => vec![addr_spec(index, c)],
                None => nl
                    .addrs()?
                    .into_iter()
                    .filter(|a| a.index == index && a.scope == 0)
                    .map(|a| AddrSpec::new(index, a.addr, a.prefix_len).flags(a.flags))
                    .collect(),
            };
            for spec in targets {
                match nl.addr_del(&spec) {
                    Ok(()) => undo.push(Undo::AddAddr(spec)),
                    Err(e) if harmless(&e, &[libc::EADDRNOTAVAIL, libc::ENOENT]) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Step::AddGw(gw) => {
            let spec = default_via(index, *gw);
            match nl.route_add(&spec) {
                Ok(()) => undo.push(Undo::DelRoute(spec)),
                Err(e) if harmless(&e, &[libc::EEXIST]) => {}
                Err(e) => return Err(e),
            }
            done.0 |= Done::STATIC;
        }
        Step::DelGw(which) => {
            let targets: Vec<RouteSpec> = match which {
                Some(gw) => vec![default_via(index, *gw)],
                None => nl
                    .routes()?
                    .into_iter()
                    .filter(|r| {
                        r.prefix_len == 0
                            && r.oif == Some(index)
                            && r.table == RouteSpec::MAIN_TABLE
                    })
                    .filter_map(|r| r.gateway.map(|gw| default_via(index, gw)))
                    .collect(),
            };
            for spec in targets {
                match nl.route_del(&spec) {
                    Ok(()) => undo.push(Undo::AddRoute(spec)),
                    Err(e) if harmless(&e, &[libc::ESRCH, libc::ENOENT]) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Carried out by `apply_with`, which has the socket maker.
        Step::Dhcp(_) | Step::ReleaseDhcp => {}
    }
    Ok(())
}

fn put_back(nl: &NlClient, index: u32, u: Undo) -> io::Result<()> {
    match u {
        Undo::Mac(m) => nl.link_set_mac(index, m),
        Undo::Link(up) => nl.link_set_up(index, up),
        Undo::DelAddr(a) => nl.addr_del(&a),
        Undo::AddAddr(a) => nl.addr_add(&a),
        Undo::DelRoute(r) => nl.route_del(&r),
        Undo::AddRoute(r) => nl.route_add(&r),
        Undo::ReleaseDhcp => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn the_issue_example() {
        let p = parse(
            "iface=vde0,eth,ip=10.0.0.1/24,ip=fc00::1/64,gw=10.0.0.254,mac=02:00:00:00:00:01",
        )
        .unwrap();
        assert_eq!(p.iface, Iface::Name("vde0".into()));
        assert_eq!(
            p.steps,
            vec![
                Step::SetMac([2, 0, 0, 0, 0, 1]),
                Step::Link(true),
                Step::AddAddr(c("10.0.0.1/24")),
                Step::AddAddr(c("fc00::1/64")),
                Step::AddGw("10.0.0.254".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn defaults_and_undo() {
        let p = parse("eth").unwrap();
        assert_eq!(p.iface, Iface::Name("vde0".into()));
        assert_eq!(p.steps, vec![Step::Link(true)]);
        let p = parse("ifindex=3,-ip=10.0.0.1/24,-gw,-eth").unwrap();
        assert_eq!(p.iface, Iface::Index(3));
        assert_eq!(
            p.steps,
            vec![
                Step::DelGw(None),
                Step::DelAddr(Some(c("10.0.0.1/24"))),
                Step::Link(false)
            ]
        );
        let p = parse("-all").unwrap();
        assert_eq!(p.steps.last(), Some(&Step::Link(false)));
        assert_eq!(parse("").unwrap().steps, vec![]);
    }

    #[test]
    fn errors_name_the_tag() {
        let e = parse("eth,colour=blue").unwrap_err();
        assert_eq!(e, ConfigError::UnknownTag("colour".into()));
        assert!(e.to_string().contains("colour"));
        let e = parse("ip=10.0.0.1/33").unwrap_err();
        assert!(
            e.to_string().contains("`ip`") && e.to_string().contains("33"),
            "{e}"
        );
        assert!(parse("ip=10.0.0.1")
            .unwrap_err()
            .to_string()
            .contains("PREFIX"));
        assert!(parse("ip=fc00::1/129").is_err());
        assert!(parse("ip=nonsense/24").is_err());
        assert!(parse("gw=10.0.0").is_err());
        assert!(parse("mac=02:00:00:00:00").is_err());
        assert!(parse("mac=02:00:00:00:00:zz").is_err());
        assert!(parse("ifindex=0").is_err());
        assert!(parse("iface=").is_err());
        assert_eq!(
            parse("dhcp6").unwrap_err(),
            ConfigError::Unsupported("dhcp6".into())
        );
        assert!(parse("fqdn=").is_err());
        assert_eq!(
            parse("-auto6").unwrap_err(),
            ConfigError::Unsupported("-auto6".into())
        );
    }

    #[test]
    fn dhcp_steps() {
        let p = parse("iface=vde0,eth,dhcp").unwrap();
        assert_eq!(p.steps, vec![Step::Link(true), Step::Dhcp(None)]);
        let p = parse("auto4,fqdn=box.example").unwrap();
        assert_eq!(
            p.steps,
            vec![Step::Link(true), Step::Dhcp(Some("box.example".into()))]
        );
        // The lease is given back first, before the link goes down.
        let p = parse("-dhcp,-eth").unwrap();
        assert_eq!(p.steps, vec![Step::ReleaseDhcp, Step::Link(false)]);
        assert_eq!(parse("-all").unwrap().steps[0], Step::ReleaseDhcp);
        assert_eq!(parse("dhcpv4").unwrap().steps, vec![Step::Dhcp(None)]);
    }

    #[test]
    fn resolv_conf_text() {
        let p = parse("dns=10.0.0.53,dns=fc00::53,domain=example.org").unwrap();
        assert_eq!(
            p.resolv_conf().unwrap(),
            "search example.org\nnameserver 10.0.0.53\nnameserver fc00::53\n"
        );
        assert_eq!(parse("eth").unwrap().resolv_conf(), None);
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:ab:CD:0:1:ff"),
            Some([2, 0xab, 0xcd, 0, 1, 0xff])
        );
        assert_eq!(
            parse_mac("02-ab-cd-00-01-ff"),
            Some([2, 0xab, 0xcd, 0, 1, 0xff])
        );
        assert_eq!(parse_mac("02:ab:cd:00:01"), None);
        assert_eq!(parse_mac("02:ab:cd:00:01:100"), None);
        assert_eq!(parse_mac(""), None);
    }
}
