//! The end-to-end check with real Debian peers: a Debian `vdens` joined to our
//! `vdestack switch`, and a Debian `vdens` joined to a Debian `vde_switch`, with our
//! `vdestack plug` cable between the two switches: they ping each other (IPv4 and
//! IPv6). Everything runs inside the test's private network namespace; the vdens
//! namespaces are nested in it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Starts a `vdens` on `url` running `script` in `sh -c`.
fn vdens(url: &str, script: &str) -> Proc {
    let mut c = Command::new("vdens");
    c.arg(url)
        .args(["/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .env("SHELL", "/bin/sh");
    Proc::spawn(c)
}

fn sandbox_ready(test: &str) -> bool {
    have_tool(test, "vdens")
        && have_tool(test, "vde_switch")
        && have_tool(test, "ping")
        && have_tun(test)
}

sandbox_test! {
    fn debian_vdens_ping_across_our_switch_and_cable() {
        const T: &str = "debian_vdens_ping_across_our_switch_and_cable";
        if !sandbox_ready(T) {
            return;
        }
        let dir = TempDir::new("vdens");
        let ours = dir.path("ours");
        let theirs = dir.path("theirs");

        let mut sw = Command::new(vdestack_bin());
        sw.arg("switch").arg(&ours).stderr(Stdio::null());
        let mut our_switch = Proc::spawn(sw);
        wait_for_switch(&ours);
        let _their_switch = debian_vde_switch(&theirs);

        let mut cable = Command::new(vdestack_bin());
        cable
            .arg("plug")
            .arg(format!("vde://{}", ours.display()))
            .arg(format!("vde://{}", theirs.display()));
        let mut cable = Proc::spawn(cable);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            cable.child.try_wait().unwrap().is_none(),
            "the cable between the switches exited early"
        );

        let up = "ip link set vde0 up && ip addr add";
        let _a = vdens(
            &format!("vde://{}", ours.display()),
            &format!("{up} 10.76.0.1/24 dev vde0 && ip addr add fd76::1/64 dev vde0 nodad && sleep 60"),
        );
        // Judged by its output: Debian vdens exits 0 whatever its command did.
        let b = common::vdens::vdens_run(
            &format!("vde://{}", theirs.display()),
            &format!(
                "{up} 10.76.0.2/24 dev vde0 && ip addr add fd76::2/64 dev vde0 nodad && \
                 ping -c 3 -i 0.2 -w 20 10.76.0.1 && ping -6 -c 3 -i 0.2 -w 20 fd76::1"
            ),
            Duration::from_secs(60),
        );
        assert!(b.ok(), "ping between the two vdens failed: {b}");
        // Both pings (v4, v6) got their 3 replies (more were sent if the first
        // waited for address resolution).
        let received: Vec<u32> = b
            .stdout
            .lines()
            .filter_map(|l| l.split(" packets transmitted, ").nth(1))
            .filter_map(|r| r.split(' ').next()?.parse().ok())
            .collect();
        assert!(received.len() == 2 && received.iter().all(|&n| n >= 3), "{b}");

        // Stopping our switch ends the cable cleanly (its port closed), and SIGTERM
        // makes the switch remove its directory.
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&our_switch.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let st = our_switch.wait_exit(Duration::from_secs(5)).expect("switch exits on SIGTERM");
        assert!(st.success(), "switch exit status {st}");
        assert!(!ours.exists(), "the switch left {} behind", ours.display());
        let st = cable.wait_exit(Duration::from_secs(5)).expect("cable ends when a switch goes");
        assert!(st.success(), "cable exit status {st}");
    }
}
