//! Every parser of bytes a supervised program hands the supervisor, behind one
//! entry point for the fuzz target (`fuzz/fuzz_targets/vu_inputs.rs`). Not an
//! API: hidden from the docs.

use std::net::SocketAddr;

use super::inet::{no_route, InetCall, InetSocket};
use super::ioctl::{classify, device_name_only};
use super::msghdr;
use super::netlink::{pack, NlSock, Ports};
use super::procnet::{match_path, may_match};
use super::served::{MemNet, NetDialog};
use super::sockaddr;
use crate::nl::emul;

fn word(b: &[u8], i: usize) -> i32 {
    b.get(i * 4..i * 4 + 4)
        .map_or(0, |w| i32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
}

/// Runs `data` through the parsers of program input: socket addresses, paths,
/// netlink socket calls and options, ioctl images (`struct ifreq`,
/// `struct in6_ifreq`, `struct ifconf` buffers) on an in-memory stack, and the
/// IP socket calls of a stack with no route. The first 12 bytes choose the
/// numbers (option names, ioctl request, lengths), the rest is the memory.
/// Must never panic.
pub fn program_input(data: &[u8]) {
    let (head, mem) = data.split_at(data.len().min(12));
    let (a, b, c) = (word(head, 0), word(head, 1), word(head, 2));
    let _ = sockaddr::family(mem);
    let v4 = sockaddr::parse_inet(mem, libc::AF_INET);
    let v6 = sockaddr::parse_inet(mem, libc::AF_INET6);
    if mem.len() >= sockaddr::SOCKADDR_NL_LEN {
        let _ = sockaddr::parse_nl(mem);
    }
    let _ = match_path(mem);
    let _ = may_match(mem);

    if let Ok((ours, _theirs)) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    ) {
        let mut ports = Ports::default();
        let mut s = NlSock::new(ours, libc::SOCK_RAW, a);
        let _ = s.bind(&mut ports, mem);
        let _ = s.connect(&mut ports, mem);
        let _ = s.setsockopt(b, mem);
        let _ = s.getsockopt(b, c);
        let _ = s.name(a & 1 == 0);
        let _ = s.datagrams(vec![mem.to_vec(), mem.to_vec()]);
        let _ = pack(vec![mem.to_vec()]);
    }

    let mut net = MemNet::netlinktest();
    let request = a as u32;
    let _ = classify(request, b);
    let mut ifr = [0u8; emul::IFREQ_SIZE];
    let k = mem.len().min(ifr.len());
    ifr[..k].copy_from_slice(&mem[..k]);
    device_name_only(&mut ifr);
    let _ = emul::ioctl(&mut NetDialog::new(&mut net), request as u64, &mut ifr);
    let _ = emul::ioctl6(&mut NetDialog::new(&mut net), request as u64, mem);
    let route = if a & 1 == 0 {
        emul::SIOCADDRT
    } else {
        emul::SIOCDELRT
    };
    let dev = (b & 1 == 0).then_some(mem);
    let _ = emul::route_ioctl(&mut NetDialog::new(&mut net), route, mem, dev);
    let mut buf = vec![0u8; (c as u32 % 4096) as usize];
    let _ = emul::ifconf(&mut NetDialog::new(&mut net), Some(&mut buf));

    if let Ok((ours, _theirs)) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    ) {
        let mut sock = InetSocket::new(
            Some(ours),
            0,
            libc::AF_INET,
            libc::SOCK_DGRAM,
            libc::IPPROTO_UDP,
        );
        let addrs: Vec<SocketAddr> = [v4, v6].into_iter().flatten().collect();
        let d = &mut NetDialog::new(&mut net);
        for addr in addrs {
            let _ = no_route(d, &mut sock, InetCall::Bind(addr));
            let _ = no_route(d, &mut sock, InetCall::Connect(Some(addr)));
            let _ = no_route(
                d,
                &mut sock,
                InetCall::SendTo {
                    to: addr,
                    data: mem,
                },
            );
        }
        let _ = no_route(
            d,
            &mut sock,
            InetCall::SetSockOpt {
                level: a,
                name: b,
                value: mem,
            },
        );
        let _ = no_route(d, &mut sock, InetCall::GetSockOpt { level: a, name: b });
        let _ = no_route(d, &mut sock, InetCall::Shutdown(c));
        let _ = no_route(d, &mut sock, InetCall::Listen(c));
        let _ = no_route(d, &mut sock, InetCall::LocalAddr);
        let _ = no_route(d, &mut sock, InetCall::PeerAddr);
    }
    let m = msghdr::parse_msghdr(mem);
    if let Ok(iov) = msghdr::parse_iovecs(mem) {
        let _ = msghdr::scatter(&iov, m.iovlen as usize);
    }
}
