//! `vdestack ip`: a small `ip`-like front end over the netlink client, so a user can
//! inspect and configure a stack from the shell: `link`, `addr`, `route` with
//! `show`/`add`/`del`/`set`, in iproute2's words; and `vdestack ip config LINE`, the
//! one-line configuration.

mod args;
mod dhcp;
mod json;
mod show;

use std::io;

use vdestack::nl::{AddrSpec, NlClient, RouteSpec};

use args::{Command, Family, LinkCmd, Object};

/// Arguments of `vdestack ip`.
#[derive(Debug, clap::Args)]
pub struct IpArgs {
    /// Only IPv4.
    #[arg(short = '4')]
    v4: bool,
    /// Only IPv6.
    #[arg(short = '6')]
    v6: bool,
    /// Also show link statistics.
    #[arg(short = 's', long = "stats")]
    stats: bool,
    /// (Internal) be the process that keeps a `config ...,dhcp` lease renewed.
    #[arg(long = "dhcp-renewer", hide = true)]
    dhcp_renewer: bool,
    /// Show as JSON, with iproute2's keys (`ip -j`).
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// `link|addr|route [show|add|del|set ...]`, or `config LINE`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

/// Runs `vdestack ip` on the host's stack (or the stack this process is in).
pub fn run(a: IpArgs) -> io::Result<()> {
    let family = match (a.v4, a.v6) {
        (true, false) => Family::V4,
        (false, true) => Family::V6,
        _ => Family::Any,
    };
    let cmd =
        args::parse(&a.args, family).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let nl = NlClient::new().map_err(|e| crate::say_what(e, "opening a netlink socket"))?;
    let index = |name: &str| nl.link_index(name);
    match cmd {
        Command::Show(Object::Link, dev) => {
            let all = nl.links()?;
            let shown = select(&all, dev.as_deref())?;
            match a.json {
                true => println!("{}", json::links(&shown, &all)),
                false => print!("{}", show::links(&shown, &all, a.stats)),
            }
        }
        Command::Show(Object::Addr, dev) => {
            let all = nl.links()?;
            let shown = select(&all, dev.as_deref())?;
            let fam = match family {
                Family::V4 => Some(true),
                Family::V6 => Some(false),
                Family::Any => None,
            };
            let addrs = nl.addrs()?;
            match a.json {
                true => println!("{}", json::addrs(&shown, &all, &addrs, fam)),
                false => print!("{}", show::addrs(&shown, &all, &addrs, fam)),
            }
        }
        Command::Show(Object::Route, _) => {
            let (links, routes) = (nl.links()?, nl.routes()?);
            let v4 = family != Family::V6;
            match a.json {
                true => println!("{}", json::routes(&links, &routes, v4)),
                false => print!("{}", show::routes(&links, &routes, v4)),
            }
        }
        Command::Link(LinkCmd::Add { name, kind }) => {
            let kind = kind.resolve(&index)?;
            nl.link_add(&name, &kind)?;
        }
        Command::Link(LinkCmd::Del(dev)) => nl.link_del(index(&dev)?)?,
        Command::Link(LinkCmd::Set { dev, changes }) => {
            let i = index(&dev)?;
            for c in changes {
                c.apply(&nl, i, &index)?;
            }
        }
        Command::Addr { add, cidr, dev } => {
            let mut spec = AddrSpec::new(index(&dev)?, cidr.addr, cidr.prefix);
            if cidr.addr.is_ipv6() {
                spec = spec.no_dad();
            }
            if add {
                nl.addr_add(&spec)?
            } else {
                nl.addr_del(&spec)?
            }
        }
        Command::Route { add, dst, via, dev } => {
            let mut spec = match dst {
                Some(c) => RouteSpec::new(c.addr, c.prefix),
                None if via.is_some_and(|g| g.is_ipv6()) || family == Family::V6 => {
                    RouteSpec::default_v6()
                }
                None => RouteSpec::default_v4(),
            };
            if let Some(g) = via {
                spec = spec.via(g);
            }
            if let Some(d) = dev {
                spec = spec.dev(index(&d)?);
            }
            if add {
                nl.route_add(&spec)?
            } else {
                nl.route_del(&spec)?
            }
        }
        Command::Config(line) if a.dhcp_renewer => dhcp::run_renewer(&line)?,
        // A lease outlives this command: a renewer process gets and keeps it.
        Command::Config(line) if dhcp::wants_lease(&line) => dhcp::spawn_renewer(&line)?,
        Command::Config(line) => {
            let c = vdestack::nl::config::configure_with(
                &nl,
                &line,
                &vdestack::nl::dhcp::kernel::host_socket,
            )?;
            print!("{}", dhcp::report(&c));
        }
    }
    Ok(())
}

/// The links to show: all, or the one named (an error if there is none).
fn select(all: &[vdestack::nl::Link], dev: Option<&str>) -> io::Result<Vec<vdestack::nl::Link>> {
    let shown: Vec<_> = all
        .iter()
        .filter(|l| dev.is_none_or(|d| l.name == d))
        .cloned()
        .collect();
    match dev {
        Some(d) if shown.is_empty() => Err(no_device(d)),
        _ => Ok(shown),
    }
}

fn no_device(d: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("Device \"{d}\" does not exist."),
    )
}
