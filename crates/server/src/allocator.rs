//! Memory given back (issue 18, finding 10). Every password check allocates
//! Argon2's whole memory block at once (19 MiB by default) and frees it when done.
//! glibc serves such a block by its own mapping only until the first one is freed:
//! then it raises its mmap threshold to the freed size (up to 32 MiB), and later
//! blocks come from the heap arenas of the hashing threads, which keep the memory
//! when it is freed. After a flood of wrong passwords the server stayed at about
//! 400 MB for good. A fixed threshold of 1 MiB keeps every large block in a mapping
//! of its own, returned to the system the moment it is freed: the same flood peaks
//! at the hashes running at once and falls back to the idle size right after
//! (figures in `docs/benchmarks.md`).

/// Blocks of at least this size get a mapping of their own.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`]; nothing to do with other C
/// libraries (musl maps large blocks and returns them anyway).
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a parameter of the allocator (under its own
        // lock); it touches no memory of ours. It returns 0 only for an invalid
        // value, and then the default behaviour simply stays.
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
        if set == 0 {
            tracing::warn!("could not fix the allocator's mmap threshold");
        }
    }
}
