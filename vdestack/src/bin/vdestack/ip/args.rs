//! iproute2-style arguments (`link add v0 type veth peer name v1`, `addr add
//! 10.0.0.1/24 dev v0`, `route add default via 10.0.0.254`) parsed into a
//! [`Command`]. Pure: unit-tested. Words may be abbreviated as iproute2 allows for
//! the objects (`l`, `a`, `r`).

use std::io;
use std::net::IpAddr;

use vdestack::nl::config::{parse_mac, Cidr};
use vdestack::nl::{LinkKind, MacvlanMode, NlClient, VxlanSpec};

/// `-4`, `-6` or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

/// What `show` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Link,
    Addr,
    Route,
}

/// A link kind as typed, with parent links still by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindSpec {
    Veth {
        peer: Option<String>,
    },
    Bridge,
    Dummy,
    Macvlan {
        parent: String,
        mode: MacvlanMode,
    },
    Vlan {
        parent: String,
        id: u16,
    },
    Vxlan {
        id: u32,
        group: Option<IpAddr>,
        local: Option<IpAddr>,
        dstport: Option<u16>,
        dev: Option<String>,
    },
}

impl KindSpec {
    /// Looks up parent links by name.
    pub fn resolve(self, index: &dyn Fn(&str) -> io::Result<u32>) -> io::Result<LinkKind> {
        Ok(match self {
            KindSpec::Veth { peer } => LinkKind::Veth {
                peer: peer.unwrap_or_default(),
            },
            KindSpec::Bridge => LinkKind::Bridge,
            KindSpec::Dummy => LinkKind::Dummy,
            KindSpec::Macvlan { parent, mode } => LinkKind::Macvlan {
                parent: index(&parent)?,
                mode,
            },
            KindSpec::Vlan { parent, id } => LinkKind::Vlan {
                parent: index(&parent)?,
                id,
            },
            KindSpec::Vxlan {
                id,
                group,
                local,
                dstport,
                dev,
            } => {
                let mut spec = VxlanSpec::new(id);
                spec.group = group;
                spec.local = local;
                spec.dstport = dstport;
                spec.dev = dev.map(|d| index(&d)).transpose()?;
                LinkKind::Vxlan(spec)
            }
        })
    }
}

/// One change of `link set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    Up(bool),
    Mtu(u32),
    Mac([u8; 6]),
    Master(Option<String>),
}

impl LinkChange {
    /// Applies the change to link `i`.
    pub fn apply(
        self,
        nl: &NlClient,
        i: u32,
        index: &dyn Fn(&str) -> io::Result<u32>,
    ) -> io::Result<()> {
        match self {
            LinkChange::Up(up) => nl.link_set_up(i, up),
            LinkChange::Mtu(m) => nl.link_set_mtu(i, m),
            LinkChange::Mac(m) => nl.link_set_mac(i, m),
            LinkChange::Master(m) => nl.link_set_master(i, m.map(|m| index(&m)).transpose()?),
        }
    }
}

/// `link add|del|set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkCmd {
    Add {
        name: String,
        kind: KindSpec,
    },
    Del(String),
    Set {
        dev: String,
        changes: Vec<LinkChange>,
    },
}

/// A parsed `vdestack ip` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(Object, Option<String>),
    Link(LinkCmd),
    Addr {
        add: bool,
        cidr: Cidr,
        dev: String,
    },
    Route {
        add: bool,
        dst: Option<Cidr>,
        via: Option<IpAddr>,
        dev: Option<String>,
    },
    Config(String),
}

fn object(w: &str) -> Option<Object> {
    match w {
        "l" | "li" | "lin" | "link" => Some(Object::Link),
        "a" | "ad" | "add" | "addr" | "addre" | "addres" | "address" => Some(Object::Addr),
        "r" | "ro" | "rou" | "rout" | "route" => Some(Object::Route),
        _ => None,
    }
}

/// The words after the verb, consumed left to right.
struct Words<'a> {
    w: &'a [String],
    at: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let w = self.w.get(self.at)?;
        self.at += 1;
        Some(w)
    }
    fn value(&mut self, key: &str) -> Result<&'a str, String> {
        self.next().ok_or_else(|| format!("`{key}` needs a value"))
    }
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("`{key} {v}`: not a valid number"))
}

fn ip(key: &str, v: &str) -> Result<IpAddr, String> {
    v.parse()
        .map_err(|_| format!("`{key} {v}`: not an IP address"))
}

fn cidr(v: &str) -> Result<Cidr, String> {
    // A bare address is a host route / single address, as iproute2 reads it.
    if v.contains('/') {
        v.parse()
    } else {
        let a: IpAddr = v
            .parse()
            .map_err(|_| format!("`{v}` is not an IP address"))?;
        Ok(Cidr {
            addr: a,
            prefix: if a.is_ipv4() { 32 } else { 128 },
        })
    }
}

fn link_kind(w: &mut Words<'_>) -> Result<KindSpec, String> {
    let ty = w.value("type")?;
    let mut parent = None;
    let mut mode = MacvlanMode::Bridge;
    let mut peer = None;
    let (mut id, mut group, mut local, mut dstport, mut dev) = (None, None, None, None, None);
    while let Some(k) = w.next() {
        match (ty, k) {
            ("veth", "peer") => {
                let v = w.value(k)?;
                peer = Some(
                    if v == "name" {
                        w.value("peer name")?
                    } else {
                        v
                    }
                    .to_string(),
                );
            }
            ("macvlan" | "vlan", "link") => parent = Some(w.value(k)?.to_string()),
            ("macvlan", "mode") => {
                mode = match w.value(k)? {
                    "private" => MacvlanMode::Private,
                    "vepa" => MacvlanMode::Vepa,
                    "bridge" => MacvlanMode::Bridge,
                    "passthru" => MacvlanMode::Passthru,
                    "source" => MacvlanMode::Source,
                    m => return Err(format!("unknown macvlan mode `{m}`")),
                }
            }
            ("vlan" | "vxlan", "id") => id = Some(w.value(k)?),
            ("vxlan", "group" | "remote") => group = Some(ip(k, w.value(k)?)?),
            ("vxlan", "local") => local = Some(ip(k, w.value(k)?)?),
            ("vxlan", "dstport") => dstport = Some(num(k, w.value(k)?)?),
            ("vxlan", "dev") => dev = Some(w.value(k)?.to_string()),
            _ => return Err(format!("`{k}` is not an option of type {ty}")),
        }
    }
    let need_parent = |p: Option<String>| p.ok_or_else(|| format!("type {ty} needs `link DEV`"));
    Ok(match ty {
        "veth" => KindSpec::Veth { peer },
        "bridge" => KindSpec::Bridge,
        "dummy" => KindSpec::Dummy,
        "macvlan" => KindSpec::Macvlan {
            parent: need_parent(parent)?,
            mode,
        },
        "vlan" => KindSpec::Vlan {
            parent: need_parent(parent)?,
            id: num("id", id.ok_or("type vlan needs `id N`")?)?,
        },
        "vxlan" => KindSpec::Vxlan {
            id: num("id", id.ok_or("type vxlan needs `id N`")?)?,
            group,
            local,
            dstport,
            dev,
        },
        t => {
            return Err(format!(
                "unknown link type `{t}` (veth, bridge, dummy, macvlan, vlan, vxlan)"
            ))
        }
    })
}

fn dev_name<'a>(w: &mut Words<'a>) -> Result<&'a str, String> {
    match w.next() {
        Some("dev") => w.value("dev"),
        Some(d) => Ok(d),
        None => Err("which device? (`dev NAME`)".into()),
    }
}

fn link(verb: &str, w: &mut Words<'_>) -> Result<Command, String> {
    Ok(match verb {
        "add" => {
            let mut name = None;
            let mut kind = None;
            while let Some(k) = w.next() {
                match k {
                    "name" => name = Some(w.value(k)?.to_string()),
                    "type" => kind = Some(link_kind(w)?),
                    n if name.is_none() => name = Some(n.to_string()),
                    x => return Err(format!("unexpected `{x}`")),
                }
            }
            Command::Link(LinkCmd::Add {
                name: name.ok_or("`link add` needs a NAME")?,
                kind: kind.ok_or("`link add` needs `type TYPE`")?,
            })
        }
        "del" | "delete" => Command::Link(LinkCmd::Del(dev_name(w)?.to_string())),
        "set" => {
            let dev = dev_name(w)?.to_string();
            let mut changes = Vec::new();
            while let Some(k) = w.next() {
                changes.push(match k {
                    "up" => LinkChange::Up(true),
                    "down" => LinkChange::Up(false),
                    "mtu" => LinkChange::Mtu(num(k, w.value(k)?)?),
                    "address" => {
                        let v = w.value(k)?;
                        LinkChange::Mac(
                            parse_mac(v).ok_or_else(|| format!("`{v}` is not a MAC address"))?,
                        )
                    }
                    "master" => LinkChange::Master(Some(w.value(k)?.to_string())),
                    "nomaster" => LinkChange::Master(None),
                    x => {
                        return Err(format!(
                            "`link set`: unknown `{x}` (up, down, mtu, address, master, nomaster)"
                        ))
                    }
                });
            }
            if changes.is_empty() {
                return Err("`link set DEV` needs something to set".into());
            }
            Command::Link(LinkCmd::Set { dev, changes })
        }
        v => return Err(format!("`link {v}`: unknown (show, add, del, set)")),
    })
}

fn addr(verb: &str, w: &mut Words<'_>) -> Result<Command, String> {
    let add = match verb {
        "add" => true,
        "del" | "delete" => false,
        v => return Err(format!("`addr {v}`: unknown (show, add, del)")),
    };
    let c = cidr(w.value("addr")?)?;
    let mut dev = None;
    while let Some(k) = w.next() {
        match k {
            "dev" => dev = Some(w.value(k)?.to_string()),
            x => return Err(format!("`addr {verb}`: unexpected `{x}`")),
        }
    }
    Ok(Command::Addr {
        add,
        cidr: c,
        dev: dev.ok_or("`addr add` needs `dev NAME`")?,
    })
}

fn route(verb: &str, w: &mut Words<'_>) -> Result<Command, String> {
    let add = match verb {
        "add" => true,
        "del" | "delete" => false,
        v => return Err(format!("`route {v}`: unknown (show, add, del)")),
    };
    let d = w.value("route")?;
    let dst = if d == "default" { None } else { Some(cidr(d)?) };
    let (mut via, mut dev) = (None, None);
    while let Some(k) = w.next() {
        match k {
            "via" => via = Some(ip(k, w.value(k)?)?),
            "dev" => dev = Some(w.value(k)?.to_string()),
            x => return Err(format!("`route {verb}`: unexpected `{x}`")),
        }
    }
    if via.is_none() && dev.is_none() {
        return Err("a route needs `via GATEWAY` or `dev NAME`".into());
    }
    Ok(Command::Route { add, dst, via, dev })
}

/// Parses the words after `vdestack ip`.
pub fn parse(args: &[String], _family: Family) -> Result<Command, String> {
    let Some(first) = args.first() else {
        return Err(
            "usage: vdestack ip [-4|-6] [-s] [-j] link|addr|route [show|add|del|set ...] | config LINE"
                .into(),
        );
    };
    if first == "config" {
        let line = args[1..].join(",");
        return Ok(Command::Config(line));
    }
    let obj = object(first)
        .ok_or_else(|| format!("unknown object `{first}` (link, addr, route, config)"))?;
    let mut w = Words {
        w: &args[1..],
        at: 0,
    };
    let verb = w.next().unwrap_or("show");
    match (obj, verb) {
        (_, "show" | "list" | "ls" | "lst") => {
            let dev = match w.next() {
                None => None,
                Some("dev") => Some(w.value("dev")?.to_string()),
                Some(d) if obj != Object::Route => Some(d.to_string()),
                Some(x) => return Err(format!("`route show`: unexpected `{x}`")),
            };
            Ok(Command::Show(obj, dev))
        }
        (Object::Link, v) => link(v, &mut w),
        (Object::Addr, v) => addr(v, &mut w),
        (Object::Route, v) => route(v, &mut w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v, Family::Any)
    }

    #[test]
    fn iproute2_command_lines() {
        assert_eq!(p("link").unwrap(), Command::Show(Object::Link, None));
        assert_eq!(
            p("a show dev v0").unwrap(),
            Command::Show(Object::Addr, Some("v0".into()))
        );
        assert_eq!(
            p("link add v0 type veth peer name v1").unwrap(),
            Command::Link(LinkCmd::Add {
                name: "v0".into(),
                kind: KindSpec::Veth {
                    peer: Some("v1".into())
                }
            })
        );
        assert_eq!(
            p("link add name br0 type bridge").unwrap(),
            Command::Link(LinkCmd::Add {
                name: "br0".into(),
                kind: KindSpec::Bridge
            })
        );
        assert!(matches!(
            p("link add mv0 type macvlan link v0 mode private").unwrap(),
            Command::Link(LinkCmd::Add {
                kind: KindSpec::Macvlan {
                    mode: MacvlanMode::Private,
                    ..
                },
                ..
            })
        ));
        assert!(matches!(
            p("link add vx0 type vxlan id 42 group 239.1.1.1 dstport 4789 dev v0").unwrap(),
            Command::Link(LinkCmd::Add {
                kind: KindSpec::Vxlan {
                    id: 42,
                    dstport: Some(4789),
                    ..
                },
                ..
            })
        ));
        assert_eq!(
            p("link set dev v0 up mtu 1400 address 02:00:00:00:00:01").unwrap(),
            Command::Link(LinkCmd::Set {
                dev: "v0".into(),
                changes: vec![
                    LinkChange::Up(true),
                    LinkChange::Mtu(1400),
                    LinkChange::Mac([2, 0, 0, 0, 0, 1])
                ]
            })
        );
        assert_eq!(
            p("addr add 10.0.0.1/24 dev v0").unwrap(),
            Command::Addr {
                add: true,
                cidr: "10.0.0.1/24".parse().unwrap(),
                dev: "v0".into()
            }
        );
        assert_eq!(
            p("route add default via 10.0.0.254").unwrap(),
            Command::Route {
                add: true,
                dst: None,
                via: Some("10.0.0.254".parse().unwrap()),
                dev: None
            }
        );
        assert_eq!(
            p("r del 10.1.0.0/16 dev v0").unwrap(),
            Command::Route {
                add: false,
                dst: Some("10.1.0.0/16".parse().unwrap()),
                via: None,
                dev: Some("v0".into())
            }
        );
        assert_eq!(
            p("config eth ip=10.0.0.1/24").unwrap(),
            Command::Config("eth,ip=10.0.0.1/24".into())
        );
    }

    #[test]
    fn errors_say_what() {
        for (line, needle) in [
            ("", "usage"),
            ("frob", "frob"),
            ("link add v0", "type"),
            ("link add v0 type wibble", "wibble"),
            ("link add v0 type veth colour red", "colour"),
            ("link set v0", "something"),
            ("link set v0 mtu big", "big"),
            ("link set v0 address 1:2", "MAC"),
            ("addr add 10.0.0.1/33 dev v0", "33"),
            ("addr add 10.0.0.1/24", "dev"),
            ("route add default", "via"),
            ("route add default via nowhere", "nowhere"),
            ("link add m0 type macvlan", "link DEV"),
        ] {
            let e = p(line).unwrap_err();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }
}
