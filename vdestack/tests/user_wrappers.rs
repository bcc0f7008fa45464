//! Issue 18's wrappers on user-space stacks: `wirefilter://` delays a user
//! stack's link, and `capture://` records its frames for Debian's tcpdump. Only
//! `inproc://` links: no namespace needed, nothing leaves the process.

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::stacks::{configure, tcp_echo};
use common::{have_tool, output_within, skip, TempDir};
use vdestack::net::IpVersion;
use vdestack::stack::{Backend, Stack};

fn user(url: &str) -> Stack {
    Stack::builder()
        .backend(Backend::User)
        .interface("eth0", url)
        .build()
        .unwrap_or_else(|e| panic!("a user stack on {url}: {e}"))
}

/// Pings `to` from `from` once (retrying while ARP resolves) and returns the
/// round trip of the first reply.
fn ping_rtt(from: &Stack, to: IpAddr, seq: u16) -> Duration {
    let s = from.icmp_socket(IpVersion::V4).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut req = vec![8, 0, 0, 0, 0, 0];
    req.extend_from_slice(&seq.to_be_bytes());
    req.extend_from_slice(b"user wrappers");
    for _ in 0..5 {
        let sent = Instant::now();
        s.send_to(&req, to).unwrap();
        let mut buf = [0u8; 256];
        if let Ok((n, who)) = s.recv_from(&mut buf) {
            assert_eq!((who, buf[0], &buf[8..n]), (to, 0, &b"user wrappers"[..]));
            return sent.elapsed();
        }
    }
    panic!("no echo reply from {to}");
}

/// `wirefilter://[delay=40]{inproc://...}` under one of two user stacks: a
/// ping's round trip crosses the delay twice (each direction is delayed), so
/// it takes at least 80 ms, where the same two stacks without it answer in
/// well under that. (A lower bound: the delay is what the filter is for.)
#[test]
fn wirefilter_delays_a_user_stacks_link() {
    let net = format!("inproc://user-wf-{}", std::process::id());
    let a = user(&format!("wirefilter://[delay=40]{{{net}}}"));
    let b = user(&net);
    configure(&a, "eth0", &[("10.31.0.1", 24)]);
    configure(&b, "eth0", &[("10.31.0.2", 24)]);
    let to: IpAddr = "10.31.0.2".parse().unwrap();
    ping_rtt(&a, to, 1); // ARP resolved
    let rtt = ping_rtt(&a, to, 2);
    assert!(
        rtt >= Duration::from_millis(78),
        "a round trip of {rtt:?} through 2 x 40 ms"
    );
    // TCP still works across the delayed link, byte-exact.
    tcp_echo(
        &b,
        &a,
        "10.31.0.2:7100",
        "user stacks through wirefilter://",
    );
}

/// `capture://FILE{inproc://...}` under a user stack: Debian's tcpdump reads the
/// file and shows each echo request the stack sent and each reply it got.
#[test]
fn capture_records_a_user_stacks_frames_for_tcpdump() {
    const T: &str = "capture_records_a_user_stacks_frames_for_tcpdump";
    if !have_tool(T, "tcpdump") {
        return;
    }
    let dir = TempDir::new("user-capture");
    let file = dir.join_str("user.pcapng");
    let net = format!("inproc://user-cap-{}", std::process::id());
    let a = user(&format!("capture://{file}{{{net}}}"));
    let b = user(&net);
    configure(&a, "eth0", &[("10.32.0.1", 24)]);
    configure(&b, "eth0", &[("10.32.0.2", 24)]);
    let to: IpAddr = "10.32.0.2".parse().unwrap();
    for seq in 1..=3 {
        ping_rtt(&a, to, seq);
    }
    drop(a); // the capture file is complete once its plug is closed
    drop(b);
    let mut c = Command::new("tcpdump");
    c.args(["-n", "-r", &file]).stdin(Stdio::null());
    let out = output_within(c, Duration::from_secs(30)).expect("tcpdump ends");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Couldn't change to") {
        return skip(T, "tcpdump cannot drop its privileges here");
    }
    for seq in 1..=3 {
        for kind in ["echo request", "echo reply"] {
            assert!(
                text.lines()
                    .any(|l| l.contains(kind) && l.contains(&format!("seq {seq},"))),
                "no ICMP {kind} seq {seq} in tcpdump's reading:\n{text}{err}"
            );
        }
    }
    assert!(
        text.contains("ARP"),
        "the stack's ARP exchange is captured too:\n{text}"
    );
}
