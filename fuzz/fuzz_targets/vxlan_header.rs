//! Datagrams from the network: the VXLAN header check and MAC learning over arbitrary
//! bytes never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::vxvde::common::decode_vni;

fuzz_target!(|data: &[u8]| {
    let _ = decode_vni(data);
});
