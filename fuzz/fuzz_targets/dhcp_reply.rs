//! The DHCP client takes any datagram on port 68 in any state without panicking,
//! and never moves on unless the datagram is a reply to it.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vdestack::nl::dhcp::{Client, Lease, State};

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fuzz_target!(|data: &[u8]| {
    let lease = Lease {
        addr: [10, 0, 2, 15].into(),
        prefix: 24,
        router: None,
        dns: Vec::new(),
        domain: None,
        server: [10, 0, 2, 2].into(),
        lease_secs: 60,
        t1: 30,
        t2: 50,
    };
    let xid = data.get(4..8).map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()));
    let mut fresh = Client::new(MAC, xid, None, Duration::ZERO);
    let _ = fresh.poll(Duration::ZERO);
    let mut held = Client::with_lease(MAC, xid, lease, Duration::ZERO);
    let _ = held.poll(Duration::from_secs(30));
    for c in [&mut fresh, &mut held] {
        let before = c.state();
        if c.handle(data, Duration::from_secs(31)).is_none() && before != State::Selecting {
            assert!(c.state() == before || c.state() == State::Requesting);
        }
        let _ = c.poll(Duration::from_secs(100));
        let _ = c.release();
    }
});
