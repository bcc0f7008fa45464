//! The wrapping and device plugs against Debian's plugins (libvdeplug-vlan, -agno,
//! -vdesl, -pcap): our side in `vdestack ns` or `vdestack plug`, Debian's in
//! `vdens`; peers ping each other. Debian's vdens exits 0 whatever its command did,
//! so every check reads a peer's output (ping's summary line). Everything runs in
//! the test's own network namespace.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Ping's summary: how many replies came back (with `-w`, `-c N` may see more than
/// N when late replies arrive together).
fn received(out: &str, what: &str) -> u32 {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("{what}: no ping summary in\n{out}"));
    line.split(',')
        .find_map(|p| p.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: unreadable summary {line:?}"))
}

/// The output of each ping in `script` (separated by `echo ===`).
fn pings(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .split("===")
        .map(str::to_string)
        .collect()
}

/// `sh -c` script that brings vde0 up with `addr` (a /24), then runs `then`.
fn up(addr: &str, then: &str) -> String {
    format!("ip link set vde0 up && ip addr add {addr}/24 dev vde0 && {then}")
}

/// A peer that stays up (for others to ping): ours or Debian's.
fn idle_peer(ours: bool, url: &str, addr: &str) -> Proc {
    let mut c = peer_cmd(ours, url, &up(addr, "sleep 120"));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    Proc::spawn(c)
}

fn peer_cmd(ours: bool, url: &str, script: &str) -> Command {
    let mut c = if ours {
        let mut c = Command::new(vdestack_bin());
        c.arg("ns");
        c
    } else {
        Command::new("vdens")
    };
    c.arg(url)
        .args(["/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .env("SHELL", "/bin/sh");
    c
}

/// Runs a peer's script to its end; returns what each ping printed. A ping to
/// `(address, true)` sends 3 and waits up to 20 s for them (a peer started
/// beside it on a loaded machine may take that long: seen once, none of 26 pings
/// in 10 s answered as `nobody` during CI); to `(address, false)`
/// (expected to go unanswered) sends 2 and waits 2 s.
fn pinging_peer(ours: bool, url: &str, addr: &str, pings_to: &[(&str, bool)]) -> Vec<String> {
    let script: Vec<String> = pings_to
        .iter()
        .map(|(to, answered)| {
            let (count, wait) = if *answered { (3, 20) } else { (2, 2) };
            format!("ping -c {count} -i 0.2 -w {wait} {to}; echo ===")
        })
        .collect();
    let c = peer_cmd(ours, url, &up(addr, &script.join("; ")));
    let out = output_within(c, Duration::from_secs(60)).expect("the pinging peer hung");
    let p = pings(&out);
    assert!(
        p.len() > pings_to.len(),
        "{url}: the script stopped early; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

fn ready(test: &str) -> bool {
    have_tool(test, "vdens")
        && have_tool(test, "vde_switch")
        && have_tool(test, "ping")
        && have_tun(test)
}

fn debian_plugin(test: &str, name: &str) -> bool {
    let found = [
        "/usr/lib/x86_64-linux-gnu/vdeplug",
        "/usr/lib/vdeplug",
        "/usr/lib/aarch64-linux-gnu/vdeplug",
    ]
    .iter()
    .any(|d| {
        std::path::Path::new(d)
            .join(format!("libvdeplug_{name}.so"))
            .exists()
    });
    if !found {
        skip(
            test,
            &format!("Debian's libvdeplug-{name} is not installed (run .ci/run)"),
        );
    }
    found
}

fn our_hub(dir: &std::path::Path) -> Proc {
    let mut c = Command::new(vdestack_bin());
    c.arg("hub")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = Proc::spawn(c);
    wait_for_switch(dir);
    p
}

sandbox_test! {
    fn vlan_peers_of_one_vlan_meet_over_a_hub_and_others_do_not() {
        const T: &str = "vlan_peers_of_one_vlan_meet_over_a_hub_and_others_do_not";
        if !ready(T) || !debian_plugin(T, "vlan") {
            return;
        }
        let dir = TempDir::new("vlan");
        let hub = dir.path("hub");
        let _hub = our_hub(&hub);
        let on = |vid: &str| format!("vlan://{vid}{{vde://{}}}", hub.display());
        // VLAN 5: ours and Debian's; VLAN 6 (same subnet): ours; untagged: Debian's.
        let _a = idle_peer(true, &on("5"), "10.75.0.1");
        let _c = idle_peer(true, &on("6"), "10.75.0.3");
        let _d = idle_peer(false, &format!("vde://{}", hub.display()), "10.75.0.4");
        let b = pinging_peer(
            false,
            &on("5"),
            "10.75.0.2",
            &[("10.75.0.1", true), ("10.75.0.3", false), ("10.75.0.4", false)],
        );
        assert!(received(&b[0], "VLAN 5: Debian to ours") >= 3, "{}", b[0]);
        assert_eq!(received(&b[1], "VLAN 5 to VLAN 6"), 0, "{}", b[1]);
        assert_eq!(received(&b[2], "VLAN 5 to untagged"), 0, "{}", b[2]);
        // Ours on VLAN 6 reaches only VLAN 6; a second of ours on VLAN 5 (written
        // in the man page's bracket form) reaches VLAN 5.
        let c2 = pinging_peer(true, &on("6"), "10.75.0.6", &[("10.75.0.1", false), ("10.75.0.3", true)]);
        assert_eq!(received(&c2[0], "VLAN 6 to VLAN 5"), 0, "{}", c2[0]);
        assert!(received(&c2[1], "VLAN 6 to VLAN 6") >= 3, "{}", c2[1]);
        let a2 = pinging_peer(
            true,
            &format!("vlan://5[trunk]{{vde://{}}}", hub.display()),
            "10.75.0.5",
            &[("10.75.0.1", true), ("10.75.0.2", false)],
        );
        assert!(received(&a2[0], "VLAN 5: ours to ours") >= 3, "{}", a2[0]);
        // 10.75.0.2 has gone (its script ended); nobody answers for it.
        assert_eq!(received(&a2[1], "VLAN 5: to a peer that left"), 0, "{}", a2[1]);
    }
}

/// Writes a key file (32 hex digits) and returns its path.
fn key_file(dir: &TempDir, name: &str, hex: &str) -> String {
    let p = dir.join_str(name);
    std::fs::write(&p, format!("{hex}\n")).unwrap();
    p
}

sandbox_test! {
    fn agno_peers_with_one_key_meet_and_others_do_not() {
        const T: &str = "agno_peers_with_one_key_meet_and_others_do_not";
        if !ready(T) || !debian_plugin(T, "agno") {
            return;
        }
        let dir = TempDir::new("agno");
        // An uppercase A: both implementations must read it the same (wrong) way.
        let key = key_file(&dir, "key", "00112233445566778899Aabbccddeeff");
        let wrong = key_file(&dir, "wrong", "00112233445566778899aabbccddeeff");
        let sw = dir.path("sw");
        let _sw = debian_vde_switch(&sw);
        let net = format!("vde://{}", sw.display());
        for (ethtype, subnet) in [("", "10.76.1"), ("[ethtype=ipv4]", "10.76.2")] {
            let url = |k: &str| format!("agno://{k}{ethtype}{{{net}}}");
            let ip = |h: u8| format!("{subnet}.{h}");
            let _a = idle_peer(true, &url(&key), &ip(1));
            let _c = idle_peer(false, &url(&wrong), &ip(3));
            let _d = idle_peer(false, &net, &ip(4));
            let b = pinging_peer(false, &url(&key), &ip(2), &[(&ip(1), true), (&ip(3), false), (&ip(4), false)]);
            assert!(received(&b[0], "Debian to ours, one key") >= 3, "{ethtype}: {}", b[0]);
            assert_eq!(received(&b[1], "to a wrong key"), 0, "{ethtype}: {}", b[1]);
            assert_eq!(received(&b[2], "to a plain peer"), 0, "{ethtype}: {}", b[2]);
            let e = pinging_peer(true, &url(&wrong), &ip(5), &[(&ip(1), false), (&ip(3), true)]);
            assert_eq!(received(&e[0], "ours, wrong key, to ours"), 0, "{ethtype}: {}", e[0]);
            assert!(received(&e[1], "ours to Debian, one (wrong) key") >= 3, "{ethtype}: {}", e[1]);
            let p = pinging_peer(true, &net, &ip(6), &[(&ip(1), false)]);
            assert_eq!(received(&p[0], "plain to ours"), 0, "{ethtype}: {}", p[0]);
        }
    }
}

/// A pty whose slave is set raw, as the plugins set it (so that nothing a side
/// sends before the other end opened its device is echoed or translated): its
/// master, its slave's path, and the slave kept open (a master whose slave has no
/// open fd reads EIO, and the pty goes away with its master).
fn raw_pty() -> (std::os::fd::OwnedFd, String, std::os::fd::OwnedFd) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let slave = rustix::fs::open(
        name.as_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut t = rustix::termios::tcgetattr(&slave).unwrap();
    t.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t).unwrap();
    (master, name, slave)
}

/// Copies bytes from one pty master to the other for as long as the test runs: a
/// null-modem cable between the two slaves.
fn null_modem(
    from: std::sync::Arc<std::os::fd::OwnedFd>,
    to: std::sync::Arc<std::os::fd::OwnedFd>,
) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = match rustix::io::read(&*from, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut done = 0;
            while done < n {
                match rustix::io::write(&*to, &buf[done..n]) {
                    Ok(k) => done += k,
                    Err(_) => return,
                }
            }
        }
    });
}

sandbox_test! {
    fn vdesl_carries_a_ping_between_debian_and_ours_over_a_pty_pair() {
        const T: &str = "vdesl_carries_a_ping_between_debian_and_ours_over_a_pty_pair";
        if !ready(T) || !debian_plugin(T, "vdesl") {
            return;
        }
        if !std::path::Path::new("/dev/ptmx").exists() {
            return skip(T, "no /dev/ptmx");
        }
        let (m1, s1, _keep1) = raw_pty();
        let (m2, s2, _keep2) = raw_pty();
        let (m1, m2) = (std::sync::Arc::new(m1), std::sync::Arc::new(m2));
        null_modem(m1.clone(), m2.clone());
        null_modem(m2, m1);
        let _ours = idle_peer(true, &format!("vdesl://{s2}[speed=115200]"), "10.77.0.1");
        let d = pinging_peer(false, &format!("vdesl://{s1}[speed=115200]"), "10.77.0.2", &[("10.77.0.1", true)]);
        assert!(received(&d[0], "Debian to ours over vdesl") >= 3, "{}", d[0]);
    }
}

sandbox_test! {
    fn pcap_joins_a_veth_to_a_switch() {
        const T: &str = "pcap_joins_a_veth_to_a_switch";
        if !ready(T) || !have_tool(T, "nc") {
            return;
        }
        // A veth pair in the test's namespace: the far end has an address, the near
        // end is the plug's.
        ip("link add vp0 type veth peer name vp1");
        ip("link set vp0 up");
        ip("link set vp1 up");
        ip("addr add 10.78.0.1/24 dev vp1");
        let dir = TempDir::new("pcap");
        let sw = dir.path("sw");
        let _sw = debian_vde_switch(&sw);
        let mut c = Command::new(vdestack_bin());
        c.arg("plug").arg("pcap://vp0").arg(format!("vde://{}", sw.display()));
        let mut plug = Proc::spawn(c);
        std::thread::sleep(Duration::from_millis(200));
        assert!(plug.child.try_wait().unwrap().is_none(), "vdestack plug pcap://vp0 exited");
        // A TCP stream from behind the veth: its frames come with checksums still to
        // compute and as large segments, which the plug must complete and cut.
        const BYTES: usize = 300_000;
        let mut nc = Command::new("sh");
        nc.args(["-c", &format!("head -c {BYTES} /dev/zero | nc -N -l 10.78.0.1 5078")]);
        nc.stdout(Stdio::null()).stderr(Stdio::null());
        let _server = Proc::spawn(nc);
        let d = pinging_peer(
            false,
            &format!("vde://{}", sw.display()),
            "10.78.0.2",
            &[("10.78.0.1", true)],
        );
        assert!(received(&d[0], "vdens to the veth's far end") >= 3, "{}", d[0]);
        let c = peer_cmd(
            false,
            &format!("vde://{}", sw.display()),
            &up("10.78.0.3", "nc -w 10 10.78.0.1 5078 </dev/null | wc -c"),
        );
        let out = output_within(c, Duration::from_secs(60)).expect("the TCP peer hung");
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.trim(), BYTES.to_string(), "bytes over TCP through pcap://; stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
}
