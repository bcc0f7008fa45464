//! The ioctl and `/proc/net/dev` emulation (`nl::emul`) over our own netlink server:
//! the same code that the kernel dialog drives (tests/nl_emul.rs) configures and
//! reads `MemStack`, a stack that is not the kernel (libnlq's `nlq_server_ioctl` and
//! `nlq_server_proc_net_dev`). No socket, no namespace: all in memory.

use std::net::Ipv4Addr;

use vdestack::error::errno_of;
use vdestack::nl::emul::{self, get_conf};
use vdestack::nl::server::{MemStack, Server};
use vdestack::nl::{nlinline, NlClient};

const IFF_UP: u16 = 0x1;

#[test]
fn ioctls_and_proc_net_dev_over_memstack() {
    let mut d = Server::new(MemStack::new(), 0);
    // Links: lo (down, as in a fresh namespace) and one we add through the server.
    let req = nlinline::build_iplink_add(1, Some("eth0"), 0, "dummy", &[]).unwrap();
    let r = d.process(&req);
    assert_eq!(i32::from_ne_bytes(r[0][16..20].try_into().unwrap()), 0);
    assert_eq!(emul::get_index(&mut d, "lo").unwrap(), 1);
    let eth0 = emul::get_index(&mut d, "eth0").unwrap();
    assert_eq!(emul::get_name(&mut d, eth0).unwrap(), "eth0");
    assert_eq!(
        errno_of(&emul::get_index(&mut d, "nosuch").unwrap_err()),
        libc::ENODEV
    );

    // Flags, MTU, txqlen, MAC: set through the emulation, read back through it.
    let flags = emul::get_flags(&mut d, "eth0").unwrap();
    assert_eq!(flags & IFF_UP, 0);
    emul::set_flags(&mut d, "eth0", flags | IFF_UP).unwrap();
    assert_ne!(emul::get_flags(&mut d, "eth0").unwrap() & IFF_UP, 0);
    emul::set_mtu(&mut d, "eth0", 1400).unwrap();
    assert_eq!(emul::get_mtu(&mut d, "eth0").unwrap(), 1400);
    emul::set_txqlen(&mut d, "eth0", 77).unwrap();
    assert_eq!(emul::get_txqlen(&mut d, "eth0").unwrap(), 77);
    let mac = [0x02, 0, 0, 0, 0x12, 0x34];
    emul::set_hwaddr(&mut d, "eth0", 1, &mac).unwrap();
    assert_eq!(&emul::get_hwaddr(&mut d, "eth0").unwrap().data[..6], &mac);

    // IPv4 addresses: SIOCSIFADDR (classful prefix), then the netmask.
    emul::set_addr(&mut d, "eth0", Ipv4Addr::new(10, 1, 2, 3)).unwrap();
    assert_eq!(
        emul::get_addr(&mut d, "eth0").unwrap(),
        Ipv4Addr::new(10, 1, 2, 3)
    );
    assert_eq!(
        emul::get_netmask(&mut d, "eth0").unwrap(),
        Ipv4Addr::new(255, 0, 0, 0)
    );
    emul::set_netmask(&mut d, "eth0", Ipv4Addr::new(255, 255, 255, 0)).unwrap();
    assert_eq!(
        emul::get_netmask(&mut d, "eth0").unwrap(),
        Ipv4Addr::new(255, 255, 255, 0)
    );
    assert_eq!(
        get_conf(&mut d).unwrap(),
        vec![("eth0".to_string(), Ipv4Addr::new(10, 1, 2, 3))]
    );

    // /proc/net/dev: the kernel's header and one line per link, counters from the
    // stack's statistics.
    let text = emul::proc_net_dev(&mut d).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(text.starts_with(emul::PROC_NET_DEV_HEADER), "{text}");
    assert!(
        lines[2].starts_with("    lo:") && lines[3].starts_with("  eth0:"),
        "{text}"
    );

    // What the emulation did is what our netlink client sees through the same server.
    let (fd, _t) = vdestack::nl::server::spawn_socket(d).unwrap();
    let nl = NlClient::from_fd(fd);
    let link = nl.link(eth0 as u32).unwrap();
    assert_eq!((link.mtu, link.flags & 1), (Some(1400), 1), "{link:?}");
    let addrs = nl.addrs().unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a.addr.to_string() == "10.1.2.3" && a.prefix_len == 24),
        "{addrs:?}"
    );
}
