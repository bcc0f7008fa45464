//! `vdestack ns`, our vdens: options, exit status, and a real peer: a C program
//! using Debian's libvdestack serves a TCP echo on a Debian `vde_switch`, and a
//! shell in `vdestack ns` on the same switch pings it (v4 and v6) and echoes with
//! `nc`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

/// `vdestack ns ARGS...`: (exit code, stdout, stderr).
fn ns(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(vdestack_bin())
        .arg("ns")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The interface names in a `/proc/net/dev` text, sorted.
fn ifaces(proc_net_dev: &str) -> Vec<String> {
    let mut v: Vec<String> = proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .collect();
    v.sort();
    v
}

sandbox_test! {
    fn ns_options_and_exit_status() {
        const T: &str = "ns_options_and_exit_status";
        if !have_tun(T) {
            return;
        }
        assert_eq!(ns(&["-", "/bin/sh", "-c", "exit 7"]).0, 7, "the command's status is ours");
        let (code, out, _) = ns(&["-R", "10.0.0.53,fc00::53", "-", "/bin/cat", "/etc/resolv.conf"]);
        assert_eq!(code, 0);
        assert_eq!(out, "nameserver 10.0.0.53\nnameserver fc00::53\n");
        let (_, out, _) = ns(&["-i", "eth", "null://", "/bin/cat", "/proc/net/dev"]);
        assert_eq!(ifaces(&out), ["eth0", "lo"]);
        let (_, out, _) = ns(&["-m", "null://", "null://", "--", "/bin/cat", "/proc/net/dev"]);
        assert_eq!(ifaces(&out), ["lo", "vde0", "vde1"]);
        // The network capabilities are ambient (ip works unprivileged); -s adds SYS_ADMIN.
        let (_, out, _) = ns(&["-", "/bin/sh", "-c", "grep CapAmb /proc/self/status"]);
        assert!(out.trim_end().ends_with("3c00"), "{out}");
        let (_, out, _) = ns(&["-s", "-", "/bin/sh", "-c", "grep CapAmb /proc/self/status"]);
        assert!(out.trim_end().ends_with("203c00"), "{out}");
        // Errors say what.
        for (args, needle) in [
            (vec!["bogus://x", "/bin/true"], "unknown VDE plug scheme"),
            (vec!["-R", "notanip", "-", "/bin/true"], "notanip"),
            (vec!["-", "/no/such/command"], "/no/such/command"),
        ] {
            let (code, _, err) = ns(&args);
            assert_ne!(code, 0, "{args:?}");
            assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
        }
    }
}

sandbox_test! {
    fn ns_reaches_a_libvdestack_echo_server() {
        const T: &str = "ns_reaches_a_libvdestack_echo_server";
        if !have_tool(T, "gcc") || !have_tool(T, "vde_switch") || !have_tool(T, "nc")
            || !have_tool(T, "busybox") || !have_tun(T)
        {
            return;
        }
        if !std::path::Path::new("/usr/include/vdestack.h").exists() {
            return skip(T, "Debian's libvdestack-dev is not installed");
        }
        let dir = TempDir::new("nsc");
        let prog = dir.path("libvdestack_echo");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/libvdestack_echo.c");
        let st = Command::new("gcc").arg(src).arg("-o").arg(&prog).arg("-lvdestack").status().unwrap();
        assert!(st.success(), "gcc failed");
        let sw = dir.path("sw");
        let _switch = debian_vde_switch(&sw);
        let url = format!("vde://{}", sw.display());

        let mut c = Command::new(&prog);
        c.arg(&url).stdout(Stdio::piped());
        let mut server = Proc::spawn(c);
        let mut ready = String::new();
        BufReader::new(server.child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready, "ready\n");

        let script = "ip link set vde0 up && ip addr add 10.77.2.2/24 dev vde0 && \
            ip addr add fc00:77::2/64 dev vde0 nodad && \
            ping -c 2 -i 0.2 -w 20 10.77.2.1 && \
            echo hello-libvdestack | nc -N -w 10 10.77.2.1 5000 && \
            ping -6 -c 2 -i 0.2 -w 20 fc00:77::1";
        let (code, out, err) = ns(&[&url, "/bin/sh", "-c", script]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.lines().any(|l| l == "hello-libvdestack"), "{out}");
        assert!(server.child.try_wait().unwrap().is_none(), "the C server died");
    }
}
