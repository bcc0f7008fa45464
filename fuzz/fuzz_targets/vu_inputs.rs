//! What a program supervised by `vdestack vu` hands us (socket addresses, paths,
//! netlink socket options, ioctl images on an in-memory stack, IP socket calls)
//! and what a netlink peer answers when the `/proc/net` files are made (routes,
//! IPv6 addresses): nothing panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vdestack::nl::dialog::Dialog;
use vdestack::nl::{emul, wire};

/// A peer whose every answer is the fuzzer's bytes, then `NLMSG_DONE`.
struct Replay<'a>(&'a [u8]);

impl Dialog for Replay<'_> {
    fn dialog(&mut self, _request: &[u8]) -> std::io::Result<Vec<Vec<u8>>> {
        let done = wire::Builder::new(wire::NLMSG_DONE, wire::NLM_F_MULTI, 0)
            .raw(&0i32.to_ne_bytes())
            .finish();
        Ok(vec![self.0.to_vec(), done])
    }
}

fuzz_target!(|data: &[u8]| {
    vdestack::vu::fuzz::program_input(data);
    let d = &mut Replay(data);
    let _ = emul::proc_net_route(d);
    let _ = emul::proc_net_ipv6_route(d);
    let _ = emul::proc_net_if_inet6(d);
    let _ = emul::proc_net_dev_bytes(d);
    let _ = emul::is_local(d, "10.0.0.1".parse().unwrap());
});
