//! A small safe binding of libslirp (the user-mode TCP/IP of QEMU, slirp4netns and
//! Debian's `libvdeplug_slirp`), loaded at run time ([`SONAME`]).
//!
//! An [`Engine`] is one libslirp instance. It is not `Send`: libslirp is not
//! thread-safe, so the thread that makes an engine drives it for its whole life,
//! in a loop of [`Engine::wait`] (libslirp's sockets and timers, plus one fd of
//! the caller's, polled together), frames from the guest given to
//! [`Engine::input`], and [`Engine::dispatch`] (libslirp services its sockets and
//! fires its timers). Frames libslirp sends toward the guest reach the caller's
//! [`Guest`] during those calls.
//!
//! Every callback from C catches panics: none unwinds into libslirp.

#![allow(unsafe_code)]

mod ffi;
mod lib;

#[cfg(feature = "diagnostics")]
pub use lib::SONAME;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use ffi::{SlirpCb, SlirpConfig, TimerCb};

/// What a libslirp instance is made with (`SlirpConfig`), in Rust types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Isolate the guest: no connection out, only forwards in.
    pub restricted: bool,
    /// Serve IPv4.
    pub ipv4: bool,
    /// The virtual IPv4 network.
    pub network: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// libslirp's own address (the gateway; the host's loopback behind it).
    pub host: Ipv4Addr,
    /// Serve IPv6.
    pub ipv6: bool,
    /// The virtual IPv6 prefix.
    pub prefix6: Ipv6Addr,
    /// Its length.
    pub prefix6_len: u8,
    /// libslirp's own IPv6 address.
    pub host6: Ipv6Addr,
    /// The host name DHCP hands out.
    pub hostname: Option<String>,
    /// The TFTP server name DHCP hands out.
    pub tftp_server_name: Option<String>,
    /// A directory served by the built-in TFTP server.
    pub tftp_path: Option<String>,
    /// The boot file name DHCP hands out.
    pub bootfile: Option<String>,
    /// The first address the DHCP server leases.
    pub dhcp_start: Ipv4Addr,
    /// The DNS forwarder's virtual IPv4 address.
    pub nameserver: Ipv4Addr,
    /// The DNS forwarder's virtual IPv6 address.
    pub nameserver6: Ipv6Addr,
    /// The DNS search domains DHCP hands out.
    pub dns_search: Vec<String>,
    /// The domain name DHCP hands out.
    pub domain_name: Option<String>,
    /// The guest link's MTU (0: libslirp's default, 1500).
    pub mtu: usize,
    /// The guest link's MRU (0: libslirp's default, 1500).
    pub mru: usize,
    /// Refuse connections to the host's loopback through [`Settings::host`].
    pub disable_host_loopback: bool,
}

/// Where the frames libslirp sends toward the guest go.
pub trait Guest {
    /// One Ethernet frame for the guest.
    fn frame(&mut self, frame: &[u8]);

    /// libslirp's complaint about something the guest did.
    fn guest_error(&mut self, msg: &str) {
        log::warn!("slirp: {msg}");
    }
}

/// The version of the libslirp this process loads (`4.7.0`).
#[cfg(feature = "diagnostics")]
pub fn version() -> io::Result<String> {
    let lib = lib::get()?;
    // SAFETY: slirp_version_string takes nothing and returns a static
    // NUL-terminated string.
    let v = unsafe { CStr::from_ptr((lib.version_string)()) };
    Ok(v.to_string_lossy().into_owned())
}

/// The sizes and offsets of the C structs as this binding lays them out (for the
/// test that compares them with Debian's header).
#[cfg(feature = "diagnostics")]
pub fn ffi_layout() -> Vec<(String, usize)> {
    ffi::layout()
}

/// One timer of libslirp's (`timer_new`).
struct Timer {
    cb: TimerCb,
    cb_opaque: *mut c_void,
    /// When it fires, in ms of the monotonic clock; `None`: not armed.
    expire_ms: Option<i64>,
}

/// What the callbacks reach through libslirp's `opaque` pointer.
struct State<G> {
    guest: G,
    /// The fds of the current wait: the caller's first, then libslirp's.
    pollfds: Vec<libc::pollfd>,
    poll_failed: bool,
    /// Timer `h` is `timers[h - 1]` (its handle is the number `h` as a pointer).
    timers: Vec<Option<Timer>>,
}

/// A running libslirp instance.
pub struct Engine<G: Guest> {
    lib: &'static lib::Lib,
    slirp: *mut c_void,
    /// Owned (from `Box::into_raw`), freed on drop after libslirp is gone.
    state: *mut State<G>,
    /// Owned likewise: libslirp keeps this pointer for its whole life.
    callbacks: *mut SlirpCb,
}

fn now_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as i64)
}

fn in_addr(a: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from(a).to_be(),
    }
}

fn in6_addr(a: Ipv6Addr) -> libc::in6_addr {
    libc::in6_addr {
        s6_addr: a.octets(),
    }
}

fn c_string(what: &str, s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("slirp: {what} `{s}` holds a NUL byte"),
        )
    })
}

fn opt_c_string(what: &str, s: &Option<String>) -> io::Result<Option<CString>> {
    s.as_deref().map(|s| c_string(what, s)).transpose()
}

fn ptr_of(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Runs a callback body, turning a panic into `fallback`: nothing unwinds into C.
fn guarded<T>(what: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(_) => {
            log::error!("slirp: a panic in the {what} callback was stopped");
            fallback
        }
    }
}

/// The state behind libslirp's opaque pointer.
///
/// # Safety
/// `opaque` must be the `State<G>` pointer an [`Engine<G>`] gave libslirp, called
/// from inside one of the engine's calls into libslirp (so the engine holds no
/// reference to the state meanwhile) on the engine's thread.
unsafe fn state<'a, G>(opaque: *mut c_void) -> &'a mut State<G> {
    // SAFETY: the caller's contract: a live, unaliased State<G>.
    unsafe { &mut *opaque.cast::<State<G>>() }
}

extern "C" fn send_packet<G: Guest>(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize {
    // SAFETY: libslirp calls this from inside an engine call with the engine's
    // opaque pointer; `buf` holds `len` readable bytes for the call's duration.
    let (st, frame) = unsafe {
        (
            state::<G>(opaque),
            std::slice::from_raw_parts(buf.cast::<u8>(), len),
        )
    };
    guarded("send_packet", -1, || {
        st.guest.frame(frame);
        len as isize
    })
}

extern "C" fn guest_error<G: Guest>(msg: *const c_char, opaque: *mut c_void) {
    // SAFETY: as in send_packet; `msg` is a NUL-terminated string for the call.
    let (st, msg) = unsafe { (state::<G>(opaque), CStr::from_ptr(msg)) };
    guarded("guest_error", (), || {
        st.guest.guest_error(&msg.to_string_lossy())
    })
}

extern "C" fn clock_get_ns(_opaque: *mut c_void) -> i64 {
    guarded("clock_get_ns", 0, now_ns)
}

extern "C" fn timer_new<G: Guest>(
    cb: TimerCb,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    // SAFETY: as in send_packet.
    let st = unsafe { state::<G>(opaque) };
    guarded("timer_new", std::ptr::null_mut(), || {
        let t = Some(Timer {
            cb,
            cb_opaque,
            expire_ms: None,
        });
        let i = match st.timers.iter().position(Option::is_none) {
            Some(i) => {
                st.timers[i] = t;
                i
            }
            None => {
                st.timers.push(t);
                st.timers.len() - 1
            }
        };
        // A handle, never dereferenced: the slot's number, from 1.
        (i + 1) as *mut c_void
    })
}

fn timer_slot<G>(st: &mut State<G>, timer: *mut c_void) -> Option<&mut Option<Timer>> {
    (timer as usize)
        .checked_sub(1)
        .and_then(|i| st.timers.get_mut(i))
}

extern "C" fn timer_free<G: Guest>(timer: *mut c_void, opaque: *mut c_void) {
    // SAFETY: as in send_packet.
    let st = unsafe { state::<G>(opaque) };
    guarded("timer_free", (), || {
        if let Some(slot) = timer_slot(st, timer) {
            *slot = None;
        }
    })
}

extern "C" fn timer_mod<G: Guest>(timer: *mut c_void, expire_ms: i64, opaque: *mut c_void) {
    // SAFETY: as in send_packet.
    let st = unsafe { state::<G>(opaque) };
    guarded("timer_mod", (), || {
        if let Some(Some(t)) = timer_slot(st, timer) {
            t.expire_ms = Some(expire_ms);
        }
    })
}

/// libvdeslirp and slirp4netns ignore these too: the loop asks libslirp for its
/// fds before every wait.
extern "C" fn poll_fd_noop(_fd: c_int, _opaque: *mut c_void) {}

extern "C" fn notify_noop(_opaque: *mut c_void) {}

extern "C" fn add_poll<G: Guest>(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: called from inside Engine::wait's slirp_pollfds_fill, as in
    // send_packet.
    let st = unsafe { state::<G>(opaque) };
    guarded("add_poll", -1, || {
        let mut ev = 0;
        for (s, p) in POLL_MAP {
            if events & s != 0 {
                ev |= p;
            }
        }
        st.pollfds.push(libc::pollfd {
            fd,
            events: ev,
            revents: 0,
        });
        (st.pollfds.len() - 1) as c_int
    })
}

extern "C" fn get_revents<G: Guest>(idx: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: called from inside Engine::dispatch's slirp_pollfds_poll, as in
    // send_packet.
    let st = unsafe { state::<G>(opaque) };
    guarded("get_revents", 0, || {
        let Some(p) = usize::try_from(idx).ok().and_then(|i| st.pollfds.get(i)) else {
            return 0;
        };
        POLL_MAP
            .iter()
            .filter(|(_, p2)| p.revents & p2 != 0)
            .fold(0, |acc, (s, _)| acc | s)
    })
}

/// libslirp's poll flags and poll(2)'s.
const POLL_MAP: [(c_int, libc::c_short); 5] = [
    (ffi::POLL_IN, libc::POLLIN),
    (ffi::POLL_OUT, libc::POLLOUT),
    (ffi::POLL_PRI, libc::POLLPRI),
    (ffi::POLL_ERR, libc::POLLERR),
    (ffi::POLL_HUP, libc::POLLHUP),
];

impl<G: Guest> Engine<G> {
    /// Starts libslirp with `settings`; its frames for the guest go to `guest`.
    pub fn new(settings: &Settings, guest: G) -> io::Result<Self> {
        let lib = lib::get()?;
        let hostname = opt_c_string("hostname", &settings.hostname)?;
        let tftp_server_name = opt_c_string("tftp_server_name", &settings.tftp_server_name)?;
        let tftp_path = opt_c_string("tftp_path", &settings.tftp_path)?;
        let bootfile = opt_c_string("bootfile", &settings.bootfile)?;
        let domain = opt_c_string("vdomainname", &settings.domain_name)?;
        let search: Vec<CString> = settings
            .dns_search
            .iter()
            .map(|s| c_string("vdnssearch", s))
            .collect::<io::Result<_>>()?;
        let mut search_ptrs: Vec<*const c_char> = search.iter().map(|s| s.as_ptr()).collect();
        search_ptrs.push(std::ptr::null());

        let mut cfg = SlirpConfig {
            version: ffi::CONFIG_VERSION,
            restricted: settings.restricted.into(),
            in_enabled: settings.ipv4,
            vnetwork: in_addr(settings.network),
            vnetmask: in_addr(settings.netmask),
            vhost: in_addr(settings.host),
            in6_enabled: settings.ipv6,
            vprefix_addr6: in6_addr(settings.prefix6),
            vprefix_len: settings.prefix6_len,
            vhost6: in6_addr(settings.host6),
            vhostname: ptr_of(&hostname),
            tftp_server_name: ptr_of(&tftp_server_name),
            tftp_path: ptr_of(&tftp_path),
            bootfile: ptr_of(&bootfile),
            vdhcp_start: in_addr(settings.dhcp_start),
            vnameserver: in_addr(settings.nameserver),
            vnameserver6: in6_addr(settings.nameserver6),
            vdnssearch: std::ptr::null(),
            vdomainname: ptr_of(&domain),
            if_mtu: settings.mtu,
            if_mru: settings.mru,
            disable_host_loopback: settings.disable_host_loopback,
            enable_emu: false,
            outbound_addr: std::ptr::null(),
            outbound_addr6: std::ptr::null(),
            disable_dns: false,
            disable_dhcp: false,
        };
        if !search.is_empty() {
            cfg.vdnssearch = search_ptrs.as_ptr();
        }
        let callbacks = Box::into_raw(Box::new(SlirpCb {
            send_packet: send_packet::<G>,
            guest_error: guest_error::<G>,
            clock_get_ns,
            timer_new: timer_new::<G>,
            timer_free: timer_free::<G>,
            timer_mod: timer_mod::<G>,
            register_poll_fd: poll_fd_noop,
            unregister_poll_fd: poll_fd_noop,
            notify: notify_noop,
            init_completed: None,
            timer_new_opaque: None,
        }));
        let state = Box::into_raw(Box::new(State {
            guest,
            pollfds: Vec::with_capacity(64),
            poll_failed: false,
            timers: Vec::new(),
        }));
        // SAFETY: `cfg` and the strings it points to live until slirp_new returns
        // (libslirp copies what it keeps); `callbacks` and `state` stay valid
        // until after slirp_cleanup (see Drop); the callbacks match libslirp's
        // prototypes.
        let slirp = unsafe { (lib.new)(&cfg, callbacks, state.cast()) };
        if slirp.is_null() {
            // SAFETY: libslirp refused, so it kept no pointer to either box.
            unsafe {
                drop(Box::from_raw(callbacks));
                drop(Box::from_raw(state));
            }
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "slirp: libslirp refused the configuration",
            ));
        }
        Ok(Self {
            lib,
            slirp,
            state,
            callbacks,
        })
    }

    /// The guest side, between calls into libslirp.
    pub fn guest(&mut self) -> &mut G {
        // SAFETY: `state` is live while the engine is; `&mut self` means no call
        // into libslirp (hence no callback) is running.
        unsafe { &mut (*self.state).guest }
    }

    /// Hands libslirp one frame from the guest.
    pub fn input(&mut self, frame: &[u8]) {
        let Ok(len) = c_int::try_from(frame.len()) else {
            return;
        };
        // SAFETY: a live instance; `frame` is readable for `len` bytes during the
        // call; callbacks reach `state` only (see `state`).
        unsafe { (self.lib.input)(self.slirp, frame.as_ptr(), len) }
    }

    /// Waits until `own` is readable (or hung up), one of libslirp's sockets is
    /// ready, one of its timers is due, or `cap` passes. Returns whether `own` is
    /// ready. Call [`Engine::dispatch`] after it, whatever it returned.
    pub fn wait(&mut self, own: BorrowedFd<'_>, cap: Option<Duration>) -> io::Result<bool> {
        {
            // SAFETY: no call into libslirp is running (see `guest`).
            let st = unsafe { &mut *self.state };
            st.pollfds.clear();
            st.pollfds.push(libc::pollfd {
                fd: own.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let mut timeout: u32 = u32::MAX;
        // SAFETY: a live instance; add_poll reaches `state` only, which no
        // reference of ours aliases now.
        unsafe {
            (self.lib.pollfds_fill)(self.slirp, &mut timeout, add_poll::<G>, self.state.cast())
        };
        // SAFETY: libslirp returned; no callback runs.
        let st = unsafe { &mut *self.state };
        let now_ms = now_ns() / 1_000_000;
        let mut wait_ms: i64 = if timeout == u32::MAX {
            -1
        } else {
            timeout.into()
        };
        let due = st.timers.iter().flatten().filter_map(|t| t.expire_ms);
        for at in due {
            let left = (at - now_ms).max(0);
            wait_ms = if wait_ms < 0 { left } else { wait_ms.min(left) };
        }
        if let Some(cap) = cap {
            let cap = cap.as_millis().min(i32::MAX as u128) as i64;
            wait_ms = if wait_ms < 0 { cap } else { wait_ms.min(cap) };
        }
        let wait_ms = wait_ms.min(i32::MAX.into()) as c_int;
        // SAFETY: `pollfds` is a valid array of its length for the call.
        let n = unsafe {
            libc::poll(
                st.pollfds.as_mut_ptr(),
                st.pollfds.len() as libc::nfds_t,
                wait_ms,
            )
        };
        st.poll_failed = n < 0;
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            return Ok(false);
        }
        Ok(st.pollfds[0].revents != 0)
    }

    /// Lets libslirp handle what the last [`Engine::wait`] found ready, then fires
    /// the timers that are due.
    pub fn dispatch(&mut self) {
        // SAFETY: no call into libslirp is running.
        let failed = unsafe { (*self.state).poll_failed };
        // SAFETY: a live instance; get_revents reaches `state` only.
        unsafe {
            (self.lib.pollfds_poll)(
                self.slirp,
                failed.into(),
                get_revents::<G>,
                self.state.cast(),
            )
        };
        let now_ms = now_ns() / 1_000_000;
        let mut due = Vec::new();
        {
            // SAFETY: libslirp returned; no callback runs.
            let st = unsafe { &mut *self.state };
            for t in st.timers.iter_mut().flatten() {
                if t.expire_ms.is_some_and(|at| at <= now_ms) {
                    t.expire_ms = None;
                    due.push((t.cb, t.cb_opaque));
                }
            }
        }
        for (cb, cb_opaque) in due {
            // SAFETY: a timer libslirp made with this callback and argument, not
            // freed (it is still in the table); the callback may call back into
            // our timer functions, which reach `state` only.
            unsafe { cb(cb_opaque) };
        }
    }

    /// Forwards connections (or datagrams, `udp`) to `host` on the host's side to
    /// `guest` on the guest's network (`slirp_add_hostfwd`).
    pub fn add_hostfwd(
        &mut self,
        udp: bool,
        host: SocketAddrV4,
        guest: SocketAddrV4,
    ) -> io::Result<()> {
        clear_errno();
        // SAFETY: a live instance; plain values.
        let r = unsafe {
            (self.lib.add_hostfwd)(
                self.slirp,
                udp.into(),
                in_addr(*host.ip()),
                host.port().into(),
                in_addr(*guest.ip()),
                guest.port().into(),
            )
        };
        result_of(r)
    }

    /// Forwards connections to `guest` (a virtual address on the guest's network,
    /// 0.0.0.0 for libslirp's choice) to the unix socket `path` on the host.
    pub fn add_unix(&mut self, path: &str, guest: SocketAddrV4) -> io::Result<()> {
        let path = c_string("unixfwd path", path)?;
        let mut addr = in_addr(*guest.ip());
        clear_errno();
        // SAFETY: a live instance; `path` and `addr` outlive the call.
        let r = unsafe {
            (self.lib.add_unix)(self.slirp, path.as_ptr(), &mut addr, guest.port().into())
        };
        result_of(r)
    }

    /// Forwards connections to `guest` (as in [`Engine::add_unix`]) to a command
    /// run on the host with the connection as its stdin and stdout.
    pub fn add_exec(&mut self, cmd: &str, guest: SocketAddrV4) -> io::Result<()> {
        let cmd = c_string("cmdfwd command", cmd)?;
        let mut addr = in_addr(*guest.ip());
        clear_errno();
        // SAFETY: a live instance; `cmd` and `addr` outlive the call.
        let r = unsafe {
            (self.lib.add_exec)(self.slirp, cmd.as_ptr(), &mut addr, guest.port().into())
        };
        result_of(r)
    }
}

fn clear_errno() {
    // SAFETY: errno is this thread's own variable.
    unsafe { *libc::__errno_location() = 0 };
}

/// libslirp's 0 / -1 (errno set by the socket call that failed, or not).
fn result_of(r: c_int) -> io::Result<()> {
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(0) | None => io::Error::new(io::ErrorKind::InvalidInput, "libslirp refused it"),
        _ => e,
    })
}

impl<G: Guest> Drop for Engine<G> {
    fn drop(&mut self) {
        // SAFETY: a live instance, cleaned up once; its callbacks (timer_free,
        // unregister) still find `state` and `callbacks`, freed only after.
        unsafe {
            (self.lib.cleanup)(self.slirp);
            drop(Box::from_raw(self.callbacks));
            drop(Box::from_raw(self.state));
        }
    }
}
