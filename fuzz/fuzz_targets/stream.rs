//! The stream-framing decoder never panics and never returns a frame longer than the
//! limit, however the bytes are split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::stream::{Decoder, MAX_STREAM_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new();
    let split = data.first().map_or(1, |&b| b as usize + 1);
    for chunk in data.chunks(split) {
        d.push(chunk);
        while let Some(f) = d.next_frame() {
            if let Ok(f) = f {
                assert!(!f.is_empty() && f.len() <= MAX_STREAM_FRAME);
            }
        }
    }
});
