//! Where namespaces are refused (issue 15's acceptance): user-space stacks work
//! for an unprivileged user under a seccomp filter that denies `unshare`,
//! `setns` and `clone` with namespace flags (as Docker's default profile does),
//! with `/dev/net/tun` unopenable; kernel stacks fail there, cleanly.
//!
//! The test runs itself again, in stages: (1) in a mount namespace of its own
//! (`unshare -m`, or `-Urm` unprivileged) where an empty tmpfs hides `/dev/net`
//! (where no namespace can be made at all, as is, and `/dev/net/tun` must be
//! unopenable already); (2) from there, as user `nobody` (when run as root) under
//! the namespace-denying filter, where the body runs. Its frames never leave the
//! process (`inproc://`), so it needs no network namespace.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::backends::{net, stack_on};
use common::stacks::{configure, tcp_echo};
use common::*;

use vdestack::net::IpVersion;
use vdestack::stack::{Backend, Stack};

const NAME: &str = "user_stacks_where_namespaces_and_tun_are_refused";
const STAGE: &str = "VDESTACK_TEST_NONS_STAGE";
/// Set by the first stage when it ran as root: the last stage must be `nobody`.
const DROPPED: &str = "VDESTACK_TEST_NONS_DROPPED";
const NOBODY: u32 = 65534;
const LIMIT: Duration = Duration::from_secs(150);

#[test]
fn user_stacks_where_namespaces_and_tun_are_refused() {
    match std::env::var(STAGE).as_deref() {
        Ok("filtered") => filtered_body(),
        Ok("hidden") => run_filtered(),
        _ => outer(),
    }
}

/// Runs this one test of `bin` with the stage set, and checks it passed.
fn stage(mut cmd: Command, what: &str) {
    cmd.args([NAME, "--exact", "--nocapture", "--test-threads=1"]);
    let out = output_within(cmd, LIMIT).unwrap_or_else(|| panic!("{what}: hung"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- {what}\n{text}");
    assert!(out.status.success(), "{what} failed: {}", out.status);
    assert!(text.contains("1 passed"), "{what} ran no test");
}

/// A copy of this test binary that user `nobody` can run (the checkout may be
/// where it cannot reach).
fn reachable_copy(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().unwrap();
    let copy = dir.join("nons-test");
    std::fs::copy(&exe, &copy).unwrap();
    for p in [dir, copy.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    copy
}

fn outer() {
    if !have_tool(NAME, "unshare") {
        return;
    }
    let dir = TempDir::new("nons");
    let bin = reachable_copy(&dir.0);
    let root = is_root();
    let flags: &[&str] = if root { &["-m"] } else { &["-Urm"] };
    // An empty tmpfs over /dev/net: /dev/net/tun is gone for what runs below.
    let hide = "mount -t tmpfs -o mode=755 vdestack-no-tun /dev/net && exec \"$@\"";
    let can_hide = Path::new("/dev/net").is_dir()
        && Command::new("unshare")
            .args(flags)
            .args(["sh", "-c", "mount -t tmpfs none /dev/net"])
            .output()
            .is_ok_and(|o| o.status.success());
    let mut cmd = if can_hide {
        let mut c = Command::new("unshare");
        c.args(flags).args(["--", "sh", "-c", hide, "sh"]).arg(&bin);
        c
    } else {
        eprintln!("{NAME}: no mount namespace here: /dev/net/tun is left as it is");
        Command::new(&bin)
    };
    cmd.env(STAGE, "hidden").current_dir(&dir.0);
    if root {
        cmd.env(DROPPED, "1");
    }
    stage(cmd, "the run without /dev/net/tun");
}

/// Stage 2: the body again, unprivileged and under the filter.
fn run_filtered() {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun");
    if let Ok(_f) = tun {
        // Neither hidden nor refused (a machine with /dev/net/tun open to all,
        // and no mount namespace to hide it): the point cannot be shown here.
        return skip(NAME, "/dev/net/tun can be opened and could not be hidden");
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(STAGE, "filtered");
    if std::env::var_os(DROPPED).is_some() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    vdestack::diagnostics::deny_namespaces_on_exec(&mut cmd).unwrap();
    stage(cmd, "the filtered, unprivileged run");
}

/// Stage 3: what cannot be done here, then user-space stacks at work.
fn filtered_body() {
    if std::env::var_os(DROPPED).is_some() {
        assert_eq!(
            rustix::process::geteuid().as_raw(),
            NOBODY,
            "not dropped to nobody"
        );
    }
    let un = Command::new("unshare")
        .args(["-Urn", "true"])
        .output()
        .unwrap();
    assert!(!un.status.success(), "unshare -Urn worked under the filter");
    let e = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap_err();
    eprintln!(
        "/dev/net/tun: {e}; unshare -Urn: {}",
        String::from_utf8_lossy(&un.stderr).trim()
    );
    let k = Stack::new().expect_err("a kernel stack was made under the filter");
    eprintln!("kernel stack: {k}");

    let url = net("nons");
    let a = stack_on(Backend::User, &url);
    let b = stack_on(Backend::User, &url);
    configure(&a, "eth0", &[("10.31.0.1", 24), ("fc00:31::1", 64)]);
    configure(&b, "eth0", &[("10.31.0.2", 24), ("fc00:31::2", 64)]);
    tcp_echo(&a, &b, "10.31.0.1:7000", "user stacks under the filter");
    tcp_echo(
        &b,
        &a,
        "[fc00:31::2]:7001",
        "user stacks under the filter, v6",
    );

    let ua = a.udp_bind("10.31.0.1:7100".parse().unwrap()).unwrap();
    let ub = b.udp_bind("10.31.0.2:0".parse().unwrap()).unwrap();
    ua.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    ub.send_to(b"no namespace", "10.31.0.1:7100").unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = ua.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"no namespace"[..], ub.local_addr().unwrap())
    );

    let ping = b.icmp_socket(IpVersion::V6).unwrap();
    ping.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let to: IpAddr = "fc00:31::1".parse().unwrap();
    ping.send_to(&[128, 0, 0, 0, 0, 0, 0, 1, b'x'], to).unwrap();
    let (n, from) = ping.recv_from(&mut buf).unwrap();
    assert_eq!((buf[0], from, &buf[6..n]), (129, to, &[0u8, 1, b'x'][..]));

    // Netlink reads the configuration back.
    let nl = a.netlink().unwrap();
    let i = nl.link_index("eth0").unwrap();
    let addrs: Vec<IpAddr> = nl
        .addrs()
        .unwrap()
        .into_iter()
        .filter(|x| x.index == i)
        .map(|x| x.addr)
        .collect();
    assert!(addrs.contains(&"10.31.0.1".parse().unwrap()), "{addrs:?}");
    let _: SocketAddr = ua.local_addr().unwrap();
}

/// `vdestack demo` under the same filter: the kernel part is refused and says
/// so, the user-space part runs its echo, and the demo succeeds.
#[test]
fn the_demo_runs_its_user_space_part_where_namespaces_are_refused() {
    let mut c = Command::new(vdestack_bin());
    c.args(["demo", "--frames", "2000"]);
    vdestack::diagnostics::deny_namespaces_on_exec(&mut c).unwrap();
    let out = output_within(c, LIMIT).expect("vdestack demo hung");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{text}\n{err}", out.status);
    for v in ["IPv4", "IPv6"] {
        let echo = format!(r#"got back "hello over {v} (user-space)""#);
        assert!(text.contains(&echo), "{text}");
    }
    assert!(text.contains("kernel stacks are refused here"), "{text}");
    assert!(
        text.contains("user-space stack with one inproc:// interface costs"),
        "{text}"
    );
}
