//! VNL parsing never panics, whatever the text: the option styles, nested VNLs to
//! any depth, and the wrapping and device plugins' own arguments.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::vde::{agno, capture, url, vdesl, vlan, wirefilter};

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
    // Unwrap nested VNLs as the wrappers do, level by level.
    let mut rest = arg;
    for _ in 0..16 {
        let Ok(n) = url::split_nested("fuzz", rest) else { break };
        assert!(n.outer.len() <= rest.len());
        let _ = vlan::parse(n.outer);
        let _ = agno::parse(n.outer);
        let _ = wirefilter::parse(n.outer);
        let _ = capture::parse(n.outer);
        let Some(inner) = n.inner else { break };
        rest = url::split_scheme(inner).1;
    }
    let _ = vdesl::parse(arg);
});
