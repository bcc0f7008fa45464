//! The netlink client configures a stack it is not in, through a socket created in
//! that stack: here a second network namespace (what a `Stack` will be), whose
//! NETLINK_ROUTE socket is made by a thread that joined it and then handed over.

mod common;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;

use common::*;
use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use vdestack::nl::{AddrSpec, LinkKind, NlClient, RouteSpec};

/// A NETLINK_ROUTE socket created inside the network namespace of `ns`.
fn netlink_socket_in(ns: File) -> OwnedFd {
    std::thread::spawn(move || {
        // setns() moves only this thread; the socket stays tied to that namespace.
        move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).unwrap();
        socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE is protocol 0
        )
        .unwrap()
    })
    .join()
    .unwrap()
}

sandbox_test! {
    fn client_configures_another_namespace_through_its_socket() {
        let mut holder = Command::new("unshare");
        holder.args(["-n", "sleep", "600"]);
        let other = Proc::spawn(holder);
        let pid = other.child.id();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let ns = File::open(format!("/proc/{pid}/ns/net")).unwrap();

        let nl = NlClient::from_fd(netlink_socket_in(ns));
        let lo = nl.link_index("lo").unwrap();
        nl.link_set_up(lo, true).unwrap();
        let v = nl.link_add("st0", &LinkKind::Veth { peer: "st1".into() }).unwrap();
        nl.link_set_up(v, true).unwrap();
        nl.addr_add(&AddrSpec::new(v, "10.5.0.1".parse().unwrap(), 24)).unwrap();
        nl.route_add(&RouteSpec::default_v4().via("10.5.0.254".parse().unwrap())).unwrap();

        // The other namespace has it all; ours has none of it.
        let inside = |args: &str| {
            let out = Command::new("nsenter")
                .arg("-t").arg(pid.to_string()).arg("-n").arg("ip")
                .args(args.split_whitespace())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert!(inside("addr show dev st0").contains("10.5.0.1/24"));
        assert!(inside("route show").contains("default via 10.5.0.254 dev st0"));
        assert!(inside("link show lo").contains("UP"));
        assert!(!std::path::Path::new("/sys/class/net/st0").exists());
        assert!(NlClient::new().unwrap().link_index("st0").is_err());
    }
}
