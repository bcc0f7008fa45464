//! Odd datagrams (empty, shorter than a header, a header of length 0) sent to the
//! Linux kernel's rtnetlink and to our server: both answer none of them and serve
//! the next request. A supervisor of unmodified programs hands our server whatever
//! those programs send, so it must take such bytes as the kernel does.

mod common;

use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{self, RecvFlags, SendFlags};
use vdestack::nl::nlinline;
use vdestack::nl::server::{spawn_socket, MemStack, Server};
use vdestack::nl::wire::{split, NLMSG_ERROR};

/// The odd datagrams, in order, then a request (link 1 up, seq 77, with an ACK).
fn junk() -> Vec<Vec<u8>> {
    vec![vec![], vec![1, 2, 3], vec![0; 15], vec![0; 16]]
}

/// Waits up to `ms` for a datagram; `None` if none came.
fn reply(fd: BorrowedFd<'_>, ms: i64) -> Option<Vec<u8>> {
    let t = Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    let mut p = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    if poll(&mut p, Some(&t)).unwrap() == 0 {
        return None;
    }
    let mut buf = vec![0u8; 65536];
    let (_, n) = net::recv(fd, &mut buf[..], RecvFlags::empty()).unwrap();
    Some(buf[..n].to_vec())
}

/// What `fd`'s far end did with each odd datagram (`true`: it answered), and the
/// (type, seq) of the first reply to the request that follows them.
fn behaviour(fd: BorrowedFd<'_>) -> (Vec<bool>, (u16, u32)) {
    let mut answered = Vec::new();
    for j in junk() {
        // The kernel of Linux 6.x refuses an empty datagram at send (ENODATA);
        // older ones, and a socket pair, take it. Either way: is it answered?
        match net::send(fd, &j, SendFlags::empty()) {
            Ok(n) => assert_eq!(n, j.len()),
            Err(e) => assert!(j.is_empty(), "sending {} bytes: {e}", j.len()),
        }
        answered.push(reply(fd, 300).is_some());
    }
    let up = nlinline::build_linksetupdown(77, 1, true);
    net::send(fd, &up, SendFlags::empty()).unwrap();
    let r = reply(fd, 5000).expect("no answer to the request after the odd datagrams");
    let m = split(&r).unwrap();
    (answered, (m[0].kind, m[0].seq))
}

sandbox_test! {
    fn odd_datagrams_are_taken_as_the_kernel_takes_them() {
        // A NETLINK_ROUTE socket of this test's own fresh network namespace.
        let kernel = vdestack::nl::KernelDialog::new().unwrap();
        let theirs = behaviour(kernel.as_fd());
        let (ours_fd, thread) = spawn_socket(Server::new(MemStack::new(), 1)).unwrap();
        let ours = behaviour(ours_fd.as_fd());
        assert_eq!(ours, theirs, "our server (left) and the kernel (right)");
        assert_eq!(theirs.1, (NLMSG_ERROR, 77));
        assert!(theirs.0.iter().all(|a| !a), "the kernel answered junk: {theirs:?}");
        drop(ours_fd);
        thread.join().expect("the server thread ends when its client goes");
    }
}
