//! Arbitrary bytes into the netlink server over the in-memory stack: it never
//! panics, and every reply is one well-formed message (a parseable header whose
//! length is the reply's length). The stack lives across inputs' messages, so
//! sequences of requests (create, then change, then delete) are explored too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::nl::server::{MemStack, Server};
use vdestack::nl::wire;

fuzz_target!(|data: &[u8]| {
    let mut server = Server::new(MemStack::new(), 7);
    // A few well-known requests first, so that the fuzzer's bytes meet links,
    // addresses and routes to change: lo up, a dummy link.
    let lo_up = vdestack::nl::nlinline::build_linksetupdown(1, 1, true);
    let dummy = vdestack::nl::nlinline::build_iplink_add(2, Some("d0"), 0, "dummy", &[]).unwrap();
    server.process(&lo_up);
    server.process(&dummy);
    for reply in server.process(data) {
        let msgs = wire::split(&reply).expect("a reply that splits");
        assert_eq!(msgs.len(), 1, "one message per reply");
        let len = u32::from_ne_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize;
        assert_eq!(len, reply.len(), "nlmsg_len is the reply's length");
    }
    // The state stays dumpable.
    for kind in [wire::RTM_GETLINK, wire::RTM_GETADDR, wire::RTM_GETROUTE] {
        let dump = wire::Builder::new(kind, wire::NLM_F_REQUEST | wire::NLM_F_DUMP, 9)
            .raw(&[0; 16])
            .finish();
        let r = server.process(&dump);
        assert_eq!(wire::split(r.last().unwrap()).unwrap()[0].kind, wire::NLMSG_DONE);
    }
});
