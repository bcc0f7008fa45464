//! Debian's dnsmasq as the DHCP server of a test: in the foreground in a Debian
//! `vdens` on a Debian `vde_switch` of its own, range 10.79.0.100-150, router
//! 10.79.0.1, DNS server 10.79.0.53, T1 2 s and T2 3 s so renewals come fast,
//! its log and leases in the test's directory.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::vdens::{vdens_run, PeerOutput};
use super::{debian_vde_switch, have_tool, have_tun, wait_for_path, Proc, TempDir};

/// The router dnsmasq announces (its own address on the switch).
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
/// The DNS server dnsmasq announces.
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 53);

/// Whether `a` is in dnsmasq's range.
pub fn in_range(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[..3] == [10, 79, 0] && (100..=150).contains(&o[3])
}

/// Whether dnsmasq can be run here: the Debian tools installed, and
/// `/dev/net/tun` open to us (`vdens` makes a tap). If not, says why.
pub fn can_run(test: &str) -> bool {
    ["dnsmasq", "vdens", "vde_switch"]
        .iter()
        .all(|t| have_tool(test, t))
        && have_tun(test)
}

/// A running dnsmasq and its switch. Dropped without [`Dnsmasq::stop`] (a test
/// that failed), it is told to stop and not waited for.
pub struct Dnsmasq {
    /// The switch's URL, for the stacks under test.
    pub url: String,
    dir: PathBuf,
    peer: Option<JoinHandle<PeerOutput>>,
    _switch: Proc,
}

/// What a stopped dnsmasq printed.
pub struct Ended {
    /// All of it, for failure messages.
    pub out: PeerOutput,
}

impl Ended {
    /// Its log.
    pub fn log(&self) -> &str {
        section(&self.out.stdout, "LOG\n", "LEASES\n")
    }
    /// Its leases file at the end.
    pub fn leases(&self) -> &str {
        section(&self.out.stdout, "LEASES\n", "END\n")
    }
}

fn section<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let rest = text.split_once(from).map_or("", |(_, r)| r);
    rest.split_once(to).map_or(rest, |(s, _)| s)
}

impl Dnsmasq {
    /// Starts a switch in `dir` and dnsmasq on it; returns once dnsmasq serves.
    pub fn start(dir: &TempDir) -> Dnsmasq {
        let sw = dir.path("sw");
        let switch = debian_vde_switch(&sw);
        let url = format!("vde://{}", sw.display());
        let d = dir.0.display();
        // It also stops when `dir` is gone: a test that failed.
        let script = format!(
            "ip link set vde0 up && ip addr add {ROUTER}/24 dev vde0 && \
             dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=vde0 --bind-interfaces \
               --dhcp-range=10.79.0.100,10.79.0.150,255.255.255.0,2m \
               --dhcp-option=option:router,{ROUTER} --dhcp-option=option:dns-server,{DNS} \
               --dhcp-option=option:T1,2 --dhcp-option=option:T2,3 \
               --dhcp-leasefile={d}/leases --log-dhcp --log-facility=- \
               --user=root --group=root --pid-file={d}/dnsmasq.pid > {d}/log 2>&1 & \
             touch {d}/ready; \
             while [ ! -e {d}/stop ] && [ -d {d} ]; do sleep 0.1; done; kill $!; wait; \
             echo LOG; cat {d}/log; echo LEASES; cat {d}/leases; echo END"
        );
        let peer_url = url.clone();
        let peer =
            std::thread::spawn(move || vdens_run(&peer_url, &script, Duration::from_secs(170)));
        let server = Dnsmasq {
            url,
            dir: dir.0.clone(),
            peer: Some(peer),
            _switch: switch,
        };
        wait_for_path(&dir.path("ready"));
        // dnsmasq binds its socket a moment after it starts.
        server.wait_for_log("dnsmasq's start", Duration::from_secs(20), |log| {
            log.contains("DHCP, IP range")
        });
        server
    }

    /// What dnsmasq has logged so far.
    pub fn log_so_far(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Waits up to `t` for `done(log so far)`; panics with `what` and the log.
    pub fn wait_for_log(&self, what: &str, t: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + t;
        loop {
            let log = self.log_so_far();
            if done(&log) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not in dnsmasq's log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops dnsmasq; what it printed.
    pub fn stop(mut self) -> Ended {
        let peer = self.peer.take().expect("a dnsmasq not yet stopped");
        self.tell_stop();
        Ended {
            out: peer.join().expect("the dnsmasq peer thread"),
        }
    }

    fn tell_stop(&self) {
        let _ = std::fs::write(self.dir.join("stop"), "");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if self.peer.is_some() {
            self.tell_stop();
        }
    }
}
