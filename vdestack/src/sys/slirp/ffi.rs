//! The part of libslirp's C interface (`<slirp/libslirp.h>`, 4.x) we use, written
//! out by hand: two structs and nine functions. A test compiles a C program
//! against Debian's header and compares every size and offset with these.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};

/// `SLIRP_POLL_*`: the events libslirp asks for and is told about.
pub const POLL_IN: c_int = 1 << 0;
/// Writable.
pub const POLL_OUT: c_int = 1 << 1;
/// Urgent data.
pub const POLL_PRI: c_int = 1 << 2;
/// An error condition.
pub const POLL_ERR: c_int = 1 << 3;
/// Hung up.
pub const POLL_HUP: c_int = 1 << 4;

/// The `SlirpConfig` version we fill: 1, the first, which every libslirp 4.x
/// takes (Debian's libvdeslirp 0.1.1 uses it too). The later fields stay zero and
/// are not read.
pub const CONFIG_VERSION: u32 = 1;

/// `SlirpTimerCb`.
pub type TimerCb = unsafe extern "C" fn(opaque: *mut c_void);
/// `SlirpAddPollCb`.
pub type AddPollCb = unsafe extern "C" fn(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int;
/// `SlirpGetREventsCb`.
pub type GetREventsCb = unsafe extern "C" fn(idx: c_int, opaque: *mut c_void) -> c_int;

/// `struct SlirpCb`, through its version-4 fields (left empty).
#[repr(C)]
pub struct SlirpCb {
    pub send_packet:
        unsafe extern "C" fn(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize,
    pub guest_error: unsafe extern "C" fn(msg: *const c_char, opaque: *mut c_void),
    pub clock_get_ns: unsafe extern "C" fn(opaque: *mut c_void) -> i64,
    pub timer_new: unsafe extern "C" fn(
        cb: TimerCb,
        cb_opaque: *mut c_void,
        opaque: *mut c_void,
    ) -> *mut c_void,
    pub timer_free: unsafe extern "C" fn(timer: *mut c_void, opaque: *mut c_void),
    pub timer_mod: unsafe extern "C" fn(timer: *mut c_void, expire_ms: i64, opaque: *mut c_void),
    pub register_poll_fd: unsafe extern "C" fn(fd: c_int, opaque: *mut c_void),
    pub unregister_poll_fd: unsafe extern "C" fn(fd: c_int, opaque: *mut c_void),
    pub notify: unsafe extern "C" fn(opaque: *mut c_void),
    pub init_completed: Option<unsafe extern "C" fn(slirp: *mut c_void, opaque: *mut c_void)>,
    pub timer_new_opaque: Option<
        unsafe extern "C" fn(id: c_int, cb_opaque: *mut c_void, opaque: *mut c_void) -> *mut c_void,
    >,
}

/// `struct SlirpConfig`, through its version-4 fields. Addresses are in network
/// byte order, as in `struct in_addr`.
#[repr(C)]
pub struct SlirpConfig {
    pub version: u32,
    pub restricted: c_int,
    pub in_enabled: bool,
    pub vnetwork: libc::in_addr,
    pub vnetmask: libc::in_addr,
    pub vhost: libc::in_addr,
    pub in6_enabled: bool,
    pub vprefix_addr6: libc::in6_addr,
    pub vprefix_len: u8,
    pub vhost6: libc::in6_addr,
    pub vhostname: *const c_char,
    pub tftp_server_name: *const c_char,
    pub tftp_path: *const c_char,
    pub bootfile: *const c_char,
    pub vdhcp_start: libc::in_addr,
    pub vnameserver: libc::in_addr,
    pub vnameserver6: libc::in6_addr,
    pub vdnssearch: *const *const c_char,
    pub vdomainname: *const c_char,
    pub if_mtu: usize,
    pub if_mru: usize,
    pub disable_host_loopback: bool,
    pub enable_emu: bool,
    pub outbound_addr: *const libc::sockaddr_in,
    pub outbound_addr6: *const libc::sockaddr_in6,
    pub disable_dns: bool,
    pub disable_dhcp: bool,
}

/// Sizes and field offsets of the two structs, as the layout test prints them
/// from C: `name size`, then `name.field offset`.
#[cfg(feature = "diagnostics")]
pub fn layout() -> Vec<(String, usize)> {
    macro_rules! fields {
        ($out:ident, $t:ident: $($f:ident),*) => {
            $out.push((stringify!($t).to_string(), std::mem::size_of::<$t>()));
            $($out.push((
                format!("{}.{}", stringify!($t), stringify!($f)),
                std::mem::offset_of!($t, $f),
            ));)*
        };
    }
    let mut out = Vec::new();
    fields!(out, SlirpCb: send_packet, guest_error, clock_get_ns, timer_new, timer_free,
        timer_mod, register_poll_fd, unregister_poll_fd, notify, init_completed,
        timer_new_opaque);
    fields!(out, SlirpConfig: version, restricted, in_enabled, vnetwork, vnetmask, vhost,
        in6_enabled, vprefix_addr6, vprefix_len, vhost6, vhostname, tftp_server_name,
        tftp_path, bootfile, vdhcp_start, vnameserver, vnameserver6, vdnssearch,
        vdomainname, if_mtu, if_mru, disable_host_loopback, enable_emu, outbound_addr,
        outbound_addr6, disable_dns, disable_dhcp);
    out
}
