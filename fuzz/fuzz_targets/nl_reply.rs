//! Netlink replies from a peer (the kernel, or a stack's server): splitting a datagram
//! and decoding links, addresses and routes with netlink-packet-route never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::nl::{decode, wire};

fuzz_target!(|data: &[u8]| {
    if let Ok(msgs) = wire::split(data) {
        for m in msgs {
            let _ = decode::link(m.payload);
            let _ = decode::addr(m.payload);
            let _ = decode::route(m.payload);
            let _ = wire::attrs(m.payload);
        }
    }
});
