//! What `vxvde://` and `vxlan://` share: the 8-byte VXLAN header, option parsing and
//! group resolution, UDP socket set-up, and the MAC-learning forwarder that picks
//! unicast or multicast for each frame.
//!
//! The header codec and the option parsing are pure and unit-tested here; the socket
//! helpers are thin wrappers over `rustix`.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::{
    self as rnet, sockopt, AddressFamily, RecvAncillaryBuffer, RecvFlags, SocketFlags, SocketType,
};

use crate::error::context;
use crate::vde::mactable::{dst_mac, is_group, src_mac, MacTable};
use crate::vde::url::{bad_value, parse_url_style, Options, UrlError};

/// Length of the VXLAN header that precedes every frame.
pub const HEADER_LEN: usize = 8;

/// The VXLAN header for `vni`: flags `0x08` (the "I" bit), three zero bytes, the
/// 24-bit VNI big-endian, one zero byte.
pub fn encode_header(vni: u32) -> [u8; HEADER_LEN] {
    let v = vni.to_be_bytes();
    [0x08, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// The VNI of a header whose flags byte is `0x08`, ignoring the reserved bytes (the
/// kernel-compatible check of `vxlan://`). `None` for anything else.
pub fn decode_vni(header: &[u8]) -> Option<u32> {
    match header {
        [0x08, _, _, _, a, b, c, _, ..] => Some(u32::from_be_bytes([0, *a, *b, *c])),
        _ => None,
    }
}

/// The settings both plugins read from their URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxConfig {
    /// Candidate multicast groups with the port, in resolver order (a name may give
    /// several); the first one whose sockets can be set up is used.
    pub groups: Vec<SocketAddr>,
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
    /// TTL (hop limit) for everything sent.
    pub ttl: u32,
    /// `SO_RCVBUF`, if given.
    pub rcvbuf: Option<usize>,
    /// Interface name for the multicast join and output, if given.
    pub ifname: Option<String>,
    /// Local address for the unicast socket (`vxvde://` `bind=`).
    pub bind: Option<IpAddr>,
    /// MAC table size.
    pub hashsize: usize,
    /// How long a learned MAC stays valid.
    pub expire: Duration,
}

/// The largest MAC table `hashsize=` may ask for.
const MAX_HASHSIZE: u64 = 1 << 20;

/// Parses a `vxvde://` or `vxlan://` argument. `tags` is the plugin's option table,
/// `default_port` its port; `grp=` and `bind=` are honoured only if `tags` has them.
pub fn parse_config(
    scheme: &'static str,
    arg: &str,
    tags: &[&'static str],
    default_port: u16,
) -> io::Result<VxConfig> {
    let (addr, opts) = parse_url_style(scheme, arg, tags)?;
    let num = |tag: &'static str| opts.number(scheme, tag);
    let port = match num("port")? {
        None => default_port,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(_) => {
            return Err(bad_value(
                scheme,
                "port",
                opts.get("port").unwrap_or(""),
                "expected 1..65535",
            )
            .into())
        }
    };
    let gid = match opts.get("grp") {
        Some(g) => {
            Some(crate::sys::group_id(g).map_err(|e| context(e, format!("{scheme}://: grp={g}")))?)
        }
        None => None,
    };
    let vni = match opts.get("vni") {
        Some(v) => vni_value(scheme, v)?,
        None => gid.unwrap_or(1) & 0xff_ffff,
    };
    let ttl = num("ttl")?.unwrap_or(1);
    if ttl > 255 {
        return Err(bad_value(
            scheme,
            "ttl",
            opts.get("ttl").unwrap_or(""),
            "expected 0..255",
        )
        .into());
    }
    let rcvbuf = opts
        .nonzero(
            scheme,
            "rcvbuf",
            "a receive buffer of 0 bytes holds no frame",
        )?
        .map(|n| n.min(i32::MAX as u64) as usize);
    let hashsize = match opts.nonzero(scheme, "hashsize", "a table of 0 addresses learns none")? {
        None => 1024,
        Some(n) if n <= MAX_HASHSIZE => n as usize,
        Some(_) => {
            return Err(bad_value(
                scheme,
                "hashsize",
                opts.get("hashsize").unwrap_or(""),
                format!("at most {MAX_HASHSIZE} addresses"),
            )
            .into())
        }
    };
    let expire = Duration::from_secs(
        opts.nonzero(
            scheme,
            "expiretime",
            "addresses would be forgotten as learned",
        )?
        .unwrap_or(128),
    );
    let bind = match opts.get("bind") {
        Some(b) => Some(
            b.parse::<IpAddr>()
                .map_err(|_| bad_value(scheme, "bind", b, "expected an IP address"))?,
        ),
        None => None,
    };
    let groups = resolve_groups(scheme, &addr, &opts, port, gid)?;
    Ok(VxConfig {
        groups,
        vni,
        ttl: ttl as u32,
        rcvbuf,
        ifname: opts.get("if").filter(|s| !s.is_empty()).map(str::to_string),
        bind,
        hashsize,
        expire,
    })
}

/// A `vni=` value: a number, or a group name standing for its gid (as upstream).
fn vni_value(scheme: &'static str, v: &str) -> Result<u32, UrlError> {
    let n = match crate::vde::url::parse_number(v) {
        Some(n) => n,
        None => crate::sys::group_id(v)
            .map_err(|_| bad_value(scheme, "vni", v, "expected a number or a group name"))?
            .into(),
    };
    if n > 0xff_ffff {
        return Err(bad_value(
            scheme,
            "vni",
            v,
            "a VNI has 24 bits (at most 16777215)",
        ));
    }
    Ok(n as u32)
}

/// Resolves the group: a literal or a name (getaddrinfo), filtered by `v4`/`v6`, the
/// default group when empty, with `grp`'s low 24 bits in the last three bytes.
fn resolve_groups(
    scheme: &'static str,
    addr: &str,
    opts: &Options,
    port: u16,
    gid: Option<u32>,
) -> io::Result<Vec<SocketAddr>> {
    let (v4, v6) = (opts.has("v4"), opts.has("v6"));
    let want = |ip: &IpAddr| match (v4, v6) {
        (true, false) => ip.is_ipv4(),
        (false, true) => ip.is_ipv6(),
        _ => true,
    };
    let mut ips: Vec<IpAddr> = if addr.is_empty() {
        vec![if v6 && !v4 {
            IpAddr::V6(Ipv6Addr::new(0xff05, 0x56de, 0, 0, 0, 0, 0, 1))
        } else {
            IpAddr::V4(Ipv4Addr::new(239, 0, 0, 1))
        }]
    } else if let Ok(ip) = addr.parse::<IpAddr>() {
        vec![ip]
    } else {
        // getaddrinfo's reason (from std, without an errno to add).
        (addr, port)
            .to_socket_addrs()
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{scheme}://: the group name `{addr}` did not resolve ({e})"),
                )
            })?
            .map(|s| s.ip())
            .collect()
    };
    ips.retain(want);
    if let Some(g) = gid {
        let low = g.to_be_bytes();
        for ip in &mut ips {
            *ip = with_low_bytes(*ip, [low[1], low[2], low[3]]);
        }
    }
    if ips.is_empty() {
        return Err(bad_value(scheme, "group", addr, "no address of the requested family").into());
    }
    if let Some(ip) = ips.iter().find(|ip| !ip.is_multicast()) {
        // Said as typed: the resolver reads `1.2.3` as 1.2.0.3, which nobody wrote.
        let why = match ip.to_string() == addr {
            true => "not a multicast address".to_string(),
            false => format!("it means {ip}, not a multicast address"),
        };
        return Err(bad_value(scheme, "group", addr, why).into());
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// `ip` with its last three bytes replaced.
fn with_low_bytes(ip: IpAddr, low: [u8; 3]) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            IpAddr::V4(Ipv4Addr::new(o[0], low[0], low[1], low[2]))
        }
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o[13..].copy_from_slice(&low);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

/// A non-blocking, close-on-exec UDP socket of `addr`'s family.
pub fn udp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    Ok(rnet::socket_with(
        family,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// The interface index of `ifname` (0, "any", without one).
pub fn ifindex(fd: impl AsFd, ifname: Option<&str>) -> io::Result<u32> {
    match ifname {
        None => Ok(0),
        Some(n) => rnet::netdevice::name_to_index(fd, n)
            .map_err(|e| context(e, format!("interface `{n}`"))),
    }
}

/// Joins `group` on `fd` (on interface `ifx`, 0 for the kernel's choice).
pub fn join(fd: impl AsFd, group: &SocketAddr, ifx: u32) -> io::Result<()> {
    match group.ip() {
        IpAddr::V4(g) => {
            sockopt::set_ip_add_membership_with_ifindex(fd, &g, &Ipv4Addr::UNSPECIFIED, ifx)?
        }
        IpAddr::V6(g) => sockopt::set_ipv6_add_membership(fd, &g, ifx)?,
    }
    Ok(())
}

/// Sets the outgoing TTL (unicast and multicast), the multicast interface and the
/// receive buffer of a socket that sends to `group`.
pub fn set_output(fd: impl AsFd, group: &SocketAddr, cfg: &VxConfig, ifx: u32) -> io::Result<()> {
    let fd = fd.as_fd();
    match group.ip() {
        IpAddr::V4(g) => {
            sockopt::set_ip_ttl(fd, cfg.ttl)?;
            sockopt::set_ip_multicast_ttl(fd, cfg.ttl)?;
            if ifx != 0 {
                sockopt::set_ip_multicast_if_with_ifindex(fd, &g, &Ipv4Addr::UNSPECIFIED, ifx)?;
            }
        }
        IpAddr::V6(_) => {
            sockopt::set_ipv6_unicast_hops(fd, Some(cfg.ttl.min(255) as u8))?;
            sockopt::set_ipv6_multicast_hops(fd, cfg.ttl)?;
            if ifx != 0 {
                sockopt::set_ipv6_multicast_if(fd, ifx)?;
            }
        }
    }
    if let Some(n) = cfg.rcvbuf {
        sockopt::set_socket_recv_buffer_size(fd, n)?;
    }
    Ok(())
}

/// What one full-size frame's datagram costs in a receiver's socket buffer: its
/// buffer's truesize (a 4 KiB page fragment and the socket buffer's head).
const FRAME_TRUESIZE: usize = 4608;

/// How many full-size frames a member's receive queue holds ([`Plug::flight_frames`]),
/// judged from `fd`, our own receiving socket: the members of a group are
/// configured alike (`rcvbuf=`, else the kernel's default, 208 KiB: about 46
/// frames; 4 streams toward a Debian `vdens` kept within 48 were never dropped,
/// 64 were).
///
/// [`Plug::flight_frames`]: crate::vde::Plug::flight_frames
pub fn flight_frames(fd: impl AsFd) -> usize {
    // The kernel reports the buffer it uses (twice what `SO_RCVBUF` asked).
    let bytes = sockopt::socket_recv_buffer_size(fd).unwrap_or(212_992);
    frames_in(bytes)
}

fn frames_in(bytes: usize) -> usize {
    (bytes / FRAME_TRUESIZE).max(8)
}

/// The MAC-learning half of a VXLAN endpoint: where each frame goes, and what a
/// received datagram teaches.
#[derive(Debug)]
pub struct Forwarder {
    /// The header this endpoint sends (and, for vxvde, requires).
    pub header: [u8; HEADER_LEN],
    /// Group and port that floods go to.
    pub group: SocketAddr,
    table: MacTable<SocketAddr>,
}

/// Upstream keys its table on (MAC, vlan 1) whatever the frame carries.
const VLAN: u16 = 1;

impl Forwarder {
    /// A forwarder for `cfg` flooding to `group`.
    pub fn new(cfg: &VxConfig, group: SocketAddr) -> Self {
        Self {
            header: encode_header(cfg.vni),
            group,
            table: MacTable::new(cfg.expire, cfg.hashsize),
        }
    }

    /// Where `frame` goes: the learned sender of its destination MAC while fresh,
    /// else the group.
    pub fn destination(&self, frame: &[u8], now: Instant) -> SocketAddr {
        let dst = dst_mac(frame);
        if is_group(&dst) {
            return self.group;
        }
        self.table
            .lookup(&dst, VLAN, now)
            .copied()
            .unwrap_or(self.group)
    }

    /// Records that `frame`'s source MAC is behind `from`.
    pub fn learn(&mut self, frame: &[u8], from: SocketAddr, now: Instant) {
        self.table.learn(src_mac(frame), VLAN, from, now);
    }

    /// Forgets everything learned from `from` (its goodbye).
    pub fn forget(&mut self, from: &SocketAddr) {
        self.table.forget(from);
    }
}

impl crate::vde::datagram::Route for Forwarder {
    fn destination(&self, frame: &[u8]) -> SocketAddr {
        Forwarder::destination(self, frame, Instant::now())
    }
}

/// Sends `header` + `frame` as one datagram to `to` without blocking. A full queue
/// (EAGAIN, ENOBUFS) is reported as `WouldBlock`.
pub fn send_to(fd: impl AsFd, to: &SocketAddr, header: &[u8], frame: &[u8]) -> io::Result<usize> {
    crate::vde::datagram::send_one(fd, header, Some(to), frame).map_err(crate::sys::send_error)
}

/// Receives one datagram into `header` + `buf`: `(total bytes, sender)`.
pub fn recv_from(
    fd: impl AsFd,
    header: &mut [u8; HEADER_LEN],
    buf: &mut [u8],
) -> io::Result<(usize, Option<SocketAddr>)> {
    let mut iov = [IoSliceMut::new(header), IoSliceMut::new(buf)];
    let mut no_control = RecvAncillaryBuffer::default();
    let m = rnet::recvmsg(fd, &mut iov, &mut no_control, RecvFlags::DONTWAIT)?;
    let from = m.address.and_then(|a| SocketAddr::try_from(a).ok());
    Ok((m.bytes, from))
}

/// Whether two socket addresses are the same IP and port (ignoring v6 flow and scope).
pub fn same_endpoint(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}

/// Tries each candidate group of `cfg` in resolver order with `open`, returning the
/// first endpoint that could be set up, or the last error (naming URL and group).
pub fn open_first_group<T>(
    scheme: &str,
    arg: &str,
    cfg: &VxConfig,
    open: impl Fn(&VxConfig, SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for group in &cfg.groups {
        match open(cfg, *group) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(context(e, format!("{scheme}://{arg}: group {group}"))),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENETUNREACH)))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::vde::vxvde::TAGS;

    #[test]
    fn a_default_receive_buffer_takes_a_few_dozen_frames() {
        assert_eq!(frames_in(212_992), 46);
        assert_eq!(frames_in(8 << 20), 1820);
        assert_eq!(frames_in(0), 8);
    }

    #[test]
    fn header_bytes_match_the_captures() {
        assert_eq!(encode_header(1), [8, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(encode_header(1234), [8, 0, 0, 0, 0, 4, 0xd2, 0]);
        assert_eq!(decode_vni(&encode_header(0xabcdef)), Some(0xabcdef));
        assert_eq!(
            decode_vni(&[8, 1, 2, 3, 0, 0, 42, 9]),
            Some(42),
            "reserved bytes ignored"
        );
        assert_eq!(decode_vni(&[0, 0, 0, 0, 0, 0, 1, 0]), None);
        assert_eq!(decode_vni(&[8, 0, 0]), None);
    }

    #[test]
    fn defaults_and_prefixes() {
        let c = parse_config("vxvde", "", TAGS, 14789).unwrap();
        assert_eq!(c.groups, vec!["239.0.0.1:14789".parse().unwrap()]);
        assert_eq!((c.vni, c.ttl, c.hashsize), (1, 1, 1024));
        assert_eq!(c.expire, Duration::from_secs(128));
        let c = parse_config("vxvde", "/v6/po=5000/vn=77/t=3/h=16/e=9", TAGS, 14789).unwrap();
        assert_eq!(c.groups, vec!["[ff05:56de::1]:5000".parse().unwrap()]);
        assert_eq!((c.vni, c.ttl, c.hashsize), (77, 3, 16));
        assert_eq!(c.expire, Duration::from_secs(9));
        let c = parse_config("vxvde", "ff05::9/bind=::1", TAGS, 14789).unwrap();
        assert!(c.groups[0].is_ipv6());
        assert_eq!(c.bind, Some("::1".parse().unwrap()));
    }

    #[test]
    fn grp_sets_low_bytes_and_default_vni() {
        let c = parse_config("vxvde", "/grp=1193046", TAGS, 14789).unwrap();
        assert_eq!(c.groups, vec!["239.18.52.86:14789".parse().unwrap()]);
        assert_eq!(c.vni, 0x123456);
        let c = parse_config("vxvde", "ff05:56de::1/grp=5/vni=9", TAGS, 1).unwrap();
        assert_eq!(c.groups, vec!["[ff05:56de::5]:1".parse().unwrap()]);
        assert_eq!(c.vni, 9);
    }

    #[test]
    fn bad_input_is_named() {
        let e = parse_config("vxvde", "/colour=red", TAGS, 14789).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = parse_config("vxvde", "10.1.2.3", TAGS, 14789).unwrap_err();
        assert!(e.to_string().contains("not a multicast"), "{e}");
        let e = parse_config("vxvde", "/vni=99999999", TAGS, 14789).unwrap_err();
        assert!(e.to_string().contains("vni"), "{e}");
        let e = parse_config("vxvde", "/port=70000", TAGS, 14789).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        let e = parse_config("vxvde", "239.0.0.1/v6", TAGS, 14789).unwrap_err();
        assert!(e.to_string().contains("family"), "{e}");
        assert!(parse_config("vxlan", "/bind=1.2.3.4", &TAGS[..10], 4789).is_err());
    }

    #[test]
    fn the_group_is_echoed_as_typed() {
        // The resolver reads an abbreviated IPv4 (`1.2.3`) as 1.2.0.3: no name lookup.
        let e = parse_config("vxlan", "1.2.3", TAGS, 4789).unwrap_err();
        assert!(e.to_string().contains("bad group `1.2.3`"), "{e}");
        assert!(e.to_string().contains("1.2.0.3, not a multicast"), "{e}");
        let e = parse_config("vxlan", "10.1.2.3", TAGS, 4789).unwrap_err();
        assert!(
            e.to_string()
                .contains("bad group `10.1.2.3`: not a multicast"),
            "{e}"
        );
    }

    #[test]
    fn zero_where_zero_means_nothing_is_refused() {
        for (arg, key) in [
            ("/hashsize=0", "hashsize"),
            ("/hashsize=2m", "hashsize"),
            ("/expiretime=0", "expiretime"),
            ("/rcvbuf=0", "rcvbuf"),
            ("/port=0", "port"),
        ] {
            let e = parse_config("vxvde", arg, TAGS, 14789).unwrap_err();
            assert!(
                e.to_string().contains(&format!("bad {key} `")),
                "{arg}: {e}"
            );
        }
        // TTL 0 keeps multicast on this host: a real choice.
        assert_eq!(parse_config("vxvde", "/ttl=0", TAGS, 14789).unwrap().ttl, 0);
        let c = parse_config("vxvde", "/hashsize=1m", TAGS, 14789).unwrap();
        assert_eq!(c.hashsize, 1 << 20);
    }

    #[test]
    fn forwarder_learns_and_floods() {
        let cfg = parse_config("vxvde", "", TAGS, 14789).unwrap();
        let group = cfg.groups[0];
        let mut f = Forwarder::new(&cfg, group);
        let now = Instant::now();
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let mut frame = [0u8; 14];
        frame[..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        assert_eq!(f.destination(&frame, now), group, "unknown: flood");
        let mut from9 = [0u8; 14];
        from9[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        f.learn(&from9, peer, now);
        assert_eq!(f.destination(&frame, now), peer);
        assert_eq!(
            f.destination(&frame, now + Duration::from_secs(200)),
            group,
            "expired"
        );
        f.forget(&peer);
        assert_eq!(f.destination(&frame, now), group, "goodbye forgets");
        frame[0] = 0xff;
        assert_eq!(f.destination(&frame, now), group, "broadcast");
    }
}
