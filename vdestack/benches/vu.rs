//! `vdestack vu` benchmark: what serving a program's system calls costs.
//!
//! ```text
//! cargo bench -p vdestack --bench vu [-- [--quick] [--rounds R] [--only user|rr]]
//! scripts/bench --vu '--quick'
//! ```
//!
//! `--only user` runs only the user-space stack's rows, `--only rr` only its
//! request/response row (and the trapped call's).
//!
//! * **Served calls**, per call: `SIOCGIFFLAGS` on an `AF_INET` socket, a
//!   netlink link dump (`RTM_GETLINK`, two links), and an `open` of an ordinary
//!   file (trapped because opens are, then `CONTINUE`d): each timed inside a
//!   program run under `vdestack vu --stack mem` and unsupervised on the kernel.
//! * **A whole `ip addr`** (fork, exec, the dynamic loader's opens, the dumps),
//!   in a loop of a shell run under `vu`, against the same loop on a kernel
//!   namespace with `lo` and a `vde0` of the same addresses.
//! * **Calls not trapped**, as rates against the same program unsupervised
//!   (goal: at least 0.95x): writes and reads on a pipe (64 B and 4 KiB), a
//!   64-byte send and receive on an `AF_UNIX` datagram socket pair; and under a
//!   one-instruction filter that allows everything, which shows what any
//!   seccomp filter costs a system call (the kernel takes its slower entry
//!   path), apart from what vu's filter adds.
//!
//! * **A user-space stack** (`vdestack vu URL`): `iperf3` (1 and 4 streams) and
//!   a TCP request/response loop (1 byte each way) of a program under `vu` on a
//!   user-space stack, against the same program on a kernel stack (what
//!   `vdestack ns` runs) on the same transport (`inproc://`, to a kernel-stack
//!   peer); and the time of one call served by the user-space stack
//!   (`getsockname` on a bound UDP socket) against the kernel's.
//!
//! Each figure is the median of `--rounds` runs (default 5). Everything runs in a
//! network namespace of its own (re-executed under `unshare -n` as root, `-Urn`
//! otherwise); nothing is sent anywhere (`--stack mem` has no data path).

use std::fs::File;
use std::io::{Read, Seek};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vdestack::nl::AddrSpec;
use vdestack::stack::{Backend, Stack};
use vdestack::vu::{MemNet, UserNet, Vu};

const ROLE_ENV: &str = "VDESTACK_VU_BENCH_ROLE";
const SANDBOX_ENV: &str = "VDESTACK_VU_BENCH_SANDBOX";

struct Opts {
    rounds: usize,
    quick: bool,
    /// Only these rows: `user` (the user-space stack's), `rr` (its
    /// request/response row).
    only: Option<String>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 5,
        quick: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => {
                o.quick = true;
                o.rounds = 3;
            }
            "--rounds" => {
                o.rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|r| *r > 0)
                    .ok_or("--rounds takes a positive number")?;
            }
            "--only" => {
                o.only = Some(
                    args.next()
                        .filter(|v| v == "user" || v == "rr")
                        .ok_or("--only takes `user` or `rr`")?,
                );
            }
            "-h" | "--help" => return Err(
                "cargo bench -p vdestack --bench vu [-- [--quick] [--rounds R] [--only user|rr]]"
                    .into(),
            ),
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    Ok(o)
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let n: u64 = std::env::args()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        match roles::run(&role, n) {
            Ok(ns) => println!("{ns:.1}"),
            Err(e) => {
                eprintln!("vu bench role {role}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vu bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = vdestack::vu::check_support() {
        println!("vu bench: skipped: {e}");
        return;
    }
    if std::env::var_os(SANDBOX_ENV).is_none() {
        let flags: &[&str] = if rustix::process::geteuid().is_root() {
            &["-n"]
        } else {
            &["-Urn"]
        };
        let st = Command::new("unshare")
            .args(flags)
            .arg("--")
            .arg(std::env::current_exe().expect("my own binary"))
            .args(std::env::args_os().skip(1))
            .env(SANDBOX_ENV, "1")
            .status();
        match st {
            Ok(s) => std::process::exit(s.code().unwrap_or(1)),
            Err(e) => {
                eprintln!("vu bench: needs `unshare {}`: {e}", flags.join(" "));
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = run(&opts) {
        eprintln!("vu bench failed: {e}");
        std::process::exit(1);
    }
}

/// The programs measured: each runs `n` iterations of one call and prints the
/// nanoseconds per iteration.
mod roles {
    use std::io;
    use std::os::fd::AsFd;
    use std::time::Instant;

    use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

    fn per(n: u64, t: Instant) -> f64 {
        t.elapsed().as_nanos() as f64 / n as f64
    }

    pub fn run(role: &str, n: u64) -> io::Result<f64> {
        match role {
            "ioctl" => {
                let s = net::socket(AddressFamily::INET, SocketType::DGRAM, None)?;
                let t = Instant::now();
                for _ in 0..n {
                    vdestack::diagnostics::ifreq_ioctl(
                        s.as_fd(),
                        vdestack::nl::emul::SIOCGIFFLAGS,
                        &mut named("lo"),
                    )?;
                }
                Ok(per(n, t))
            }
            "dump" => {
                let fd = net::socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
                let c = vdestack::nl::NlClient::from_fd(fd);
                let t = Instant::now();
                for _ in 0..n {
                    c.links()?;
                }
                Ok(per(n, t))
            }
            "open" => {
                let t = Instant::now();
                for _ in 0..n {
                    drop(std::fs::File::open("/proc/self/stat")?);
                }
                Ok(per(n, t))
            }
            "pipe" | "pipe4k" => {
                let size = if role == "pipe" { 64 } else { 4096 };
                let (r, w) = rustix::pipe::pipe()?;
                let buf = vec![7u8; size];
                let mut back = vec![0u8; size];
                let t = Instant::now();
                for _ in 0..n {
                    rustix::io::write(&w, &buf)?;
                    rustix::io::read(&r, &mut back)?;
                }
                Ok(per(n, t))
            }
            "getsockname" => {
                let s = net::socket(AddressFamily::INET, SocketType::DGRAM, None)?;
                net::bind(&s, &std::net::SocketAddr::from(([0, 0, 0, 0], 0)))?;
                let t = Instant::now();
                for _ in 0..n {
                    net::getsockname(&s)?;
                }
                Ok(per(n, t))
            }
            // A TCP client: 1 byte to the rr server and 1 back, n times.
            "rr" => {
                use std::io::{Read, Write};
                let to = std::env::var("VDESTACK_VU_BENCH_PEER").map_err(io::Error::other)?;
                let mut c = std::net::TcpStream::connect(to.as_str())?;
                c.set_nodelay(true)?;
                let mut b = [0u8; 1];
                let t = Instant::now();
                for _ in 0..n {
                    c.write_all(&b)?;
                    c.read_exact(&mut b)?;
                }
                Ok(per(n, t))
            }
            // A bulk sender: n MiB to the sink; prints Mbit/s (not ns).
            "bulk" => {
                let to = std::env::var("VDESTACK_VU_BENCH_PEER").map_err(io::Error::other)?;
                let mut c = std::net::TcpStream::connect(to.as_str())?;
                Ok(super::bulk(&mut c, n, |c| c.shutdown(std::net::Shutdown::Write))? * 1e3)
            }
            // The sink: reads each connection to its end, then says `k`.
            "sink_server" => {
                use std::io::{Read, Write};
                let l = std::net::TcpListener::bind("0.0.0.0:7001")?;
                println!("ready");
                let mut buf = vec![0u8; 1 << 20];
                for c in l.incoming() {
                    let mut c = c?;
                    while c.read(&mut buf)? > 0 {}
                    c.write_all(b"k")?;
                }
                Ok(0.0)
            }
            // The rr server: echoes each connection's bytes until it ends.
            "rr_server" => {
                use std::io::{Read, Write};
                let l = std::net::TcpListener::bind("0.0.0.0:7000")?;
                println!("ready");
                for c in l.incoming() {
                    let mut c = c?;
                    c.set_nodelay(true)?;
                    let mut b = [0u8; 1];
                    while c.read_exact(&mut b).is_ok() {
                        c.write_all(&b)?;
                    }
                }
                Ok(0.0)
            }
            "unix" => {
                let (a, b) = net::socketpair(
                    AddressFamily::UNIX,
                    SocketType::DGRAM,
                    SocketFlags::CLOEXEC,
                    None,
                )?;
                let buf = [7u8; 64];
                let mut back = [0u8; 64];
                let t = Instant::now();
                for _ in 0..n {
                    net::send(&a, &buf, SendFlags::empty())?;
                    net::recv(&b, &mut back, RecvFlags::empty())?;
                }
                Ok(per(n, t))
            }
            _ => Err(io::Error::other("unknown role")),
        }
    }

    fn named(name: &str) -> [u8; 40] {
        let mut r = [0u8; 40];
        r[..name.len()].copy_from_slice(name.as_bytes());
        r
    }
}

/// Sends `mib` MiB on `c`, shuts it for writing (`shut`) and waits for the
/// sink's `k`: Gbit/s.
fn bulk<S: std::io::Read + std::io::Write>(
    c: &mut S,
    mib: u64,
    shut: impl FnOnce(&S) -> std::io::Result<()>,
) -> std::io::Result<f64> {
    let buf = vec![0x5au8; 1 << 16];
    let t = Instant::now();
    for _ in 0..mib * 16 {
        c.write_all(&buf)?;
    }
    shut(c)?;
    let mut k = [0u8; 1];
    c.read_exact(&mut k)?;
    Ok(mib as f64 * 8.0 * 1_048_576.0 / t.elapsed().as_secs_f64() / 1e9)
}

/// How a role runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Under {
    /// Unsupervised.
    Nothing,
    /// Under a one-instruction filter that allows everything: what any seccomp
    /// filter costs a system call.
    AllowAll,
    /// Under `vdestack vu --stack mem`.
    Vu,
}

/// Runs role `role` with `n` iterations; its ns per iteration.
fn role(role: &str, n: u64, under: Under) -> Result<f64, String> {
    let mut out = tempfile()?;
    let mut c = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    c.arg(n.to_string())
        .env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?);
    let st = match under {
        Under::Vu => Vu::new(MemNet::netlinktest())
            .run(c)
            .map_err(|e| e.to_string())?,
        Under::AllowAll => {
            vdestack::diagnostics::allow_all_filter_on_exec(&mut c).map_err(|e| e.to_string())?;
            c.status().map_err(|e| e.to_string())?
        }
        Under::Nothing => c.status().map_err(|e| e.to_string())?,
    };
    if !st.success() {
        return Err(format!("role {role} failed: {st}"));
    }
    let mut s = String::new();
    out.rewind().map_err(|e| e.to_string())?;
    out.read_to_string(&mut s).map_err(|e| e.to_string())?;
    s.trim()
        .parse()
        .map_err(|_| format!("role {role} printed {s:?}"))
}

fn tempfile() -> Result<File, String> {
    let p = std::env::temp_dir().join(format!("vdestack-vu-bench-{}", std::process::id()));
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&p);
    Ok(f)
}

fn shell(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The median of `rounds` measurements of `f`.
fn measure(rounds: usize, mut f: impl FnMut() -> Result<f64, String>) -> Result<f64, String> {
    let mut v = Vec::new();
    for _ in 0..rounds {
        v.push(f()?);
    }
    Ok(median(v))
}

/// ns per `ip addr` in a shell loop of `n`, supervised or on this namespace.
fn ip_addr(n: u64, supervised: bool) -> Result<f64, String> {
    let script = format!("i=0; while [ $i -lt {n} ]; do ip addr >/dev/null; i=$((i+1)); done");
    let t = Instant::now();
    let st = if supervised {
        let mut vu = Vu::new(MemNet::netlinktest());
        vu.run(shell("ip link set lo up; ip addr add 10.0.0.1/24 dev vde0"))
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let st = vu.run(shell(&script)).map_err(|e| e.to_string())?;
        return if st.success() {
            Ok(t.elapsed().as_nanos() as f64 / n as f64)
        } else {
            Err(format!("ip addr loop under vu: {st}"))
        };
    } else {
        shell(&script).status().map_err(|e| e.to_string())?
    };
    if !st.success() {
        return Err(format!("ip addr loop: {st}"));
    }
    Ok(t.elapsed().as_nanos() as f64 / n as f64)
}

/// This namespace shaped like `--stack mem`'s: lo up, a vde0 with 10.0.0.1/24
/// (a veth end; its peer is down and has no address).
fn kernel_like_mem() -> Result<(), String> {
    for c in [
        "ip link set lo up",
        "ip link add vde0 type veth peer name vde0p",
        "ip link set vde0 address 80:00:00:00:00:42",
        "ip addr add 10.0.0.1/24 dev vde0",
    ] {
        let words: Vec<&str> = c.split_whitespace().collect();
        let st = Command::new(words[0])
            .args(&words[1..])
            .status()
            .map_err(|e| format!("{c}: {e}"))?;
        if !st.success() {
            return Err(format!("{c}: {st}"));
        }
    }
    Ok(())
}

fn run(o: &Opts) -> Result<(), String> {
    if o.only.is_some() {
        return user::run(o);
    }
    let scale = if o.quick { 1 } else { 4 };
    kernel_like_mem()?;
    println!(
        "vdestack vu (--stack mem) against the kernel, median of {} rounds",
        o.rounds
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "served call (per call)", "kernel", "vu", "vu/kernel"
    );
    let calls: [(&str, &str, u64); 3] = [
        ("SIOCGIFFLAGS on an AF_INET socket", "ioctl", 5000),
        ("netlink link dump (RTM_GETLINK, 2 links)", "dump", 2000),
        ("open+close of a file (trapped, CONTINUEd)", "open", 5000),
    ];
    for (what, r, n) in calls {
        let n = n * scale;
        let k = measure(o.rounds, || role(r, n, Under::Nothing))?;
        let v = measure(o.rounds, || role(r, n, Under::Vu))?;
        println!(
            "{what:<44} {:>8.2}µs {:>8.2}µs {:>7.1}x",
            k / 1e3,
            v / 1e3,
            v / k
        );
    }
    let n = 50 * scale;
    let k = measure(o.rounds, || ip_addr(n, false))?;
    let v = measure(o.rounds, || ip_addr(n, true))?;
    println!(
        "{:<44} {:>8.2}ms {:>8.2}ms {:>7.2}x",
        "a whole `ip addr` (fork, exec, dumps)",
        k / 1e6,
        v / 1e6,
        v / k
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "calls not trapped (per iteration)", "alone", "allow-all", "under vu", "rate", "vs filter"
    );
    for (what, r, n) in [
        ("pipe: write + read, 64 B", "pipe", 200_000),
        ("pipe: write + read, 4 KiB", "pipe4k", 100_000),
        ("AF_UNIX datagram pair: send + recv, 64 B", "unix", 200_000),
    ] {
        let n = n * scale;
        let k = measure(o.rounds, || role(r, n, Under::Nothing))?;
        let f = measure(o.rounds, || role(r, n, Under::AllowAll))?;
        let v = measure(o.rounds, || role(r, n, Under::Vu))?;
        println!(
            "{what:<44} {:>8.0}ns {:>8.0}ns {:>8.0}ns {:>7.3}x {:>7.3}x",
            k,
            f,
            v,
            k / v,
            f / v
        );
    }
    println!("(rate: unsupervised time / time under vu, goal >= 0.95x; vs filter: time under a");
    println!(
        " one-instruction allow-all seccomp filter / time under vu: what vu adds to any filter)"
    );
    println!();
    match user::run(o) {
        Ok(()) => {}
        Err(e) => println!("user-space stack rows: skipped: {e}"),
    }
    Ok(())
}

/// The rows of `vdestack vu` on a user-space stack.
mod user {
    use super::*;

    /// Brings `lo` and `vde0` of `s` up, `vde0` with `addr`/24.
    fn configure(s: &Stack, addr: &str) -> Result<(), String> {
        let e = |e: std::io::Error| e.to_string();
        let nl = s.netlink().map_err(e)?;
        let lo = nl.link_index("lo").map_err(e)?;
        nl.link_set_up(lo, true).map_err(e)?;
        let i = nl.link_index("vde0").map_err(e)?;
        nl.link_set_up(i, true).map_err(e)?;
        nl.addr_add(&AddrSpec::new(i, addr.parse().map_err(|_| "address")?, 24).no_dad())
            .map_err(e)
    }

    fn stack(url: &str, backend: Backend, addr: &str) -> Result<Stack, String> {
        let s = Stack::builder()
            .interface("vde0", url)
            .backend(backend)
            .build()
            .map_err(|e| format!("a {backend:?} stack on {url}: {e}"))?;
        configure(&s, addr)?;
        Ok(s)
    }

    /// Runs `c` on the user-space stack (under vu) or as is (a kernel stack's
    /// command); its stdout.
    fn output(c: Command, vu: Option<&mut Vu<UserNet>>) -> Result<String, String> {
        let mut c = c;
        let mut out = tempfile()?;
        c.stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?);
        let st = match vu {
            Some(vu) => vu.run(c),
            None => c.status(),
        }
        .map_err(|e| e.to_string())?;
        let mut s = String::new();
        out.rewind().map_err(|e| e.to_string())?;
        out.read_to_string(&mut s).map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("{st}: {s}"));
        }
        Ok(s)
    }

    /// Gbit/s of an `iperf3 -J` run's received bytes.
    fn gbits(json: &str) -> Result<f64, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .map(|b| b / 1e9)
            .ok_or_else(|| match v["error"].as_str() {
                Some(e) => format!("iperf3: {e}"),
                None => "no sum_received in iperf3's report".into(),
            })
    }

    pub(super) fn run(o: &Opts) -> Result<(), String> {
        if !["iperf3", "ip"].iter().all(|t| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|d| d.join(t).is_file())
        }) {
            return Err("iperf3 is not installed".into());
        }
        let url = format!("inproc://vu-bench-{}", std::process::id());
        // The peer: a kernel stack running the servers.
        let peer = stack(&url, Backend::Kernel, "10.9.0.1")?;
        let mut iperf_server = peer.command("iperf3");
        iperf_server
            .args(["-s", "-B", "10.9.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut iperf_server = iperf_server.spawn().map_err(|e| e.to_string())?;
        // The server listens some milliseconds after it starts: wait for its port.
        let listening = (0..100).any(|_| {
            let up = peer
                .tcp_connect("10.9.0.1:5201".parse().expect("address"))
                .is_ok();
            if !up {
                std::thread::sleep(Duration::from_millis(20));
            }
            up
        });
        if !listening {
            return Err("iperf3 -s did not listen within 2 s".into());
        }
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut rr_server = peer.command(&me);
        rr_server
            .env(ROLE_ENV, "rr_server")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut rr_server = rr_server.spawn().map_err(|e| e.to_string())?;
        let mut ready = [0u8; 6];
        let _ = rr_server
            .stdout
            .take()
            .map(|mut r| r.read_exact(&mut ready));
        let mut sink = peer.command(&me);
        sink.env(ROLE_ENV, "sink_server")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut sink = sink.spawn().map_err(|e| e.to_string())?;
        let _ = sink.stdout.take().map(|mut r| r.read_exact(&mut ready));
        // The clients: a kernel stack (as `vdestack ns` runs them), and a
        // user-space stack under vu.
        let kernel = stack(&url, Backend::Kernel, "10.9.0.2")?;
        let mut vu = Vu::new(
            UserNet::new(stack(&url, Backend::User, "10.9.0.3")?).map_err(|e| e.to_string())?,
        );
        let secs = if o.quick { "2" } else { "4" };
        println!(
            "vdestack vu on a user-space stack against the same program on a kernel stack \
             (inproc:// to a kernel-stack peer), median of {} rounds",
            o.rounds
        );
        println!();
        println!(
            "{:<44} {:>10} {:>10} {:>8}",
            "", "kernel", "vu user", "vu/kernel"
        );
        let rr_only = o.only.as_deref() == Some("rr");
        let result = (|| -> Result<(), String> {
            for streams in ["1", "4"].into_iter().filter(|_| !rr_only) {
                let iperf = |user: bool, vu: &mut Vu<UserNet>| -> Result<f64, String> {
                    let args = ["-c", "10.9.0.1", "-J", "-t", secs, "-P", streams];
                    let out = if user {
                        let mut c = Command::new("iperf3");
                        c.args(args);
                        output(c, Some(vu))?
                    } else {
                        let mut c = kernel.command("iperf3");
                        c.args(args);
                        output(c, None)?
                    };
                    gbits(&out)
                };
                let k = measure(o.rounds, || iperf(false, &mut vu))?;
                let v = measure(o.rounds, || iperf(true, &mut vu))?;
                println!(
                    "{:<44} {:>6.2}Gb/s {:>6.2}Gb/s {:>7.2}x",
                    format!("iperf3, {streams} stream(s), client to peer"),
                    k,
                    v,
                    v / k
                );
            }
            if !rr_only {
                // One stream of bulk data: the same program on the kernel stack and
                // under vu, and the user stack's own Rust socket (no vu).
                let mib: u64 = if o.quick { 256 } else { 1024 };
                let sink: SocketAddr = "10.9.0.1:7001".parse().map_err(|_| "address")?;
                let run_bulk = |user: bool, vu: &mut Vu<UserNet>| -> Result<f64, String> {
                    let mut c = if user {
                        Command::new(&me)
                    } else {
                        kernel.command(&me)
                    };
                    c.arg(mib.to_string())
                        .env(ROLE_ENV, "bulk")
                        .env("VDESTACK_VU_BENCH_PEER", "10.9.0.1:7001");
                    let out = output(c, user.then_some(vu))?;
                    let mbits: f64 = out
                        .trim()
                        .parse()
                        .map_err(|_| format!("bulk printed {out:?}"))?;
                    Ok(mbits / 1e3)
                };
                let k = measure(o.rounds, || run_bulk(false, &mut vu))?;
                let v = measure(o.rounds, || run_bulk(true, &mut vu))?;
                let native = measure(o.rounds, || {
                    let s = vu.net().stack();
                    let mut c = s.tcp_connect(sink).map_err(|e| e.to_string())?;
                    bulk(&mut c, mib, |c| c.shutdown(std::net::Shutdown::Write))
                        .map_err(|e| e.to_string())
                })?;
                println!(
                    "{:<44} {:>6.2}Gb/s {:>6.2}Gb/s {:>7.2}x",
                    format!("bulk TCP, {mib} MiB, 1 stream"),
                    k,
                    v,
                    v / k
                );
                println!(
                    "{:<44} {:>10} {:>6.2}Gb/s {:>7.2}x",
                    "  the same from Rust on the user stack (no vu)",
                    "",
                    native,
                    native / k
                );
            }
            let n: u64 = if o.quick { 2000 } else { 10000 };
            let rr = |user: bool, vu: &mut Vu<UserNet>| -> Result<f64, String> {
                let mut c = if user {
                    Command::new(&me)
                } else {
                    kernel.command(&me)
                };
                c.arg(n.to_string())
                    .env(ROLE_ENV, "rr")
                    .env("VDESTACK_VU_BENCH_PEER", "10.9.0.1:7000");
                let out = output(c, user.then_some(vu))?;
                out.trim()
                    .parse()
                    .map_err(|_| format!("rr printed {out:?}"))
            };
            let k = measure(o.rounds, || rr(false, &mut vu))?;
            let v = measure(o.rounds, || rr(true, &mut vu))?;
            println!(
                "{:<44} {:>8.1}µs {:>8.1}µs {:>7.2}x",
                "TCP request/response, 1 B each way (per rt)",
                k / 1e3,
                v / 1e3,
                v / k
            );
            let n = 20000;
            let k = measure(o.rounds, || role("getsockname", n, Under::Nothing))?;
            let v = measure(o.rounds, || {
                let mut c = Command::new(&me);
                c.arg(n.to_string()).env(ROLE_ENV, "getsockname");
                let out = output(c, Some(&mut vu))?;
                out.trim()
                    .parse()
                    .map_err(|_| format!("getsockname printed {out:?}"))
            })?;
            println!(
                "{:<44} {:>8.2}µs {:>8.2}µs {:>7.1}x",
                "a trapped call: getsockname (UDP, user stack)",
                k / 1e3,
                v / 1e3,
                v / k
            );
            Ok(())
        })();
        let _ = iperf_server.kill();
        let _ = iperf_server.wait();
        let _ = rr_server.kill();
        let _ = rr_server.wait();
        let _ = sink.kill();
        let _ = sink.wait();
        result
    }
}
