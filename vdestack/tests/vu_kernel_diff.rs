//! net-tools' and busybox's `route add`/`del` (the `SIOCADDRT`/`SIOCDELRT`
//! ioctls) and what they leave in `ip route`, `route -n` and `/proc/net/route`,
//! run once on a kernel namespace and once under `vdestack vu --stack mem`
//! (vde0 given a carrier, as the kernel's veth has one): the same output, byte
//! for byte, errors included.

mod common;

use std::process::{Command, Stdio};

use common::*;
use vdestack::vu::{MemNet, Vu};

const SCRIPT: &str = "\
ip link set lo up
ip link set vde0 up
ip addr add 10.0.0.1/24 dev vde0
route add default gw 10.0.0.254
route add -net 192.168.9.0 netmask 255.255.255.0 gw 10.0.0.2 metric 5
route add -host 172.16.0.9 dev vde0
route add -net 198.51.100.0/24 reject
route add -net 10.9.0.0 netmask 255.255.0.0 dev vde0 mss 1400 window 5000 irtt 80
route add -net 10.8.0.0 netmask 255.255.0.1 dev vde0 2>&1 | head -1; echo \"bad mask\"
route add -net 10.7.0.0 netmask 255.255.0.0 dev nosuch 2>&1; echo \"no device $?\"
route add -net 10.6.0.0 netmask 255.255.0.0 gw 10.0.0.254 dev vde0; echo \"gateway and device $?\"
route add default gw 10.0.0.254 2>&1; echo \"again $?\"
echo ==; ip route show; echo ==; route -n; echo ==; cat /proc/net/route; echo ==
route del default; echo \"del $?\"
route del -net 192.168.9.0 netmask 255.255.255.0; echo \"del $?\"
route del -net 192.168.9.0 netmask 255.255.255.0 2>&1; echo \"del again $?\"
route del -host 172.16.0.9; echo \"del host $?\"
ip route show
busybox route add -net 10.5.0.0 netmask 255.255.0.0 gw 10.0.0.3; echo \"busybox $?\"
busybox route del -net 10.6.0.0 netmask 255.255.0.0; echo \"busybox del $?\"
busybox route -n
";

sandbox_test! {
    fn route_ioctls_like_the_kernels() {
        const T: &str = "route_ioctls_like_the_kernels";
        for tool in ["ip", "route", "busybox"] {
            if !have_tool(T, tool) {
                return;
            }
        }
        if let Err(e) = vdestack::vu::check_support() {
            return skip(T, &format!("{e}"));
        }
        // The kernel: vde0 is one end of a veth pair whose other end is up; the
        // sandbox's multicast route goes (a fresh namespace has none).
        let _ = Command::new("ip").args(["route", "del", "224.0.0.0/4"]).status();
        ip("link add vde0 type veth peer name vde0p");
        ip("link set vde0p up");
        let kernel = Command::new("/bin/sh")
            .args(["-c", SCRIPT])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let kernel = String::from_utf8_lossy(&kernel.stdout).into_owned();
        // Ours.
        let dir = TempDir::new("vu-routes");
        let out = std::fs::File::create(dir.path("out")).unwrap();
        let mut mem = MemNet::netlinktest();
        mem.stack_mut().set_carrier(2, true).unwrap();
        let mut vu = Vu::new(mem);
        let mut c = Command::new("/bin/sh");
        c.args(["-c", SCRIPT]).stdin(Stdio::null()).stdout(out);
        vu.run(c).unwrap();
        let ours = std::fs::read_to_string(dir.path("out")).unwrap();
        assert!(kernel.contains("192.168.9.0/24 via 10.0.0.2 dev vde0 metric 5"), "{kernel}");
        assert_eq!(ours, kernel);
    }
}
