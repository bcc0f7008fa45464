//! The handle registry: `struct vdestack *` values handed to C.
//!
//! A handle is the address of a small heap allocation that lives as long as the
//! stack is registered, so it is unique among live handles and never collides with
//! anything else; it is only ever used as a key, never dereferenced. Every call
//! looks its handle up here, so NULL, deleted and garbage handles are recognised
//! (`EINVAL`) instead of crashing. The registry holds an `Arc<Stack>`: a call takes
//! its own reference and releases the lock before doing any work, so a
//! `vde_delstack` racing with a `vde_msocket` in another thread is safe (the stack
//! is dropped when its last user finishes).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vdestack::stack::Stack;

/// One registered stack, with the allocation whose address is its handle.
struct Entry {
    _key: Box<u64>,
    stack: Arc<Stack>,
}

/// Live stacks by handle.
static STACKS: Mutex<BTreeMap<usize, Entry>> = Mutex::new(BTreeMap::new());

/// The default stack's handle (0: none), read lock-free by the `socket()`
/// interposer; written only with [`STACKS`] locked, so it never names a deleted
/// stack for long.
static DEFAULT: AtomicUsize = AtomicUsize::new(0);

fn stacks() -> MutexGuard<'static, BTreeMap<usize, Entry>> {
    // A panic elsewhere while holding the lock leaves the map consistent (every
    // update is a single insert or remove), so a poisoned lock is still usable.
    STACKS.lock().unwrap_or_else(|e| e.into_inner())
}

fn bad_handle() -> io::Error {
    vdestack::error::context(
        io::Error::from_raw_os_error(libc::EINVAL),
        "not a live vdestack handle",
    )
}

/// Registers `stack` and returns its new handle (never 0).
pub fn insert(stack: Stack) -> usize {
    let key = Box::new(0u64);
    let handle = &*key as *const u64 as usize;
    let entry = Entry {
        _key: key,
        stack: Arc::new(stack),
    };
    stacks().insert(handle, entry);
    handle
}

/// The stack behind `handle` (a reference of the caller's own), or `EINVAL`.
pub fn get(handle: usize) -> io::Result<Arc<Stack>> {
    stacks()
        .get(&handle)
        .map(|e| Arc::clone(&e.stack))
        .ok_or_else(bad_handle)
}

/// Unregisters `handle` (clearing the default if it is this stack) and returns the
/// registry's reference, for the caller to drop outside the lock; `EINVAL` if it is
/// not registered.
pub fn remove(handle: usize) -> io::Result<Arc<Stack>> {
    let mut map = stacks();
    let entry = map.remove(&handle).ok_or_else(bad_handle)?;
    let _ = DEFAULT.compare_exchange(handle, 0, Ordering::AcqRel, Ordering::Acquire);
    drop(map);
    Ok(entry.stack)
}

/// Makes `handle` the default stack (0: none); `EINVAL`, and the default unchanged,
/// if it is not a live handle.
pub fn set_default(handle: usize) -> io::Result<()> {
    let map = stacks();
    if handle != 0 && !map.contains_key(&handle) {
        return Err(bad_handle());
    }
    DEFAULT.store(handle, Ordering::Release);
    Ok(())
}

/// The default stack's handle, or 0. Lock-free and allocation-free (the `socket()`
/// interposer calls it on every socket).
pub fn default_handle() -> usize {
    DEFAULT.load(Ordering::Acquire)
}
