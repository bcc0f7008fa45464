//! `vdestack vu --stack mem`: libnlq's VUOS demonstration reproduced with the
//! stock tools (iproute2, net-tools, busybox) configuring a stack that is only
//! a data structure in our process, and the command's exit status and errors.
//!
//! These tests need no namespace and no privilege (they run as `nobody` in CI
//! too) and send no traffic: `--stack mem` has no data path.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// How long one supervised command may take before the test fails (generous:
/// a hang must fail the test, a slow machine must not).
const LIMIT: Duration = Duration::from_secs(120);

/// `vdestack vu ARGS...`: (exit code, stdout, stderr).
fn vu(args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(vdestack_bin());
    c.arg("vu").args(args).stdin(Stdio::null());
    let out = output_within(c, LIMIT).unwrap_or_else(|| panic!("vdestack vu {args:?} hung"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a shell script under `vdestack vu --stack mem`; its output split at
/// lines `@@` (each step's output).
fn steps(script: &str) -> Vec<String> {
    let (code, out, err) = vu(&["--stack", "mem", "--", "/bin/sh", "-c", script]);
    assert_eq!(code, 0, "script failed: {err}\n{out}");
    out.split("@@\n").map(str::to_string).collect()
}

fn have_tools(test: &str, tools: &[&str]) -> bool {
    tools.iter().all(|t| have_tool(test, t))
}

/// libnlq's VUOS transcript (`vuos_example/README.md`), its output per step.
const SEED_IP_ADDR_1: &str = "\
1: lo: <LOOPBACK> mtu 65536
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: vde0: <BROADCAST,MULTICAST> mtu 1500
    link/ether 80:00:00:00:00:41 brd ff:ff:ff:ff:ff:ff
";
const SEED_IFCONFIG: &str = "\
lo: flags=8<LOOPBACK>  mtu 65536
        inet6 ::1  prefixlen 128  scopeid 0x10<host>
        loop  txqueuelen 0  (Local Loopback)
        RX packets 0  bytes 0 (0.0 B)
        RX errors 0  dropped 0  overruns 0  frame 0
        TX packets 0  bytes 0 (0.0 B)
        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0

vde0: flags=4099<UP,BROADCAST,MULTICAST>  mtu 1500
        inet 10.0.0.1  netmask 255.255.255.0  broadcast 0.0.0.0
        ether 80:00:00:00:00:41  txqueuelen 0  (Ethernet)
        RX packets 0  bytes 0 (0.0 B)
        RX errors 0  dropped 0  overruns 0  frame 0
        TX packets 0  bytes 0 (0.0 B)
        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0

";
const SEED_IP_ADDR_2: &str = "\
1: lo: <LOOPBACK,UP> mtu 65536
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope global dynamic lo
2: vde0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500
    link/ether 80:00:00:00:00:41 brd ff:ff:ff:ff:ff:ff
    inet 10.0.0.1/24 scope global dynamic vde0
";

/// Our output turned into the seed's by undoing, one by one, the differences,
/// each of which is the kernel's behaviour where libnlq's fake stack had none:
///
/// 1. ` state DOWN group default qlen 1000` after each link: we send
///    `IFLA_OPERSTATE`, `IFLA_GROUP` and `IFLA_TXQLEN` as the kernel does, and
///    iproute2 prints them; netlinktest sent none (nor `txqueuelen` for
///    `ifconfig`, which shows 0 there, the kernel's default 1000 here);
/// 2. vde0's MAC is `80:00:00:00:00:42`, as the issue asks; the seed made its
///    vde0 with `ip link add vde0 type bridge` as its first link (`...:41`);
/// 3. `lo` up is `<LOOPBACK,UP,LOWER_UP>`: a loopback has a carrier;
/// 4. `ifconfig lo 127.0.0.1` gives the address host scope, as the kernel
///    does for 127/8 (the seed says `scope global`), and our addresses are
///    permanent with infinite lifetimes (`valid_lft forever` lines); libnlq
///    sent no `IFA_F_PERMANENT` and no `IFA_CACHEINFO`, which iproute2 prints as
///    `dynamic` without lifetimes;
/// 5. bringing `lo` up adds `::1/128` (the kernel does); in the seed `lo` had
///    `inet6 ::1` while *down*: VUOS served `/proc/net/dev` but not
///    `/proc/net/if_inet6`, where `ifconfig` reads IPv6 addresses, so that line
///    was the machine's own `::1` showing through. We serve `if_inet6` too.
fn as_seed(ours: &str) -> String {
    let mut out = String::new();
    for line in ours.lines() {
        if line.contains("valid_lft") || line.trim_start().starts_with("inet6 ::1/128") {
            continue;
        }
        let mut l = line.to_string();
        for suffix in [
            " state DOWN group default qlen 1000",
            " state UNKNOWN group default qlen 1000",
        ] {
            l = l.replace(suffix, "");
        }
        l = l
            .replace("80:00:00:00:00:42", "80:00:00:00:00:41")
            .replace("<LOOPBACK,UP,LOWER_UP>", "<LOOPBACK,UP>")
            .replace("scope host lo", "scope global dynamic lo")
            .replace("scope global vde0", "scope global dynamic vde0")
            .replace("txqueuelen 1000", "txqueuelen 0");
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn the_seed_transcript() {
    const T: &str = "the_seed_transcript";
    if !have_tools(T, &["ip", "ifconfig"]) {
        return;
    }
    let s = steps(
        "ip addr; echo @@; \
         ip addr add 10.0.0.1/24 dev vde0 && ip link set vde0 up && echo configured; echo @@; \
         /sbin/ifconfig -a; echo @@; \
         /sbin/ifconfig lo 127.0.0.1 netmask 255.0.0.0 && echo set; echo @@; \
         ip addr",
    );
    assert_eq!(s.len(), 5, "{s:?}");
    // 1. lo and vde0 as the issue describes them.
    assert!(s[0].contains("1: lo: <LOOPBACK> mtu 65536 "), "{}", s[0]);
    assert!(
        s[0].contains("2: vde0: <BROADCAST,MULTICAST> mtu 1500 "),
        "{}",
        s[0]
    );
    assert!(s[0].contains("link/ether 80:00:00:00:00:42 brd ff:ff:ff:ff:ff:ff"));
    assert_eq!(as_seed(&s[0]), SEED_IP_ADDR_1);
    // 2. both changes succeeded.
    assert_eq!(s[1], "configured\n");
    // 3. ifconfig reads flags, addresses, MAC by ioctl and counters in /proc/net/dev.
    assert!(s[2].contains("vde0: flags=4099<UP,BROADCAST,MULTICAST>  mtu 1500"));
    assert!(s[2].contains("inet 10.0.0.1  netmask 255.255.255.0"));
    assert!(s[2].contains("ether 80:00:00:00:00:42"));
    assert!(s[2].contains("RX packets 0  bytes 0 (0.0 B)"));
    let seed_without_host_leak =
        SEED_IFCONFIG.replace("        inet6 ::1  prefixlen 128  scopeid 0x10<host>\n", "");
    assert_eq!(as_seed(&s[2]), seed_without_host_leak);
    // 4. the set ioctls.
    assert_eq!(s[3], "set\n");
    // 5. what one process set, the next one sees.
    assert!(s[4].contains("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536"));
    assert!(s[4].contains("inet 127.0.0.1/8 scope host lo"));
    assert!(s[4].contains("2: vde0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500"));
    assert!(s[4].contains("inet 10.0.0.1/24 scope global vde0"));
    assert_eq!(as_seed(&s[4]), SEED_IP_ADDR_2);
}

#[test]
fn iproute2_beyond_the_transcript() {
    const T: &str = "iproute2_beyond_the_transcript";
    if !have_tools(T, &["ip"]) {
        return;
    }
    let s = steps(
        "ip link set lo up; ip link set vde0 up; ip addr add 10.0.0.1/24 dev vde0; \
         ip -j addr; echo @@; \
         ip -s link show vde0; echo @@; \
         ip route add default via 10.0.0.254 && ip route show; echo @@; \
         ip route show table local; echo @@; \
         ip route del default via 10.0.0.254 && ip route show; echo @@; \
         ip -6 addr add 2001:db8::1/64 dev vde0 && ip -6 addr show dev vde0; echo @@; \
         ip neigh 2>&1; echo \"status $?\"; echo @@; \
         ip rule 2>&1; echo \"status $?\"; echo @@; \
         ip link set nosuch up 2>&1; echo \"status $?\"",
    );
    assert_eq!(s.len(), 9, "{s:?}");
    let j: serde_json::Value = serde_json::from_str(&s[0]).expect("ip -j addr is JSON");
    let links = j.as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[1]["ifname"], "vde0");
    assert_eq!(links[1]["address"], "80:00:00:00:00:42");
    assert_eq!(links[1]["addr_info"][0]["local"], "10.0.0.1");
    assert_eq!(links[1]["addr_info"][0]["prefixlen"], 24);
    assert_eq!(links[0]["addr_info"][0]["local"], "127.0.0.1");
    assert!(
        s[1].contains("RX:  bytes packets errors dropped  missed   mcast"),
        "{}",
        s[1]
    );
    assert!(
        s[1].contains("TX:  bytes packets errors dropped carrier collsns"),
        "{}",
        s[1]
    );
    assert_eq!(
        s[2],
        "default via 10.0.0.254 dev vde0 linkdown \n\
         10.0.0.0/24 dev vde0 proto kernel scope link src 10.0.0.1 linkdown \n"
    );
    for want in [
        "local 10.0.0.1 dev vde0 proto kernel scope host src 10.0.0.1",
        "local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1",
    ] {
        assert!(s[3].contains(want), "{want} in {}", s[3]);
    }
    assert_eq!(
        s[4],
        "10.0.0.0/24 dev vde0 proto kernel scope link src 10.0.0.1 linkdown \n"
    );
    assert!(
        s[5].contains("inet6 2001:db8::1/64 scope global"),
        "{}",
        s[5]
    );
    // What the stack does not serve ends with iproute2's own message.
    assert!(
        s[6].contains("RTNETLINK answers: Operation not supported"),
        "{}",
        s[6]
    );
    assert!(!s[6].contains("status 0"));
    assert!(
        s[7].contains("RTNETLINK answers: Operation not supported"),
        "{}",
        s[7]
    );
    assert!(!s[7].contains("status 0"));
    assert_eq!(s[8], "Cannot find device \"nosuch\"\nstatus 1\n");
}

#[test]
fn net_tools_read_the_served_proc_files() {
    const T: &str = "net_tools_read_the_served_proc_files";
    if !have_tools(T, &["ip", "route", "netstat", "ifconfig"]) {
        return;
    }
    let s = steps(
        "ip link set vde0 up; ip addr add 10.0.0.1/24 dev vde0; \
         ip route add default via 10.0.0.254; ip -6 addr add 2001:db8::1/64 dev vde0; \
         route -n; echo @@; netstat -i; echo @@; netstat -ia; echo @@; ifconfig vde0; echo @@; \
         cat /proc/self/net/if_inet6; echo @@; cat /proc/$$/net/route | wc -l; echo @@; \
         ifconfig vde0 add 2001:db8::7/64 && ifconfig vde0 del 2001:db8::1/64 && \
         ip -6 -o addr show dev vde0 | awk '{print $4}'",
    );
    assert_eq!(s.len(), 7, "{s:?}");
    let route: Vec<Vec<&str>> = s[0]
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        route,
        [
            vec![
                "0.0.0.0",
                "10.0.0.254",
                "0.0.0.0",
                "UG",
                "0",
                "0",
                "0",
                "vde0"
            ],
            vec![
                "10.0.0.0",
                "0.0.0.0",
                "255.255.255.0",
                "U",
                "0",
                "0",
                "0",
                "vde0"
            ],
        ]
    );
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    };
    // netstat -i lists the interfaces that are up, -ia all of them.
    assert_eq!(names(&s[1]), ["vde0"]);
    assert_eq!(names(&s[2]), ["lo", "vde0"]);
    assert!(
        s[3].contains("inet6 2001:db8::1  prefixlen 64  scopeid 0x0<global>"),
        "{}",
        s[3]
    );
    assert_eq!(
        s[4],
        "20010db8000000000000000000000001 02 40 00 80     vde0\n"
    );
    assert_eq!(s[5].trim(), "3");
    // IPv6 addresses by ioctl on an AF_INET6 socket (struct in6_ifreq).
    assert_eq!(s[6], "2001:db8::7/64\n");
}

#[test]
fn busybox_tools() {
    const T: &str = "busybox_tools";
    if !have_tools(T, &["busybox"]) {
        return;
    }
    let s = steps(
        "busybox ifconfig vde0 10.1.2.3 netmask 255.255.0.0 up && \
         busybox ip addr add 10.9.0.1/24 dev vde0 && busybox ip route add default via 10.1.0.1 && \
         busybox ip addr show dev vde0; echo @@; busybox ifconfig vde0; echo @@; busybox route -n",
    );
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(
        s[0].contains("inet 10.1.2.3/16 brd 10.1.255.255 scope global vde0"),
        "{}",
        s[0]
    );
    assert!(
        s[0].contains("inet 10.9.0.1/24 scope global vde0"),
        "{}",
        s[0]
    );
    assert!(
        s[1].contains("vde0      Link encap:Ethernet  HWaddr 80:00:00:00:00:42"),
        "{}",
        s[1]
    );
    assert!(
        s[1].contains("inet addr:10.1.2.3  Bcast:10.1.255.255  Mask:255.255.0.0"),
        "{}",
        s[1]
    );
    assert!(
        s[1].contains("UP BROADCAST MULTICAST  MTU:1500  Metric:1"),
        "{}",
        s[1]
    );
    let route: Vec<Vec<&str>> = s[2]
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        route[0],
        ["0.0.0.0", "10.1.0.1", "0.0.0.0", "UG", "0", "0", "0", "vde0"]
    );
    assert!(
        route
            .iter()
            .any(|r| r[0] == "10.1.0.0" && r[2] == "255.255.0.0"),
        "{route:?}"
    );
    assert!(
        route
            .iter()
            .any(|r| r[0] == "10.9.0.0" && r[2] == "255.255.255.0"),
        "{route:?}"
    );
}

#[test]
fn exit_status_and_errors() {
    assert_eq!(
        vu(&["--", "/bin/sh", "-c", "exit 7"]).0,
        7,
        "the command's status is ours"
    );
    assert_eq!(vu(&["--", "/bin/sh", "-c", "kill -9 $$"]).0, 128 + 9);
    let (code, _, err) = vu(&["--", "/nonexistent/command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("/nonexistent/command"), "{err}");
    let (code, _, err) = vu(&["--stack", "kernel", "--", "true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown --stack `kernel`") && err.contains("mem"),
        "{err}"
    );
    // A refused filter says why: one user-notification filter per process.
    let bin = vdestack_bin();
    let (code, _, err) = vu(&["--", &bin, "vu", "--", "true"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("already runs under a seccomp user-notification filter"),
        "{err}"
    );
    // The default command is $SHELL.
    let mut c = Command::new(vdestack_bin());
    c.arg("vu").env("SHELL", "/bin/sh").stdin(Stdio::piped());
    c.stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ip -o link | wc -l\nexit 3\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}
