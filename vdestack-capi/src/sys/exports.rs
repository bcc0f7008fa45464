//! The `extern "C"` functions of `vdestack.h`, plus `vde_stack_onecmd` and the
//! `socket()` interposer. Each one converts its arguments, runs [`crate::api`]
//! inside `call` (panics caught, errno set) and converts the result back.

use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{c_argv, c_bytes, inside, raw_socket, set_errno, InsideGuard};
use crate::{api, handles};

/// The opaque `struct vdestack` of `vdestack.h`. Its pointers are handles (see
/// [`crate::handles`]), never dereferenced.
#[repr(C)]
pub struct VdeStack {
    _opaque: [u8; 0],
}

/// Runs one export's body: marks the thread as inside our library, catches panics
/// (they become `on_err` with errno EIO: never an unwind into C), and turns an
/// error into `on_err` with its errno.
fn call<T>(name: &str, on_err: T, body: impl FnOnce() -> io::Result<T>) -> T {
    let _inside = InsideGuard::enter();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            log::debug!("{name}: {e}");
            set_errno(vdestack::error::errno_of(&e));
            on_err
        }
        Err(_) => {
            log::error!("{name}: panicked");
            set_errno(libc::EIO);
            on_err
        }
    }
}

fn handle(stack: *const VdeStack) -> usize {
    stack as usize
}

/// Creates a stack. See `vdestack.h` and [`api::addstack`].
///
/// # Safety
///
/// `vdenet` and `ifname` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn vde_addstack(vdenet: *mut c_char, ifname: *mut c_char) -> *mut VdeStack {
    call("vde_addstack", std::ptr::null_mut(), || {
        // SAFETY: NULL or C strings, per this function's contract.
        let (net, name) = unsafe { (c_bytes(vdenet), c_bytes(ifname)) };
        Ok(api::addstack(net, name)? as *mut VdeStack)
    })
}

/// Deletes a stack; NULL and unknown handles are ignored (errno EINVAL).
#[no_mangle]
pub extern "C" fn vde_delstack(stack: *mut VdeStack) {
    call("vde_delstack", (), || api::delstack(handle(stack)))
}

/// Sets (or with NULL clears) the stack plain `socket()` calls use. An unknown
/// handle leaves the default unchanged (errno EINVAL).
#[no_mangle]
pub extern "C" fn vde_default_stack(stack: *mut VdeStack) {
    call("vde_default_stack", (), || {
        api::default_stack(handle(stack))
    })
}

/// Runs `;`-separated commands in the stack; see [`api::stackcmd`].
///
/// # Safety
///
/// `stackcmd` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn vde_stackcmd(stack: *mut VdeStack, stackcmd: *mut c_char) -> c_int {
    call("vde_stackcmd", -1, || {
        // SAFETY: NULL or a C string, per this function's contract.
        let Some(cmds) = (unsafe { c_bytes(stackcmd) }) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        api::stackcmd(handle(stack), cmds)
    })
}

/// Runs one NULL-terminated argv in the stack (exported by upstream too).
///
/// # Safety
///
/// `argv` is NULL or a NULL-terminated array of NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn vde_stack_onecmd(argv: *mut *mut c_char, stack: *mut c_void) -> c_int {
    call("vde_stack_onecmd", -1, || {
        // SAFETY: NULL or a NULL-terminated array of C strings, per the contract.
        let args = unsafe { c_argv(argv as *const *const c_char) };
        api::onecmd(handle(stack as *const VdeStack), &args)
    })
}

/// `socket()` in the stack's namespace.
#[no_mangle]
pub extern "C" fn vde_msocket(
    stack: *mut VdeStack,
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> c_int {
    call("vde_msocket", -1, || {
        api::msocket(handle(stack), domain, ty, protocol)
    })
}

/// The `socket()` interposer: in the default stack if there is one, else (and for
/// our library's own sockets) the system call itself. With no default stack it
/// neither allocates nor locks.
#[no_mangle]
pub extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let default = handles::default_handle();
    if default == 0 || inside() {
        return raw_socket(domain, ty, protocol);
    }
    vde_msocket(default as *mut VdeStack, domain, ty, protocol)
}
