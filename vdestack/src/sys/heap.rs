//! Giving freed heap memory back to the system.

#![allow(unsafe_code)]

/// Returns the free memory at the top of every malloc arena to the system
/// (glibc's `malloc_trim(0)`): after many small objects are freed (e.g. the
/// last of 100,000 user-space stacks), the process's resident memory comes
/// back down rather than staying at its peak.
pub fn trim_heap() {
    // SAFETY: malloc_trim takes no pointer and only rearranges the allocator's
    // own free memory under its locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
