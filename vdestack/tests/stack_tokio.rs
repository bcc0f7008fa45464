//! The `tokio` feature: an async plug, and the `tokio_echo` example reached by a
//! Debian `vdens` peer over `vxvde://` (ping, then an `nc` echo, IPv4 and IPv6).
//! Async TCP and UDP between two stacks, on both backends: `both_backends.rs`
//! (`tokio_sockets`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use vdestack::vde::Recv;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

sandbox_test! {
    fn an_async_plug_awaits_frames() {
        runtime().block_on(async {
            let mut rx = vdestack::tokio::AsyncPlug::new(vdestack::vde::open("inproc://tokio-plug/hub").unwrap()).unwrap();
            let mut tx = vdestack::vde::open("inproc://tokio-plug/hub").unwrap();
            let frame: Vec<u8> = (0..60u8).collect();
            let sender = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tx.send(&frame).unwrap();
                tx
            });
            let mut buf = vec![0u8; vdestack::vde::MAX_FRAME];
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv(&mut buf))
                .await
                .expect("a frame within 10 s")
                .unwrap();
            assert_eq!(got, Recv::Frame(60));
            assert_eq!(&buf[..60], &(0..60u8).collect::<Vec<_>>()[..]);
            drop(sender.await.unwrap());
            // Sending is not async: a plug never blocks.
            assert_eq!(rx.send(&[0u8; 60]).unwrap(), 60);
            drop(rx.into_inner());
        });
    }
}

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
    fn tokio_echo_reached_by_debian_vdens_over_vxvde() {
        const T: &str = "tokio_echo_reached_by_debian_vdens_over_vxvde";
        if !have_tool(T, "vdens") || !have_tool(T, "nc") || !have_tun(T) {
            return;
        }
        let Some(server) = example("tokio_echo") else {
            return skip(T, "the tokio_echo example is not built (cargo build --examples --features tokio)");
        };
        let url = "vxvde://239.76.0.2/port=14791";
        let mut cmd = Command::new(server);
        cmd.args([url, "10.77.1.1/24", "fc00:77::1/64"]).stdout(Stdio::piped());
        let mut server = Proc::spawn(cmd);
        let mut ready = String::new();
        BufReader::new(server.child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert!(ready.starts_with("tokio echo server on"), "{ready}");

        let script = "ip link set vde0 up && ip addr add 10.77.1.2/24 dev vde0 && \
            ip addr add fc00:77::2/64 dev vde0 nodad && \
            ping -c 2 -i 0.2 -w 20 10.77.1.1 && ping -6 -c 2 -i 0.2 -w 20 fc00:77::1 && \
            echo hello-v4 | nc -N -w 10 10.77.1.1 5000 && \
            echo hello-v6 | nc -N -w 10 fc00:77::1 5000";
        let out = output_within(
            {
                let mut c = Command::new("vdens");
                c.args([url, "/bin/sh", "-c", script])
                    .env("SHELL", "/bin/sh")
                    .stdin(Stdio::null());
                c
            },
            Duration::from_secs(90),
        )
        .expect("the vdens peer finishes");
        // vdens exits 0 whatever its command did: its output says what happened.
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(text.matches("2 received").count(), 2, "pings v4 and v6:\n{text}\n{err}");
        assert!(text.lines().any(|l| l == "hello-v4"), "no v4 echo in:\n{text}\n{err}");
        assert!(text.lines().any(|l| l == "hello-v6"), "no v6 echo in:\n{text}\n{err}");
        assert!(server.child.try_wait().unwrap().is_none(), "the server still serves");
    }
}
