//! The TCP rows: two stacks joined by one transport, 1 and 4 bulk streams and a
//! 1-byte request/response, for our stacks (kernel and user-space backends),
//! libvdestack's (two C processes) and two namespaces joined by a kernel veth pair;
//! and each of them as a client of a C peer, a Debian `vdens` on `vxvde://`.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use vdestack::nl::{AddrSpec, LinkKind, NlClient};
use vdestack::stack::{Backend, Stack};

use crate::traffic::{self, Conn, Connect, Rr, Server, PORT};
use crate::util::{machine_busy_secs, num, run_keyvals, wait_for_switch, Proc};

const SERVER_IP: &str = "10.99.0.1";
const CLIENT_IP: &str = "10.99.0.2";

/// Whose stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Both stacks in this process (each on one of its relay threads).
    Ours,
    /// Both stacks in this process, user-space ones (`Backend::User`).
    User,
    /// The server's stack in a second process (this bench, re-executed).
    OursTwoProcs,
    C,
    /// Two of our stacks with no tap, joined by a veth pair instead.
    Kernel,
}

/// Which transport joins the two stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// `inproc://NAME` (ours only).
    Inproc,
    /// `veth://NAME`: our kernel link, no relay (ours only).
    VethLink,
    /// The server's stack is the switch: `switch://DIR` in its process (ours, or
    /// vdeplug4's switch plugin in the C server); the client joins with `vde://DIR`.
    SwitchInside,
    /// Our `vdestack switch DIR` process, both with `vde://DIR`.
    OurSwitch,
    /// Debian's `vde_switch -s DIR`, both with `vde://DIR`.
    VdeSwitch,
    /// Our switch through `vlan://{vde://DIR}`: a wrapper that changes nothing
    /// (no VLAN), so frames cross as with [`Net::OurSwitch`] but one by one, as
    /// through any wrapper (no large segments): the plain baseline of agno.
    PlainFrames,
    /// Our switch through `agno://KEY{vde://DIR}`: every frame encrypted.
    Agno,
    /// Our switch through `wirefilter://{vde://DIR}` with no impairment: what the
    /// wire costs when it does nothing (against [`Net::PlainFrames`]).
    Wirefilter,
    /// `vxvde://` multicast on lo.
    Vxvde,
    /// The server is a C peer: a Debian `vdens` on `vxvde://` (the kernel's stack
    /// in a namespace of its own, its tap relayed by vdeplug), serving with plain
    /// sockets (this bench, re-executed in it).
    VdensVxvde,
    /// A kernel veth pair.
    Veth,
}

impl Net {
    pub fn name(self) -> &'static str {
        match self {
            Net::Inproc => "inproc://",
            Net::VethLink => "veth:// (kernel link)",
            Net::SwitchInside => "switch:// in the server",
            Net::OurSwitch => "vdestack switch",
            Net::VdeSwitch => "Debian vde_switch",
            Net::PlainFrames => "vdestack switch, frame by frame (vlan://{…})",
            Net::Agno => "vdestack switch, agno://KEY{…}",
            Net::Wirefilter => "vdestack switch, wirefilter://{…}",
            Net::Vxvde => "vxvde://",
            Net::VdensVxvde => "vxvde:// to a Debian vdens",
            Net::Veth => "veth pair",
        }
    }
}

/// The rows in table order.
pub const CASES: &[(Who, Net)] = &[
    (Who::Ours, Net::Inproc),
    (Who::User, Net::Inproc),
    (Who::Ours, Net::VethLink),
    (Who::Ours, Net::SwitchInside),
    (Who::C, Net::SwitchInside),
    (Who::Ours, Net::OurSwitch),
    (Who::OursTwoProcs, Net::OurSwitch),
    (Who::C, Net::OurSwitch),
    (Who::Ours, Net::PlainFrames),
    (Who::Ours, Net::Agno),
    (Who::C, Net::Agno),
    (Who::Ours, Net::Wirefilter),
    (Who::Ours, Net::VdeSwitch),
    (Who::OursTwoProcs, Net::VdeSwitch),
    (Who::C, Net::VdeSwitch),
    (Who::Ours, Net::Vxvde),
    (Who::OursTwoProcs, Net::Vxvde),
    (Who::C, Net::Vxvde),
    (Who::User, Net::Vxvde),
    (Who::Ours, Net::VdensVxvde),
    (Who::User, Net::VdensVxvde),
    (Who::C, Net::VdensVxvde),
    (Who::Kernel, Net::Veth),
];

pub fn who_name(w: Who) -> &'static str {
    match w {
        Who::Ours => "ours",
        Who::User => "ours, user-space",
        Who::OursTwoProcs => "ours, 2 processes",
        Who::C => "C libvdestack",
        Who::Kernel => "kernel",
    }
}

/// One row's figures.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// MB/s with 1 and 4 streams.
    pub one: f64,
    pub four: f64,
    pub rr: Rr,
}

/// What the rows need from the bench.
pub struct Ctx {
    pub tmp: PathBuf,
    /// The built C programs' folder, or why there are none.
    pub cbin: Result<PathBuf, String>,
    pub vdestack_bin: String,
}

/// A row ready to measure: its stacks, processes and switch stay up until it is
/// dropped, so rounds can interleave the rows (a slow spell of a shared machine
/// then spreads over all of them instead of landing on one).
pub struct Setup {
    driver: Driver,
    // Dropped in this order: the server (it wakes its accept loop through the client
    // stack), the stacks, then the processes (the server's before the switch's).
    _server: Option<Server>,
    _stacks: Vec<Arc<Stack>>,
    _procs: Vec<Proc>,
}

enum Driver {
    /// Our traffic generator, through a client stack of this process.
    Rust(Box<Connect>),
    /// `cstack_client` runs, one per measurement.
    C { bin: PathBuf, url: String },
}

/// Sets a row up; `Err` says why it cannot run.
pub fn setup(who: Who, net: Net, row: usize, ctx: &Ctx) -> io::Result<Setup> {
    let dir = ctx.tmp.join(format!("net{row}"));
    let mut procs = Vec::new();
    match net {
        Net::OurSwitch | Net::PlainFrames | Net::Agno | Net::Wirefilter => {
            let mut c = Command::new(&ctx.vdestack_bin);
            c.arg("switch").arg(&dir);
            procs.push(start_switch(c, &dir, "vdestack switch")?);
        }
        Net::VdeSwitch => {
            let mut c = Command::new("vde_switch");
            c.arg("-s").arg(&dir);
            procs.push(start_switch(c, &dir, "vde_switch")?);
        }
        _ => {}
    }
    let d = dir.display();
    let (server_url, client_url) = match net {
        Net::Inproc => {
            let u = format!("inproc://bench-{}-{row}", std::process::id());
            (u.clone(), u)
        }
        Net::VethLink => {
            let u = format!("veth://bench-{}-{row}", std::process::id());
            (u.clone(), u)
        }
        Net::SwitchInside => (format!("switch://{d}"), format!("vde://{d}")),
        Net::OurSwitch | Net::VdeSwitch => (format!("vde://{d}"), format!("vde://{d}")),
        Net::PlainFrames => (
            format!("vlan://{{vde://{d}}}"),
            format!("vlan://{{vde://{d}}}"),
        ),
        Net::Wirefilter => (
            format!("wirefilter://{{vde://{d}}}"),
            format!("wirefilter://{{vde://{d}}}"),
        ),
        Net::Agno => {
            let key = ctx.tmp.join("agno.key");
            std::fs::write(&key, "0123456789abcdef0123456789abcdef\n")?;
            let u = format!("agno://{}{{vde://{d}}}", key.display());
            (u.clone(), u)
        }
        // A group per row, so rows never hear each other.
        Net::Vxvde | Net::VdensVxvde => {
            let u = format!("vxvde://239.76.0.{}", row + 1);
            (u.clone(), u)
        }
        Net::Veth => (String::new(), String::new()),
    };
    let mut s = Setup {
        driver: Driver::C {
            bin: PathBuf::new(),
            url: String::new(),
        },
        _server: None,
        _stacks: Vec::new(),
        _procs: Vec::new(),
    };
    if net == Net::VdensVxvde {
        procs.insert(0, start_server(vdens_server(&server_url)?)?);
        match who {
            Who::Ours | Who::User => {
                let backend = if who == Who::User {
                    Backend::User
                } else {
                    Backend::Kernel
                };
                let client = Arc::new(stack(backend, &client_url)?);
                configure(&client, "vde0", CLIENT_IP)?;
                let c = client.clone();
                s.driver = Driver::Rust(Box::new(move |a| boxed(c.tcp_connect(a))));
                s._stacks.push(client);
            }
            Who::C => {
                let bin = ctx.cbin.as_ref().map_err(|e| io::Error::other(e.clone()))?;
                s.driver = Driver::C {
                    bin: bin.clone(),
                    url: client_url,
                };
            }
            _ => return Err(io::Error::other("no such row")),
        }
        s._procs = procs;
        return Ok(s);
    }
    match who {
        Who::Ours | Who::User => {
            let backend = if who == Who::User {
                Backend::User
            } else {
                Backend::Kernel
            };
            let server = stack(backend, &server_url)?;
            configure(&server, "vde0", SERVER_IP)?;
            let client = stack(backend, &client_url)?;
            configure(&client, "vde0", CLIENT_IP)?;
            rust_pair(&mut s, server, client)?;
        }
        Who::Kernel => {
            let (server, client) = veth_pair()?;
            rust_pair(&mut s, server, client)?;
        }
        Who::OursTwoProcs => {
            // The server's process first: it may be the switch (`switch://`).
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.env(crate::costs::ROLE_ENV, "server").arg(&server_url);
            procs.insert(0, start_server(cmd)?);
            let client = Arc::new(Stack::with_interfaces(&[&client_url])?);
            configure(&client, "vde0", CLIENT_IP)?;
            let c = client.clone();
            s.driver = Driver::Rust(Box::new(move |a| boxed(c.tcp_connect(a))));
            s._stacks.push(client);
        }
        Who::C => {
            let bin = ctx.cbin.as_ref().map_err(|e| io::Error::other(e.clone()))?;
            let mut cmd = Command::new(bin.join("cstack_server"));
            cmd.args([&server_url, &format!("{SERVER_IP}/24")]);
            procs.insert(0, start_server(cmd)?);
            s.driver = Driver::C {
                bin: bin.clone(),
                url: client_url,
            };
        }
    }
    s._procs = procs;
    Ok(s)
}

impl Setup {
    /// One round of the row: 1 stream, 4 streams, request/response.
    pub fn measure(&self, secs: f64) -> io::Result<Figures> {
        let to = addr(SERVER_IP);
        match &self.driver {
            Driver::Rust(connect) => Ok(Figures {
                one: traffic::stream(connect, to, 1, secs)?,
                four: traffic::stream(connect, to, 4, secs)?,
                rr: with_cpu(secs, || traffic::rr(connect, to, secs))?,
            }),
            Driver::C { bin, url } => {
                let client = |mode: &str, streams: u32| {
                    let mut c = Command::new(bin.join("cstack_client"));
                    c.args([
                        url,
                        &format!("{CLIENT_IP}/24"),
                        SERVER_IP,
                        mode,
                        &format!("{secs}"),
                        &streams.to_string(),
                    ]);
                    run_keyvals(c)
                };
                let one = num(&client("stream", 1)?, "mbps")?;
                let four = num(&client("stream", 4)?, "mbps")?;
                let rr = with_cpu(secs, || {
                    let rr = client("rr", 1)?;
                    Ok(Rr {
                        rate: num(&rr, "rr")?,
                        mean_us: num(&rr, "mean_us")?,
                        p99_us: num(&rr, "p99_us")?,
                        cpu_us: 0.0,
                    })
                })?;
                Ok(Figures { one, four, rr })
            }
        }
    }
}

/// Runs a request/response measurement of `secs` and fills in the machine's CPU
/// time per round trip (a C client's own start and stop are in it too: about a
/// millisecond, next to seconds of traffic).
fn with_cpu(secs: f64, measure: impl FnOnce() -> io::Result<Rr>) -> io::Result<Rr> {
    let before = machine_busy_secs();
    let mut rr = measure()?;
    let busy = machine_busy_secs() - before;
    let trips = rr.rate * secs;
    rr.cpu_us = if trips > 0.0 { busy * 1e6 / trips } else { 0.0 };
    Ok(rr)
}

/// The medians over the rounds: of each throughput on its own, and the
/// request/response figures of the round with the median rate (so its rate, mean
/// and p99 belong together).
pub fn median(all: &[Figures]) -> Figures {
    let med = |f: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut by_rate: Vec<&Figures> = all.iter().collect();
    by_rate.sort_by(|a, b| a.rr.rate.total_cmp(&b.rr.rate));
    Figures {
        one: med(|f| f.one),
        four: med(|f| f.four),
        rr: by_rate[by_rate.len() / 2].rr,
    }
}

fn start_switch(mut cmd: Command, dir: &Path, what: &str) -> io::Result<Proc> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut p = Proc::spawn(cmd)?;
    wait_for_switch(dir, what, &mut p)?;
    Ok(p)
}

/// Starts a server process and waits for its "ready" line.
fn start_server(mut cmd: Command) -> io::Result<Proc> {
    cmd.stdout(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut p = Proc::spawn(cmd)?;
    let mut ready = String::new();
    let out = p.child.stdout.take().expect("piped");
    BufReader::new(out).read_line(&mut ready)?;
    if ready.trim() != "ready" {
        return Err(io::Error::other(format!("{what} did not start")));
    }
    Ok(p)
}

/// A stack's connection as the traffic code takes it.
fn boxed(s: io::Result<vdestack::net::TcpStream>) -> io::Result<Box<dyn Conn>> {
    s.map(|s| Box::new(s) as Box<dyn Conn>)
}

/// A stack on `backend` with one interface, `vde0`, on `url`.
fn stack(backend: Backend, url: &str) -> io::Result<Stack> {
    Stack::builder().spec_str(url).backend(backend).build()
}

/// Accepts the connections of a stack's listener.
fn accepting(l: vdestack::net::TcpListener) -> traffic::Accept {
    Box::new(move || boxed(l.accept().map(|(c, _)| c)))
}

fn addr(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("a literal address"), PORT)
}

/// Brings `ifname` up in the stack with `ip`/24.
fn configure(stack: &Stack, ifname: &str, ip: &str) -> io::Result<()> {
    let nl = stack.netlink()?;
    let i = nl.link_index(ifname)?;
    nl.link_set_up(i, true)?;
    nl.addr_add(&AddrSpec::new(i, ip.parse().map_err(io::Error::other)?, 24))
}

/// A server stack of this process listening, driven through a client stack.
fn rust_pair(s: &mut Setup, server: Stack, client: Stack) -> io::Result<()> {
    let listener = server.tcp_listener(addr(SERVER_IP))?;
    let client = Arc::new(client);
    let c = client.clone();
    s._server = Some(Server::start(
        accepting(listener),
        addr(SERVER_IP),
        Box::new(move |a| boxed(c.tcp_connect(a))),
    ));
    let c = client.clone();
    s.driver = Driver::Rust(Box::new(move |a| boxed(c.tcp_connect(a))));
    s._stacks = vec![Arc::new(server), client];
    Ok(())
}

/// The server side of [`Who::OursTwoProcs`] (this bench re-executed as
/// `VDESTACK_BENCH_ROLE=server URL`): a stack on `url` serving the benchmark's
/// connections until stdin closes.
pub fn server_role(url: &str) -> io::Result<()> {
    let stack = Arc::new(Stack::with_interfaces(&[url])?);
    configure(&stack, "vde0", SERVER_IP)?;
    let listener = stack.tcp_listener(addr(SERVER_IP))?;
    let s = stack.clone();
    let _server = Server::start(
        accepting(listener),
        addr(SERVER_IP),
        Box::new(move |a| boxed(s.tcp_connect(a))),
    );
    println!("ready");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest)?;
    Ok(())
}

/// Two of our stacks with no tap, joined by a veth pair made here and moved into
/// them (each row's pair is gone with its stacks).
fn veth_pair() -> io::Result<(Stack, Stack)> {
    let server = Stack::new()?;
    let client = Stack::new()?;
    let nl = NlClient::new()?;
    let a = nl
        .link_add(
            "vbench0",
            &LinkKind::Veth {
                peer: "vbench1".into(),
            },
        )
        .map_err(|e| io::Error::new(e.kind(), format!("making a veth pair: {e}")))?;
    let b = nl.link_index("vbench1")?;
    let moved = nl
        .link_set_netns(a, server.netns().expect("a kernel stack"))
        .and_then(|()| nl.link_set_netns(b, client.netns().expect("a kernel stack")));
    if let Err(e) = moved {
        let _ = nl.link_del(a);
        return Err(io::Error::new(
            e.kind(),
            format!("moving the veth ends into the stacks: {e}"),
        ));
    }
    configure(&server, "vbench0", SERVER_IP)?;
    configure(&client, "vbench1", CLIENT_IP)?;
    Ok((server, client))
}

/// Environment value of the role a `vdens` runs (see [`vdens_server_role`]).
pub const VDENS_ROLE: &str = "vdens-server";

/// A Debian `vdens` on `url` whose shell gives `vde0` the server's address and
/// runs this bench as [`vdens_server_role`].
fn vdens_server(url: &str) -> io::Result<Command> {
    let me = std::env::current_exe()?;
    let script = format!(
        "ip link set vde0 up && ip addr add {SERVER_IP}/24 dev vde0 && exec '{}'",
        me.display()
    );
    let mut c = Command::new("vdens");
    c.arg(url)
        .args(["/bin/sh", "-c", &script])
        .env("SHELL", "/bin/sh")
        .env(crate::costs::ROLE_ENV, VDENS_ROLE);
    Ok(c)
}

/// The server in a Debian `vdens` (the C peer): plain sockets of the kernel's
/// stack in vdens's namespace, serving the benchmark until stdin closes.
pub fn vdens_server_role() -> io::Result<()> {
    let at = addr(SERVER_IP);
    let listener = std::net::TcpListener::bind(at)?;
    let _server = Server::start(
        Box::new(move || listener.accept().map(|(c, _)| Box::new(c) as Box<dyn Conn>)),
        at,
        Box::new(|a| std::net::TcpStream::connect(a).map(|c| Box::new(c) as Box<dyn Conn>)),
    );
    println!("ready");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest)?;
    Ok(())
}
