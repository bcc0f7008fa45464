//! Stacks benchmark: our stacks side by side with Debian's libvdestack and with two
//! namespaces joined by a kernel veth pair (the limit).
//!
//! ```text
//! cargo bench -p vdestack --bench stacks [-- [--quick] [--secs S] [--only A,B]]
//! scripts/bench        # this one, then the switch/hub bench (benches/switch.rs)
//! ```
//!
//! * TCP between two stacks, over each transport: bulk throughput with 1 and 4
//!   streams (MB/s) and 1-byte request/response (round trips/s, mean and p99 µs).
//!   Our stacks are two [`Stack`](vdestack::stack::Stack)s of this process driven
//!   by threads of it (`traffic.rs`); libvdestack's are two C processes
//!   (`benches/c/cstack_server.c`, `cstack_client.c`, built here with gcc against
//!   Debian's libvdestack) speaking the same protocol; the veth row is two of our
//!   stacks with no tap, joined by a veth pair, driven like ours.
//! * What a stack costs (`costs.rs`, `benches/c/cstack_create.c`).
//!
//! Everything runs in a network namespace of its own: the bench re-executes itself
//! under `unshare -n` (root) or `unshare -Urn`, and refuses to run where any
//! interface but `lo` exists. Multicast (`vxvde://`) goes over that `lo`.

mod costs;
mod tcp;
mod traffic;
mod util;

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use tcp::{Figures, Net, Who};

const SANDBOX_ENV: &str = "VDESTACK_BENCH_SANDBOX";

/// Set by SIGINT/SIGTERM/SIGHUP: stop after the current measurement, print what was
/// measured, and stop every process and stack on the way out.
static INTERRUPTED: std::sync::LazyLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::LazyLock::new(Default::default);

fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

const USAGE: &str = "\
cargo bench -p vdestack --bench stacks [-- [--quick] [--secs S] [--rounds R] [--only A,B]]
  --secs S    seconds per TCP measurement (default 1; three measurements per round)
  --rounds R  rounds per TCP row; each figure is the median (default 3)
  --only A,B  only the rows whose name contains A or B, e.g. `vxvde,veth`, `ours`,
              `C`, `costs` (the stack costs table), `tcp` (all TCP rows)
  --quick     --secs 0.5 --rounds 1 and fewer create/delete cycles
  VDESTACK_BENCH_C_LIB=PATH  link the C rows to PATH (a libvdestack.so.0) instead of
              Debian's (e.g. this project's C ABI)";

struct Opts {
    secs: f64,
    rounds: u32,
    quick: bool,
    only: Vec<String>,
}

impl Opts {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        secs: 1.0,
        rounds: 3,
        quick: false,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => {
                o.quick = true;
                o.secs = 0.5;
                o.rounds = 1;
            }
            "--secs" => o.secs = util::arg_secs(&mut args)?,
            "--rounds" => o.rounds = util::arg_rounds(&mut args)?,
            "--only" => o.only = util::arg_list(&mut args)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => {} // libtest-style arguments `cargo bench` may pass
        }
    }
    Ok(o)
}

fn main() {
    if let Some(role) = std::env::var_os(costs::ROLE_ENV) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // A role is started by the bench inside its namespace; run by hand
        // anywhere else, it would send multicast on the host's interfaces.
        let r = match role.to_str() {
            // In a Debian vdens nested in the bench's namespace: lo and its vde0.
            Some(tcp::VDENS_ROLE) => only(&["lo", "vde0"]).and_then(|()| tcp::vdens_server_role()),
            _ => only_lo().and_then(|()| match (role.to_str(), args.as_slice()) {
                (Some("server"), [url]) => tcp::server_role(url),
                _ => costs::role_main(&args),
            }),
        };
        if let Err(e) = r {
            eprintln!("stacks bench ({}): {e}", role.to_string_lossy());
            std::process::exit(1);
        }
        return;
    }
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stacks bench: {e}");
            std::process::exit(2);
        }
    };
    if std::env::var_os(SANDBOX_ENV).is_none() {
        std::process::exit(reexec_in_namespace());
    }
    register_signals();
    if let Err(e) = setup_namespace().and_then(|()| run(&opts)) {
        eprintln!("stacks bench failed: {e}");
        std::process::exit(1);
    }
    if interrupted() {
        std::process::exit(130);
    }
}

/// Runs this bench again in a network namespace of its own; returns its exit code.
fn reexec_in_namespace() -> i32 {
    let root = rustix::process::geteuid().is_root();
    let flags: &[&str] = if root { &["-n"] } else { &["-Urn"] };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("stacks bench: cannot find my own binary: {e}");
            return 1;
        }
    };
    let child = Command::new("unshare")
        .args(flags)
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(SANDBOX_ENV, "1")
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "stacks bench: needs util-linux `unshare {}` (a private network namespace): {e}",
                flags.join(" ")
            );
            return 1;
        }
    };
    // A signal (e.g. Ctrl-C) is passed on to the bench, which stops after the current
    // measurement and cleans up; wait for it rather than leave it behind.
    register_signals();
    let mut forwarded = false;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return s.code().unwrap_or(130),
            Ok(None) => {}
            Err(e) => {
                eprintln!("stacks bench: waiting for the namespaced run: {e}");
                return 1;
            }
        }
        if interrupted() && !forwarded {
            forwarded = true;
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn register_signals() {
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, INTERRUPTED.clone()) {
            eprintln!("stacks bench: cannot handle signal {sig}: {e}");
        }
    }
}

/// Refuses to run anywhere but a fresh namespace; brings `lo` up with multicast.
fn setup_namespace() -> io::Result<()> {
    only_lo()?;
    for cmd in [
        "ip link set lo up",
        "ip link set lo multicast on",
        "ip route add 224.0.0.0/4 dev lo",
    ] {
        let w: Vec<&str> = cmd.split_whitespace().collect();
        let st = Command::new(w[0]).args(&w[1..]).status()?;
        if !st.success() {
            return Err(io::Error::other(format!("`{cmd}` failed: {st}")));
        }
    }
    Ok(())
}

/// `Err` unless `lo` is this network namespace's only interface.
fn only_lo() -> io::Result<()> {
    only(&["lo"])
}

/// `Err` unless this network namespace's interfaces are exactly `want`.
fn only(want: &[&str]) -> io::Result<()> {
    let dev = std::fs::read_to_string("/proc/net/dev")?;
    let mut names: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    names.sort_unstable();
    let mut want = want.to_vec();
    want.sort_unstable();
    if names != want {
        return Err(io::Error::other(format!(
            "refusing to run outside a private network namespace (interfaces {names:?})"
        )));
    }
    Ok(())
}

/// Debian's `libvdestack.so.0` (not one installed under /usr/local, such as this
/// project's C ABI), or `$VDESTACK_BENCH_C_LIB` to measure another build.
fn c_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("VDESTACK_BENCH_C_LIB") {
        return Ok(PathBuf::from(p));
    }
    let listed = Command::new("dpkg-query")
        .args(["-L", "libvdestack0"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    listed
        .lines()
        .find(|l| l.ends_with("/libvdestack.so.0"))
        .map(PathBuf::from)
        .ok_or_else(|| {
            "Debian's libvdestack0 is not installed (apt install libvdestack-dev)".into()
        })
}

/// Builds the C programs against Debian's libvdestack, linked to that file and found
/// there at run time (RPATH); `Err` says why not. Returns the folder and the library.
fn build_c(tmp: &std::path::Path) -> Result<(PathBuf, PathBuf), String> {
    if !std::path::Path::new("/usr/include/vdestack.h").exists() {
        return Err("libvdestack-dev is not installed (no /usr/include/vdestack.h)".into());
    }
    let lib = c_library()?;
    let libdir = lib.parent().ok_or("no folder for the C library")?;
    let src = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/c"));
    // Into the run's temporary folder: writable by whoever runs the bench.
    let out = tmp.join("c");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for prog in ["cstack_server", "cstack_client", "cstack_create"] {
        let st = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(out.join(prog))
            .arg(src.join(format!("{prog}.c")))
            .arg(&lib)
            .arg(format!(
                "-Wl,--disable-new-dtags,-rpath,{}",
                libdir.display()
            ))
            .arg("-lpthread")
            .status()
            .map_err(|e| format!("gcc: {e}"))?;
        if !st.success() {
            return Err(format!("gcc failed on {prog}.c: {st}"));
        }
    }
    // Check which library the programs really load.
    let ldd = Command::new("ldd")
        .arg(out.join("cstack_client"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let loaded = ldd
        .lines()
        .find(|l| l.contains("libvdestack.so.0 =>"))
        .and_then(|l| l.split("=>").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map(PathBuf::from);
    match loaded {
        Some(p) if p.parent() == Some(libdir) => Ok((out, p)),
        other => Err(format!(
            "the C programs would load {other:?}, not {}",
            lib.display()
        )),
    }
}

fn sysinfo() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let versions = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package} ${Version}, ",
            "libvdestack0",
            "vdeplug",
            "vde2",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim_end_matches(", ")
                .to_string()
        })
        .unwrap_or_default();
    format!("{cpus} CPUs, Linux {}; {versions}", kernel.trim())
}

fn run(opts: &Opts) -> io::Result<()> {
    let started = Instant::now();
    println!("stacks bench: {}", sysinfo());
    let tmp = util::TempDir::new("stacks-bench")?;
    let cbin = match build_c(&tmp.0) {
        Ok((dir, lib)) => {
            println!("C rows: libvdestack from {}", lib.display());
            Ok(dir)
        }
        Err(why) => {
            println!("C rows skipped: {why}");
            Err(why)
        }
    };
    let ctx = tcp::Ctx {
        tmp: tmp.0.clone(),
        cbin,
        vdestack_bin: env!("CARGO_BIN_EXE_vdestack").to_string(),
    };
    // Every row is set up first and stays up; the rounds then interleave them.
    let mut setups: Vec<(Who, Net, Result<tcp::Setup, String>)> = Vec::new();
    for (i, &(who, net)) in tcp::CASES.iter().enumerate() {
        let name = format!("tcp {} {}", tcp::who_name(who), net.name());
        if opts.wants(&name) {
            let s = tcp::setup(who, net, i, &ctx).map_err(|e| e.to_string());
            setups.push((who, net, s));
        }
    }
    let mut samples: Vec<Vec<Figures>> = vec![Vec::new(); setups.len()];
    let mut failed: Vec<Option<String>> = vec![None; setups.len()];
    for round in 1..=opts.rounds {
        if setups.is_empty() || interrupted() {
            break;
        }
        eprint!("TCP round {round}/{} ...", opts.rounds);
        let t = Instant::now();
        for (i, (_, _, s)) in setups.iter().enumerate() {
            let Ok(s) = s else { continue };
            if failed[i].is_some() || interrupted() {
                continue;
            }
            match s.measure(opts.secs) {
                Ok(f) => samples[i].push(f),
                Err(e) => failed[i] = Some(e.to_string()),
            }
        }
        eprintln!(" {:.0} s", t.elapsed().as_secs_f64());
    }
    let rows: Vec<(Who, Net, Result<Figures, String>)> = setups
        .into_iter()
        .enumerate()
        .map(|(i, (who, net, s))| {
            let r = match (s, failed[i].take()) {
                (Err(e), _) | (Ok(_), Some(e)) => Err(e),
                (Ok(_), None) if samples[i].is_empty() => Err("no sample".into()),
                (Ok(_), None) => Ok(tcp::median(&samples[i])),
            };
            (who, net, r)
        })
        .collect();
    let costs = if opts.wants("costs") && !interrupted() {
        eprint!("costs ...");
        let t = Instant::now();
        let c = costs::measure(&ctx.cbin, opts.quick);
        eprintln!(" {:.1} s", t.elapsed().as_secs_f64());
        c
    } else {
        Vec::new()
    };
    println!("all rows in {:.0} s\n", started.elapsed().as_secs_f64());
    if interrupted() {
        println!("interrupted: the tables hold what was measured so far\n");
    }
    if !rows.is_empty() {
        print_tcp(&rows, opts);
        print_agno(&rows);
    }
    if !costs.is_empty() {
        print_costs(&costs);
    }
    Ok(())
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn print_tcp(rows: &[(Who, Net, Result<Figures, String>)], opts: &Opts) {
    let find = |w: Who, n: Net| {
        rows.iter()
            .find(|r| r.0 == w && r.1 == n)
            .and_then(|r| r.2.as_ref().ok())
    };
    let veth = find(Who::Kernel, Net::Veth);
    println!("| stacks | transport | 1 stream MB/s | 4 streams MB/s | RR/s | RR mean µs | RR p99 µs | RR CPU µs/trip | ours/C (1s, 4s, RR/s) | user/kernel (1s, 4s, RR/s) | vs veth (1s, 4s, RR/s) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---|---|");
    for (who, net, r) in rows {
        let f = match r {
            Ok(f) => f,
            Err(e) => {
                println!(
                    "| {} | {} | skipped: {} | | | | | | | | |",
                    tcp::who_name(*who),
                    net.name(),
                    e.replace('|', "/")
                );
                continue;
            }
        };
        let c = if matches!(who, Who::Ours | Who::OursTwoProcs | Who::User) {
            find(Who::C, *net)
        } else {
            None
        };
        // The user-space backend against our kernel one on the same transport.
        let kernel = if *who == Who::User {
            find(Who::Ours, *net)
        } else {
            None
        };
        let vs = |o: Option<&Figures>| match o {
            Some(o) if *who != Who::Kernel => format!(
                "{}, {}, {}",
                ratio(f.one, Some(o.one)),
                ratio(f.four, Some(o.four)),
                ratio(f.rr.rate, Some(o.rr.rate))
            ),
            _ => "–".into(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {} | {} | {} |",
            tcp::who_name(*who),
            net.name(),
            f.one,
            f.four,
            f.rr.rate,
            f.rr.mean_us,
            f.rr.p99_us,
            f.rr.cpu_us,
            vs(c),
            vs(kernel),
            vs(veth),
        );
    }
    println!(
        "\nTCP over IPv4 between two stacks, MTU 1500; each figure is the median of {} \
         measurements of {} s. MB/s: 10^6 bytes the receiver counted per second. RR: 1-byte \
         request and reply on one connection (TCP_NODELAY); CPU µs/trip: the whole \
         machine's busy CPU time during the RR measurement per round trip (our relay \
         threads poll up to 200 µs before sleeping, outside bulk: latency bought with \
         CPU would show here). ours: two stacks of this process, each on one of its relay threads ({} here: one per CPU, at most 4); \
         ours, 2 processes: the server's stack in a \
         second process; ours, user-space: two user-space stacks (Backend::User: TCP/IP in \
         this process, served by its stack threads); C: two processes, each stack relayed \
         by its own helper process; kernel: two of our stacks joined by a veth pair instead \
         of taps. `to a Debian vdens`: the server is a C peer, a Debian vdens on the same \
         vxvde:// group (the kernel's stack in its namespace, its tap relayed by vdeplug), \
         serving with plain sockets; the row's stacks are only the client.\n",
        opts.rounds,
        opts.secs,
        vdestack::diagnostics::relay_threads_max()
    );
}

/// agno's cost: each agno row's throughput and round trips against the same
/// stacks' on the same switch without it (all frames, and frame by frame).
fn print_agno(rows: &[(Who, Net, Result<Figures, String>)]) {
    let find = |w: Who, n: Net| {
        rows.iter()
            .find(|r| r.0 == w && r.1 == n)
            .and_then(|r| r.2.as_ref().ok())
    };
    let mut lines = Vec::new();
    for who in [Who::Ours, Who::C] {
        let Some(agno) = find(who, Net::Agno) else {
            continue;
        };
        for base in [Net::OurSwitch, Net::PlainFrames] {
            if let Some(b) = find(who, base) {
                lines.push(format!(
                    "| {} | {} | {} | {} | {} |",
                    tcp::who_name(who),
                    base.name(),
                    ratio(agno.one, Some(b.one)),
                    ratio(agno.four, Some(b.four)),
                    ratio(agno.rr.rate, Some(b.rr.rate)),
                ));
            }
        }
    }
    if lines.is_empty() {
        return;
    }
    println!("| agno:// | against | 1 stream | 4 streams | RR/s |");
    println!("|---|---|---:|---:|---:|");
    for l in lines {
        println!("{l}");
    }
    println!(
        "\nagno://'s throughput as a fraction of the same stacks' on the same switch without \
         it: with everything the plain link does (ours: large segments cut once and sent \
         with sendmmsg), and frame by frame (ours only: through a wrapper that changes \
         nothing, `vlan://{{…}}` with no VLAN, so the difference left is the cipher's).\n"
    );
}

fn print_costs(rows: &[io::Result<costs::Costs>]) {
    println!("| stacks | interfaces | create µs | ready µs | delete µs | alone, no linger: ready, delete µs | fds left by the cycles | fds/stack | processes/stack | threads/stack | memory KiB/stack | most stacks per process | create, ready, delete, ready+delete ours/C |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let ok: Vec<&costs::Costs> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
    for r in rows {
        let c = match r {
            Ok(c) => c,
            Err(e) => {
                println!(
                    "| | | skipped: {} | | | | | | | | | | |",
                    e.to_string().replace('|', "/")
                );
                continue;
            }
        };
        let vs_c = if c.who != costs::C {
            ok.iter()
                .find(|o| o.who == costs::C && o.iface == c.iface)
                .map(|o| {
                    format!(
                        "{}, {}, {}, {}",
                        ratio(c.create_us, Some(o.create_us)),
                        ratio(c.ready_us, Some(o.ready_us)),
                        ratio(c.delete_us, Some(o.delete_us)),
                        ratio(c.ready_us + c.delete_us, Some(o.ready_us + o.delete_us))
                    )
                })
                .unwrap_or_else(|| "–".into())
        } else {
            "–".into()
        };
        let max = match &c.max {
            Some((n, why)) => format!("{n:.0} ({})", why.replace('_', " ")),
            None => "–".into(),
        };
        let first = match c.first {
            Some((cr, de)) => format!("{cr:.0}, {de:.0}"),
            None => "–".into(),
        };
        let foot = match &c.footprint {
            Some(f) => format!(
                "{:.2} | {:.2} | {:.2} | {:.0}",
                f.fds, f.procs, f.threads, f.pss_kib
            ),
            None => "– | – | – | –".into(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {} | {} | {} |",
            c.who,
            c.iface,
            c.create_us,
            c.ready_us,
            c.delete_us,
            first,
            c.leaked_fds,
            foot,
            max,
            vs_c
        );
    }
    println!(
        "\ncreate/ready/delete: mean of the cycles (create, a first UDP socket in the stack, \
         delete at once); ready = create until that socket exists (libvdestack's create \
         returns before its helper has made the tap; its first socket waits for it). `ours`: \
         with one more stack of the same kind alive meanwhile, as in an application that \
         has stacks (all of a process's stacks share one namespace helper). `ours, alone`: \
         no other stack alive, each stack the process's only one; the helper lingers {} ms \
         after the last stack (the default), so the next one finds it. `alone, no \
         linger`: each stack the process's only one with VDESTACK_HELPER_LINGER_MS=0, so \
         each starts the helper and its drop waits for it to exit (as before the linger \
         existed). Per stack: 20 \
         stacks alive at once, the growth over one process divided by 20: fds and threads \
         of the process, processes (helpers, below it or not), memory = Pss of the process \
         plus its helpers' (libvdestack's helpers share its memory: counted once). Most \
         stacks: stacks with no interface made until one fails or 1000 exist (fd limit \
         raised to the hard limit). `ours, user-space`: user-space stacks (Backend::User, no \
         namespace or helper), with another one alive; ready = create until a first UDP \
         socket is bound; per stack: 1000 alive at once; most stacks: up to 100000.",
        vdestack::Config::DEFAULT_HELPER_LINGER.as_millis()
    );
    print_user_goals(&ok);
}

/// Issue 15's goals for user-space stacks next to what was measured.
fn print_user_goals(ok: &[&costs::Costs]) {
    let find = |who: &str, iface: &str| ok.iter().find(|c| c.who == who && c.iface == iface);
    for iface in [
        "lo only",
        "1 interface on vxvde://",
        "1 interface on inproc://",
    ] {
        let Some(u) = find(costs::USER, iface) else {
            continue;
        };
        let cycle = u.create_us + u.delete_us;
        let vs_c = find(costs::C, iface)
            .map(|c| {
                format!(
                    ", {:.0}x faster than C libvdestack's create+delete ({:.0} µs; goal: 20x)",
                    (c.create_us + c.delete_us) / cycle.max(1e-9),
                    c.create_us + c.delete_us
                )
            })
            .unwrap_or_default();
        let mem = u
            .footprint
            .as_ref()
            .map(|f| format!("; {:.1} KiB per idle stack (goal: at most 16)", f.pss_kib))
            .unwrap_or_default();
        println!(
            "\nuser-space stacks, {iface}: create+delete {cycle:.1} µs (goal: at most 20){vs_c}{mem}"
        );
    }
}
