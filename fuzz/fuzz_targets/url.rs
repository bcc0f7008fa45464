//! VNL parsing never panics, whatever the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::url;

const TAGS: &[&str] = &["", "port", "portgroup", "group", "mode"];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (_scheme, arg) = url::split_scheme(s);
    let _ = url::parse_path_style("vde", arg, TAGS);
    if let Ok((_, opts)) = url::parse_url_style("vxvde", arg, &TAGS[1..]) {
        let _ = opts.number("vxvde", "port");
        let _ = opts.nonzero("vxvde", "port", "zero");
    }
    let _ = vdestack::vde::udp::parse(arg);
    let _ = url::split_command(arg);
    let _ = url::parse_number(arg);
});
