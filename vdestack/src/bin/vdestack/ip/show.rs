//! iproute2-like text for links, addresses and routes. Pure: unit-tested on values.

use std::collections::HashMap;
use std::fmt::Write;

use vdestack::nl::{Addr, Link, Route};

/// `IFF_*` flag names in iproute2's order.
const FLAGS: &[(u32, &str)] = &[
    (0x8, "LOOPBACK"),
    (0x2, "BROADCAST"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x100, "PROMISC"),
    (0x200, "ALLMULTI"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x1, "UP"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
];

/// The flag names iproute2 shows, in its order.
pub fn flag_list(flags: u32) -> Vec<&'static str> {
    // Like iproute2: an interface that is up without a carrier says so first.
    let no_carrier = flags & 0x1 != 0 && flags & 0x10000 == 0 && flags & 0x8 == 0;
    no_carrier
        .then_some("NO-CARRIER")
        .into_iter()
        .chain(
            FLAGS
                .iter()
                .filter(|(bit, _)| flags & bit != 0)
                .map(|(_, n)| *n),
        )
        .collect()
}

fn flag_names(flags: u32) -> String {
    flag_list(flags).join(",")
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn names(links: &[Link]) -> HashMap<u32, &str> {
    links.iter().map(|l| (l.index, l.name.as_str())).collect()
}

/// `ip link show`: two lines for each of `shown` (more with `stats`); `all` names
/// parents and masters.
pub fn links(shown: &[Link], all: &[Link], stats: bool) -> String {
    let by_index = names(all);
    let mut out = String::new();
    for l in shown {
        link(&mut out, l, &by_index, stats);
    }
    out
}

fn link(out: &mut String, l: &Link, by_index: &HashMap<u32, &str>, stats: bool) {
    let at = match l.parent {
        Some(p) => format!("@{}", by_index.get(&p).copied().unwrap_or("NONE")),
        None => String::new(),
    };
    let _ = write!(
        out,
        "{}: {}{}: <{}>",
        l.index,
        l.name,
        at,
        flag_names(l.flags)
    );
    if let Some(mtu) = l.mtu {
        let _ = write!(out, " mtu {mtu}");
    }
    if let Some(m) = l.master.and_then(|m| by_index.get(&m)) {
        let _ = write!(out, " master {m}");
    }
    let _ = writeln!(out, " state {}", l.operstate_name());
    let kind = if l.flags & 0x8 != 0 {
        "loopback"
    } else {
        "ether"
    };
    let m = l
        .mac
        .as_deref()
        .map(mac)
        .unwrap_or_else(|| "00:00:00:00:00:00".into());
    let _ = write!(out, "    link/{kind} {m}");
    if let Some(b) = &l.broadcast {
        let _ = write!(out, " brd {}", mac(b));
    }
    if let Some(k) = &l.kind {
        let _ = write!(out, " ({k})");
    }
    out.push('\n');
    if stats {
        let s = &l.stats;
        let _ = writeln!(out, "    RX:  bytes packets errors dropped");
        let _ = writeln!(
            out,
            "    {:>10} {:>7} {:>6} {:>7}",
            s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped
        );
        let _ = writeln!(out, "    TX:  bytes packets errors dropped");
        let _ = writeln!(
            out,
            "    {:>10} {:>7} {:>6} {:>7}",
            s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped
        );
    }
}

/// A scope as iproute2 names it.
pub fn scope(s: u8) -> String {
    match s {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

/// `ip addr show`: each of `shown`, then its addresses (`all` names parents).
pub fn addrs(shown: &[Link], all: &[Link], addrs: &[Addr], family: Option<bool>) -> String {
    let by_index = names(all);
    let mut out = String::new();
    for l in shown {
        let mine: Vec<&Addr> = addrs
            .iter()
            .filter(|a| a.index == l.index)
            .filter(|a| family.is_none_or(|v4| a.addr.is_ipv4() == v4))
            .collect();
        if family.is_some() && mine.is_empty() {
            continue;
        }
        link(&mut out, l, &by_index, false);
        for a in mine {
            let fam = if a.addr.is_ipv4() { "inet" } else { "inet6" };
            let _ = write!(
                out,
                "    {fam} {}/{} scope {}",
                a.addr,
                a.prefix_len,
                scope(a.scope)
            );
            if a.addr.is_ipv4() {
                let _ = write!(out, " {}", a.label.as_deref().unwrap_or(&l.name));
            }
            if a.flags & 0x02 != 0 {
                out.push_str(" nodad");
            }
            out.push('\n');
        }
    }
    out
}

/// A route protocol as iproute2 names it.
pub fn proto(p: u8) -> String {
    match p {
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        9 => "ra".into(),
        n => n.to_string(),
    }
}

/// `ip route show`: the main table, one line a route.
pub fn routes(links: &[Link], routes: &[Route], v4: bool) -> String {
    let by_index = names(links);
    let mut out = String::new();
    for r in routes {
        if r.table != 254 || r.dst.is_ipv4() != v4 {
            continue;
        }
        let mut line = match r.kind {
            1 => String::new(),
            6 => "blackhole ".into(),
            7 => "unreachable ".into(),
            8 => "prohibit ".into(),
            _ => continue, // local, broadcast, multicast...: iproute2 hides them too
        };
        if r.prefix_len == 0 {
            line.push_str("default");
        } else {
            let _ = write!(line, "{}/{}", r.dst, r.prefix_len);
        }
        if let Some(gw) = r.gateway {
            let _ = write!(line, " via {gw}");
        }
        if let Some(dev) = r.oif.and_then(|o| by_index.get(&o)) {
            let _ = write!(line, " dev {dev}");
        }
        if r.protocol != 3 {
            let _ = write!(line, " proto {}", proto(r.protocol));
        }
        if r.scope != 0 {
            let _ = write!(line, " scope {}", scope(r.scope));
        }
        if let Some(m) = r.metric.filter(|&m| m != 0) {
            let _ = write!(line, " metric {m}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
