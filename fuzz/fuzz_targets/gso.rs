//! Frames with a vnet header from a tap (or a buggy peer): cutting and checksum
//! completion over arbitrary header and frame bytes never panic, and every piece
//! fits the scratch buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::gso::{to_plain, VnetHdr, VNET_HDR_LEN};

fuzz_target!(|data: &[u8]| {
    let Some(hdr) = VnetHdr::parse(data) else {
        return;
    };
    let frame = &data[VNET_HDR_LEN..];
    // A small scratch buffer too, so the "does not fit" path is reached.
    let small = data.first().is_some_and(|b| b & 0x40 != 0);
    let mut scratch = vec![0u8; if small { 200 } else { 9234 }];
    let cap = scratch.len();
    let _ = to_plain(&hdr, frame, &mut scratch, |seg| {
        assert!(seg.len() <= cap.max(frame.len()));
    });
});
