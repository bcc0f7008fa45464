//! What a stack costs: create+delete latency, fds, threads, processes and memory per
//! stack, and how many stacks one process can hold; ours measured by this bench
//! re-executed in a fresh process (`VDESTACK_BENCH_ROLE=costs`), libvdestack's by
//! `benches/c/cstack_create.c`. Both print the same `key=value` lines.

use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

use vdestack::stack::{Backend, Stack};

use crate::util::{count_dir, descendants, num, pss_kib, run_keyvals, settle};

pub const ROLE_ENV: &str = "VDESTACK_BENCH_ROLE";

/// One row of the costs table.
#[derive(Debug, Clone)]
pub struct Costs {
    pub who: &'static str,
    pub iface: &'static str,
    pub create_us: f64,
    /// Create until a first socket exists in the stack (C's create returns before
    /// its helper has made the tap; its first socket waits for it).
    pub ready_us: f64,
    pub delete_us: f64,
    /// Ours: ready (create + first socket) and delete of a process's only stack
    /// with no linger
    /// (`VDESTACK_HELPER_LINGER_MS=0`), so each starts and ends the shared
    /// namespace helper.
    pub first: Option<(f64, f64)>,
    pub leaked_fds: f64,
    /// What a stack holds (20 alive at once); `None` on the "alone" rows, which
    /// measure only the cycles.
    pub footprint: Option<Footprint>,
    /// Most stacks held at once (lo only), and why it stopped.
    pub max: Option<(f64, String)>,
}

/// Per stack, with 20 alive at once.
#[derive(Debug, Clone)]
pub struct Footprint {
    pub fds: f64,
    pub procs: f64,
    pub threads: f64,
    pub pss_kib: f64,
}

/// Who a row measures.
pub const OURS: &str = "ours";
/// Ours, each stack the process's only one (the helper lingers between them).
pub const OURS_ALONE: &str = "ours, alone";
/// Debian's libvdestack.
pub const C: &str = "C libvdestack";
/// Ours, user-space stacks (`Backend::User`), with another one alive.
pub const USER: &str = "ours, user-space";

/// The URL (`-` = no interface) used by the rows with one interface.
const VX: &str = "vxvde://239.76.1.1";
/// The in-process network of the `inproc://` rows (C has none).
const INPROC: &str = "inproc://bench-costs";

/// User-space stacks alive at once for the per-stack figures (they are small:
/// 20 would measure the allocator's rounding).
const USER_FOOTPRINT: &str = "1000";
/// The most user-space stacks the bench tries to hold (issue 15's scale).
const USER_MAX: &str = "100000";

/// Measures ours (with another stack alive, and alone) and C's, with no interface
/// and with one `vxvde://` interface.
pub fn measure(cbin: &Result<std::path::PathBuf, String>, quick: bool) -> Vec<io::Result<Costs>> {
    let cycles_lo = if quick { "50" } else { "200" };
    let cycles_if = if quick { "10" } else { "30" };
    let cycles_user = if quick { "2000" } else { "20000" };
    let mut rows = Vec::new();
    let ours = |args: &[&str]| {
        let mut c = Command::new(std::env::current_exe()?);
        c.env(ROLE_ENV, "costs").args(args);
        run_keyvals(c)
    };
    for (iface, url, cycles) in [
        ("lo only", "-", cycles_lo),
        ("1 interface on vxvde://", VX, cycles_if),
        ("1 interface on inproc://", INPROC, cycles_if),
    ] {
        let max = url == "-";
        rows.push(row(OURS, iface, max, ours, url, cycles));
        rows.push(row(USER, iface, max, ours, url, cycles_user));
        if url == INPROC {
            continue; // C libvdestack has no inproc://
        }
        rows.push(row(OURS_ALONE, iface, false, ours, url, cycles));
        rows.push(match cbin {
            Ok(bin) => row(
                C,
                iface,
                max,
                |args| {
                    let mut c = Command::new(bin.join("cstack_create"));
                    c.args(args);
                    run_keyvals(c)
                },
                url,
                cycles,
            ),
            Err(why) => Err(io::Error::other(why.clone())),
        });
    }
    rows
}

/// One row: `run` runs the measuring process with a command line of
/// `cstack_create`'s.
fn row(
    who: &'static str,
    iface: &'static str,
    max: bool,
    run: impl Fn(&[&str]) -> io::Result<std::collections::HashMap<String, String>>,
    url: &str,
    cycles: &str,
) -> io::Result<Costs> {
    let measured = || -> io::Result<Costs> {
        // "ours" keeps one more stack alive during the cycles, as an application with
        // stacks does: the shared helper runs throughout. "ours, alone" has no other
        // stack: between cycles the helper lingers (the default linger). The `first`
        // figure turns the linger off: each cycle starts and ends the helper.
        settle();
        // The user rows run the same measurements on user-space stacks (a last
        // word `user`), with more of them.
        let user = who == USER;
        let args = |a: &[&str]| {
            let mut a = a.to_vec();
            if user {
                a.push("user");
            }
            run(&a)
        };
        let (c, first) = match who {
            OURS => {
                let first = args(&["cycles", url, cycles, "nolinger"])?;
                settle();
                let c = args(&["cycles", url, cycles, "warm"])?;
                (
                    c,
                    Some((num(&first, "ready_us")?, num(&first, "delete_us")?)),
                )
            }
            USER => (args(&["cycles", url, cycles, "warm"])?, None),
            _ => (args(&["cycles", url, cycles])?, None),
        };
        let (per_stack, cap) = if user {
            (USER_FOOTPRINT, USER_MAX)
        } else {
            ("20", "1000")
        };
        let footprint = if who == OURS_ALONE {
            None
        } else {
            let f = args(&["footprint", url, per_stack])?;
            Some(Footprint {
                fds: num(&f, "fds")?,
                procs: num(&f, "procs")?,
                threads: num(&f, "threads")?,
                pss_kib: num(&f, "pss_kib")?,
            })
        };
        let max = if max {
            let m = args(&["max", cap])?;
            Some((num(&m, "max")?, m.get("stop").cloned().unwrap_or_default()))
        } else {
            None
        };
        Ok(Costs {
            who,
            iface,
            create_us: num(&c, "create_us")?,
            ready_us: num(&c, "ready_us")?,
            delete_us: num(&c, "delete_us")?,
            first,
            leaked_fds: num(&c, "leaked_fds")?,
            footprint,
            max,
        })
    };
    measured().map_err(|e| io::Error::other(format!("{who}, {iface}: {e}")))
}

/// Whether process `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s.rsplit_once(')')?.1.split_whitespace().next()?.to_string();
            Some(state != "Z")
        })
        .unwrap_or(false)
}

fn url_arg(url: &str) -> Vec<&str> {
    if url == "-" {
        vec![]
    } else {
        vec![url]
    }
}

/// fds, threads, processes (below us, plus the helpers and theirs) and the summed
/// Pss of all of them.
fn usage(helpers: &[i32]) -> (usize, usize, usize, u64) {
    let me = std::process::id() as i32;
    let mut procs = descendants(me);
    // Stacks share one helper: count each process once.
    let mut helpers = helpers.to_vec();
    helpers.sort_unstable();
    helpers.dedup();
    for h in helpers {
        if !procs.contains(&h) {
            procs.push(h);
        }
        procs.extend(
            descendants(h)
                .into_iter()
                .filter(|p| !procs.contains(p))
                .collect::<Vec<_>>(),
        );
    }
    let pss = pss_kib(me) + procs.iter().map(|&p| pss_kib(p)).sum::<u64>();
    (
        count_dir("/proc/self/fd"),
        count_dir("/proc/self/task"),
        procs.len(),
        pss,
    )
}

/// A stack on `backend` with one interface per spec.
fn stack_on(backend: Backend, specs: &[&str]) -> io::Result<Stack> {
    specs
        .iter()
        .fold(Stack::builder(), |b, s| b.spec_str(s))
        .backend(backend)
        .build()
}

/// Makes a first socket in `s`, as `cstack_create` does (what makes a stack
/// usable): a UDP socket; on a user-space stack a bound one (its socket exists
/// once bound). Returns when it existed; it is closed after that.
fn first_socket(s: &Stack) -> io::Result<Instant> {
    if s.backend() == Backend::User {
        let sock = s.udp_bind("0.0.0.0:0".parse().expect("a literal address"))?;
        let made = Instant::now();
        drop(sock);
        return Ok(made);
    }
    let fd = s.socket(
        vdestack::net::AddressFamily::INET,
        vdestack::net::SocketType::DGRAM,
        None,
    )?;
    let made = Instant::now();
    drop(fd);
    Ok(made)
}

/// Our side of `cstack_create`'s command line, in this (fresh) process; with a
/// last word `user`, the same with user-space stacks (no helper, so no linger
/// to choose: their cycles are always `warm`).
pub fn role_main(args: &[String]) -> io::Result<()> {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    let backend = if a.last() == Some(&"user") {
        a.pop();
        Backend::User
    } else {
        Backend::Kernel
    };
    let kernel = backend == Backend::Kernel;
    let number = |n: &str| n.parse::<usize>().map_err(io::Error::other);
    match a.as_slice() {
        ["cycles", url, n, rest @ ..] => {
            let specs = url_arg(url);
            // "warm": another stack of the same kind lives meanwhile, as in an
            // application that has stacks: the shared helper runs, and so does a
            // relay thread when the stacks have interfaces. "nolinger": the helper
            // ends with each cycle's stack (and starts with the next). Neither:
            // each stack is the only one, and the helper lingers between them.
            let anchor = match rest {
                ["warm"] => Some(stack_on(backend, &specs)?),
                ["nolinger"] if kernel => {
                    let mut config = vdestack::Config::current();
                    config.helper_linger = Duration::ZERO;
                    config.apply()?;
                    None
                }
                [] if kernel => None,
                _ if kernel => return Err(io::Error::other("cycles: warm, nolinger or nothing")),
                _ => return Err(io::Error::other("cycles of user-space stacks: warm only")),
            };
            cycles(backend, &specs, number(n)?, anchor)
        }
        ["footprint", url, k] => footprint(backend, &url_arg(url), number(k)?),
        ["max", cap] => max(backend, number(cap)?),
        _ => Err(io::Error::other(
            "usage: cycles URL N [warm|nolinger] | footprint URL K | max CAP, \
             each with a last word `user` for user-space stacks (cycles: warm only)",
        )),
    }
}

/// `n` cycles of create, first socket, delete; prints their mean times and what
/// they left (fds, processes).
fn cycles(backend: Backend, specs: &[&str], n: usize, anchor: Option<Stack>) -> io::Result<()> {
    // User-space stacks are cheap: more warm-up cycles.
    let warm_up = if backend == Backend::User { 100 } else { 3 };
    for _ in 0..warm_up {
        drop(stack_on(backend, specs)?);
    }
    let before = usage(&[]);
    let (mut create, mut ready, mut delete) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut helpers = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let s = stack_on(backend, specs)?;
        let t1 = Instant::now();
        let t2 = first_socket(&s)?;
        helpers.extend(s.helper_pid());
        let t3 = Instant::now();
        drop(s);
        create += t1 - t0;
        ready += t2 - t0;
        delete += t3.elapsed();
    }
    let after = usage(&[]);
    // What is left once a lingering helper is ended (it is ours only while it
    // runs: a helper still alive after that is a leak).
    drop(anchor);
    vdestack::stack::end_idle_helper();
    // Stacks share a helper: each counted once; an exited one may wait a
    // moment for its reaper (init) as a zombie, which is not running.
    helpers.sort_unstable();
    helpers.dedup();
    let alive = helpers.iter().filter(|&&p| running(p)).count();
    println!(
        "create_us={:.2} ready_us={:.2} delete_us={:.2} leaked_fds={} leaked_procs={}",
        create.as_secs_f64() / n as f64 * 1e6,
        ready.as_secs_f64() / n as f64 * 1e6,
        delete.as_secs_f64() / n as f64 * 1e6,
        after.0 as i64 - before.0 as i64,
        alive + after.2.saturating_sub(before.2),
    );
    Ok(())
}

/// What `k` stacks alive at once hold, per stack.
fn footprint(backend: Backend, specs: &[&str], k: usize) -> io::Result<()> {
    raise_nofile();
    // What a first stack starts and is not per stack: the user-space stacks'
    // threads (so that one stays). A kernel stack's helper counts in the growth
    // (so the one a first stack started, lingering, is ended).
    let first = stack_on(backend, specs)?;
    let _first = if backend == Backend::User {
        std::thread::sleep(Duration::from_millis(100));
        Some(first)
    } else {
        drop(first);
        vdestack::stack::end_idle_helper();
        None
    };
    let before = usage(&[]);
    let stacks = (0..k)
        .map(|_| stack_on(backend, specs))
        .collect::<io::Result<Vec<_>>>()?;
    std::thread::sleep(Duration::from_millis(100));
    let helpers: Vec<i32> = stacks.iter().filter_map(Stack::helper_pid).collect();
    let after = usage(&helpers);
    let per = |a: usize, b: usize| (a as f64 - b as f64) / k as f64;
    println!(
        "fds={:.2} procs={:.2} threads={:.2} pss_kib={:.1}",
        per(after.0, before.0),
        per(after.2, before.2),
        per(after.1, before.1),
        (after.3 as f64 - before.3 as f64) / k as f64,
    );
    Ok(())
}

/// How many stacks with no interface one process holds, up to `cap`, and why
/// it stopped.
fn max(backend: Backend, cap: usize) -> io::Result<()> {
    raise_nofile();
    let mut stacks = Vec::new();
    let mut stop = "cap".to_string();
    while stacks.len() < cap {
        match stack_on(backend, &[]) {
            Ok(s) => stacks.push(s),
            Err(e) => {
                stop = e.to_string().replace(' ', "_");
                break;
            }
        }
    }
    if let Some(s) = stacks.last() {
        if first_socket(s).is_err() {
            stop = "the_last_stack_gave_no_socket".into();
        }
    }
    println!("max={} stop={stop}", stacks.len());
    Ok(())
}

/// The fd limit raised to the hard limit.
fn raise_nofile() {
    let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}
