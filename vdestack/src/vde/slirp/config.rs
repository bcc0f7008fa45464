//! `slirp:///OPTIONS`: the options of Debian's `libvdeplug_slirp` (0.1.0, over
//! libvdeslirp 0.1.1), their defaults and the way they combine, free of I/O.
//!
//! Where the C plugin silently ignores what it cannot read (an address that does
//! not parse, a forward with a bad field) this is an error that names it.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use crate::sys::slirp::Settings;
use crate::vde::url::{bad_value, parse_url_style, UrlError};

/// The option names, in the C plugin's table order (a key matches the first name
/// it is a prefix of: `h` is `host`, `a` is `addr`, `m` is `mtu`, `d` is `dhcp`).
pub const TAGS: &[&str] = &[
    "restricted",
    "v4",
    "v6",
    "host",
    "addr",
    "host6",
    "addr6",
    "hostname",
    "tftp_server_name",
    "tftp_path",
    "bootfile",
    "dhcp",
    "vnameserver",
    "vnameserver6",
    "vdnssearch",
    "vdomainname",
    "mtu",
    "mru",
    "disable_host_loopback",
    "tcpfwd",
    "udpfwd",
    "unixfwd",
    "cmdfwd",
    "verbose",
];

/// libslirp's bounds on the MTU and MRU (`IF_MTU_MIN`, `IF_MTU_MAX`); outside
/// them it refuses the configuration.
const MTU_RANGE: std::ops::RangeInclusive<usize> = 68..=65521;

/// A forward set up when the plug opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// `tcpfwd`/`udpfwd`: connections (datagrams) to `host` on the host go to
    /// `guest` on the virtual network.
    Host {
        /// UDP rather than TCP.
        udp: bool,
        /// Where the host side listens.
        host: SocketAddrV4,
        /// Where it goes on the guest's network.
        guest: SocketAddrV4,
    },
    /// `unixfwd`: connections from the guest to a virtual address and port go to a
    /// unix socket on the host.
    Unix {
        /// The virtual address and port (0.0.0.0: libslirp's choice).
        guest: SocketAddrV4,
        /// The socket's path.
        path: String,
    },
    /// `cmdfwd`: connections from the guest to a virtual address and port go to a
    /// command run on the host.
    Exec {
        /// The virtual address and port (0.0.0.0: libslirp's choice).
        guest: SocketAddrV4,
        /// The command line.
        cmd: String,
    },
}

/// Everything a `slirp://` URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The libslirp instance.
    pub settings: Settings,
    /// Forwards, in the C plugin's order: tcp, udp, unix, cmd.
    pub forwards: Vec<Forward>,
    /// Print the configuration on stderr when opening.
    pub verbose: bool,
}

/// The C plugin's defaults (libvdeslirp's `VDE_INIT_DEFAULT`).
pub fn defaults() -> Settings {
    Settings {
        restricted: false,
        ipv4: true,
        network: Ipv4Addr::new(10, 0, 2, 0),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        host: Ipv4Addr::new(10, 0, 2, 2),
        ipv6: true,
        prefix6: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0),
        prefix6_len: 64,
        host6: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
        hostname: Some("slirp".to_string()),
        tftp_server_name: None,
        tftp_path: None,
        bootfile: None,
        dhcp_start: Ipv4Addr::new(10, 0, 2, 15),
        nameserver: Ipv4Addr::new(10, 0, 2, 3),
        nameserver6: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3),
        dns_search: Vec::new(),
        domain_name: None,
        mtu: 0,
        mru: 0,
        disable_host_loopback: false,
    }
}

fn bad(what: &'static str, value: &str, why: impl Into<String>) -> io::Error {
    bad_value("slirp", what, value, why).into()
}

/// `ADDR[/PREFIX]` with a default prefix and a largest one.
fn addr_prefix<A: std::str::FromStr>(
    what: &'static str,
    v: &str,
    default: u8,
    max: u8,
) -> io::Result<(A, u8)> {
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr = a
        .trim()
        .parse()
        .map_err(|_| bad(what, v, "expected an address, with an optional /PREFIX"))?;
    let prefix = match p {
        None => default,
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| bad(what, v, format!("the prefix length must be 0 to {max}")))?,
    };
    Ok((addr, prefix))
}

fn ipv4(what: &'static str, v: &str) -> io::Result<Ipv4Addr> {
    v.trim()
        .parse()
        .map_err(|_| bad(what, v, "expected an IPv4 address"))
}

/// `dest` with the bits of `mask` taken from `src` (libvdeslirp's `memmaskcpy`).
fn mask_copy<const N: usize>(dest: [u8; N], src: [u8; N], mask: [u8; N]) -> [u8; N] {
    std::array::from_fn(|i| (src[i] & mask[i]) | (dest[i] & !mask[i]))
}

fn prefix_mask<const N: usize>(prefix: u8) -> [u8; N] {
    std::array::from_fn(|i| {
        let bits = (prefix as usize).saturating_sub(i * 8).min(8);
        if bits == 0 {
            0
        } else {
            !0u8 << (8 - bits)
        }
    })
}

/// libvdeslirp's `vdeslirp_setvprefix`: the network from the host address and the
/// prefix, and the default DHCP and DNS addresses moved into it (keeping their
/// host bits).
fn set_prefix4(s: &mut Settings, prefix: u8) {
    let mask = prefix_mask::<4>(prefix);
    let host = s.host.octets();
    s.netmask = mask.into();
    s.network = mask_copy([0; 4], host, mask).into();
    if !s.dhcp_start.is_unspecified() {
        s.dhcp_start = mask_copy(s.dhcp_start.octets(), host, mask).into();
    }
    if !s.nameserver.is_unspecified() {
        s.nameserver = mask_copy(s.nameserver.octets(), host, mask).into();
    }
}

/// The same for IPv6 (`vdeslirp_setvprefix6`).
fn set_prefix6(s: &mut Settings, prefix: u8) {
    let mask = prefix_mask::<16>(prefix);
    let host = s.host6.octets();
    s.prefix6_len = prefix;
    s.prefix6 = mask_copy([0; 16], host, mask).into();
    if !s.nameserver6.is_unspecified() {
        s.nameserver6 = mask_copy(s.nameserver6.octets(), host, mask).into();
    }
}

fn mtu(what: &'static str, v: &str) -> io::Result<usize> {
    let n =
        crate::vde::url::parse_number(v).ok_or_else(|| bad(what, v, "expected a number"))? as usize;
    if n != 0 && !MTU_RANGE.contains(&n) {
        return Err(bad(
            what,
            v,
            format!(
                "libslirp takes {} to {} (0: its default, 1500)",
                MTU_RANGE.start(),
                MTU_RANGE.end()
            ),
        ));
    }
    Ok(n)
}

fn port(what: &'static str, item: &str, v: &str) -> io::Result<u16> {
    v.trim()
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| {
            bad(
                what,
                item,
                format!("`{v}` is not a port number (1 to 65535)"),
            )
        })
}

/// C's `strtok_rep_r` over `:`: empty fields count, the last field takes the rest.
fn fields(item: &str, max: usize) -> Vec<&str> {
    item.splitn(max, ':').collect()
}

/// `[HOSTIP:]HOSTPORT:GUESTIP:GUESTPORT`, comma-separated.
fn host_forwards(udp: bool, list: &str, out: &mut Vec<Forward>) -> io::Result<()> {
    let what = if udp { "udpfwd" } else { "tcpfwd" };
    for item in list.split(',').filter(|i| !i.is_empty()) {
        let f = fields(item, 4);
        let (haddr, hport, gaddr, gport) = match f[..] {
            [hport, gaddr, gport] => ("", hport, gaddr, gport),
            [haddr, hport, gaddr, gport] => (haddr, hport, gaddr, gport),
            _ => {
                return Err(bad(
                    what,
                    item,
                    "expected [HOSTIP:]HOSTPORT:GUESTIP:GUESTPORT",
                ))
            }
        };
        let haddr = if haddr.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            ipv4(what, haddr)?
        };
        out.push(Forward::Host {
            udp,
            host: SocketAddrV4::new(haddr, port(what, item, hport)?),
            guest: SocketAddrV4::new(ipv4(what, gaddr)?, port(what, item, gport)?),
        });
    }
    Ok(())
}

/// `[VIRTUALIP:]PORT:TARGET` (a path or a command), comma-separated.
fn guest_forwards(
    what: &'static str,
    list: &str,
    make: impl Fn(SocketAddrV4, String) -> Forward,
    out: &mut Vec<Forward>,
) -> io::Result<()> {
    for item in list.split(',').filter(|i| !i.is_empty()) {
        let f = fields(item, 3);
        let (addr, p, target) = match f[..] {
            [p, target] => ("", p, target),
            [addr, p, target] => (addr, p, target),
            _ => return Err(bad(what, item, "expected [VIRTUALIP:]PORT:TARGET")),
        };
        let addr = if addr.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            ipv4(what, addr)?
        };
        if target.is_empty() {
            return Err(bad(what, item, "nothing to forward to"));
        }
        out.push(make(
            SocketAddrV4::new(addr, port(what, item, p)?),
            target.to_string(),
        ));
    }
    Ok(())
}

/// Reads the text after `slirp://`.
pub fn parse(arg: &str) -> io::Result<Config> {
    let (addr, opts) = parse_url_style("slirp", arg, TAGS).map_err(|e| match e {
        // `addr=10.0.0.1/24` splits at the slash, as in C ("unknwown key: 24").
        UrlError::UnknownOption { key, .. } if key.parse::<u8>().is_ok() => bad(
            "option",
            &key,
            "a `/` starts a new option: quote an address with a prefix, as in \
             addr='10.0.0.1/24' (or write 10.0.0.1%2f24)",
        ),
        e => e.into(),
    })?;
    if !addr.is_empty() {
        return Err(bad(
            "URL",
            &addr,
            format!("options follow a slash: write slirp:///{addr}"),
        ));
    }
    let mut s = defaults();
    s.restricted = opts.has("restricted");
    match (opts.has("v4"), opts.has("v6")) {
        (true, false) => s.ipv6 = false,
        (false, true) => s.ipv4 = false,
        _ => {}
    }
    let host4 = match (opts.get("host"), opts.get("addr")) {
        (Some(h), Some(a)) if h != a => {
            return Err(bad("addr", a, format!("host={h} gives another address")))
        }
        (h, a) => h.or(a),
    };
    if let Some(v) = host4 {
        let (a, prefix) = addr_prefix("addr", v, 24, 32)?;
        s.host = a;
        set_prefix4(&mut s, prefix);
    }
    let host6 = match (opts.get("host6"), opts.get("addr6")) {
        (Some(h), Some(a)) if h != a => {
            return Err(bad("addr6", a, format!("host6={h} gives another address")))
        }
        (h, a) => h.or(a),
    };
    if let Some(v) = host6 {
        let (a, prefix) = addr_prefix("addr6", v, 64, 128)?;
        s.host6 = a;
        set_prefix6(&mut s, prefix);
    }
    let text = |tag: &str| opts.get(tag).map(str::to_string);
    if let Some(h) = text("hostname") {
        s.hostname = Some(h);
    }
    s.tftp_server_name = text("tftp_server_name");
    s.tftp_path = text("tftp_path");
    s.bootfile = text("bootfile");
    if let Some(v) = opts.get("dhcp") {
        s.dhcp_start = ipv4("dhcp", v)?;
    }
    if let Some(v) = opts.get("vnameserver") {
        s.nameserver = ipv4("vnameserver", v)?;
    }
    if let Some(v) = opts.get("vnameserver6") {
        s.nameserver6 = v
            .trim()
            .parse()
            .map_err(|_| bad("vnameserver6", v, "expected an IPv6 address"))?;
    }
    if let Some(v) = opts.get("vdnssearch") {
        s.dns_search = v
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
    }
    s.domain_name = text("vdomainname");
    if let Some(v) = opts.get("mtu") {
        s.mtu = mtu("mtu", v)?;
    }
    if let Some(v) = opts.get("mru") {
        s.mru = mtu("mru", v)?;
    }
    s.disable_host_loopback = opts.has("disable_host_loopback");

    let mut forwards = Vec::new();
    if let Some(v) = opts.get("tcpfwd") {
        host_forwards(false, v, &mut forwards)?;
    }
    if let Some(v) = opts.get("udpfwd") {
        host_forwards(true, v, &mut forwards)?;
    }
    if let Some(v) = opts.get("unixfwd") {
        guest_forwards(
            "unixfwd",
            v,
            |guest, path| Forward::Unix { guest, path },
            &mut forwards,
        )?;
    }
    if let Some(v) = opts.get("cmdfwd") {
        guest_forwards(
            "cmdfwd",
            v,
            |guest, cmd| Forward::Exec { guest, cmd },
            &mut forwards,
        )?;
    }
    Ok(Config {
        settings: s,
        forwards,
        verbose: opts.has("verbose"),
    })
}

impl Config {
    /// The configuration as the C plugin's `verbose` prints it.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let none = |o: &Option<String>| o.clone().unwrap_or_else(|| "(null)".to_string());
        let mut t = String::from("SLIRP configuration\n");
        let rows: [(&str, String); 20] = [
            ("ipv4-enable", u8::from(s.ipv4).to_string()),
            ("ipv4-network", s.network.to_string()),
            ("ipv4-netmask", s.netmask.to_string()),
            ("ipv4-host", s.host.to_string()),
            ("ipv6-enabled", u8::from(s.ipv6).to_string()),
            ("ipv6-prefix", s.prefix6.to_string()),
            ("ipv6-preflen", s.prefix6_len.to_string()),
            ("ipv6-host", s.host6.to_string()),
            ("hostname", none(&s.hostname)),
            ("tftp-servname", none(&s.tftp_server_name)),
            ("tftp-path", none(&s.tftp_path)),
            ("bootfile", none(&s.bootfile)),
            ("dhcp-start", s.dhcp_start.to_string()),
            ("ipv4-vDNS", s.nameserver.to_string()),
            ("ipv6-vDNS", s.nameserver6.to_string()),
            ("vDNS-search", s.dns_search.join(" ")),
            ("vdomainname", none(&s.domain_name)),
            ("MTU(0=def)", s.mtu.to_string()),
            ("MRU(0=def)", s.mru.to_string()),
            (
                "disable-lback",
                u8::from(s.disable_host_loopback).to_string(),
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(t, "{k:<13} {v}");
        }
        for f in &self.forwards {
            let _ = match f {
                Forward::Host { udp, host, guest } => writeln!(
                    t,
                    "{}fwd host   {host} -> guest {guest}",
                    if *udp { "udp" } else { "tcp" }
                ),
                Forward::Unix { guest, path } => {
                    writeln!(t, "unixfwd       gw {guest} -> host {path}")
                }
                Forward::Exec { guest, cmd } => writeln!(t, "cmdfwd        gw {guest} -> '{cmd}'"),
            };
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_are_the_c_plugins() {
        for url in ["", "/", "//"] {
            let c = parse(url).unwrap();
            assert_eq!(c.settings, defaults(), "{url:?}");
            assert!(c.forwards.is_empty() && !c.verbose);
        }
    }

    #[test]
    fn families() {
        let c = parse("/v4").unwrap().settings;
        assert!(c.ipv4 && !c.ipv6);
        let c = parse("/v6").unwrap().settings;
        assert!(!c.ipv4 && c.ipv6);
        let c = parse("/v4/v6").unwrap().settings;
        assert!(c.ipv4 && c.ipv6);
    }

    #[test]
    fn a_prefix_moves_the_network_and_the_default_addresses() {
        // The fact sheet's example, checked against the C plugin.
        let c = parse("/addr='192.168.7.1/20'").unwrap().settings;
        assert_eq!(c.host, v4("192.168.7.1"));
        assert_eq!(c.netmask, v4("255.255.240.0"));
        assert_eq!(c.network, v4("192.168.0.0"));
        assert_eq!(c.dhcp_start, v4("192.168.2.15"));
        assert_eq!(c.nameserver, v4("192.168.2.3"));
        // Escaped slash, a key prefix, the default /24.
        let c = parse("/h=172.16.5.1%2f16").unwrap().settings;
        assert_eq!(
            (c.network, c.netmask),
            (v4("172.16.0.0"), v4("255.255.0.0"))
        );
        let c = parse("/host=10.9.8.1").unwrap().settings;
        assert_eq!((c.network, c.dhcp_start), (v4("10.9.8.0"), v4("10.9.8.15")));
        // Explicit addresses come after, unmoved.
        let c = parse("/addr=10.9.8.1/dhcp=10.9.8.100/vnameserver=10.9.8.53").unwrap();
        assert_eq!(c.settings.dhcp_start, v4("10.9.8.100"));
        assert_eq!(c.settings.nameserver, v4("10.9.8.53"));
        let c = parse("/addr6='fd12:3456::1/48'").unwrap().settings;
        assert_eq!(c.prefix6, "fd12:3456::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(c.prefix6_len, 48);
        assert_eq!(c.nameserver6, "fd12:3456::3".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn the_man_page_syntax_gets_a_hint() {
        let e = parse("/addr=10.0.0.1/24").unwrap_err().to_string();
        assert!(e.contains("addr='10.0.0.1/24'"), "{e}");
        let e = parse("verbose").unwrap_err().to_string();
        assert!(e.contains("slirp:///verbose"), "{e}");
    }

    #[test]
    fn strings_numbers_and_flags() {
        let c = parse(
            "/hostname=vm/vdnssearch=a.org,,b.net/vdomainname=x.org/mtu=9000/mru=1500\
             /restricted/disable_host_loopback/verbose/tftp_path=%2ftmp/bootfile=pxe",
        )
        .unwrap();
        let s = &c.settings;
        assert_eq!(s.hostname.as_deref(), Some("vm"));
        assert_eq!(s.dns_search, ["a.org", "b.net"]);
        assert_eq!(s.domain_name.as_deref(), Some("x.org"));
        assert_eq!((s.mtu, s.mru), (9000, 1500));
        assert!(s.restricted && s.disable_host_loopback && c.verbose);
        assert_eq!(s.tftp_path.as_deref(), Some("/tmp"));
        assert_eq!(s.bootfile.as_deref(), Some("pxe"));
        assert!(c.describe().contains("ipv4-host     10.0.2.2"));
    }

    #[test]
    fn forwards() {
        let c = parse(
            "/tcpfwd=8080:10.0.2.15:80,127.0.0.1:2222:10.0.2.15:22,:53:10.0.2.15:53\
             /udpfwd=5353:10.0.2.15:53/unixfwd=5900:'/tmp/x.sock'/cmdfwd=10.0.2.9:7:cat",
        )
        .unwrap();
        let g = |p| SocketAddrV4::new(v4("10.0.2.15"), p);
        assert_eq!(
            c.forwards,
            [
                Forward::Host {
                    udp: false,
                    host: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080),
                    guest: g(80)
                },
                Forward::Host {
                    udp: false,
                    host: SocketAddrV4::new(v4("127.0.0.1"), 2222),
                    guest: g(22)
                },
                Forward::Host {
                    udp: false,
                    host: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53),
                    guest: g(53)
                },
                Forward::Host {
                    udp: true,
                    host: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5353),
                    guest: g(53)
                },
                Forward::Unix {
                    guest: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5900),
                    path: "/tmp/x.sock".into()
                },
                Forward::Exec {
                    guest: SocketAddrV4::new(v4("10.0.2.9"), 7),
                    cmd: "cat".into()
                },
            ]
        );
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        for (url, what) in [
            ("/addr=ten", "addr"),
            ("/addr='10.0.0.1/40'", "addr"),
            ("/addr6=fd00::1%2f200", "addr6"),
            ("/dhcp=10.0.2", "dhcp"),
            ("/vnameserver6=10.0.2.3", "vnameserver6"),
            ("/mtu=20", "mtu"),
            ("/mru=lots", "mru"),
            ("/tcpfwd=80:10.0.2.15", "tcpfwd"),
            ("/tcpfwd=80:10.0.2.x:80", "tcpfwd"),
            ("/udpfwd=0:10.0.2.15:53", "udpfwd"),
            ("/tcpfwd=1.2.3.4:99999:10.0.2.15:80", "tcpfwd"),
            ("/unixfwd=5900", "unixfwd"),
            ("/cmdfwd=7:", "cmdfwd"),
            ("/colour=red", "colour"),
            ("/host=10.0.0.1/addr=10.0.0.2", "addr"),
        ] {
            let e = parse(url).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{url}");
            assert!(e.to_string().contains(what), "{url}: {e}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_mask::<4>(20), [255, 255, 240, 0]);
        assert_eq!(prefix_mask::<4>(0), [0; 4]);
        assert_eq!(prefix_mask::<4>(32), [255; 4]);
        assert_eq!(prefix_mask::<16>(64)[7..9], [255, 0]);
    }
}
