//! The `/proc/net` generators on the rtnetlink dumps of a real namespace,
//! against that namespace's own files (`tests/fixtures/procnet/capture.sh`).

use std::io;

use super::super::dialog::Dialog;
use super::super::wire::{self, Builder};
use super::*;

fn hex_lines(s: &str) -> Vec<Vec<u8>> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// Replays the captured dumps: each dump request gets the captured messages of
/// its type and family, then `NLMSG_DONE`.
struct Replay {
    links: Vec<Vec<u8>>,
    addrs6: Vec<Vec<u8>>,
    routes4: Vec<Vec<u8>>,
    routes6: Vec<Vec<u8>>,
}

impl Replay {
    fn captured() -> Self {
        let dir = |f: &str| match f {
            "links" => include_str!("../../../tests/fixtures/procnet/links.hex"),
            "addrs6" => include_str!("../../../tests/fixtures/procnet/addrs6.hex"),
            "routes4" => include_str!("../../../tests/fixtures/procnet/routes4.hex"),
            _ => include_str!("../../../tests/fixtures/procnet/routes6.hex"),
        };
        Replay {
            links: hex_lines(dir("links")),
            addrs6: hex_lines(dir("addrs6")),
            routes4: hex_lines(dir("routes4")),
            routes6: hex_lines(dir("routes6")),
        }
    }
}

impl Dialog for Replay {
    fn dialog(&mut self, req: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let kind = u16::from_ne_bytes([req[4], req[5]]);
        let family = req[16] as i32;
        let mut out = match (kind, family) {
            (wire::RTM_GETLINK, _) => self.links.clone(),
            (wire::RTM_GETADDR, libc::AF_INET6) => self.addrs6.clone(),
            (wire::RTM_GETROUTE, libc::AF_INET) => self.routes4.clone(),
            (wire::RTM_GETROUTE, libc::AF_INET6) => self.routes6.clone(),
            _ => Vec::new(),
        };
        out.push(
            Builder::new(wire::NLMSG_DONE, wire::NLM_F_MULTI, 0)
                .raw(&0i32.to_ne_bytes())
                .finish(),
        );
        Ok(out)
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn route_is_the_kernels() {
    let want = include_str!("../../../tests/fixtures/procnet/route");
    let got = text(proc_net_route(&mut Replay::captured()).unwrap());
    assert_eq!(got, want);
}

#[test]
fn ipv6_route_is_the_kernels_but_for_reference_counts() {
    let want: String = include_str!("../../../tests/fixtures/procnet/ipv6_route")
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(' ').collect();
            // The 7th field is the route's reference count.
            f[6] = "00000001";
            f.join(" ") + "\n"
        })
        .collect();
    let got = text(proc_net_ipv6_route(&mut Replay::captured()).unwrap());
    assert_eq!(got, want);
}

#[test]
fn if_inet6_has_the_kernels_lines() {
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    let want = include_str!("../../../tests/fixtures/procnet/if_inet6");
    let got = text(proc_net_if_inet6(&mut Replay::captured()).unwrap());
    assert!(got.ends_with('\n'));
    assert_eq!(sorted(&got), sorted(want));
}

#[test]
fn empty_stack_files() {
    let mut none = Replay {
        links: Vec::new(),
        addrs6: Vec::new(),
        routes4: Vec::new(),
        routes6: Vec::new(),
    };
    assert_eq!(proc_net_if_inet6(&mut none).unwrap(), b"");
    let route = text(proc_net_route(&mut none).unwrap());
    assert_eq!(route.lines().count(), 1);
    assert_eq!(route.len(), 128);
    let v6 = text(proc_net_ipv6_route(&mut none).unwrap());
    // main's and local's null entries.
    assert_eq!(v6.lines().count(), 2);
    assert!(v6.lines().all(|l| l.ends_with("00200200       lo")));
}
