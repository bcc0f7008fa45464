//! What the wrapping plugs do with frames from the network never panics and never
//! delivers more than the buffer holds: vlan:// untagging and retagging, agno://
//! opening (any bytes, with a key and a clock).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::agno::cipher::{Cipher, EthType, Fresh};
use vdestack::vde::vlan;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (sel, frame) = (data[0], &data[1..]);
    let configs = ["", "3", "3/u=4", "/x", "5/qinq/t=2-3:7", "4095"];
    let cfg = vlan::parse(configs[sel as usize % configs.len()]).unwrap();
    let mut buf = vec![0u8; frame.len() + (sel as usize % 8)];
    buf[..frame.len()].copy_from_slice(frame);
    if let Some(n) = cfg.incoming(&mut buf, frame.len()) {
        assert!(n <= buf.len());
    }
    let mut out = vec![0u8; frame.len() + vlan::frames::TAG_LEN];
    let _ = cfg.outgoing(frame, &mut out);

    let c = Cipher::new(&[sel; 16]);
    let mut plain = vec![0u8; (sel as usize) * 40];
    if let Some(n) = c.open(frame, 1_700_000_000, &mut plain) {
        assert!(n <= plain.len() && n >= 14);
    }
    if frame.len() >= 14 {
        let mut sealed = vec![0u8; Cipher::sealed_len(frame.len())];
        let fresh = Fresh { now: 1_700_000_000, salt: [1, 2, 3, 4], random: sel as u32 };
        let n = c.seal(frame, EthType::Random, fresh, &mut sealed);
        let mut back = vec![0u8; frame.len()];
        assert_eq!(c.open(&sealed[..n], 1_700_000_000, &mut back), Some(frame.len()));
        assert_eq!(back, frame);
    }
});
