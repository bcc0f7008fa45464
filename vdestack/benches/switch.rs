//! Switch and hub benchmark: our `vdestack switch`/`vdestack hub` (the release binary,
//! run as a separate process) side by side with Debian's `vde_switch` (vde2) and
//! vdeplug4's `vde_plug null:// switch://DIR` / `hub://DIR`.
//!
//! ```text
//! cargo bench -p vdestack --bench switch [-- [--quick] [--secs S] [--rounds R] [--frames N] [--only A,B]]
//! ```
//!
//! The traffic generator is the same for every server: two of our `vde://DIR` client
//! plugs in this process, a sender (this thread) and a receiver (its own thread),
//! unicast between two learned MACs, frames of 64 and 1514 bytes. Two modes:
//!
//! * **flood**: the sender sends as fast as it can for `--secs` seconds, dropping a
//!   frame when its socket says `WouldBlock` (the server's queue is full). Reported:
//!   frames and MB delivered per second, and the loss inside the server (frames it
//!   accepted but did not deliver, because the receiver's 10-datagram queue was
//!   full).
//! * **window** (for half as long): at most 8 frames in flight (a unix datagram queue holds only
//!   `net.unix.max_dgram_qlen` = 10), the sender waits for all of them to arrive
//!   before sending more: the lossless rate, as `vdestack demo` measures it.
//!
//! All servers run at once; each case is measured in `--rounds` rounds (5) that
//! interleave the servers, so a slow spell of a busy machine does not fall on one
//! server only, and the median round is reported.
//!
//! Unix sockets only, no IP traffic. Every process started is killed and reaped, and
//! the temporary directory removed, even on error.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vdestack::vde::{self, wait_readable, Plug, Recv, MAX_FRAME};

/// Shared with the stacks bench: processes, temp dirs, key=value output.
#[allow(dead_code)]
#[path = "stacks/util.rs"]
mod util;

/// Our release binary, built by `cargo bench` along with this bench.
const VDESTACK: &str = env!("CARGO_BIN_EXE_vdestack");

/// Our server binary: [`VDESTACK`], or `$VDESTACK_BENCH_BIN` (to compare builds).
fn ours() -> String {
    std::env::var("VDESTACK_BENCH_BIN").unwrap_or_else(|_| VDESTACK.to_string())
}

/// A local experimental ethertype, so nothing mistakes these frames for real ones.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const SENDER: [u8; 6] = [0x02, 0x76, 0x64, 0x65, 0xbe, 0x01];
const RECEIVER: [u8; 6] = [0x02, 0x76, 0x64, 0x65, 0xbe, 0x02];
const SIZES: [usize; 2] = [64, 1514];
const WINDOW: u64 = 8;
/// How long the window mode waits for a frame before counting it as lost.
const WINDOW_TIMEOUT: Duration = Duration::from_millis(200);

const USAGE: &str = "\
cargo bench -p vdestack --bench switch [-- [--quick] [--secs S] [--rounds R] [--frames N] [--only A,B]]
  --secs S    flood seconds per case, split over the rounds (default 2; window mode gets half)
  --rounds R  measure each case R times, interleaving the servers; report the median (default 5)
  --frames N  cap on frames per window-mode round (default 1000000)
  --only A,B  only the servers whose name contains A or B (e.g. `vdestack,vde_switch`)
  --quick     --secs 0.6 --rounds 1
  VDESTACK_BENCH_BIN=PATH runs PATH instead of this build's vdestack (to compare builds)";

#[derive(Debug, Clone)]
struct Opts {
    /// Seconds of flood per case.
    secs: f64,
    /// At most this many frames per window-mode case (which also stops after `secs`).
    frames: u64,
    /// How many times each case is measured (the median is reported).
    rounds: u32,
    /// Only the servers whose name contains one of these (all when empty).
    only: Vec<String>,
    /// Set by SIGINT/SIGTERM/SIGHUP: stop early, print what was measured, clean up.
    interrupted: Arc<AtomicBool>,
}

impl Opts {
    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        secs: 2.0,
        frames: 1_000_000,
        rounds: 5,
        only: Vec::new(),
        interrupted: Arc::new(AtomicBool::new(false)),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--quick" => {
                o.secs = 0.6;
                o.rounds = 1;
            }
            "--only" => o.only = util::arg_list(&mut args)?,
            "--rounds" => o.rounds = util::arg_rounds(&mut args)?,
            "--secs" => o.secs = util::arg_secs(&mut args)?,
            "--frames" => {
                o.frames = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--frames needs a positive number")?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // libtest-style filters and flags that `cargo bench` may pass: ignore.
            _ => {}
        }
    }
    Ok(o)
}

/// Which server a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// `vdestack switch DIR` / `vdestack hub DIR`.
    Ours { hub: bool },
    /// `vde_switch -s DIR [-x]`.
    VdeSwitch { hub: bool },
    /// `vde_plug null:// switch://DIR` / `hub://DIR`.
    VdePlug { hub: bool },
}

impl Server {
    fn hub(self) -> bool {
        match self {
            Server::Ours { hub } | Server::VdeSwitch { hub } | Server::VdePlug { hub } => hub,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::Ours { hub: false } => "vdestack switch",
            Server::Ours { hub: true } => "vdestack hub",
            Server::VdeSwitch { hub: false } => "vde_switch",
            Server::VdeSwitch { hub: true } => "vde_switch -x (hub)",
            Server::VdePlug { hub: false } => "vde_plug switch://",
            Server::VdePlug { hub: true } => "vde_plug hub://",
        }
    }

    fn command(self, dir: &Path) -> Command {
        let kind = if self.hub() { "hub" } else { "switch" };
        match self {
            Server::Ours { .. } => {
                let mut c = Command::new(ours());
                c.arg(kind).arg(dir);
                c
            }
            Server::VdeSwitch { hub } => {
                let mut c = Command::new("vde_switch");
                c.arg("-s").arg(dir);
                if hub {
                    c.arg("-x");
                }
                c
            }
            Server::VdePlug { .. } => {
                let mut c = Command::new("vde_plug");
                c.arg("null://").arg(format!("{kind}://{}", dir.display()));
                c
            }
        }
    }

    /// Why this server cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        let tool = match self {
            Server::Ours { .. } => return None,
            Server::VdeSwitch { .. } => "vde_switch",
            Server::VdePlug { .. } => "vde_plug",
        };
        if !on_path(tool) {
            return Some(format!("`{tool}` is not installed"));
        }
        if let Server::VdePlug { hub } = self {
            let plugin = if hub { "hub" } else { "switch" };
            let found = [
                "/usr/lib/x86_64-linux-gnu/vdeplug",
                "/usr/lib/vdeplug",
                "/usr/local/lib/vdeplug",
            ]
            .iter()
            .chain(
                [
                    "/usr/lib/aarch64-linux-gnu/vdeplug",
                    "/usr/lib/i386-linux-gnu/vdeplug",
                ]
                .iter(),
            )
            .any(|d| {
                Path::new(d)
                    .join(format!("libvdeplug_{plugin}.so"))
                    .exists()
            });
            if !found {
                return Some(format!(
                    "vdeplug4's `{plugin}` plugin (libvdeplug_{plugin}.so) is not installed"
                ));
            }
        }
        None
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// A server process (stopped and reaped on drop, see `util::Proc`) and the file
/// its stderr goes to.
struct Proc {
    proc: util::Proc,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> io::Result<Self> {
        let err = File::create(&log)?;
        cmd.stdout(Stdio::null()).stderr(err);
        Ok(Proc {
            proc: util::Proc::spawn(cmd)?,
            log,
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// Starts `server` at `dir` and waits until a client can join it.
fn start(server: Server, dir: &Path, log: PathBuf) -> io::Result<Proc> {
    let mut p = Proc::spawn(server.command(dir), log)?;
    let url = format!("vde://{}", dir.display());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(st) = p.proc.child.try_wait()? {
            return Err(io::Error::other(format!(
                "{} exited at once ({st}): {}",
                server.name(),
                p.log_text()
            )));
        }
        if dir.join("ctl").exists() && vde::open(&url).is_ok() {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{} did not come up in 5 s: {}",
                server.name(),
                p.log_text()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the receiver thread has seen.
#[derive(Debug, Default)]
struct Count {
    delivered: u64,
    bytes: u64,
    /// The window mode's sender waits until `delivered` reaches this.
    target: u64,
}

struct Shared {
    stop: AtomicBool,
    count: Mutex<Count>,
    cv: Condvar,
}

/// The receiver: counts the frames of run `run` until told to stop and idle.
fn receiver(
    mut rx: Box<dyn Plug>,
    run: u32,
    shared: Arc<Shared>,
) -> JoinHandle<io::Result<Box<dyn Plug>>> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_FRAME];
        let tag = run.to_be_bytes();
        loop {
            match rx.recv(&mut buf) {
                Ok(Recv::Frame(n)) => {
                    if n >= 22 && buf[12..14] == ETHERTYPE && buf[14..18] == tag {
                        let mut c = shared.count.lock().unwrap();
                        c.delivered += 1;
                        c.bytes += n as u64;
                        if c.delivered == c.target {
                            shared.cv.notify_one();
                        }
                    }
                }
                Ok(Recv::Nothing) => {}
                Ok(Recv::Closed) => {
                    return Err(io::Error::other("the server closed the receiver's port"))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if shared.stop.load(Ordering::Acquire) {
                        return Ok(rx);
                    }
                    wait_readable(rx.as_ref(), Some(Duration::from_millis(20)))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize, run: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE);
    f.extend_from_slice(&run.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes()); // sequence number
    f.resize(len.max(22), 0x5a);
    f
}

fn drain(plug: &mut dyn Plug) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_FRAME];
    while vde::recv_timeout(plug, &mut buf, Duration::from_millis(50))?.is_some() {}
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flood,
    Window,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Flood => "flood",
            Mode::Window => "window 8",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Measure {
    secs: f64,
    /// Frames the server's socket accepted.
    sent: u64,
    delivered: u64,
    bytes: u64,
    /// Sends refused with WouldBlock (the frame was dropped by the sender).
    would_block: u64,
}

impl Measure {
    fn fps(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
    /// Frames per second the server took in (forwarded or dropped).
    fn ingest(&self) -> f64 {
        self.sent as f64 / self.secs
    }
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * self.sent.saturating_sub(self.delivered) as f64 / self.sent as f64
    }
}

/// One measurement: `tx` sends unicast frames of `size` bytes to the receiver.
fn measure(
    tx: &mut dyn Plug,
    rx: &mut Option<Box<dyn Plug>>,
    mode: Mode,
    size: usize,
    run: u32,
    opts: &Opts,
) -> io::Result<Measure> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        count: Mutex::new(Count::default()),
        cv: Condvar::new(),
    });
    let plug = rx.take().expect("the receiver plug is back after each run");
    let thread = receiver(plug, run, shared.clone());
    let mut f = frame(RECEIVER, SENDER, size, run);
    // The window mode's rate is steady: half the flood's time is plenty.
    let duration = Duration::from_secs_f64(match mode {
        Mode::Flood => opts.secs,
        Mode::Window => opts.secs / 2.0,
    });
    let (mut sent, mut would_block, mut lost) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut send = |f: &mut [u8], seq: u64, sent: &mut u64, wb: &mut u64| -> io::Result<()> {
        f[18..22].copy_from_slice(&(seq as u32).to_be_bytes());
        match tx.send(f) {
            Ok(_) => *sent += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *wb += 1;
                // Let the server (which may share our core) empty its queue.
                std::thread::yield_now();
            }
            Err(e) => return Err(e),
        }
        Ok(())
    };
    let result = (|| -> io::Result<f64> {
        match mode {
            Mode::Flood => {
                let mut i = 0u64;
                loop {
                    // Check the clock every 64 frames only.
                    if i.is_multiple_of(64) && (start.elapsed() >= duration || opts.interrupted()) {
                        break;
                    }
                    send(&mut f, i, &mut sent, &mut would_block)?;
                    i += 1;
                }
            }
            Mode::Window => {
                let mut i = 0u64;
                while sent < opts.frames && start.elapsed() < duration && !opts.interrupted() {
                    let before = sent;
                    while sent - before < WINDOW && sent < opts.frames {
                        send(&mut f, i, &mut sent, &mut would_block)?;
                        i += 1;
                    }
                    let want = sent - lost;
                    let mut c = shared.count.lock().unwrap();
                    c.target = want;
                    let deadline = Instant::now() + WINDOW_TIMEOUT;
                    while c.delivered < want {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        c = shared.cv.wait_timeout(c, left).unwrap().0;
                    }
                    if c.delivered < want {
                        lost = sent - c.delivered; // carry on from what arrived
                    }
                }
            }
        }
        Ok(start.elapsed().as_secs_f64())
    })();
    // Let the frames in flight arrive, then stop the receiver (also on error).
    std::thread::sleep(Duration::from_millis(50));
    shared.stop.store(true, Ordering::Release);
    let back = thread
        .join()
        .map_err(|_| io::Error::other("the receiver thread panicked"))?;
    *rx = Some(back?);
    let secs = result?;
    let c = shared.count.lock().unwrap();
    Ok(Measure {
        secs,
        sent,
        delivered: c.delivered,
        bytes: c.bytes,
        would_block,
    })
}

struct Row {
    server: Server,
    mode: Mode,
    size: usize,
    m: Measure,
}

/// A running server with the two client plugs of the traffic generator.
struct Setup {
    server: Server,
    tx: Box<dyn Plug>,
    rx: Option<Box<dyn Plug>>,
    // Declared last: the plugs leave before the server is stopped.
    _proc: Proc,
}

/// Starts `server`, joins it with the sender and the receiver, and lets a switch
/// learn where both are.
fn setup(server: Server, base: &Path) -> io::Result<Setup> {
    let tag = server.name().replace([' ', ':', '/', '(', ')', '-'], "");
    let dir = base.join(&tag);
    let proc = start(server, &dir, base.join(format!("{tag}.log")))?;
    let url = format!("vde://{}", dir.display());
    let mut tx = vde::open(&url)?;
    let mut rx = vde::open(&url)?;
    // Each station broadcasts once, so a switch learns where both are.
    tx.send(&frame([0xff; 6], SENDER, 64, 0))?;
    rx.send(&frame([0xff; 6], RECEIVER, 64, 0))?;
    drain(tx.as_mut())?;
    drain(rx.as_mut())?;
    Ok(Setup {
        server,
        tx,
        rx: Some(rx),
        _proc: proc,
    })
}

/// The median sample of each case (by frames/s).
fn medians(samples: &[Row]) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for r in samples {
        if out
            .iter()
            .any(|o| o.server == r.server && o.mode == r.mode && o.size == r.size)
        {
            continue;
        }
        let mut same: Vec<&Row> = samples
            .iter()
            .filter(|o| o.server == r.server && o.mode == r.mode && o.size == r.size)
            .collect();
        same.sort_by(|x, y| x.m.fps().total_cmp(&y.m.fps()));
        let mid = same[same.len() / 2];
        out.push(Row {
            server: mid.server,
            mode: mid.mode,
            size: mid.size,
            m: mid.m,
        });
    }
    out
}

fn sysinfo() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let qlen = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen").unwrap_or_default();
    format!(
        "{cpus} CPUs, Linux {}, net.unix.max_dgram_qlen = {}",
        kernel.trim(),
        qlen.trim()
    )
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("switch bench: {e}");
            std::process::exit(2);
        }
    };
    // A signal stops the bench between frames, so the servers are still stopped and
    // reaped and the directory removed.
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, opts.interrupted.clone()) {
            eprintln!("switch bench: cannot handle signal {sig}: {e}");
        }
    }
    if let Err(e) = run(&opts) {
        eprintln!("switch bench failed: {e}");
        std::process::exit(1);
    }
    if opts.interrupted() {
        std::process::exit(130);
    }
}

fn run(opts: &Opts) -> io::Result<()> {
    println!("switch bench: {}", sysinfo());
    println!(
        "two vde:// client plugs of ours in this process (sender, receiver thread), unicast \
         between learned MACs; per case, {} rounds (median reported) of flood for {:.2} s, \
         dropping on WouldBlock, and of window (8 in flight, lossless) for {:.2} s or {} frames",
        opts.rounds,
        opts.secs / opts.rounds as f64,
        opts.secs / 2.0 / opts.rounds as f64,
        opts.frames
    );
    println!("our server: {}", ours());
    let base = util::TempDir::new("bench")?;
    let servers = [
        Server::Ours { hub: false },
        Server::VdeSwitch { hub: false },
        Server::VdePlug { hub: false },
        Server::Ours { hub: true },
        Server::VdeSwitch { hub: true },
        Server::VdePlug { hub: true },
    ];
    let started = Instant::now();
    let mut setups = Vec::new();
    for server in servers {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| server.name().contains(o.as_str())) {
            continue;
        }
        if let Some(why) = server.missing() {
            println!("- {}: SKIPPED ({why})", server.name());
            continue;
        }
        match setup(server, &base.0) {
            Ok(s) => setups.push(s),
            Err(e) => println!("- {}: SKIPPED ({e})", server.name()),
        }
    }
    // Rounds interleave the servers, so a slow spell of this machine does not land
    // on one of them only; each case reports its median round.
    let per_round = Opts {
        secs: opts.secs / opts.rounds as f64,
        ..opts.clone()
    };
    let mut samples = Vec::new();
    let mut run = 0u32;
    for round in 1..=opts.rounds {
        if opts.interrupted() {
            break;
        }
        print!("round {round}/{} ...", opts.rounds);
        let _ = io::stdout().flush();
        for mode in [Mode::Flood, Mode::Window] {
            for size in SIZES {
                let mut failed = Vec::new();
                for (i, s) in setups.iter_mut().enumerate() {
                    if opts.interrupted() {
                        break;
                    }
                    run += 1;
                    match measure(s.tx.as_mut(), &mut s.rx, mode, size, run, &per_round) {
                        // A measurement cut short by a signal is not one.
                        Ok(_) if opts.interrupted() => {}
                        Ok(m) => samples.push(Row {
                            server: s.server,
                            mode,
                            size,
                            m,
                        }),
                        Err(e) => {
                            println!("\n- {}: dropped from the bench ({e})", s.server.name());
                            failed.push(i);
                        }
                    }
                }
                for i in failed.into_iter().rev() {
                    setups.remove(i);
                }
            }
        }
        println!(" done");
    }
    drop(setups);
    println!("all cases in {:.1} s\n", started.elapsed().as_secs_f64());
    if opts.interrupted() {
        println!("interrupted: the table holds what was measured so far");
    }
    if samples.is_empty() {
        println!("no case ran");
        return Ok(());
    }
    print_table(&medians(&samples));
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "| case | mode | frame | frames/s | MB/s | loss % | vs vde_switch | taken in/s | WouldBlock |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for mode in [Mode::Flood, Mode::Window] {
        for r in rows.iter().filter(|r| r.mode == mode) {
            let reference = rows.iter().find(|o| {
                o.server
                    == Server::VdeSwitch {
                        hub: r.server.hub(),
                    }
                    && o.mode == r.mode
                    && o.size == r.size
            });
            let ratio = match reference {
                Some(o) if o.m.fps() > 0.0 => format!("{:.2}", r.m.fps() / o.m.fps()),
                _ => "n/a".to_string(),
            };
            println!(
                "| {} | {} | {} | {:.0} | {:.1} | {:.2} | {} | {:.0} | {} |",
                r.server.name(),
                r.mode.name(),
                r.size,
                r.m.fps(),
                r.m.mbps(),
                r.m.loss(),
                ratio,
                r.m.ingest(),
                r.m.would_block
            );
        }
    }
    println!(
        "\nframes/s, MB/s: delivered to the receiver. loss %: frames the server took in but \
         did not deliver (the receiver's 10-datagram queue was full). vs vde_switch: \
         frames/s over Debian vde_switch's (-x for hub rows), same mode and size. taken \
         in/s: frames the server's socket accepted per second (its input rate). WouldBlock: \
         sends refused by the server's full queue (dropped by the sender; it then yields)."
    );
}
