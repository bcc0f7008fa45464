//! Where a stack's creation and deletion time goes: times each step on its own
//! (medians, 10th and 90th percentiles, means, in µs) while another stack with a
//! `vxvde://` interface lives, as in the costs bench's "warm" rows.
//!
//! ```text
//! stack_steps [N]           the steps, N rounds (default 100)
//! stack_steps N first       a process's only stack with no linger: helper start, create, drop
//! stack_steps N alone       each stack the only one, the helper lingering between them:
//!                           create, first socket, drop
//! stack_steps N gap MS      create+drop with MS ms of idleness before each
//! ```
//!
//! Sends multicast on `vxvde://239.76.1.1`, so it refuses to run outside a
//! network namespace of its own with only `lo`: run it as the bench runs itself,
//! `unshare -rn sh -c 'ip link set lo up; ip route add 224.0.0.0/4 dev lo; stack_steps'`.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use vdestack::stack::Stack;

const URL: &str = "vxvde://239.76.1.1";

fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

/// `med`, `p10`, `p90` and `mean` of the samples.
fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let n = v.len().max(1);
    let at = |q: usize| v.get(n * q / 100).copied().unwrap_or(0.0);
    format!(
        "med {:6.0} p10 {:6.0} p90 {:6.0} mean {:6.0}",
        at(50),
        at(10),
        at(90),
        v.iter().sum::<f64>() / n as f64
    )
}

/// Each step of making and dropping a stack with one tap, alone.
fn steps(n: usize) -> io::Result<()> {
    let _anchor = Stack::with_interfaces(&[URL])?;
    let h = vdestack::diagnostics::spawn_helper()?;
    let names = [
        "plug open+close",
        "plug close",
        "helper net, 0 tap",
        "helper net, 1 tap",
        "tap offload ioctl",
        "tap close",
        "thread spawn+join",
        "stack vx create",
        "stack vx drop",
        "stack lo create",
        "stack lo drop",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..n {
        let s = Instant::now();
        drop(vdestack::vde::open(URL)?);
        t[0].push(us(s));
        let p = vdestack::vde::open(URL)?;
        let s = Instant::now();
        drop(p);
        t[1].push(us(s));
        let s = Instant::now();
        drop(vdestack::diagnostics::helper_new_net_vnet(
            h.ctl.as_fd(),
            &[],
            0,
        )?);
        t[2].push(us(s));
        let s = Instant::now();
        let net = vdestack::diagnostics::helper_new_net_vnet(h.ctl.as_fd(), &["vde0"], 1)?;
        t[3].push(us(s));
        let s = Instant::now();
        vdestack::diagnostics::enable_tap_offload(net.taps[0].as_fd())?;
        t[4].push(us(s));
        let vdestack::diagnostics::NewNet { netns, taps } = net;
        let s = Instant::now();
        drop(taps);
        t[5].push(us(s));
        drop(netns);
        let s = Instant::now();
        let _ = std::thread::spawn(|| ()).join();
        t[6].push(us(s));
        for (i, specs) in [(7, &[URL][..]), (9, &[][..])] {
            let s = Instant::now();
            let stack = Stack::with_interfaces(specs)?;
            t[i].push(us(s));
            let s = Instant::now();
            drop(stack);
            t[i + 1].push(us(s));
        }
    }
    for (name, v) in names.iter().zip(t) {
        println!("{name:18} {}", summary(v));
    }
    Ok(())
}

/// A process's only stack with no linger: it starts and ends the helper.
fn first(n: usize) -> io::Result<()> {
    let mut config = vdestack::Config::current();
    config.helper_linger = Duration::ZERO;
    config.apply()?;
    let (mut spawn, mut create, mut drop_) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let s = Instant::now();
        drop(vdestack::diagnostics::spawn_helper()?);
        spawn.push(us(s));
        std::thread::sleep(Duration::from_millis(2));
        let s = Instant::now();
        let stack = Stack::new()?;
        create.push(us(s));
        let s = Instant::now();
        drop(stack);
        drop_.push(us(s));
    }
    println!("spawn_helper       {}", summary(spawn));
    println!("first create       {}", summary(create));
    println!("first drop         {}", summary(drop_));
    Ok(())
}

/// Create, first socket, drop of a process's only stack (no interface), the helper
/// lingering between them (the default linger), as in one stack per test.
fn alone(n: usize) -> io::Result<()> {
    let (mut create, mut socket, mut drop_) = (vec![], vec![], vec![]);
    drop(Stack::new()?);
    for _ in 0..n {
        let s = Instant::now();
        let stack = Stack::new()?;
        create.push(us(s));
        let s = Instant::now();
        drop(stack.socket(
            vdestack::net::AddressFamily::INET,
            vdestack::net::SocketType::DGRAM,
            None,
        )?);
        socket.push(us(s));
        let s = Instant::now();
        drop(stack);
        drop_.push(us(s));
    }
    println!("alone create       {}", summary(create));
    println!("alone socket       {}", summary(socket));
    println!("alone drop         {}", summary(drop_));
    Ok(())
}

/// Create+drop of a stack with one tap after `gap` of idleness.
fn gap(n: usize, gap: Duration) -> io::Result<()> {
    let _anchor = Stack::with_interfaces(&[URL])?;
    let (mut create, mut drop_) = (vec![], vec![]);
    for _ in 0..n {
        std::thread::sleep(gap);
        let s = Instant::now();
        let stack = Stack::with_interfaces(&[URL])?;
        create.push(us(s));
        let s = Instant::now();
        drop(stack);
        drop_.push(us(s));
    }
    println!("gap {gap:?}: create {}", summary(create));
    println!("gap {gap:?}: drop   {}", summary(drop_));
    Ok(())
}

/// Whether `lo` is the only interface (traffic stays in this namespace).
fn only_lo() -> io::Result<bool> {
    let dev = std::fs::read_to_string("/proc/net/dev")?;
    Ok(dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .all(|name| name.trim() == "lo"))
}

fn main() -> io::Result<()> {
    if !only_lo()? {
        return Err(io::Error::other(
            "refusing to run outside a private network namespace with only lo",
        ));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = match args.first() {
        Some(a) => a.parse().map_err(io::Error::other)?,
        None => 100,
    };
    match args.get(1).map(String::as_str) {
        None => steps(n),
        Some("first") => first(n),
        Some("alone") => alone(n),
        Some("gap") => {
            let ms = args
                .get(2)
                .map_or(Ok(0), |a| a.parse().map_err(io::Error::other))?;
            gap(n, Duration::from_millis(ms))
        }
        Some(other) => Err(io::Error::other(format!("unknown mode {other}"))),
    }
}
