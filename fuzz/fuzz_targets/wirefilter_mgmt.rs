//! wirefilter's management commands (what arrives on its socket) never panic, and
//! every value they leave in force is one the checks accept.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::wirefilter::{commands, engine::Engine, settings::Settings};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut e = Engine::new(Settings::default(), 1);
    for line in text.lines() {
        // `load` reads files: not from fuzz input.
        if line.trim_start().starts_with("load") {
            continue;
        }
        let _ = commands::run(&mut e, line);
    }
    let frame = [0u8; 64];
    let _ = e.admit(vdestack::vde::wirefilter::value::Dir::LR, &frame, 1);
    let _ = e.pop_due(vdestack::vde::wirefilter::value::Dir::LR, u64::MAX / 2);
});
