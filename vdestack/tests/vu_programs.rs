//! `vdestack vu` with programs that are not configuration tools: a static C
//! program (glibc's getifaddrs, if_nametoindex, if_indextoname), threads,
//! vfork, a program that closes every fd, IP sockets with no route; a killed
//! supervisor; a run where no namespace can be made; and the machine, its
//! files, pipes and AF_UNIX sockets untouched.
//!
//! No namespace, no privilege, no traffic (`--stack mem` has no data path; the
//! AF_UNIX test moves frames between two plugs of a switch socket).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

/// `vdestack vu -- /bin/sh -c SCRIPT`: (exit code, stdout, stderr).
fn vu_sh(script: &str) -> (i32, String, String) {
    vu_cmd(Command::new(vdestack_bin()), script)
}

fn vu_cmd(mut c: Command, script: &str) -> (i32, String, String) {
    c.args(["vu", "--stack", "mem", "--", "/bin/sh", "-c", script])
        .stdin(Stdio::null());
    let out = output_within(c, LIMIT).unwrap_or_else(|| panic!("vdestack vu hung on {script}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tests/c/vu_procs.c` built with `gcc -static` (once per test binary run).
fn vu_procs(test: &str) -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    if !have_tool(test, "gcc") {
        return None;
    }
    BUILT
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("vdestack-vu-procs-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let out = dir.join("vu_procs");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/vu_procs.c");
            let st = Command::new("gcc")
                .args(["-static", "-O2", "-pthread", "-o"])
                .arg(&out)
                .arg(src)
                .stderr(Stdio::null())
                .status()
                .ok()?;
            st.success().then_some(out)
        })
        .clone()
        .or_else(|| {
            skip(
                test,
                "gcc -static could not build tests/c/vu_procs.c (glibc's libc.a missing?)",
            );
            None
        })
}

/// The machine's interface names (read here, unsupervised).
fn machine_interfaces() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_static_c_program_sees_only_the_served_stack() {
    const T: &str = "a_static_c_program_sees_only_the_served_stack";
    let Some(bin) = vu_procs(T) else { return };
    if !have_tool(T, "ip") {
        return;
    }
    let bin = bin.to_string_lossy().into_owned();
    let (code, out, err) = vu_sh(&format!(
        "ip link set lo up && ip addr add 10.0.0.1/24 dev vde0 && \
         ip -6 addr add 2001:db8::1/64 dev vde0 && {bin} ifaddrs"
    ));
    assert_eq!(code, 0, "{err}");
    let mut addrs: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("getifaddrs "))
        .map(|l| l.split(" flags").next().unwrap_or("").to_string())
        .collect();
    addrs.sort();
    assert_eq!(
        addrs,
        [
            "getifaddrs lo inet 127.0.0.1",
            "getifaddrs lo inet6 ::1",
            "getifaddrs lo packet 00:00:00:00:00:00",
            "getifaddrs vde0 inet 10.0.0.1",
            "getifaddrs vde0 inet6 2001:db8::1",
            "getifaddrs vde0 packet 80:00:00:00:00:42",
        ]
    );
    for want in [
        "if_nametoindex vde0 2",
        "if_nametoindex lo 1",
        "if_indextoname 1 lo",
        "if_indextoname 2 vde0",
        "if_indextoname 3 -",
        "if_nameindex 1 lo\nif_nameindex 2 vde0\n",
    ] {
        assert!(out.contains(want), "{want} in\n{out}");
    }
    // None of the machine's interfaces shows (the same program unsupervised
    // lists them, so the check can fail).
    let plain = Command::new(&bin).arg("ifaddrs").output().unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    for name in machine_interfaces().iter().filter(|n| *n != "lo") {
        assert!(
            plain.contains(&format!(" {name} ")),
            "{name} unsupervised:\n{plain}"
        );
        assert!(
            !out.contains(&format!(" {name} ")),
            "the machine's {name} shows:\n{out}"
        );
    }
}

#[test]
fn threads_vfork_exec_and_closed_fds_stay_served() {
    const T: &str = "threads_vfork_exec_and_closed_fds_stay_served";
    let Some(bin) = vu_procs(T) else { return };
    let bin = bin.to_string_lossy().into_owned();
    // Threads: each thread's socket gets its own port, the first the process id
    // (as the kernel numbers them), and each finds vde0.
    let (code, out, err) = vu_sh(&format!("{bin} threads"));
    assert_eq!(code, 0, "{err}");
    let mut ports: Vec<&str> = out
        .lines()
        .map(|l| {
            assert!(l.ends_with(" vde0 2"), "{l}");
            l.split_whitespace().nth(3).unwrap()
        })
        .collect();
    assert_eq!(ports.len(), 8);
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 8, "ports must differ: {out}");
    // vfork + exec: the child is served, its status comes back.
    let (code, out, _) = vu_sh(&format!("{bin} vfork 'ip -o link show vde0; exit 5'"));
    assert_eq!(code, 5);
    assert!(
        out.starts_with("2: vde0: <BROADCAST,MULTICAST> mtu 1500"),
        "{out}"
    );
    // A program that closes every fd, stdio included, is still served.
    let (code, _, _) = vu_sh(&format!("{bin} closeall"));
    assert_eq!(code, 2, "if_nametoindex(vde0) after closing every fd");
    // fork and exec in a pipeline, three levels down.
    let (code, out, _) = vu_sh("sh -c 'sh -c \"ip -o link\" | grep -c vde0'");
    assert_eq!((code, out.as_str()), (0, "1\n"));
}

#[test]
fn ip_sockets_are_served_without_a_route() {
    const T: &str = "ip_sockets_are_served_without_a_route";
    let Some(bin) = vu_procs(T) else { return };
    let (code, out, err) = vu_sh(&format!("{} inet", bin.display()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ioctl ok flags=0x1002\n\
         type 2 domain 2\n\
         sendto -1 Network is unreachable\n\
         connect -1 Network is unreachable\n\
         getsockname 0.0.0.0:0 len 16 family 2\n\
         unix socket yes\n\
         shutdown -1 Transport endpoint is not connected\n",
        "an AF_INET socket that is an AF_UNIX socket underneath"
    );
}

/// The children of `pid` (from `/proc/PID/task/*/children`).
fn children_of(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in d.flatten() {
            let c = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            v.extend(c.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
        }
    }
    v
}

/// Waits until `pid` sits in system call `nr` (from `/proc/PID/syscall`).
fn wait_in_syscall(pid: u32, nr: i64) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if s.split_whitespace().next() == Some(&nr.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pid} never entered system call {nr} ({s})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_supervisor_leaves_errors_not_hangs() {
    const T: &str = "a_killed_supervisor_leaves_errors_not_hangs";
    if !have_tool(T, "ip") {
        return;
    }
    // ip monitor waits for events on a served netlink socket: it sees end of file.
    let mut c = Command::new(vdestack_bin());
    c.args(["vu", "--", "ip", "monitor"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut sup = Proc::spawn(c);
    let deadline = Instant::now() + LIMIT;
    let ip = loop {
        if let Some(&p) = children_of(sup.child.id()).first() {
            break p;
        }
        assert!(Instant::now() < deadline, "ip monitor never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_in_syscall(ip, libc::SYS_recvmsg);
    sup.child.kill().unwrap();
    sup.child.wait().unwrap();
    let deadline = Instant::now() + LIMIT;
    while std::fs::metadata(format!("/proc/{ip}")).is_ok()
        && !std::fs::read_to_string(format!("/proc/{ip}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(
            Instant::now() < deadline,
            "ip monitor still waits after the supervisor died"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A program whose next trapped call comes after the supervisor died: the
    // call fails (ENOSYS), the program goes on with the error.
    let mut c = Command::new(vdestack_bin());
    c.args([
        "vu",
        "--",
        "/bin/sh",
        "-c",
        "read x; cat /proc/net/dev; echo status $?",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut sup = Proc::spawn(c);
    let sh = loop {
        if let Some(&p) = children_of(sup.child.id()).first() {
            break p;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_in_syscall(sh, libc::SYS_read);
    let mut stdin = sup.child.stdin.take().unwrap();
    let mut stdout = sup.child.stdout.take().unwrap();
    sup.child.kill().unwrap();
    sup.child.wait().unwrap();
    use std::io::{Read, Write};
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let out = rx
        .recv_timeout(LIMIT)
        .expect("the shell hung after the supervisor died");
    assert!(
        out.starts_with("status ") && out.trim() != "status 0",
        "{out}"
    );
}

#[test]
fn no_namespace_and_no_privilege_needed() {
    const T: &str = "no_namespace_and_no_privilege_needed";
    if !have_tool(T, "ip") || !have_tool(T, "unshare") {
        return;
    }
    // As Docker's default profile: no unshare, setns, or clone with CLONE_NEW*.
    let mut c = Command::new(vdestack_bin());
    vdestack::diagnostics::deny_namespaces_on_exec(&mut c).unwrap();
    let (code, out, err) = vu_cmd(
        c,
        "unshare -Urn true 2>/dev/null; echo unshare $?; \
         ip addr add 10.0.0.1/24 dev vde0 && ip -o -4 addr show dev vde0; \
         readlink /proc/self/ns/net; for f in /proc/$PPID/fd/*; do readlink $f; done",
    );
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_ne!(
        lines.next(),
        Some("unshare 0"),
        "a namespace could be made: {out}"
    );
    assert!(
        lines.next().unwrap_or("").contains("inet 10.0.0.1/24"),
        "{out}"
    );
    let ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        lines.next(),
        Some(ns.to_string_lossy().as_ref()),
        "the program runs in our namespace"
    );
    let fds: Vec<&str> = lines.collect();
    assert!(!fds.is_empty());
    assert!(
        !fds.iter().any(|l| l.contains("tun")),
        "the supervisor's fds: {fds:?}"
    );
}

#[test]
fn the_machine_and_other_files_are_untouched() {
    const T: &str = "the_machine_and_other_files_are_untouched";
    if !have_tool(T, "ip") {
        return;
    }
    let machine = || {
        let o = Command::new("ip").args(["-o", "addr"]).output().unwrap();
        let r = Command::new("ip")
            .args(["route", "show", "table", "all"])
            .output()
            .unwrap();
        (o.stdout, r.stdout)
    };
    let before = machine();
    let dir = TempDir::new("vu-files");
    let f = dir.join_str("f");
    let (code, out, err) = vu_sh(&format!(
        "ip addr add 10.255.255.1/32 dev lo && ip link set lo up && \
         ip route add 10.254.0.0/16 dev lo && ip -o addr show dev lo | grep -c 10.255.255.1; \
         echo hello > {f}; cat {f} | tr a-z A-Z"
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\nHELLO\n");
    assert_eq!(
        machine(),
        before,
        "the machine's addresses and routes changed"
    );
}

#[test]
fn a_vde_plug_under_vu_talks_to_a_switch_outside() {
    let dir = TempDir::new("vu-switch");
    let sw = dir.path("sw");
    let mut c = Command::new(vdestack_bin());
    c.arg("switch")
        .arg(&sw)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let _switch = Proc::spawn(c);
    wait_for_switch(&sw);
    let url = format!("vde://{}", sw.display());
    let mut outside = {
        let mut c = Command::new(vdestack_bin());
        c.args(["plug", &url]);
        StreamPeer::spawn(c)
    };
    let mut inside = {
        let mut c = Command::new(vdestack_bin());
        c.args(["vu", "--", &vdestack_bin(), "plug", &url]);
        StreamPeer::spawn(c)
    };
    let frames_in = test_frames(3, mac(1), [0xff; 6], 7);
    let frames_out = test_frames(3, mac(2), mac(1), 8);
    // The switch may take a moment to know both ports: resend until one passes.
    let deadline = Instant::now() + LIMIT;
    let first = loop {
        inside.send(&frames_in[0]);
        if let Some(f) = outside.recv(Duration::from_millis(200)) {
            break f;
        }
        assert!(Instant::now() < deadline, "no frame from the plug under vu");
    };
    assert_eq!(first, frames_in[0]);
    for f in &frames_in[1..] {
        inside.send(f);
        assert_eq!(outside.recv(LIMIT).as_ref(), Some(f));
    }
    while outside.recv(Duration::from_millis(50)).is_some() {}
    for f in &frames_out {
        outside.send(f);
        assert_eq!(inside.recv(LIMIT).as_ref(), Some(f));
    }
}

#[test]
fn netlink_sockets_and_socket_ioctls_answer_as_the_kernel() {
    const T: &str = "netlink_sockets_and_socket_ioctls_answer_as_the_kernel";
    let Some(bin) = vu_procs(T) else { return };
    // The same program on the kernel and under vu: names, port ids, options,
    // errors, ioctls on a pipe, an AF_UNIX socket, a netlink socket, a bad fd.
    let kernel = Command::new(&bin).arg("netlink").output().unwrap();
    let kernel = String::from_utf8_lossy(&kernel.stdout).into_owned();
    assert!(
        kernel.contains("bound: family 16 pid is mine 1 groups 1 len 12"),
        "{kernel}"
    );
    let (code, out, err) = vu_sh(&format!("{} netlink", bin.display()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, kernel);
    // Netlink protocols other than NETLINK_ROUTE: as on a kernel without them.
    assert!(err.contains("sock_diag: Protocol not supported"), "{err}");
    assert!(err.contains("generic: Protocol not supported"), "{err}");
}
