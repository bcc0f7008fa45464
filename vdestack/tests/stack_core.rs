//! The `stack` module's core: stacks in their own namespaces, joined by VDE
//! networks; sockets, netlink, commands; no leaks.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::stacks::*;
use common::*;
use vdestack::error::errno_of;
use vdestack::stack::Stack;

fn names_inside(s: &Stack) -> Vec<String> {
    let out = s.command("ip").args(["-o", "link"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

sandbox_test! {
    fn two_stacks_on_a_switch_ping_tcp_udp() {
        if !have_tun("two_stacks_on_a_switch_ping_tcp_udp") {
            return;
        }
        let dir = TempDir::new("stack-sw");
        let sw = dir.join_str("sw");
        // Stack A hosts the switch itself (its interface is the switch's host
        // port, driven by the relay); stack B joins it as a vde:// client.
        let a = Stack::with_interfaces(&[&format!("switch://{sw}")]).unwrap();
        let b = Stack::with_interfaces(&[&format!("eth0:vde://{sw}")]).unwrap();
        assert_eq!(b.interfaces(), ["eth0"]);
        configure(&a, "vde0", &[("10.7.0.1", 24), ("fc00:7::1", 64)]);
        configure(&b, "eth0", &[("10.7.0.2", 24), ("fc00:7::2", 64)]);

        let st = b.command("/bin/ping").args(["-c", "2", "-i", "0.2", "-W", "5", "10.7.0.1"])
            .stdout(std::process::Stdio::null()).status().unwrap();
        assert!(st.success(), "ping 10.7.0.1 from b: {st}");
        let st = a.command("/bin/ping").args(["-6", "-c", "1", "-W", "5", "fc00:7::2"])
            .stdout(std::process::Stdio::null()).status().unwrap();
        assert!(st.success(), "ping fc00:7::2 from a: {st}");

        tcp_echo(&a, &b, "10.7.0.1:7000", "tcp v4");
        // A throughput figure through the relay and the switch (not a limit).
        let mbs = throughput(&a, &b, "10.7.0.1:7010", 20);
        eprintln!("FIGURES TCP through relay + switch:// : {mbs:.0} MB/s");
        tcp_echo(&b, &a, "[fc00:7::2]:7001", "tcp v6");

        let ua = a.udp_bind("10.7.0.1:7002".parse().unwrap()).unwrap();
        let ub = b.udp_bind("10.7.0.2:0".parse().unwrap()).unwrap();
        ua.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ub.send_to(b"hello stack", "10.7.0.1:7002").unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = ua.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello stack");
        assert_eq!(from.ip().to_string(), "10.7.0.2");

        // None of it is in the test's own namespace.
        // (/sys shows the namespace it was mounted in: ask netlink instead.)
        let host = vdestack::nl::NlClient::new().unwrap();
        assert!(host.link_index("vde0").is_err());
        assert!(host.link_index("eth0").is_err());
        assert!(host.addrs().unwrap().iter().all(|a| !a.addr.to_string().starts_with("10.7.")));

        // Sockets outlive their stack.
        drop(b);
        drop(a);
        ub.send_to(b"still here", "10.7.0.2:9").unwrap_or_default();
    }
}

sandbox_test! {
    fn coprocess_interface_through_debian_vde_switch() {
        let name = "coprocess_interface_through_debian_vde_switch";
        if !have_tun(name) || !have_tool(name, "vde_switch") || !have_tool(name, "vde_plug") {
            return;
        }
        let dir = TempDir::new("stack-dsw");
        let swdir = dir.path("sw");
        let _sw = debian_vde_switch(&swdir);
        let sw = swdir.to_string_lossy().into_owned();
        let a = Stack::with_interfaces(&[&format!("=vde_plug vde://{sw}")]).unwrap();
        let b = Stack::with_interfaces(&[&format!("x1:vde://{sw}")]).unwrap();
        configure(&a, "vde0", &[("10.8.0.1", 24)]);
        configure(&b, "x1", &[("10.8.0.2", 24)]);
        let st = a.command("/bin/ping").args(["-c", "1", "-W", "5", "10.8.0.2"])
            .stdout(std::process::Stdio::null()).status().unwrap();
        assert!(st.success(), "ping through vde_switch: {st}");
        tcp_echo(&b, &a, "10.8.0.2:80", "tcp v4 via vde_switch");
        // The switch goes away: both plugs close (the coprocess sees EOF and
        // exits); the interfaces stay, quiet, and nothing spins.
        drop(_sw);
        std::thread::sleep(Duration::from_millis(300));
        let cpu0 = cpu_ticks();
        std::thread::sleep(Duration::from_millis(500));
        let spent = cpu_ticks() - cpu0;
        assert!(spent < 10, "{spent} ticks of CPU in 0.5 s after the switch died");
        assert_eq!(names_inside(&a), ["lo", "vde0"]);
        assert_eq!(names_inside(&b), ["lo", "x1"]);
        let base = count_children();
        drop(a);
        assert_eq!(count_children(), base - 1, "the coprocess was reaped");
    }
}

sandbox_test! {
    fn run_semantics_and_isolation() {
        if !have_tun("run_semantics_and_isolation") {
            return;
        }
        let s = Stack::with_interfaces(&["null://"]).unwrap();
        assert_eq!(s.run("/bin/true; /bin/false; /bin/true").unwrap().code(), Some(1));
        assert_eq!(s.run("/bin/true;/bin/true").unwrap().code(), Some(0));
        assert_eq!(s.run("").unwrap().code(), Some(0));
        // No PATH search: a bare name is relative to the current directory.
        assert_eq!(s.run("ip link").unwrap().code(), Some(2));
        assert_eq!(s.run("/no/such/program").unwrap().code(), Some(2));
        assert_eq!(s.run("/bin/sh -c 'exit 3'").unwrap().code(), Some(3));
        assert_eq!(s.run("/bin/sh -c 'exit 0; echo'; /bin/sh -c 'exit 4'").unwrap().code(), Some(4));
        // Killed by a signal: 128 + signal (upstream reports 0).
        // Killed by a signal: the status says which (vde_stackcmd says 128+N).
        let killed = s.run("/bin/sh -c 'kill -9 $$'").unwrap();
        assert_eq!((killed.signal(), killed.code()), (Some(9), None));
        let aborted = s.run("/bin/sh -c 'kill -ABRT $$'").unwrap();
        assert_eq!(aborted.signal(), Some(libc::SIGABRT));
        assert!(s.run("/bin/echo 'unterminated").is_err());
        // Only lo and the tap inside; the capabilities to configure it.
        assert_eq!(names_inside(&s), ["lo", "vde0"]);
        assert_eq!(s.run("/usr/sbin/ip link set vde0 up; /usr/sbin/ip addr add 10.9.0.1/24 dev vde0").map(|st| st.code()).unwrap_or(Some(99)), Some(0));
        let out = s.command("ip").args(["-o", "addr", "show", "dev", "vde0"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("10.9.0.1/24"));
        // The test's namespace has none of it.
        assert!(vdestack::nl::NlClient::new().unwrap().link_index("vde0").is_err());
        let s0 = Stack::new().unwrap();
        assert_eq!(names_inside(&s0), ["lo"]);
        assert!(s0.interfaces().is_empty());
    }
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn count_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn count_children() -> usize {
    let mut n = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            n += s.split_whitespace().count();
        }
    }
    n
}

/// Whether process `pid` is gone (or a zombie waiting for its reaper).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .map(|r| r.trim_start().starts_with('Z'))
            .unwrap_or(true),
    }
}

/// CPU time (user + system, in clock ticks) this process has used.
fn cpu_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap()
}

fn figures() -> (usize, usize, usize) {
    (count_fds(), count_threads(), count_children())
}

/// [`figures`] once the namespace helper, which lingers after the last stack
/// (`stack::helper_linger`, holding 4 fds and a thread), has been ended at once.
fn figures_ended() -> (usize, usize, usize) {
    vdestack::stack::end_idle_helper();
    figures()
}

sandbox_test! {
    fn bad_input_is_a_clear_error_and_leaks_nothing() {
        let base = figures();
        let e = Stack::with_interfaces(&["nosuch://x"]).unwrap_err();
        assert!(e.to_string().contains("nosuch"), "{e}");
        let e = Stack::with_interfaces(&["vde:///no/such/switch"]).unwrap_err();
        assert!(e.to_string().contains("/no/such/switch"), "{e}");
        let e = Stack::with_interfaces(&["abcdefghijklmnop:null://"]).unwrap_err();
        assert!(e.to_string().contains("abcdefghijklmnop"), "{e}");
        assert_eq!(errno_of(&e), libc::EINVAL);
        let e = Stack::with_interfaces(&["=/no/such/coprocess"]).unwrap_err();
        assert!(e.to_string().contains("vde0"), "{e}");
        let s = Stack::new().unwrap();
        use vdestack::net::{AddressFamily, SocketType};
        let e = s
            .socket(AddressFamily::from_raw(12345), SocketType::STREAM, None)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAFNOSUPPORT), "{e}");
        let e = s
            .socket(AddressFamily::INET, SocketType::from_raw(12345), None)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        // The stack still answers after errors.
        let fd = s.socket(vdestack::net::AddressFamily::INET, vdestack::net::SocketType::DGRAM, None).unwrap();
        let fl = rustix::io::fcntl_getfd(&fd).unwrap();
        assert!(fl.contains(rustix::io::FdFlags::CLOEXEC));
        drop(fd);
        drop(s);
        assert_eq!(figures_ended(), base, "(fds, threads, children) after errors");
    }
}

sandbox_test! {
    /// Runs without /dev/net/tun too (as a non-root user).
    fn bare_stacks_leak_nothing() {
        let base = figures();
        let t0 = Instant::now();
        for _ in 0..100 {
            let s = Stack::new().unwrap();
            drop(s.socket(vdestack::net::AddressFamily::INET, vdestack::net::SocketType::STREAM, None).unwrap());
        }
        let per = t0.elapsed() / 100;
        assert_eq!(figures_ended(), base, "(fds, threads, children) after 100 bare stacks");
        eprintln!("FIGURES create + socket + drop, no interface: {per:?} per stack");
    }
}

sandbox_test! {
    fn create_and_drop_leaks_nothing() {
        if !have_tun("create_and_drop_leaks_nothing") {
            return;
        }
        let base = figures();
        // A tap the helper cannot make (`lo` exists and is no tap) fails after the
        // relay's thread was started for it: that thread ends with the failure.
        let e = Stack::with_interfaces(&["lo:null://"]).unwrap_err();
        assert!(e.to_string().contains("creating tap `lo`"), "{e}");
        assert!(!vdestack::diagnostics::relay_running());
        assert_eq!(figures_ended(), base, "(fds, threads, children) after a failed tap");
        let t0 = Instant::now();
        let mut pids = Vec::new();
        for _ in 0..100 {
            let s = Stack::with_interfaces(&["null://"]).unwrap();
            pids.push(s.helper_pid().unwrap());
        }
        let per = t0.elapsed() / 100;
        assert_eq!(figures_ended(), base, "(fds, threads, children) after 100 null:// stacks");
        assert!(!vdestack::diagnostics::relay_running());

        let dir = TempDir::new("stack-leak");
        let sw = dir.join_str("sw");
        let host = Stack::with_interfaces(&[&format!("switch://{sw}")]).unwrap();
        let with_switch = figures();
        for i in 0..5 {
            let s = Stack::with_interfaces(&[&format!("vde://{sw}"), "null://"]).unwrap();
            let n = s.netlink().unwrap();
            assert!(n.link_index("vde1").is_ok());
            let _sock = s.socket(vdestack::net::AddressFamily::INET6, vdestack::net::SocketType::STREAM, None).unwrap();
            if i % 2 == 0 {
                assert_eq!(s.run("/bin/true").unwrap().code(), Some(0));
            }
            pids.push(s.helper_pid().unwrap());
        }
        // The switch (in the host stack's relay thread, which may be another
        // thread than the one that relayed the clients) lets go of a client's port
        // when it sees the client's sockets close: soon, not at once.
        let t = Instant::now();
        while figures() != with_switch && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(figures(), with_switch, "after 5 stacks on a switch");
        drop(host);
        assert_eq!(figures_ended(), base, "after the switch's stack");

        let t1 = Instant::now();
        let new = Stack::new().unwrap();
        let bare_create = t1.elapsed();
        let t2 = Instant::now();
        drop(new);
        let bare_drop = t2.elapsed();
        // While a stack lives, the helper does too: a new stack is one request.
        let keep = Stack::new().unwrap();
        let t3 = Instant::now();
        for _ in 0..200 {
            drop(Stack::new().unwrap());
        }
        let warm = t3.elapsed() / 200;
        pids.push(keep.helper_pid().unwrap());
        drop(keep);
        // Nothing ended at once here: after its linger the helper goes by itself,
        // and with it the fds and the thread that waited for the linger to end.
        let t4 = Instant::now();
        let deadline = t4 + vdestack::Config::current().helper_linger + Duration::from_secs(10);
        while !pids.iter().all(|&p| gone(p)) || figures() != base {
            assert!(Instant::now() < deadline, "some helper is still running, or figures {:?} are not back to {base:?}", figures());
            std::thread::sleep(Duration::from_millis(20));
        }
        let lingered = t4.elapsed();
        assert_eq!(figures(), base, "after 200 create+drop cycles and the linger");
        eprintln!(
            "FIGURES create+drop with null://: {per:?} per stack; bare create {bare_create:?} (starts the helper), drop {bare_drop:?} (the helper lingers); bare create+drop while another stack lives {warm:?}; all gone {lingered:?} after the last drop; baseline (fds, threads, children) {base:?}"
        );
    }
}

sandbox_test! {
    fn a_hundred_stacks_at_once() {
        if !have_tun("a_hundred_stacks_at_once") {
            return;
        }
        let base = figures();
        let t0 = Instant::now();
        let stacks: Vec<Stack> = (0..100)
            .map(|_| Stack::with_interfaces(&["null://"]).unwrap())
            .collect();
        let made = t0.elapsed();
        let (fds, threads, children) = figures();
        let mem = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", stacks[50].helper_pid().unwrap()))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Rss:") || l.starts_with("Pss:") || l.starts_with("Private_Dirty:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!("FIGURES one helper's memory: {mem}");
        // The relay: a bounded pool, however many stacks.
        let pool = vdestack::diagnostics::relay_threads_max();
        assert!(threads <= base.1 + pool, "threads {threads} (baseline {}, relay pool {pool})", base.1);
        assert_eq!(children, base.2);
        // Every one works.
        for s in &stacks {
            let u = s.udp_bind("127.0.0.1:5000".parse().unwrap()).unwrap();
            drop(u);
        }
        let t1 = Instant::now();
        drop(stacks);
        let dropped = t1.elapsed();
        assert_eq!(figures_ended(), base);
        eprintln!(
            "FIGURES 100 stacks alive: created in {made:?}, dropped in {dropped:?}; fds {} per stack, threads +{}, children +{}",
            (fds - base.0) as f64 / 100.0,
            threads - base.1,
            children - base.2
        );
    }
}

sandbox_test! {
    fn plug_that_closes_goes_quiet() {
        if !have_tun("plug_that_closes_goes_quiet") {
            return;
        }
        let base = figures();
        // A coprocess that exits at once: its plug reports Closed; the stack lives on.
        let s = Stack::with_interfaces(&["=/bin/true"]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        configure(&s, "vde0", &[("10.6.0.1", 24)]);
        let u = s.udp_bind("10.6.0.1:0".parse().unwrap()).unwrap();
        // Frames toward the quiet interface go nowhere, and nothing spins.
        for _ in 0..10 {
            let _ = u.send_to(b"x", "10.6.0.2:9");
        }
        let cpu0 = cpu_ticks();
        std::thread::sleep(Duration::from_millis(500));
        let spent = cpu_ticks() - cpu0;
        assert!(spent < 10, "{spent} ticks of CPU in 0.5 s while idle: something spins");
        assert_eq!(s.run("/bin/true").unwrap().code(), Some(0));
        drop(u);
        drop(s);
        assert_eq!(figures_ended(), base);
    }
}

const AS_NOBODY: &str = "VDESTACK_TEST_AS_NOBODY";

/// A stack without root: no taps here (`/dev/net/tun` is 0600 on this machine
/// kind), but the namespace, sockets, netlink and commands with their network
/// capabilities. Everything stays in the stack's own namespace (its `lo`). As root,
/// the test re-runs itself as `nobody` through `setpriv`.
#[test]
fn works_without_root() {
    let name = "works_without_root";
    if is_root() && std::env::var_os(AS_NOBODY).is_none() {
        if !have_tool(name, "setpriv") {
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(AS_NOBODY, "1")
            .current_dir("/")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        if text.contains("SKIPPED") {
            eprintln!("{text}");
            return;
        }
        assert!(out.status.success(), "as nobody: {text}");
        return;
    }
    let s = match Stack::new() {
        Ok(s) => s,
        Err(e) if errno_of(&e) == libc::EPERM || errno_of(&e) == libc::ENOSPC => {
            return skip(name, &format!("no unprivileged user namespaces: {e}"));
        }
        Err(e) => panic!(
            "Stack::new as uid {}: {e}",
            rustix::process::geteuid().as_raw()
        ),
    };
    if is_root() {
        eprintln!("(ran as root: setpriv was missing)");
    }
    let nl = s.netlink().unwrap();
    let lo = nl.link_index("lo").unwrap();
    nl.link_set_up(lo, true).unwrap();
    let l = s.tcp_listener("127.0.0.1:80".parse().unwrap()).unwrap();
    let mut c = s.tcp_connect("127.0.0.1:80".parse().unwrap()).unwrap();
    let (mut a, _) = l.accept().unwrap();
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    a.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    // Ambient CAP_NET_RAW: ping opens a raw socket as an unprivileged user.
    let st = s
        .command("/bin/ping")
        .args(["-c", "1", "-W", "5", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "ping inside the stack: {st}");
    // CAP_NET_ADMIN: configure it from a command.
    assert_eq!(
        s.run("/usr/sbin/ip addr add 10.3.0.1/32 dev lo")
            .unwrap()
            .code(),
        Some(0)
    );
    // Without access to /dev/net/tun, an interface is a clear error, and nothing leaks.
    if !is_root()
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .is_err()
    {
        let base = figures();
        let e = Stack::with_interfaces(&["null://"]).unwrap_err();
        assert!(e.to_string().contains("tap `vde0`"), "{e}");
        assert_eq!(figures_ended(), base);
    }
    // Our uid inside is our uid outside (identity map).
    let out = s.command("/usr/bin/id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        rustix::process::geteuid().as_raw().to_string()
    );
}

sandbox_test! {
    fn sockets_from_many_threads_and_after_drop() {
        let before: Vec<_> = std::fs::read_dir("/proc/self/fd").unwrap().flatten().map(|e| e.file_name()).collect();
        let s = std::sync::Arc::new(Stack::new().unwrap());
        let nl = s.netlink().unwrap();
        nl.link_set_up(nl.link_index("lo").unwrap(), true).unwrap();
        // An address only the stack has: a socket made anywhere else cannot bind it.
        assert_eq!(s.run("/usr/sbin/ip addr add 10.4.0.1/32 dev lo").unwrap().code(), Some(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let u = s.udp_bind("10.4.0.1:0".parse().unwrap()).unwrap();
                        assert!(u.local_addr().unwrap().port() != 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(std::net::UdpSocket::bind("10.4.0.1:0").is_err(), "10.4.0.1 leaked into the test's namespace");

        // The application's waitpid(-1) has nothing to steal: the helper is no child.
        assert!(count_children() == 0);
        match rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
            Err(rustix::io::Errno::CHILD) | Ok(None) => {}
            other => panic!("waitpid(-1) found a child: {other:?}"),
        }

        // Every fd the stack holds is close-on-exec.
        let _sock = s.socket(vdestack::net::AddressFamily::INET, vdestack::net::SocketType::STREAM, None).unwrap();
        for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let n: i32 = e.file_name().to_string_lossy().parse().unwrap();
            if !before.contains(&e.file_name()) {
                let flags = std::fs::read_to_string(format!("/proc/self/fdinfo/{n}"));
                if let Ok(f) = flags {
                    let fl = f.lines().find(|l| l.starts_with("flags:")).unwrap();
                    let v = u32::from_str_radix(fl.split_whitespace().nth(1).unwrap(), 8).unwrap();
                    assert!(v & libc::O_CLOEXEC as u32 != 0, "fd {n} is not close-on-exec");
                }
            }
        }

        // Sockets outlive the stack.
        let l = s.tcp_listener("10.4.0.1:9000".parse().unwrap()).unwrap();
        let mut c = s.tcp_connect("10.4.0.1:9000".parse().unwrap()).unwrap();
        let pid = s.helper_pid().unwrap();
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(pid) {
            assert!(Instant::now() < deadline, "helper {pid} still there");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (mut a, _) = l.accept().unwrap();
        c.write_all(b"after").unwrap();
        let mut b = [0u8; 5];
        a.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"after");
    }
}

sandbox_test! {
    /// Commands are cloned with no exit signal: an application reaping every child
    /// (a SIGCHLD handler's `waitpid(-1)`) cannot steal their status.
    fn run_commands_are_not_the_applications_to_reap() {
        let s = Stack::new().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reaper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stolen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(Some((pid, _))) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
                        stolen.push(pid.as_raw_nonzero().get());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                stolen
            })
        };
        for _ in 0..5 {
            assert_eq!(s.run("/bin/sh -c 'sleep 0.05; exit 7'").unwrap().code(), Some(7));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(reaper.join().unwrap(), Vec::<i32>::new(), "the application reaped a command");
    }
}

const CHILD_MODE: &str = "VDESTACK_TEST_STACK_CHILD";

sandbox_test! {
    fn helper_exits_when_the_application_dies() {
        if std::env::var_os(CHILD_MODE).is_some() {
            let s = Stack::new().unwrap();
            println!("HELPER {}", s.helper_pid().unwrap());
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        use std::io::BufRead;
        let exe = std::env::current_exe().unwrap();
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["helper_exits_when_the_application_dies", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, "1")
            .env("VDESTACK_TEST_SANDBOX", "1")
            .stdout(std::process::Stdio::piped());
        let mut app = Proc::spawn(cmd);
        let out = app.child.stdout.take().unwrap();
        let pid: i32 = std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split("HELPER ").nth(1).map(|p| p.trim().parse().unwrap()))
            .expect("the application printed its helper's pid");
        assert!(!gone(pid));
        app.child.kill().unwrap();
        app.child.wait().unwrap();
        let t0 = Instant::now();
        while !gone(pid) {
            assert!(t0.elapsed() < Duration::from_secs(5), "helper {pid} outlived its application");
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("FIGURES helper gone {:?} after its application was killed", t0.elapsed());
    }
}

const RUN_CHILD: &str = "VDESTACK_TEST_RUN_CHILD";

sandbox_test! {
    fn run_commands_die_with_the_application() {
        if std::env::var_os(RUN_CHILD).is_some() {
            let s = Stack::new().unwrap();
            let _ = s.run("/bin/sleep 60");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["run_commands_die_with_the_application", "--exact", "--test-threads=1"])
            .env(RUN_CHILD, "1")
            .env("VDESTACK_TEST_SANDBOX", "1")
            .stdout(std::process::Stdio::null());
        let mut app = Proc::spawn(cmd);
        let app_pid = app.child.id();
        // Find the sleep among the application's descendants (it is the child of
        // a keeper process).
        fn find_sleep(pid: i32) -> Option<i32> {
            for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                for k in kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()) {
                    let comm = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
                    if comm.trim() == "sleep" {
                        return Some(k);
                    }
                    if let Some(p) = find_sleep(k) {
                        return Some(p);
                    }
                }
            }
            None
        }
        let t0 = Instant::now();
        let sleep_pid: i32 = loop {
            let found = find_sleep(app_pid as i32);
            if let Some(p) = found {
                break p;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no sleep started");
            std::thread::sleep(Duration::from_millis(10));
        };
        app.child.kill().unwrap();
        app.child.wait().unwrap();
        let t0 = Instant::now();
        while !gone(sleep_pid) {
            assert!(t0.elapsed() < Duration::from_secs(5), "the command outlived its application");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

sandbox_test! {
    fn stacks_made_and_dropped_from_many_threads() {
        if !have_tun("stacks_made_and_dropped_from_many_threads") {
            return;
        }
        let base = figures();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..5 {
                        let s = Stack::with_interfaces(&["null://", "x:null://"]).unwrap();
                        let nl = s.netlink().unwrap();
                        assert!(nl.link_index("x").is_ok(), "thread {t} stack {i}");
                        assert_eq!(s.run("/bin/true").unwrap().code(), Some(0));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        // Thread stacks of the finished threads may take a moment to disappear.
        while figures() != base && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(figures(), base);
    }
}

sandbox_test! {
    /// Plugs are opened in the caller's namespace: two stacks meet on a vxvde
    /// multicast group carried by the test namespace's `lo`.
    fn two_stacks_on_vxvde() {
        if !have_tun("two_stacks_on_vxvde") {
            return;
        }
        let url = "vxvde://239.1.2.3/port=24100";
        let a = Stack::with_interfaces(&[url]).unwrap();
        let b = Stack::with_interfaces(&[&format!("eth0:{url}")]).unwrap();
        configure(&a, "vde0", &[("10.11.0.1", 24)]);
        configure(&b, "eth0", &[("10.11.0.2", 24)]);
        let st = a
            .command("/bin/ping")
            .args(["-c", "2", "-i", "0.2", "-W", "5", "10.11.0.2"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ping over vxvde: {st}");
        tcp_echo(&a, &b, "10.11.0.1:22", "tcp over vxvde");
    }
}

sandbox_test! {
    /// `veth://NAME`: stacks joined in the kernel (a bridge and veth pairs), no relay.
    fn stacks_on_a_kernel_link() {
        let base = figures();
        let a = Stack::with_interfaces(&["veth://net1"]).unwrap();
        let b = Stack::with_interfaces(&["eth0:veth://net1"]).unwrap();
        let c = Stack::with_interfaces(&["veth://net1", "x1:veth://other"]).unwrap();
        assert!(!vdestack::diagnostics::relay_running(), "a kernel link needs no relay");
        assert_eq!(names_inside(&c), ["lo", "vde0", "x1"]);
        configure(&a, "vde0", &[("10.21.0.1", 24), ("fc00:21::1", 64)]);
        configure(&b, "eth0", &[("10.21.0.2", 24), ("fc00:21::2", 64)]);
        configure(&c, "vde0", &[("10.21.0.3", 24)]);
        for (from, to) in [(&b, "10.21.0.1"), (&c, "10.21.0.2"), (&a, "fc00:21::2")] {
            let st = from
                .command("/bin/ping")
                .args(["-c", "1", "-W", "5", to])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "ping {to}: {st}");
        }
        tcp_echo(&a, &b, "10.21.0.1:7000", "tcp v4 over veth://");
        tcp_echo(&b, &a, "[fc00:21::2]:7001", "tcp v6 over veth://");

        // A throughput figure (not a limit).
        let mbs = throughput(&a, &b, "10.21.0.1:7010", 512);
        eprintln!("FIGURES TCP over veth:// : {mbs:.0} MB/s");

        // A stack's interface goes with it; the network with its last interface.
        drop(c);
        let st = a.command("/bin/ping").args(["-c", "1", "-W", "1", "10.21.0.3"])
            .stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().unwrap();
        assert!(!st.success(), "10.21.0.3 answers after its stack was dropped");
        drop(a);
        drop(b);
        let deadline = Instant::now() + Duration::from_secs(5);
        while figures() != base && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(figures(), base, "(fds, threads, children) after veth:// stacks");
        let err = Stack::with_interfaces(&["veth://a/b"]).unwrap_err();
        assert_eq!(vdestack::error::errno_of(&err), libc::EINVAL, "{err}");
        let err = vdestack::vde::open("veth://x").err().unwrap();
        assert!(err.to_string().contains("stack interface"), "{err}");
    }
}
