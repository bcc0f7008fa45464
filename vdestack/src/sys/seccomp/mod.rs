//! seccomp user notification: the kernel stops a supervised thread at a system
//! call and asks us (the supervisor) to answer it (`seccomp_unotify(2)`).
//! Used by [`crate::vu`] to serve unmodified programs' network calls.
//!
//! | file | what |
//! |---|---|
//! | `bpf.rs` | [`program`]: a filter from [`Rule`]s (arch check, a decision tree on the call number, argument tests) |
//! | `install.rs` | [`spawn_with_filter`]: a `Command` under a filter, its listener fd passed back; [`check_support`] |
//! | `listener.rs` | [`Listener`]: receive a [`Notification`], answer it ([`Response`]), inject an fd |
//! | `memory.rs` | the supervised thread's memory: [`read_memory`], [`write_memory`], [`read_cstring`] |
//! | `deny.rs` | [`deny_namespaces_on_exec`]: a Docker-like filter refusing namespaces (for tests); [`filter_on_exec`] |
//!
//! Every `unsafe` block has a `// SAFETY:` comment; the rest of the crate sees
//! safe functions only. The filter interpreter and the namespace-denying filter
//! serve the tests and `crate::diagnostics` only (unused in other builds).

#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod bpf;
mod deny;
mod install;
mod listener;
mod memory;

#[cfg(test)]
mod tests;

pub use bpf::{program, run as run_program, Rule, Verdict, When, NATIVE_ARCH};
pub use deny::{deny_namespaces_on_exec, filter_on_exec};
pub use install::{check_support, spawn_with_filter, SpawnError, UNTRAPPED_SENDMSG_FLAGS};
pub use listener::{Listener, Notification, Response};
pub use memory::{read_cstring, read_memory, write_memory};
