//! Stacks against real peers: the example echo server (libvdestack's README server in
//! Rust) on `vxvde://`, reached by a Debian `vdens vxvde://` peer with `ping` (v4 and
//! v6) and `nc`, exactly the libvdestack tutorial; and the main job, `vdestack demo`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The `echo_server` example, built by `cargo test` next to the test binaries
/// (`VDESTACK_EXAMPLES` names its folder for runs from copied binaries).
fn example(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("VDESTACK_EXAMPLES") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()
            .ok()?
            .parent()?
            .parent()?
            .join("examples"),
    };
    let p = dir.join(name);
    p.is_file().then_some(p)
}

sandbox_test! {
    fn example_echo_server_reached_by_debian_vdens_over_vxvde() {
        const T: &str = "example_echo_server_reached_by_debian_vdens_over_vxvde";
        if !have_tool(T, "vdens") || !have_tool(T, "nc") || !have_tun(T) {
            return;
        }
        let Some(server) = example("echo_server") else {
            return skip(T, "the echo_server example is not built (cargo build --examples)");
        };
        let url = "vxvde://239.76.0.1/port=14790";
        let mut cmd = Command::new(server);
        cmd.args([url, "10.76.1.1/24", "fc00:76::1/64", "--once"]).stdout(Stdio::piped());
        let mut server = Proc::spawn(cmd);
        let mut ready = String::new();
        BufReader::new(server.child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert!(ready.starts_with("echo server on"), "{ready}");

        let script = "ip link set vde0 up && ip addr add 10.76.1.2/24 dev vde0 && \
            ip addr add fc00:76::2/64 dev vde0 nodad && \
            ping -c 2 -i 0.2 -w 20 10.76.1.1 && ping -6 -c 2 -i 0.2 -w 20 fc00:76::1 && \
            echo hello-from-vdens | nc -N -w 10 10.76.1.1 5000";
        let out = common::vdens::vdens_run(url, script, Duration::from_secs(60));
        assert!(out.ok(), "vdens peer failed: {out}");
        let text = &out.stdout;
        assert!(text.contains("2 received"), "{out}");
        assert!(text.lines().any(|l| l == "hello-from-vdens"), "no echo in:\n{out}");
        let st = server.wait_exit(Duration::from_secs(10)).expect("the --once server exits");
        assert!(st.success(), "{st}");
    }
}

sandbox_test! {
    fn main_job_runs_the_echo_over_ipv4_and_ipv6() {
        const T: &str = "main_job_runs_the_echo_over_ipv4_and_ipv6";
        if !have_tun(T) {
            return;
        }
        let out = Command::new(vdestack_bin()).arg("demo").arg("--frames").arg("2000").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(r#"got back "hello over IPv4""#), "{text}");
        assert!(text.contains(r#"got back "hello over IPv6""#), "{text}");
        assert!(text.contains("0 files left behind"), "{text}");
    }
}

sandbox_test! {
    // The classic fork-per-connection server: each accepted connection is handed to a
    // child process (here `cat`, inetd style, the socket as its stdin and stdout),
    // which serves it after the fork.
    fn sockets_work_in_forked_children() {
        const T: &str = "sockets_work_in_forked_children";
        if !have_tun(T) {
            return;
        }
        let net = format!("inproc://fork-{}", std::process::id());
        let server = vdestack::stack::Stack::with_interfaces(&[&net]).unwrap();
        let client = vdestack::stack::Stack::with_interfaces(&[&net]).unwrap();
        for (s, ip) in [(&server, "10.8.0.1"), (&client, "10.8.0.2")] {
            let nl = s.netlink().unwrap();
            let i = nl.link_index("vde0").unwrap();
            nl.link_set_up(i, true).unwrap();
            nl.addr_add(&vdestack::nl::AddrSpec::new(i, ip.parse().unwrap(), 24)).unwrap();
        }
        let listener = server.tcp_listener("10.8.0.1:5000".parse().unwrap()).unwrap();
        for round in 0..3 {
            let mut conn = client.tcp_connect("10.8.0.1:5000".parse().unwrap()).unwrap();
            let (sock, _) = listener.accept().unwrap();
            let fd = std::os::fd::OwnedFd::from(sock);
            let mut child = Command::new("cat")
                .stdin(Stdio::from(fd.try_clone().unwrap()))
                .stdout(Stdio::from(fd))
                .spawn()
                .unwrap();
            let text = format!("round {round}\n");
            std::io::Write::write_all(&mut conn, text.as_bytes()).unwrap();
            conn.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = String::new();
            std::io::Read::read_to_string(&mut conn, &mut back).unwrap();
            assert_eq!(back, text);
            assert!(child.wait().unwrap().success());
        }
    }
}
