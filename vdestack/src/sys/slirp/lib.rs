//! libslirp, loaded at run time (`dlopen("libslirp.so.0")`) the first time a
//! `slirp://` plug opens. The crate neither links it nor needs its headers to
//! build: a machine without libslirp builds and runs everything else, and
//! `slirp://` there fails with an error that says what to install.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::sync::OnceLock;

use super::ffi::{AddPollCb, GetREventsCb, SlirpCb, SlirpConfig};

/// The library's file name (its soname): what Debian's `libslirp0` installs.
pub const SONAME: &str = "libslirp.so.0";

type NewFn = unsafe extern "C" fn(*const SlirpConfig, *const SlirpCb, *mut c_void) -> *mut c_void;
type CleanupFn = unsafe extern "C" fn(*mut c_void);
type InputFn = unsafe extern "C" fn(*mut c_void, *const u8, c_int);
type FillFn = unsafe extern "C" fn(*mut c_void, *mut u32, AddPollCb, *mut c_void);
type PollFn = unsafe extern "C" fn(*mut c_void, c_int, GetREventsCb, *mut c_void);
type HostFwdFn =
    unsafe extern "C" fn(*mut c_void, c_int, libc::in_addr, c_int, libc::in_addr, c_int) -> c_int;
type GuestFwdFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, *mut libc::in_addr, c_int) -> c_int;
type VersionFn = unsafe extern "C" fn() -> *const c_char;

/// The functions we call, resolved once for the whole process. The library is
/// never closed: its code must stay while any `Slirp` lives, and a process
/// loads it at most once.
pub(super) struct Lib {
    pub new: NewFn,
    pub cleanup: CleanupFn,
    pub input: InputFn,
    pub pollfds_fill: FillFn,
    pub pollfds_poll: PollFn,
    pub add_hostfwd: HostFwdFn,
    pub add_unix: GuestFwdFn,
    pub add_exec: GuestFwdFn,
    #[cfg_attr(not(feature = "diagnostics"), allow(dead_code))]
    pub version_string: VersionFn,
}

/// The loaded library, or why it could not be loaded.
pub(super) fn get() -> io::Result<&'static Lib> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load)
        .as_ref()
        .map_err(|why| io::Error::new(io::ErrorKind::NotFound, why.clone()))
}

/// `dlerror()`'s message, if any.
fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the
    // next dl* call on this thread; it is copied at once.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".to_string()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

fn load() -> Result<Lib, String> {
    let name = CString::new(SONAME).expect("no NUL in the soname");
    // SAFETY: a valid NUL-terminated name; libslirp's initialisers only set up
    // glib, which is safe to load into any process.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!(
            "slirp:// needs libslirp ({}): install it (Debian: apt install libslirp0)",
            dl_error()
        ));
    }
    let sym = |s: &str| -> Result<*mut c_void, String> {
        let cs = CString::new(s).expect("no NUL in a symbol name");
        // SAFETY: `handle` is a live dlopen handle (never closed); the name is a
        // valid C string.
        let p = unsafe { libc::dlsym(handle, cs.as_ptr()) };
        if p.is_null() {
            Err(format!(
                "{SONAME} has no {s} ({}): slirp:// needs libslirp 4.1 or later",
                dl_error()
            ))
        } else {
            Ok(p)
        }
    };
    // SAFETY: each symbol is the libslirp 4.x function of that name, whose C
    // prototype (libslirp.h) is the function type it is transmuted to; a
    // non-null data pointer from dlsym is that function's address.
    unsafe {
        Ok(Lib {
            new: std::mem::transmute::<*mut c_void, NewFn>(sym("slirp_new")?),
            cleanup: std::mem::transmute::<*mut c_void, CleanupFn>(sym("slirp_cleanup")?),
            input: std::mem::transmute::<*mut c_void, InputFn>(sym("slirp_input")?),
            pollfds_fill: std::mem::transmute::<*mut c_void, FillFn>(sym("slirp_pollfds_fill")?),
            pollfds_poll: std::mem::transmute::<*mut c_void, PollFn>(sym("slirp_pollfds_poll")?),
            add_hostfwd: std::mem::transmute::<*mut c_void, HostFwdFn>(sym("slirp_add_hostfwd")?),
            add_unix: std::mem::transmute::<*mut c_void, GuestFwdFn>(sym("slirp_add_unix")?),
            add_exec: std::mem::transmute::<*mut c_void, GuestFwdFn>(sym("slirp_add_exec")?),
            version_string: std::mem::transmute::<*mut c_void, VersionFn>(sym(
                "slirp_version_string",
            )?),
        })
    }
}
