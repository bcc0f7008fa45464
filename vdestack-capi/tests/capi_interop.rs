//! C programs of our own, built against Debian's libvdestack and against ours, serve
//! a fork-per-connection TCP echo on `vxvde://` (multicast on the sandbox's `lo`);
//! a Debian `vdens vxvde://` peer pings them (IPv4 and IPv6) and holds one echo
//! connection open while a second one is served, which only a server that hands
//! each connection to a forked child can do. One program configures its stack with
//! `vde_stackcmd` + `ip`, the other with Debian's nlinline+ (`NLINLINE_LIBMULTICOMP`)
//! over netlink sockets made by `vde_msocket`.

#[path = "../../vdestack/tests/common/mod.rs"]
mod common;

mod capi;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use capi::{have_c_toolchain, Built, Lib};
use common::*;

const PROGRAMS: [&str; 2] = ["echo_stackcmd", "echo_nlinline"];

/// The peer's script (run by `sh` in `vdens`): ping both addresses (each must get 2
/// replies), then echo: the first connection (IPv4) stays open, fed from a fifo,
/// while the second (IPv6) is served; then the first is finished. Prints a line
/// per ping and the echoes (ping's own output goes to stderr).
fn peer_script(net: u8, fifo: &str) -> String {
    format!(
        "set -e
ip link set vde0 up
ip addr add 10.79.{net}.2/24 dev vde0
ip addr add fc00:79:{net}::2/64 dev vde0 nodad
ping -c 2 -i 0.2 -w 20 10.79.{net}.1 >&2
echo ping4-ok
ping -6 -c 2 -i 0.2 -w 20 fc00:79:{net}::1 >&2
echo ping6-ok
mkfifo {fifo}
nc -N -w 10 10.79.{net}.1 5000 <{fifo} >{fifo}.first &
exec 3>{fifo}
echo first-open >&3
echo second-while-first-open | nc -N -w 10 fc00:79:{net}::1 5000
echo first-done >&3
exec 3>&-
wait
cat {fifo}.first
"
    )
}

/// Runs `program` (built against `built.lib`) on its own vxvde network `net` and
/// has a Debian vdens peer talk to it.
fn serve_and_reach(built: &Built, program: &str, net: u8) {
    let what = format!("{program} ({})", built.lib.name());
    built.assert_loads_its_library(program);
    let url = format!("vxvde://239.79.0.{net}/port={}", 14800 + net as u32);
    let mut cmd = built.command(program);
    cmd.args([
        url.as_str(),
        &format!("10.79.{net}.1/24"),
        &format!("fc00:79:{net}::1/64"),
    ])
    .stdout(Stdio::piped());
    let mut server = Proc::spawn(cmd);
    let mut ready = String::new();
    BufReader::new(server.child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n", "{what} did not start");

    let dir = TempDir::new("capi-peer");
    let script = dir.path("peer.sh");
    std::fs::write(&script, peer_script(net, &dir.join_str("fifo"))).unwrap();
    let out = Command::new("vdens")
        .arg(&url)
        .arg("/bin/sh")
        .arg(&script)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: vdens peer failed: {}\n{text}\n{err}",
        out.status
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "ping4-ok",
            "ping6-ok",
            "second-while-first-open",
            "first-open",
            "first-done"
        ],
        "{what}: pings, then the echoes (the second connection is served while the \
         first is open)\n{err}"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "{what}: the server died"
    );
}

fn run(test: &str, lib: Lib, first_net: u8) {
    if !have_c_toolchain(test)
        || !have_tool(test, "vdens")
        || !have_tool(test, "nc")
        || !have_tool(test, "ping")
        || !have_tun(test)
    {
        return;
    }
    let Some(built) = Built::new(test, lib, &PROGRAMS) else {
        return;
    };
    for (i, program) in PROGRAMS.iter().enumerate() {
        serve_and_reach(&built, program, first_net + i as u8);
    }
}

sandbox_test! {
    fn debian_libvdestack_echo_servers_reached_by_vdens() {
        run("debian_libvdestack_echo_servers_reached_by_vdens", Lib::Debian, 1);
    }
}

sandbox_test! {
    fn our_libvdestack_echo_servers_reached_by_vdens() {
        run("our_libvdestack_echo_servers_reached_by_vdens", Lib::Ours, 3);
    }
}
