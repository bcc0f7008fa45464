//! `vdestack ip -j`: links, addresses and routes as iproute2's `ip -j` prints them,
//! with its keys for the fields both have (`ifindex`, `ifname`, `flags`, `mtu`,
//! `operstate`, `link_type`, `address`, `broadcast`, `master`, `link`,
//! `addr_info` with `family`/`local`/`prefixlen`/`scope`/`label`, and for routes
//! `dst`, `gateway`, `dev`, `protocol`, `scope`, `metric`, `type`). Pure:
//! unit-tested on values, and against `ip -j` on a real namespace in
//! `tests/cli_ip.rs`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use vdestack::nl::{Addr, Link, Route};

use super::show::{flag_list, mac, proto, scope};

fn names(links: &[Link]) -> HashMap<u32, &str> {
    links.iter().map(|l| (l.index, l.name.as_str())).collect()
}

/// One link's object (without `addr_info`).
fn link(l: &Link, by_index: &HashMap<u32, &str>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("ifindex".into(), json!(l.index));
    if let Some(p) = l.parent {
        // iproute2 names a parent it sees, else gives its index.
        match by_index.get(&p) {
            Some(name) => o.insert("link".into(), json!(name)),
            None => o.insert("link_index".into(), json!(p)),
        };
    }
    o.insert("ifname".into(), json!(l.name));
    o.insert("flags".into(), json!(flag_list(l.flags)));
    if let Some(mtu) = l.mtu {
        o.insert("mtu".into(), json!(mtu));
    }
    if let Some(m) = l.master.and_then(|m| by_index.get(&m)) {
        o.insert("master".into(), json!(m));
    }
    o.insert("operstate".into(), json!(l.operstate_name()));
    let kind = if l.flags & 0x8 != 0 {
        "loopback"
    } else {
        "ether"
    };
    o.insert("link_type".into(), json!(kind));
    if let Some(m) = &l.mac {
        o.insert("address".into(), json!(mac(m)));
    }
    if let Some(b) = &l.broadcast {
        o.insert("broadcast".into(), json!(mac(b)));
    }
    if let Some(k) = &l.kind {
        o.insert("linkinfo".into(), json!({ "info_kind": k }));
    }
    o
}

/// `ip -j link show`.
pub fn links(shown: &[Link], all: &[Link]) -> Value {
    let by_index = names(all);
    Value::Array(
        shown
            .iter()
            .map(|l| Value::Object(link(l, &by_index)))
            .collect(),
    )
}

/// `ip -j addr show`: each link with its `addr_info`.
pub fn addrs(shown: &[Link], all: &[Link], addrs: &[Addr], family: Option<bool>) -> Value {
    let by_index = names(all);
    let mut out = Vec::new();
    for l in shown {
        let mine: Vec<Value> = addrs
            .iter()
            .filter(|a| a.index == l.index)
            .filter(|a| family.is_none_or(|v4| a.addr.is_ipv4() == v4))
            .map(|a| {
                let mut o = Map::new();
                let fam = if a.addr.is_ipv4() { "inet" } else { "inet6" };
                o.insert("family".into(), json!(fam));
                o.insert("local".into(), json!(a.addr.to_string()));
                o.insert("prefixlen".into(), json!(a.prefix_len));
                o.insert("scope".into(), json!(scope(a.scope)));
                if a.addr.is_ipv4() {
                    o.insert("label".into(), json!(a.label.as_deref().unwrap_or(&l.name)));
                }
                if a.flags & 0x02 != 0 {
                    o.insert("nodad".into(), json!(true));
                }
                Value::Object(o)
            })
            .collect();
        if family.is_some() && mine.is_empty() {
            continue;
        }
        let mut o = link(l, &by_index);
        o.insert("addr_info".into(), Value::Array(mine));
        out.push(Value::Object(o));
    }
    Value::Array(out)
}

/// `ip -j route show`: the main table.
pub fn routes(links: &[Link], routes: &[Route], v4: bool) -> Value {
    let by_index = names(links);
    let mut out = Vec::new();
    for r in routes {
        if r.table != 254 || r.dst.is_ipv4() != v4 {
            continue;
        }
        let mut o = Map::new();
        match r.kind {
            1 => {}
            6 => _ = o.insert("type".into(), json!("blackhole")),
            7 => _ = o.insert("type".into(), json!("unreachable")),
            8 => _ = o.insert("type".into(), json!("prohibit")),
            _ => continue, // local, broadcast, multicast...: iproute2 hides them too
        }
        let full = if r.dst.is_ipv4() { 32 } else { 128 };
        let dst = match r.prefix_len {
            0 => "default".to_string(),
            p if p == full => r.dst.to_string(),
            p => format!("{}/{p}", r.dst),
        };
        o.insert("dst".into(), json!(dst));
        if let Some(gw) = r.gateway {
            o.insert("gateway".into(), json!(gw.to_string()));
        }
        if let Some(dev) = r.oif.and_then(|i| by_index.get(&i)) {
            o.insert("dev".into(), json!(dev));
        }
        if r.protocol != 3 {
            o.insert("protocol".into(), json!(proto(r.protocol)));
        }
        if r.scope != 0 {
            o.insert("scope".into(), json!(scope(r.scope)));
        }
        if let Some(m) = r.metric.filter(|&m| m != 0) {
            o.insert("metric".into(), json!(m));
        }
        o.insert("flags".into(), json!([]));
        out.push(Value::Object(o));
    }
    Value::Array(out)
}
