//! Memory given back (issue 18, finding 10). Password checks need Argon2's whole
//! memory block at once (19 MiB by default); the hasher keeps one block per hashing
//! place for them (`tweestap_domain::password`). Other large blocks remain: new
//! hashes, imported scrypt hashes. glibc serves such a block by its own mapping
//! only until the first one is freed: then it raises its mmap threshold to the
//! freed size (up to 32 MiB), later blocks come from the threads' heap arenas,
//! small allocations settle in the holes they leave, and the heap grows for good
//! (about 400 MB after a flood of passwords). A fixed threshold of 1 MiB keeps
//! every large block in a mapping of its own, returned to the system the moment
//! it is freed (figures in `docs/benchmarks.md`).

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

/// Gives the free memory inside the allocator's heaps back to the system. glibc
/// returns a heap's free end by itself, but not the free pages between blocks in
/// use, which a burst of work leaves behind (start-up; the console's hourly
/// counts, which read every account): about 1.5 MB after start-up on a database
/// of 20,000 accounts. It walks every heap under its lock, a few milliseconds,
/// so it runs after such bursts only.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free pages of the allocator's own
        // heaps (under its locks); no memory in use is touched.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
