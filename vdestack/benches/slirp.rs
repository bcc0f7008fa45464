//! `slirp://` TCP throughput to the host: ours (`vdestack ns slirp://`), Debian's
//! C plugin (`vdens slirp://`, libvdeplug_slirp over libvdeslirp) and
//! `slirp4netns` (libslirp behind a tap, in a process of its own), all on the
//! same libslirp; and the same guest program on a user-space stack under
//! `vdestack vu slirp://` (issue 16: no namespace, no tap).
//!
//! ```sh
//! cargo bench -p vdestack --bench slirp -- [--secs S] [--rounds R] [--mtu M] [--quick]
//! ```
//!
//! The bench re-executes itself in a private network namespace (`unshare -n`, or
//! `-Urn` as a user) whose loopback is the "host": a sink server listens on
//! 127.0.0.1, and each guest connects to 10.0.2.2 (slirp's name for the host's
//! loopback) and sends 64 KiB writes for S seconds. MB/s = 10^6 bytes the sink
//! received per second, from its first byte to the sender's end. Rows take turns
//! round by round; a figure is the median of its rounds. slirp4netns needs root
//! (it joins the guest's namespace by pid); as a user its row is skipped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const SANDBOX_ENV: &str = "VDESTACK_SLIRP_BENCH_SANDBOX";
const CHUNK: usize = 64 * 1024;

struct Opts {
    secs: f64,
    rounds: u32,
    mtu: u32,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        secs: 2.0,
        rounds: 3,
        mtu: 1500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or(format!("{a} needs a number ({what})"))
        };
        match a.as_str() {
            "--secs" => o.secs = value("seconds")?,
            "--rounds" => o.rounds = value("rounds")? as u32,
            "--mtu" => o.mtu = value("bytes")? as u32,
            "--quick" => {
                o.secs = 0.5;
                o.rounds = 1;
            }
            "--bench" => {}
            "-h" | "--help" => {
                return Err("options: --secs S (2) --rounds R (3) --mtu M (1500) --quick".into())
            }
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if !(68..=9000).contains(&o.mtu) {
        return Err("--mtu: 68 to 9000 (VDE frames end at 9234 bytes)".into());
    }
    Ok(o)
}

/// The guest's side: sends for `secs` seconds, then waits for the sink's count.
fn client(addr: &str, port: &str, secs: &str) -> std::io::Result<()> {
    let secs: f64 = secs.parse().map_err(std::io::Error::other)?;
    let port: u16 = port.parse().map_err(std::io::Error::other)?;
    let mut s = TcpStream::connect((addr, port))?;
    let buf = vec![0x5au8; CHUNK];
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        s.write_all(&buf)?;
    }
    s.shutdown(Shutdown::Write)?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    println!("bytes={}", u64::from_be_bytes(count));
    Ok(())
}

/// The host's side: one connection at a time, counted from its first byte to its
/// end; (bytes, seconds) for each.
fn sink() -> std::io::Result<(u16, Receiver<(u64, f64)>)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut total = 0u64;
            let mut first = None;
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        first.get_or_insert_with(Instant::now);
                        total += n as u64;
                    }
                }
            }
            let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
            let _ = s.write_all(&total.to_be_bytes());
            if tx.send((total, secs)).is_err() {
                return;
            }
        }
    });
    Ok((port, rx))
}

#[derive(Clone, Copy, PartialEq)]
enum Row {
    Ours,
    C,
    Slirp4netns,
    Vu,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Ours => "ours: vdestack ns slirp://",
            Row::C => "C: vdens slirp:// (libvdeplug_slirp)",
            Row::Slirp4netns => "slirp4netns (tap)",
            Row::Vu => "vdestack vu slirp:// (user-space stack)",
        }
    }
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// One measurement of `row`: MB/s.
fn measure(row: Row, o: &Opts, port: u16, sink: &Receiver<(u64, f64)>) -> Result<f64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let client = format!("exec {} --client 10.0.2.2 {port} {}", me.display(), o.secs);
    let url = format!("slirp:///mtu={}", o.mtu);
    let setup = format!(
        "ip link set vde0 mtu {mtu} up && ip addr add 10.0.2.15/24 dev vde0 && \
         ip route add default via 10.0.2.2 && {client}",
        mtu = o.mtu
    );
    let vdestack = std::env::var("VDESTACK_BIN").unwrap_or_else(|_| {
        me.parent()
            .and_then(|d| d.parent())
            .map(|d| d.join("vdestack").display().to_string())
            .unwrap_or_default()
    });
    let mut guest = match row {
        Row::Ours => {
            let mut c = Command::new(&vdestack);
            c.args(["ns", &url, "/bin/sh", "-c", &setup]);
            c
        }
        Row::Vu => {
            let mut c = Command::new(&vdestack);
            c.args(["vu", &url, "--", "/bin/sh", "-c", &setup]);
            c
        }
        Row::C => {
            let mut c = Command::new("vdens");
            c.args([&url, "/bin/sh", "-c", &setup]);
            c
        }
        Row::Slirp4netns => {
            let mut c = Command::new("unshare");
            c.args(["-n", "/bin/sh", "-c"]).arg(format!(
                "until ip -4 addr show tap0 2>/dev/null | grep -q inet; do sleep 0.02; done; {client}"
            ));
            c
        }
    };
    // A process group of its own: Debian's vdens may stay after its command
    // ended (it does not always reap its shell), so the group is killed below.
    std::os::unix::process::CommandExt::process_group(&mut guest, 0);
    guest
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = guest.spawn().map_err(|e| format!("{}: {e}", row.name()))?;
    let mut s4n = None;
    if row == Row::Slirp4netns {
        let c = Command::new("slirp4netns")
            .args(["--configure", &format!("--mtu={}", o.mtu)])
            .arg(child.id().to_string())
            .arg("tap0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("slirp4netns: {e}"))?;
        s4n = Some(c);
    }
    let got = sink.recv_timeout(Duration::from_secs_f64(o.secs + 30.0));
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(pgid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
    let out = child.wait_with_output().map_err(|e| e.to_string());
    if let Some(mut c) = s4n {
        let _ = c.kill();
        let _ = c.wait();
    }
    let out = out?;
    match got {
        Ok((bytes, secs)) if bytes > 0 && secs > 0.0 => Ok(bytes as f64 / secs / 1e6),
        _ => Err(format!(
            "{}: no transfer ({})",
            row.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

fn run(o: &Opts) -> Result<(), String> {
    Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("ip link set lo up: {e}"))?;
    let (port, rx) = sink().map_err(|e| e.to_string())?;
    let mut rows = vec![Row::Ours];
    let mut notes = Vec::new();
    if have("vdens")
        && std::path::Path::new("/usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so").exists()
    {
        rows.push(Row::C);
    } else {
        notes.push("C row skipped: needs vdens and libvdeplug-slirp");
    }
    if !have("slirp4netns") {
        notes.push("slirp4netns row skipped: not installed");
    } else if !rustix::process::geteuid().is_root() {
        notes.push("slirp4netns row skipped: it needs root here");
    } else {
        rows.push(Row::Slirp4netns);
    }
    if vdestack::vu::check_support().is_ok() {
        rows.push(Row::Vu);
    } else {
        notes.push("vu row skipped: no seccomp user notification here");
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut errors: Vec<Option<String>> = vec![None; rows.len()];
    for _ in 0..o.rounds {
        for (i, &row) in rows.iter().enumerate() {
            match measure(row, o, port, &rx) {
                Ok(f) => figures[i].push(f),
                Err(e) => errors[i] = Some(e),
            }
        }
    }
    println!(
        "slirp:// TCP to the host (guest -> 10.0.2.2 -> 127.0.0.1), MTU {}, {} s x {} rounds, median MB/s",
        o.mtu, o.secs, o.rounds
    );
    let med: Vec<Option<f64>> = figures.iter_mut().map(|v| median(v)).collect();
    let ours = med[0];
    for (i, row) in rows.iter().enumerate() {
        let ratio = match (ours, med[i]) {
            (Some(a), Some(b)) if i > 0 => format!("  ours/this = {:.2}x", a / b),
            _ => String::new(),
        };
        match (med[i], &errors[i]) {
            (Some(m), _) => println!(
                "  {:<40} {:>8.1} MB/s  (rounds: {}){ratio}",
                row.name(),
                m,
                figures[i]
                    .iter()
                    .map(|f| format!("{f:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, e) => println!(
                "  {:<40} failed: {}",
                row.name(),
                e.clone().unwrap_or_default()
            ),
        }
    }
    for n in notes {
        println!("  ({n})");
    }
    Ok(())
}

fn only_lo() -> bool {
    std::fs::read_to_string("/proc/net/dev")
        .map(|d| {
            d.lines()
                .skip(2)
                .filter_map(|l| l.split(':').next())
                .map(str::trim)
                .eq(["lo"])
        })
        .unwrap_or(false)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--client") {
        // Only ever inside a guest namespace this bench made.
        if let [_, _, addr, port, secs] = &args[..] {
            if let Err(e) = client(addr, port, secs) {
                eprintln!("slirp bench client: {e}");
                std::process::exit(1);
            }
            return;
        }
        eprintln!("slirp bench client: --client ADDR PORT SECS");
        std::process::exit(2);
    }
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("slirp bench: {e}");
            std::process::exit(2);
        }
    };
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
                eprintln!("slirp bench: needs util-linux unshare: {e}");
                std::process::exit(1);
            }
        }
    }
    // slirp reaches the host's network: only ever from a namespace of our own.
    if !only_lo() {
        eprintln!("slirp bench: refusing to run outside a private network namespace");
        std::process::exit(1);
    }
    if let Err(e) = run(&opts) {
        eprintln!("slirp bench: {e}");
        std::process::exit(1);
    }
}
