//! The framing rules, against the in-memory stack: ACK only with `NLM_F_ACK`,
//! `NLMSG_DONE` after dumps, errors echo the request, seq and port id, the
//! `NLM_F_CREATE`/`EXCL`/`REPLACE` rules, bad input.

use super::frame::NLM_F_CAPPED;
use super::*;
use crate::nl::nlinline::{self, Op};
use crate::nl::wire::{self, *};
use crate::nl::{build_addr, AddrSpec};

const PORT: u32 = 4242;

fn server() -> Server<MemStack> {
    Server::new(MemStack::new(), PORT)
}

/// (type, flags, seq, pid, payload) of every reply.
fn replies(s: &mut Server<MemStack>, req: &[u8]) -> Vec<(u16, u16, u32, u32, Vec<u8>)> {
    s.process(req)
        .iter()
        .map(|m| {
            let got = wire::split(m).expect("well-formed reply");
            assert_eq!(got.len(), 1, "one message per reply");
            let g = got[0];
            (g.kind, g.flags, g.seq, g.pid, g.payload.to_vec())
        })
        .collect()
}

fn code(payload: &[u8]) -> i32 {
    wire::error_code(payload).unwrap()
}

fn dummy(seq: u32, name: &str, flags: u16) -> Vec<u8> {
    let mut b = Builder::new(RTM_NEWLINK, flags, seq).ifinfomsg(0, 0, 0, 0);
    b = b.attr_str(IFLA_IFNAME, name);
    let at = b.begin_nested(IFLA_LINKINFO);
    b.push(IFLA_INFO_KIND, b"dummy\0");
    b.end_nested(at);
    b.finish()
}

const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

#[test]
fn ack_only_when_asked() {
    let mut s = server();
    let up = nlinline::build_linksetupdown(7, 1, true);
    let r = replies(&mut s, &up);
    assert_eq!(r.len(), 1);
    let (kind, flags, seq, pid, p) = &r[0];
    assert_eq!(
        (*kind, *flags, *seq, *pid),
        (NLMSG_ERROR, NLM_F_CAPPED, 7, PORT)
    );
    assert_eq!(code(p), 0);
    assert_eq!(
        &p[4..],
        &up[..16],
        "an ACK echoes the request's header only"
    );
    // The same without NLM_F_ACK: done silently.
    let mut quiet = nlinline::build_linksetupdown(8, 1, false);
    quiet[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    assert!(replies(&mut s, &quiet).is_empty());
    assert!(!s.stack().links()[0].is_up());
}

#[test]
fn errors_echo_the_whole_request() {
    let mut s = server();
    let req = nlinline::build_linksetupdown(9, 77, true);
    let r = replies(&mut s, &req);
    assert_eq!(r.len(), 1);
    let (kind, flags, seq, pid, p) = &r[0];
    assert_eq!((*kind, *flags, *seq, *pid), (NLMSG_ERROR, 0, 9, PORT));
    assert_eq!(code(p), -libc::ENODEV);
    assert_eq!(&p[4..], &req[..]);
    // Errors come without NLM_F_ACK too.
    let mut quiet = req.clone();
    quiet[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    assert_eq!(code(&replies(&mut s, &quiet)[0].4), -libc::ENODEV);
}

#[test]
fn dumps_end_in_done_and_are_never_acked() {
    let mut s = server();
    replies(&mut s, &dummy(1, "d0", CREATE));
    let dump = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 3)
        .raw(&[0; 16])
        .finish();
    let r = replies(&mut s, &dump);
    assert_eq!(r.len(), 3);
    for (kind, flags, seq, pid, _) in &r[..2] {
        assert_eq!(
            (*kind, *flags, *seq, *pid),
            (RTM_NEWLINK, NLM_F_MULTI, 3, PORT)
        );
    }
    let (kind, flags, _, _, p) = &r[2];
    assert_eq!(
        (*kind, *flags, p.as_slice()),
        (NLMSG_DONE, NLM_F_MULTI, &[0u8; 4][..])
    );
    // iproute2's short header (rtgenmsg, 1 byte padded to 4) dumps too.
    let short = Builder::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 4)
        .raw(&[libc::AF_INET as u8, 0, 0, 0])
        .finish();
    let r = replies(&mut s, &short);
    assert_eq!(r.last().unwrap().0, NLMSG_DONE);
}

#[test]
fn get_replies_then_acks() {
    let mut s = server();
    let get = nlinline::build_if_nametoindex(5, "lo").unwrap();
    let r = replies(&mut s, &get);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].0, r[0].1, r[0].2), (RTM_NEWLINK, 0, 5));
    assert_eq!(crate::nl::decode::link(&r[0].4).unwrap().name, "lo");
    assert_eq!((r[1].0, code(&r[1].4)), (NLMSG_ERROR, 0));
    // Without ACK: the reply alone.
    let r = replies(&mut s, &nlinline::build_linkgetaddr(6, 1));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, RTM_NEWLINK);
}

#[test]
fn create_excl_replace() {
    let mut s = server();
    assert_eq!(code(&replies(&mut s, &dummy(1, "d0", CREATE))[0].4), 0);
    // EXCL on an existing link: EEXIST; without EXCL: a change; REPLACE: EOPNOTSUPP.
    assert_eq!(
        code(&replies(&mut s, &dummy(2, "d0", CREATE))[0].4),
        -libc::EEXIST
    );
    let set = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
    assert_eq!(code(&replies(&mut s, &dummy(3, "d0", set))[0].4), 0);
    let replace = set | 0x100;
    assert_eq!(
        code(&replies(&mut s, &dummy(3, "d0", replace))[0].4),
        -libc::EOPNOTSUPP
    );
    // Missing without CREATE: ENODEV.
    let nocreate = NLM_F_REQUEST | NLM_F_ACK;
    assert_eq!(
        code(&replies(&mut s, &dummy(4, "d1", nocreate))[0].4),
        -libc::ENODEV
    );
    assert_eq!(s.stack().links().len(), 2);

    // Addresses: EXCL or no REPLACE on an existing one is EEXIST; REPLACE changes.
    let d0 = s.stack().links()[1].index;
    let spec = AddrSpec::new(d0, "10.1.0.1".parse().unwrap(), 24);
    let add = build_addr(5, Op::Add, &spec).unwrap();
    assert_eq!(code(&replies(&mut s, &add)[0].4), 0);
    assert_eq!(code(&replies(&mut s, &add)[0].4), -libc::EEXIST);
    let mut replace = add.clone();
    replace[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | 0x100).to_ne_bytes());
    assert_eq!(code(&replies(&mut s, &replace)[0].4), 0);
    let del = build_addr(6, Op::Del, &spec).unwrap();
    assert_eq!(code(&replies(&mut s, &del)[0].4), 0);
    assert_eq!(code(&replies(&mut s, &del)[0].4), -libc::EADDRNOTAVAIL);
}

#[test]
fn new_ifindex_ask_returns_the_index_like_libnlq() {
    let mut s = server();
    // nlinline's 1-byte "ask" and libnlq's u32 0: the link is made and the ACK
    // carries its (positive) index; Linux refuses both with ERANGE.
    let ask =
        nlinline::build_iplink_add(1, Some("d9"), nlinline::IFINDEX_ASK, "dummy", &[]).unwrap();
    let r = replies(&mut s, &ask);
    assert_eq!(r.len(), 1);
    let first = code(&r[0].4);
    assert!(first > 1, "the new index, got {first}");
    let mut zero = Builder::new(RTM_NEWLINK, CREATE, 2)
        .ifinfomsg(0, 0, 0, 0)
        .attr_str(IFLA_IFNAME, "d10")
        .attr_u32(IFLA_NEW_IFINDEX, 0);
    let info = zero.begin_nested(IFLA_LINKINFO);
    zero.push(IFLA_INFO_KIND, b"dummy\0");
    zero.end_nested(info);
    let zero = zero.finish();
    let second = code(&replies(&mut s, &zero)[0].4);
    assert!(second > first, "{second} after {first}");
    assert_eq!(s.stack().links().len(), 3);
    // Asked again for an existing name: the kernel's rules (EEXIST with EXCL).
    assert_eq!(code(&replies(&mut s, &ask)[0].4), -libc::EEXIST);
    // A negative index is still ERANGE, as in Linux.
    let neg = Builder::new(RTM_NEWLINK, CREATE, 3)
        .ifinfomsg(0, 0, 0, 0)
        .attr_str(IFLA_IFNAME, "d11")
        .attr_u32(IFLA_NEW_IFINDEX, u32::MAX - 4)
        .finish();
    assert_eq!(code(&replies(&mut s, &neg)[0].4), -libc::ERANGE);
    // Through our client, as nlinline's iplink_add would be used.
    let (fd, _thread) = super::spawn_socket(super::Server::new(MemStack::new(), 7)).unwrap();
    let nl = crate::nl::NlClient::from_fd(fd);
    let idx =
        crate::nl::nlinline::iplink_add(&nl, Some("d12"), nlinline::IFINDEX_ASK, "dummy", &[])
            .unwrap();
    assert_eq!(nl.link_index("d12").unwrap() as i32, idx);
}

#[test]
fn several_messages_per_buffer_and_bad_input() {
    let mut s = server();
    let two = [
        nlinline::build_linksetupdown(1, 1, true),
        nlinline::build_linksetupdown(2, 55, true),
    ]
    .concat();
    let r = replies(&mut s, &two);
    assert_eq!(r.iter().map(|m| m.2).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(code(&r[1].4), -libc::ENODEV);
    // Unknown type: EOPNOTSUPP; a payload shorter than the fixed header: EINVAL;
    // a length beyond the buffer: nothing (the kernel drops it too).
    let unknown = Builder::new(100, NLM_F_REQUEST, 3).raw(&[0; 8]).finish();
    assert_eq!(code(&replies(&mut s, &unknown)[0].4), -libc::EOPNOTSUPP);
    let short = Builder::new(RTM_NEWLINK, NLM_F_REQUEST, 4)
        .raw(&[0; 4])
        .finish();
    assert_eq!(code(&replies(&mut s, &short)[0].4), -libc::EINVAL);
    let mut long = short.clone();
    long[0] = 200;
    assert!(replies(&mut s, &long).is_empty());
    // A control message: only the ACK asked for.
    let noop = Builder::new(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 5).finish();
    assert_eq!(code(&replies(&mut s, &noop)[0].4), 0);
    // A bad attribute: EINVAL, not a panic.
    let bad = Builder::new(RTM_NEWLINK, CREATE, 6)
        .ifinfomsg(0, 0, 0, 0)
        .raw(&[200, 0, 3, 0])
        .finish();
    assert!(code(&replies(&mut s, &bad)[0].4) < 0);
}

#[test]
fn dialog_answers_one_message() {
    use crate::nl::dialog::Dialog;
    let mut s = server();
    let r = s
        .dialog(&nlinline::build_linksetupdown(1, 1, true))
        .unwrap();
    assert_eq!(r.len(), 1);
    let two = [r[0].clone(), r[0].clone()].concat();
    assert_eq!(
        crate::error::errno_of(&s.dialog(&two).unwrap_err()),
        libc::EINVAL
    );
}

/// Sends raw datagrams to a served socket and reads the next reply, if one comes.
fn next_reply(fd: &std::os::fd::OwnedFd, wait_ms: i32) -> Option<Vec<u8>> {
    let ts = rustix::event::Timespec {
        tv_sec: i64::from(wait_ms / 1000),
        tv_nsec: i64::from(wait_ms % 1000) * 1_000_000,
    };
    let mut pfd = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    if rustix::event::poll(&mut pfd, Some(&ts)).unwrap() == 0 {
        return None;
    }
    let mut buf = vec![0u8; 65536];
    let (_, n) = rustix::net::recv(fd, &mut buf[..], rustix::net::RecvFlags::empty()).unwrap();
    Some(buf[..n].to_vec())
}

#[test]
fn empty_and_short_datagrams_get_no_answer_and_serving_goes_on() {
    use rustix::net::{send, SendFlags};
    let (fd, thread) = super::spawn_socket(server()).unwrap();
    // As the kernel: no reply to an empty datagram, to one shorter than a header,
    // or to a header whose length is 0 (tests/nl_server_diff.rs compares with it).
    for junk in [&[][..], &[1, 2, 3][..], &[0u8; 16][..]] {
        assert_eq!(send(&fd, junk, SendFlags::empty()).unwrap(), junk.len());
    }
    // ... and the next request is served, its reply the first one to come.
    let up = nlinline::build_linksetupdown(77, 1, true);
    send(&fd, &up, SendFlags::empty()).unwrap();
    let reply = next_reply(&fd, 5000).expect("the server stopped serving");
    let got = wire::split(&reply).unwrap();
    assert_eq!((got[0].kind, got[0].seq), (NLMSG_ERROR, 77));
    assert_eq!(next_reply(&fd, 50), None, "one reply only");
    // Empty datagrams right before the close: the thread still ends.
    send(&fd, &[], SendFlags::empty()).unwrap();
    send(&fd, &up, SendFlags::empty()).unwrap();
    send(&fd, &[], SendFlags::empty()).unwrap();
    drop(fd);
    let s = thread.join().expect("the server thread");
    assert_eq!(s.stack().links().len(), 1, "nothing was made");
}
