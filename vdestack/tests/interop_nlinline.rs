//! Wire parity with the real C nlinline: a C program built against Debian's
//! `nlinline+.h` (package `nlinline-dev`) gets fake socket functions through
//! `NLINLINE_LIB(cap_)`, so every message it would send is printed instead of sent
//! (no socket, no kernel); our pure builders must produce the same bytes.
//!
//! Debian ships nlinline 0.2.2, whose messages equal HEAD's for every call compared
//! here; `iplink_add` (a string in IFLA_INFO_DATA there) and a route without a
//! gateway (0.2.2 always adds RTA_GATEWAY) differ by design and are covered by the
//! byte tables of the unit tests instead (`upstream.md` §3.6).

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{have_tool, skip, TempDir};
use vdestack::nl::nlinline::*;

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <nlinline+.h>
#include <arpa/inet.h>

static const char *label = "";
static int cap_socket(int d, int t, int p) { return 42; }
static int cap_bind(int fd, const struct sockaddr *a, socklen_t l) { return 0; }
static ssize_t cap_send(int fd, const void *buf, size_t len, int flags) {
  const unsigned char *b = buf;
  printf("%s ", label);
  for (size_t i = 0; i < len; i++) printf("%02x", b[i]);
  printf("\n");
  return len;
}
/* Answers everything with an ack (error 0), 36 bytes like nlinline's buffer. */
static ssize_t cap_recv(int fd, void *buf, size_t len, int flags) {
  unsigned char ack[36] = {0};
  struct nlmsghdr *h = (void *) ack;
  h->nlmsg_len = 36; h->nlmsg_type = NLMSG_ERROR; h->nlmsg_seq = 1;
  if (buf == NULL) return 36;
  if (len > 36) len = 36;
  memcpy(buf, ack, len);
  return len;
}
static int cap_close(int fd) { return 0; }
NLINLINE_LIB(cap_)

int main(void) {
  unsigned char mac[6] = {2, 0x76, 0x64, 0, 0, 0x11}, got[6];
  unsigned char a4[4] = {10, 0, 0, 1}, gw4[4] = {10, 0, 0, 254}, net4[4] = {10, 1, 0, 0};
  struct in6_addr a6, net6, gw6;
  inet_pton(AF_INET6, "fd00::1", &a6);
  inet_pton(AF_INET6, "fd01::", &net6);
  inet_pton(AF_INET6, "fe80::1", &gw6);
  label = "if_nametoindex"; cap_if_nametoindex("eth0");
  label = "linksetup"; cap_linksetupdown(2, 1);
  label = "linksetdown"; cap_linksetupdown(2, 0);
  label = "linksetaddr"; cap_linksetaddr(2, mac);
  label = "linkgetaddr"; cap_linkgetaddr(7, got);
  label = "linksetmtu"; cap_linksetmtu(2, 1400);
  label = "ipaddr_add4"; cap_ipaddr_add(AF_INET, a4, 24, 2);
  label = "ipaddr_del6"; cap_ipaddr_del(AF_INET6, &a6, 64, 3);
  label = "iproute_add_default"; cap_iproute_add(AF_INET, NULL, 0, gw4, 0);
  label = "iproute_add_net_dev"; cap_iproute_add(AF_INET, net4, 16, gw4, 3);
  label = "iproute_del6"; cap_iproute_del(AF_INET6, &net6, 64, &gw6, 4);
  label = "iplink_del_name"; cap_iplink_del("v0", 0);
  label = "iplink_del_index"; cap_iplink_del(NULL, 5);
  return 0;
}
"#;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn our_builders_send_what_c_nlinline_sends() {
    const T: &str = "our_builders_send_what_c_nlinline_sends";
    if !have_tool(T, "gcc") {
        return;
    }
    if !std::path::Path::new("/usr/include/nlinline+.h").exists() {
        return skip(T, "Debian's nlinline-dev is not installed (run .ci/run)");
    }
    let dir = TempDir::new("nlinline");
    std::fs::write(dir.path("cap.c"), C_PROGRAM).unwrap();
    let st = Command::new("gcc")
        .args(["-O0", "-w", "-o"])
        .arg(dir.path("cap"))
        .arg(dir.path("cap.c"))
        .status()
        .unwrap();
    assert!(st.success(), "compiling the nlinline capture program");
    let out = Command::new(dir.path("cap")).output().unwrap();
    assert!(out.status.success());
    let sent: HashMap<String, Vec<u8>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), unhex(v)))
        .collect();

    let a6 = "fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let net6 = "fd01::".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let gw6 = "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let gw4 = [10, 0, 0, 254];
    let ours: Vec<(&str, Vec<u8>)> = vec![
        ("if_nametoindex", build_if_nametoindex(1, "eth0").unwrap()),
        ("linksetup", build_linksetupdown(1, 2, true)),
        ("linksetdown", build_linksetupdown(1, 2, false)),
        (
            "linksetaddr",
            build_linksetaddr(1, 2, [2, 0x76, 0x64, 0, 0, 0x11]),
        ),
        ("linkgetaddr", build_linkgetaddr(1, 7)),
        ("linksetmtu", build_linksetmtu(1, 2, 1400)),
        (
            "ipaddr_add4",
            build_ipaddr(1, Op::Add, AF_INET, &[10, 0, 0, 1], 24, 2).unwrap(),
        ),
        (
            "ipaddr_del6",
            build_ipaddr(1, Op::Del, AF_INET6, &a6, 64, 3).unwrap(),
        ),
        (
            "iproute_add_default",
            build_iproute(1, Op::Add, AF_INET, None, 0, Some(&gw4), 0).unwrap(),
        ),
        (
            "iproute_add_net_dev",
            build_iproute(1, Op::Add, AF_INET, Some(&[10, 1, 0, 0]), 16, Some(&gw4), 3).unwrap(),
        ),
        (
            "iproute_del6",
            build_iproute(1, Op::Del, AF_INET6, Some(&net6), 64, Some(&gw6), 4).unwrap(),
        ),
        (
            "iplink_del_name",
            build_iplink_del(1, Some("v0"), 0).unwrap(),
        ),
        ("iplink_del_index", build_iplink_del(1, None, 5).unwrap()),
    ];
    for (name, bytes) in ours {
        let theirs = sent
            .get(name)
            .unwrap_or_else(|| panic!("the C program sent no {name}"));
        assert_eq!(&bytes, theirs, "{name}: ours vs C nlinline");
    }
}
