//! `capture://` read by Debian's tcpdump: a stack pings a Debian `vdens` through
//! `capture://FILE{vde://SW}` (pcapng and pcap), and a `vdestack plug` cable with
//! `capture://-` on its stdout piped into `tcpdump -r -`; tcpdump shows every
//! echo request and reply. (tcpdump cannot filter a saved file by direction; the
//! pcapng direction flags are checked by the plug's unit tests.)

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::vdens::vdens_run;
use common::*;
use vdestack::stack::Stack;

const PINGS: usize = 5;

/// A Debian vdens on `switch` at 10.78.0.2, up (the file `up` exists) until the
/// file `stop` exists.
fn peer(switch: &str, up: &str, stop: &str) -> std::thread::JoinHandle<common::vdens::PeerOutput> {
    let url = format!("vde://{switch}");
    let script = format!(
        "ip link set vde0 up && ip addr add 10.78.0.2/24 dev vde0 && echo UP && touch {up} && \
         while [ ! -e {stop} ]; do sleep 0.1; done"
    );
    let p = std::thread::spawn(move || vdens_run(&url, &script, Duration::from_secs(150)));
    wait_for_path(std::path::Path::new(up));
    p
}

/// Pings the peer from a stack on `url`; asserts every ping came back.
fn ping(url: &str) {
    let stack = Stack::with_interfaces(&[url]).unwrap();
    let script = format!(
        "ip link set vde0 up && ip addr add 10.78.0.1/24 dev vde0 && \
         ping -n -c {PINGS} -i 0.2 -W 5 10.78.0.2"
    );
    let mut c = stack.command("sh");
    c.args(["-c", &script]);
    let out = output_within(c, Duration::from_secs(60)).expect("ping ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{PINGS} received")),
        "ping through {url}:\n{text}"
    );
}

/// tcpdump's reading of a capture (`-` reads stdin).
fn tcpdump(file: &str, stdin: Stdio) -> String {
    tcpdump_output(file, stdin).0
}

/// tcpdump's reading of a capture, and its stderr.
fn tcpdump_output(file: &str, stdin: Stdio) -> (String, String) {
    let mut c = Command::new("tcpdump");
    c.args(["-n", "-r", file]).stdin(stdin);
    let out = output_within(c, Duration::from_secs(30)).expect("tcpdump ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("tcpdump -r {file}:\n{text}{err}");
    (text, err)
}

fn count(text: &str, what: &str) -> usize {
    text.lines().filter(|l| l.contains(what)).count()
}

/// Every echo request and reply of the pings, with their sequence numbers.
fn assert_all_pings(text: &str) {
    for seq in 1..=PINGS {
        for kind in ["echo request", "echo reply"] {
            assert!(
                text.lines()
                    .any(|l| l.contains(kind) && l.contains(&format!("seq {seq},"))),
                "no ICMP {kind} seq {seq} in:\n{text}"
            );
        }
    }
    assert_eq!(count(text, "ICMP echo request"), PINGS, "{text}");
    assert_eq!(count(text, "ICMP echo reply"), PINGS, "{text}");
}

sandbox_test! {
    fn tcpdump_reads_every_echo_of_a_captured_ping() {
        const T: &str = "tcpdump_reads_every_echo_of_a_captured_ping";
        if !(have_tool(T, "tcpdump") && have_tool(T, "vdens") && have_tool(T, "vde_switch")
            && have_tool(T, "ping") && have_tun(T))
        {
            return;
        }
        let dir = TempDir::new("capture");
        let sw = dir.join_str("sw");
        let sw2 = dir.join_str("sw2");
        let _sw = debian_vde_switch(dir.path("sw").as_path());
        let _sw2 = debian_vde_switch(dir.path("sw2").as_path());
        let stop = dir.join_str("stop");
        let p = peer(&sw, &dir.join_str("up"), &stop);

        // A file, pcapng: every echo, requests outbound and replies inbound.
        let ng = dir.join_str("ping.pcapng");
        ping(&format!("capture://{ng}{{vde://{sw}}}"));
        let (text, err) = tcpdump_output(&ng, Stdio::null());
        if err.contains("Couldn't change to") {
            // Root of a user namespace (the unprivileged run): tcpdump insists on
            // becoming another user (its own, or root with -Z), which is not mapped.
            std::fs::write(&stop, "").unwrap();
            let _ = p.join();
            return skip(T, "tcpdump cannot drop its privileges in a user namespace");
        }
        assert_all_pings(&text);
        // Classic pcap.
        let classic = dir.join_str("ping.pcap");
        ping(&format!("capture://{classic}{{vde://{sw}}}"));
        assert_all_pings(&tcpdump(&classic, Stdio::null()));

        // Standard output, piped into `tcpdump -r -`, from a cable between the
        // switches; the stack is on the other switch.
        let mut cable = Command::new(vdestack_bin());
        cable
            .arg("plug")
            .arg(format!("capture://-{{vde://{sw2}}}"))
            .arg(format!("vde://{sw}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut cable = Proc::spawn(cable);
        let pipe = cable.child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || tcpdump("-", Stdio::from(pipe)));
        std::thread::sleep(Duration::from_millis(300));
        ping(&format!("vde://{sw2}"));
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&cable.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        assert!(cable.wait_exit(Duration::from_secs(5)).is_some(), "the cable ends on SIGTERM");
        assert_all_pings(&reader.join().unwrap());

        std::fs::write(&stop, "").unwrap();
        let out = p.join().unwrap();
        assert!(out.stdout.contains("UP"), "{out}");
    }
}

sandbox_test! {
    fn an_unwritable_capture_file_is_a_clear_error() {
        let e = match vdestack::vde::open("capture:///no/such/dir/x.pcapng{null://}") {
            Ok(_) => panic!("an unwritable file accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("/no/such/dir/x.pcapng"), "{e}");
        // And through the command line.
        let mut c = Command::new(vdestack_bin());
        c.args(["plug", "capture:///no/such/dir/x.pcapng{null://}", "null://"]);
        let out = output_within(c, Duration::from_secs(20)).unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("/no/such/dir/x.pcapng"), "{err}");
        let mut c = Command::new(vdestack_bin());
        c.args(["plug", "wirefilter://[loss=150]{null://}", "null://"]);
        let out = output_within(c, Duration::from_secs(20)).unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("loss") && err.contains("150"), "{err}");
        let mut c = Command::new(vdestack_bin());
        c.args(["plug", "wirefilter://[delay=-1]{null://}", "null://"]);
        let out = output_within(c, Duration::from_secs(20)).unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("delay") && err.contains("-1"), "{err}");
    }
}
