//! `/proc/net/if_inet6`, `/proc/net/route` and `/proc/net/ipv6_route` in the
//! kernel's exact formats (Linux 6.x `if6_seq_show` in `net/ipv6/addrconf.c`,
//! `fib_route_seq_show` in `net/ipv4/fib_trie.c`, `ipv6_route_native_seq_show`
//! in `net/ipv6/route.c`), made from what rtnetlink reports. Checked against
//! files captured on a real namespace together with its netlink dumps
//! (`tests/fixtures/procnet/`).
//!
//! What a dialog cannot tell, and so differs from the kernel:
//! - `if_inet6` lists addresses in the kernel's hash-table order, which depends
//!   on a per-namespace secret; here they come in the dump's order (by link);
//! - `ipv6_route`'s reference-count column (kernel internals) is always 1;
//! - `ipv6_route` shows the null entry of the tables `main`, `local` and of
//!   every table that has a route; the kernel also of tables emptied since.

use std::fmt::Write as _;
use std::io;

use super::super::dialog::Dialog;
use super::rt;
use super::rtinfo::{self, RouteInfo};

/// `RT_TABLE_MAIN`.
const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
const RT_TABLE_LOCAL: u32 = 255;

// Route types (`RTN_*`).
const RTN_LOCAL: u8 = 2;
const RTN_BROADCAST: u8 = 3;
const RTN_ANYCAST: u8 = 4;
const RTN_MULTICAST: u8 = 5;
const RTN_BLACKHOLE: u8 = 6;
const RTN_UNREACHABLE: u8 = 7;
const RTN_PROHIBIT: u8 = 8;
const RTN_THROW: u8 = 9;

// Route flags (`RTF_*`, `linux/route.h` and `linux/ipv6_route.h`).
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
const RTF_HOST: u32 = 0x4;
const RTF_REJECT: u32 = 0x200;
const RTF_ANYCAST: u32 = 0x0010_0000;
const RTF_NONEXTHOP: u32 = 0x0020_0000;
const RTF_EXPIRES: u32 = 0x0040_0000;
const RTF_LOCAL: u32 = 0x8000_0000;

/// The link names by index, for the lines that print them.
struct Names(Vec<(i32, Vec<u8>)>);

impl Names {
    fn of(d: &mut dyn Dialog) -> io::Result<Self> {
        Ok(Names(
            rt::links(d)?
                .into_iter()
                .map(|l| (l.index, l.name))
                .collect(),
        ))
    }

    fn get(&self, index: Option<u32>) -> Option<&[u8]> {
        let i = index? as i32;
        self.0
            .iter()
            .find(|(x, _)| *x == i)
            .map(|(_, n)| n.as_slice())
    }
}

/// `%s` right-aligned to `width` bytes (`%8s`, `%6s`).
fn pad_left(out: &mut Vec<u8>, s: &[u8], width: usize) {
    out.resize(out.len() + width.saturating_sub(s.len()), b' ');
    out.extend_from_slice(s);
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// The kernel's internal IPv6 address scope (`IPV6_ADDR_LOOPBACK` 0x10,
/// `LINKLOCAL` 0x20, `SITELOCAL` 0x40, global 0) from the `RT_SCOPE_*` that
/// netlink reports (the inverse of `rt_scope()`).
fn v6_scope(rt_scope: u8) -> u8 {
    match rt_scope {
        254 => 0x10, // RT_SCOPE_HOST
        253 => 0x20, // RT_SCOPE_LINK
        200 => 0x40, // RT_SCOPE_SITE
        _ => 0,
    }
}

/// `/proc/net/if_inet6`: `"%pi6 %02x %02x %02x %02x %8s\n"` per IPv6 address:
/// the address, link index, prefix length, scope and the low 8 flag bits.
pub fn proc_net_if_inet6(d: &mut dyn Dialog) -> io::Result<Vec<u8>> {
    let names = Names::of(d)?;
    let mut out = Vec::new();
    for a in rtinfo::v6_addrs(d)? {
        let mut s = String::new();
        hex(&mut s, &a.addr);
        let _ = write!(
            s,
            " {:02x} {:02x} {:02x} {:02x} ",
            a.index,
            a.prefixlen,
            v6_scope(a.scope),
            a.flags as u8
        );
        out.extend_from_slice(s.as_bytes());
        pad_left(&mut out, names.get(Some(a.index)).unwrap_or(b""), 8);
        out.push(b'\n');
    }
    Ok(out)
}

/// The header of `/proc/net/route`, padded to 127 columns as the kernel does.
fn route_header(out: &mut Vec<u8>) {
    let h = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
    out.extend_from_slice(format!("{h:<127}\n").as_bytes());
}

/// An IPv4 address as `%08X` prints the kernel's `__be32` on this machine.
fn be32_hex(b: &[u8]) -> String {
    let a: [u8; 4] = b.get(..4).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]);
    format!("{:08X}", u32::from_ne_bytes(a))
}

fn mask_of(prefix: u8) -> [u8; 4] {
    let p = prefix.min(32) as u32;
    (if p == 0 { 0 } else { u32::MAX << (32 - p) }).to_be_bytes()
}

/// `/proc/net/route`: the main table's IPv4 routes (not broadcast or multicast
/// ones), in the trie's order: by destination, then longest prefix first, then
/// lowest metric; each line padded to 127 columns.
pub fn proc_net_route(d: &mut dyn Dialog) -> io::Result<Vec<u8>> {
    let names = Names::of(d)?;
    let mut routes: Vec<RouteInfo> = rtinfo::routes(d, libc::AF_INET as u8)?
        .into_iter()
        .filter(|r| r.table == RT_TABLE_MAIN && !matches!(r.kind, RTN_BROADCAST | RTN_MULTICAST))
        .collect();
    routes.sort_by_key(|r| {
        let key: [u8; 4] = r
            .dst
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]);
        (
            u32::from_be_bytes(key),
            std::cmp::Reverse(r.dst_len),
            r.priority,
        )
    });
    let mut out = Vec::new();
    route_header(&mut out);
    for r in &routes {
        let mask = mask_of(r.dst_len);
        let mut flags = match r.kind {
            RTN_UNREACHABLE | RTN_PROHIBIT => RTF_REJECT,
            _ => 0,
        };
        let gw = r.gateway.as_deref().filter(|g| g.len() == 4);
        if gw.is_some_and(|g| g != [0; 4]) {
            flags |= RTF_GATEWAY;
        }
        if r.dst_len >= 32 {
            flags |= RTF_HOST;
        }
        flags |= RTF_UP;
        let start = out.len();
        out.extend_from_slice(names.get(r.oif).unwrap_or(b"*"));
        let line = format!(
            "\t{}\t{}\t{:04X}\t0\t0\t{}\t{}\t{}\t{}\t{}",
            be32_hex(&r.dst),
            be32_hex(gw.unwrap_or(&[0; 4])),
            flags,
            r.priority as i32,
            be32_hex(&mask),
            if r.advmss > 0 {
                r.advmss as i32 + 40
            } else {
                0
            },
            r.window,
            r.rtt >> 3,
        );
        out.extend_from_slice(line.as_bytes());
        let width = out.len() - start;
        out.resize(out.len() + 127usize.saturating_sub(width), b' ');
        out.push(b'\n');
    }
    Ok(out)
}

/// The order of the kernel's IPv6 route tree walk (post-order, left before
/// right): compared on their common prefix bits, a 0 bit goes first; a prefix
/// of the other goes after it; the same prefix goes by metric.
fn v6_tree_order(a: &RouteInfo, b: &RouteInfo) -> std::cmp::Ordering {
    let bit =
        |r: &RouteInfo, i: usize| r.dst.get(i / 8).is_some_and(|x| x & (0x80 >> (i % 8)) != 0);
    let common = a.dst_len.min(b.dst_len).min(128) as usize;
    for i in 0..common {
        match (bit(a, i), bit(b, i)) {
            (false, true) => return std::cmp::Ordering::Less,
            (true, false) => return std::cmp::Ordering::Greater,
            _ => {}
        }
    }
    b.dst_len.cmp(&a.dst_len).then(a.priority.cmp(&b.priority))
}

/// `RTF_*` of an IPv6 route as `fib6_flags` holds them.
fn v6_flags(r: &RouteInfo) -> u32 {
    let mut f = match r.kind {
        RTN_LOCAL => RTF_UP | RTF_NONEXTHOP | RTF_LOCAL,
        RTN_ANYCAST => RTF_UP | RTF_NONEXTHOP | RTF_ANYCAST,
        RTN_UNREACHABLE | RTN_PROHIBIT | RTN_BLACKHOLE | RTN_THROW => RTF_REJECT | RTF_NONEXTHOP,
        _ => RTF_UP,
    };
    if r.gateway.as_deref().is_some_and(|g| g != [0; 16]) {
        f |= RTF_GATEWAY;
    }
    if r.expires {
        f |= RTF_EXPIRES;
    }
    f
}

const ZERO6: &str = "00000000000000000000000000000000";

/// The line of a table's root when no `::/0` route holds it (`fib6_null_entry`).
fn null_line(out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!("{ZERO6} 00 {ZERO6} 00 {ZERO6} ffffffff 00000001 00000000 00200200       lo\n")
            .as_bytes(),
    );
}

/// `/proc/net/ipv6_route`: every table's IPv6 routes, tables in the kernel's
/// hash order (by the id's low byte: `main` then `local`), routes in the tree's
/// walk order, each table ending with its root (`::/0` or the null entry).
pub fn proc_net_ipv6_route(d: &mut dyn Dialog) -> io::Result<Vec<u8>> {
    let names = Names::of(d)?;
    let routes = rtinfo::routes(d, libc::AF_INET6 as u8)?;
    let mut tables: Vec<u32> = routes.iter().map(|r| r.table).collect();
    tables.extend([RT_TABLE_MAIN, RT_TABLE_LOCAL]);
    tables.sort_by_key(|t| (t & 0xff, *t));
    tables.dedup();
    let mut out = Vec::new();
    for t in tables {
        let mut mine: Vec<&RouteInfo> = routes.iter().filter(|r| r.table == t).collect();
        mine.sort_by(|a, b| v6_tree_order(a, b));
        for r in &mine {
            let mut s = String::new();
            hex(&mut s, &pad16(&r.dst));
            let _ = write!(s, " {:02x} {ZERO6} 00 ", r.dst_len);
            hex(&mut s, &pad16(r.gateway.as_deref().unwrap_or(&[])));
            let _ = write!(
                s,
                " {:08x} 00000001 00000000 {:08x} ",
                r.priority,
                v6_flags(r)
            );
            out.extend_from_slice(s.as_bytes());
            // Reject routes live on the loopback device in the kernel.
            let dev = match r.kind {
                RTN_UNREACHABLE | RTN_PROHIBIT | RTN_BLACKHOLE | RTN_THROW => Some(&b"lo"[..]),
                _ => names.get(r.oif),
            };
            pad_left(&mut out, dev.unwrap_or(b""), 8);
            out.push(b'\n');
        }
        if !mine.iter().any(|r| r.dst_len == 0) {
            null_line(&mut out);
        }
    }
    Ok(out)
}

fn pad16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    let k = b.len().min(16);
    a[..k].copy_from_slice(&b[..k]);
    a
}
