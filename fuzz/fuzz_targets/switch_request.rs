//! What a switch reads from a client (the v3 request) and what a client reads from a
//! switch (the reply address) decode without panicking, and a decoded request
//! encodes back to a request that decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::netnode::protocol::{decode_sockaddr, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let again = Request::decode(&r.encode()).expect("re-encoded request decodes");
        assert_eq!(again, r);
    }
    let _ = decode_sockaddr(data);
});
