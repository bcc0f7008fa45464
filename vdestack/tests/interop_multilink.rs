//! `multi://` and `bonding://` with Debian peers: our `vdestack ns` on a node of
//! ours, two Debian `vde_plug` cables from the node to a Debian `vde_switch`, and a
//! Debian `vdens` on the switch. Our namespace pings the vdens while one cable is
//! killed: the ping goes on over the other. The switch's management console counts
//! what each cable brought in: a multilink sends every frame on both, a bond one
//! frame on each in turn.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::*;

/// The lines a process prints on stdout, as they come.
fn lines_of(p: &mut Proc) -> Receiver<String> {
    let out = p.child.stdout.take().expect("stdout piped");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line containing `what`; returns the lines seen up to it.
fn wait_line(rx: &Receiver<String>, what: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(what);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {what:?} within {within:?}; saw {seen:#?}");
}

/// The `icmp_seq` of a ping reply line.
fn reply_seq(line: &str) -> Option<u32> {
    if !line.contains("bytes from") {
        return None;
    }
    let s = line.split("icmp_seq=").nth(1)?;
    s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Frames each port of a vde_switch received, by the pid in the port's
/// description (`port/allprint` on its management socket).
fn frames_in_by_pid(mgmt: &Path) -> Vec<(u32, u64)> {
    let mut s = UnixStream::connect(mgmt).expect("vde_switch management socket");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"port/allprint\n").unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("1000 Success") {
        let n = s.read(&mut buf).expect("reading the switch's answer");
        assert!(n > 0, "the management console closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let mut out = Vec::new();
    let mut frames = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"IN:") {
            frames = words.get(2).and_then(|w| w.parse().ok());
        }
        if let Some(pid) = line.split("pid=").nth(1) {
            let pid = pid.split_whitespace().next().and_then(|p| p.parse().ok());
            if let (Some(pid), Some(n)) = (pid, frames.take()) {
                out.push((pid, n));
            }
        }
    }
    out
}

fn frames_from(counts: &[(u32, u64)], p: &Proc) -> u64 {
    counts
        .iter()
        .find(|(pid, _)| *pid == p.child.id())
        .map(|c| c.1)
        .unwrap_or_else(|| panic!("no switch port for {}: {counts:?}", p.what))
}

/// A Debian `vde_plug` cable between our node and the switch.
fn cable(node: &Path, switch: &Path) -> Proc {
    let mut c = Command::new("vde_plug");
    c.arg(format!("vde://{}", node.display()))
        .arg(format!("vde://{}", switch.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    Proc::spawn(c)
}

fn ready(test: &str) -> bool {
    have_tool(test, "vdens")
        && have_tool(test, "vde_switch")
        && have_tool(test, "vde_plug")
        && have_tool(test, "ping")
        && have_tun(test)
}

fn multilink(test: &str, scheme: &str) {
    if !ready(test) {
        return;
    }
    let dir = TempDir::new(scheme);
    let (node, sw, mgmt) = (dir.path("node"), dir.path("sw"), dir.path("mgmt"));

    let mut c = Command::new("vde_switch");
    c.arg("-s")
        .arg(&sw)
        .arg("-M")
        .arg(&mgmt)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let _switch = Proc::spawn(c);
    wait_for_switch(&sw);
    wait_for_path(&mgmt);

    // The Debian peer: configured, then waiting. Its output says it is ready.
    let mut c = Command::new("vdens");
    c.arg(format!("vde://{}", sw.display()))
        .args([
            "/bin/sh",
            "-c",
            "ip link set vde0 up && ip addr add 10.77.0.2/24 dev vde0 && echo peer-ready && sleep 120",
        ])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut peer = Proc::spawn(c);
    let peer_out = lines_of(&mut peer);
    wait_line(&peer_out, "peer-ready", Duration::from_secs(30));

    // Our side: the node is this namespace's one interface. Ping once the
    // cables are in (the test says when by creating a file).
    let go = dir.path("go");
    let script = format!(
        "ip link set vde0 up && ip addr add 10.77.0.1/24 dev vde0 && echo ns-ready && \
         while [ ! -e {go} ]; do sleep 0.05; done && \
         ping -n -i 0.2 -c 60 -w 60 10.77.0.2",
        go = go.display()
    );
    let mut c = Command::new(vdestack_bin());
    c.arg("ns")
        .arg(format!("{scheme}://{}", node.display()))
        .args(["/bin/sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut ns = Proc::spawn(c);
    let ns_out = lines_of(&mut ns);
    wait_line(&ns_out, "ns-ready", Duration::from_secs(30));
    wait_for_switch(&node);

    let mut first = cable(&node, &sw);
    let second = cable(&node, &sw);
    // Both cables are ports of the switch before the ping starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = frames_in_by_pid(&mgmt);
        let joined = |p: &Proc| counts.iter().any(|c| c.0 == p.child.id());
        if joined(&first) && joined(&second) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cables never joined: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = frames_in_by_pid(&mgmt);
    std::fs::write(&go, b"").unwrap();

    // Ten requests answered over both cables (a multilink's come twice: each
    // request reached the peer on both), then the first cable dies.
    let mut seqs = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seqs.len() < 10 {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("{scheme}: only {} replies over two cables", seqs.len()));
        if let Ok(l) = ns_out.recv_timeout(left) {
            seqs.extend(reply_seq(&l));
        }
    }
    let during = frames_in_by_pid(&mgmt);
    let on_first = frames_from(&during, &first) - frames_from(&before, &first);
    let on_second = frames_from(&during, &second) - frames_from(&before, &second);
    let killed_after = *seqs.last().unwrap();
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    // The ping goes on: every line to the end of ping's output.
    let rest: Vec<String> = wait_line(&ns_out, "packet loss", Duration::from_secs(90));
    let after: Vec<u32> = rest
        .iter()
        .filter_map(|l| reply_seq(l))
        .filter(|&s| s > killed_after)
        .collect();
    eprintln!(
        "{scheme}: {} replies before the cable was killed (frames in from the cables \
         meanwhile: {on_first} and {on_second}), {} after; ping says: {}",
        seqs.len(),
        after.len(),
        rest.iter().find(|l| l.contains("packet loss")).unwrap()
    );
    assert!(
        after.len() >= 30,
        "{scheme}: the ping did not go on over the second cable: {rest:#?}"
    );

    // What the cables carried while both lived: the ping's requests (and the
    // ARP before them), all on each cable for a multilink, in turn for a bond.
    let total = on_first + on_second;
    match scheme {
        "multi" => {
            assert!(
                on_first >= 10 && on_second >= 10,
                "multi: every request goes on both cables: {on_first} and {on_second}"
            );
            assert!(
                on_first.abs_diff(on_second) <= 2,
                "multi: both cables carry the same frames: {on_first} and {on_second}"
            );
        }
        _ => {
            assert!(total >= 10, "bonding: frames in: {on_first} + {on_second}");
            assert!(
                on_first.abs_diff(on_second) <= 2,
                "bonding: frames alternate between the cables: {on_first} and {on_second}"
            );
        }
    }
    drop(second);
    drop(ns);
    drop(peer);
}

sandbox_test! {
    fn multi_node_keeps_a_ping_to_debian_vdens_while_a_cable_dies() {
        multilink("multi_node_keeps_a_ping_to_debian_vdens_while_a_cable_dies", "multi");
    }
}

sandbox_test! {
    fn bonding_node_alternates_cables_and_survives_one_dying() {
        multilink("bonding_node_alternates_cables_and_survives_one_dying", "bonding");
    }
}
