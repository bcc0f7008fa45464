//! `libvdestack.so.0` in Rust: a drop-in C ABI replacement for Debian's libvdestack
//! (VirtualSquare's "network namespace as a library"), built on
//! [`vdestack::stack::Stack`].
//!
//! It exports the calls of Debian's `vdestack.h` with the same signatures and
//! soname: `vde_addstack`, `vde_delstack`, `vde_msocket`, `vde_stackcmd`,
//! `vde_default_stack`, plus `vde_stack_onecmd` (exported by upstream too) and a
//! `socket()` interposer that makes plain `socket()` calls in the default stack.
//! A program built against Debian's libvdestack runs unchanged against this one.
//!
//! | file | what |
//! |---|---|
//! | [`handles`] | the registry: opaque `struct vdestack *` handles to shared stacks |
//! | [`api`] | the calls' logic, in safe Rust (`io::Result`s) |
//! | `sys/` | the only `unsafe`: the `extern "C"` exports, C strings, errno |
//!
//! ## Fixed on purpose compared with Debian's libvdestack
//!
//! * No fds are left behind after `vde_delstack` (upstream leaks the tap and the
//!   plug), nor, once its linger is over, the shared helper's; the stack's own fds are close-on-exec and none is shared with a helper
//!   (the helper does not share the application's fd table, so an application
//!   closing "all other fds" only loses its stacks, not the other way round).
//! * The helper is not the application's child, so `wait()` in a SIGCHLD handler
//!   cannot reap it; a command run by `vde_stackcmd` is the child of a keeper
//!   process cloned with no exit signal, so a plain `wait()`/`waitpid(-1)` can
//!   reap neither. A program that is PID 1 or a child subreaper, to which the
//!   helper is re-parented, is left no zombie: the library reaps it.
//!
//! One helper process serves all the program's stacks. After the last
//! `vde_delstack` it lingers 250 ms, so the next `vde_addstack` made meanwhile
//! does not start one (about 1 ms); then nothing of ours is left, no process, fd or
//! thread. Debian's API has no call to end it at once: `VDESTACK_HELPER_LINGER_MS`
//! in the environment sets the linger (`0`: it ends with the last stack, which
//! waits for it). A program that exits does not wait for it. See
//! `vdestack::stack::end_idle_helper` for the details.
//! * Sockets can be made in a `fork()`ed child (upstream shares memory and fds with
//!   the helper, which breaks in a child).
//! * NULL, deleted or garbage handles give `EINVAL` (or are ignored by the `void`
//!   calls) instead of a crash; a second `vde_delstack` is harmless.
//! * An interface name longer than 15 bytes (or with `:`, `/`, blanks, or empty)
//!   is refused with `EINVAL` instead of silently truncated. Strings that are not
//!   UTF-8 (network, name, commands) are refused with `EINVAL` too.
//! * A command killed by a signal makes `vde_stackcmd` return 128+signal, not 0.
//! * Sockets from `vde_msocket` are close-on-exec only if `SOCK_CLOEXEC` is asked
//!   for, as with `socket()` (the Rust API always makes them close-on-exec).
//!
//! Our library's own sockets (e.g. std's `UnixStream` for a `vde://` plug opened
//! by `vde_addstack`) bypass the `socket()` interposer: every export marks its
//! thread as "inside", and the interposer then makes the system call itself.
//!
//! Every export catches panics: a panic becomes the call's error value with errno
//! `EIO`, never an unwind into C.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod handles;
#[allow(unsafe_code)]
pub mod sys;
